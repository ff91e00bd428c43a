#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow hosts=1 timeout=3000
#
# save-bench: the sender alone, without the link between two QEMUs, whose
# pace hides the sender's own in engine-bench.  A 128 MiB PV and a 128 MiB
# PVH guest are saved to dom0's tmpfs and restored, ROUNDS times each by
# stock `xl save`, `xmig save --engine=libxc` and `xmig save` (own engine),
# the methods taking turns so that a slow spell of the machine hits all of
# them.  Per save: wall time, dom0 system time (/proc/stat), dom0's CPU
# time as Xen accounts it (xmig-probe cputime 0: the time Xen spends
# emulating dom0's trapped writes included, which no clock inside dom0
# sees; all of dom0), Xen's counters (trapped PTE writes, mmu_update calls,
# hypercalls), and for the own engine where its time went and what its
# result says it cost.  Every image is restored by stock `xl restore` and
# the guest verified at the end.
#
# xmig runs from dom0's tmpfs, as xl from its initramfs (step xmig-in-ram).
#
# First, the floor: xmig-probe writebench puts MIB MiB into dom0's tmpfs by
# write(2) (fresh file, allocated file), by memcpy into a shared mapping,
# and copies it between anonymous buffers; each with its wall time and
# CPU (step write-floor).
#
# Final lines, TYPE pv or pvh, medians over the rounds:
#   save_ratio_vs_xl_TYPE, save_ratio_vs_libxc_TYPE   the other sender's
#       save time / the own engine's
#   cpu_ratio_vs_xl_TYPE   the own engine's dom0 CPU per GiB of image /
#       xl's
#   dom0_cpu_s_per_gib_TYPE_METHOD, traps_per_page_TYPE_METHOD,
#   hypercalls_per_page_TYPE_METHOD   every sender's own figures (pages:
#       of the image, 4 KiB each)

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MIB=128
ROUNDS=${XMIG_SAVE_BENCH_ROUNDS:-3}
METHODS=(xl libxc xmig)


save_one() { # TYPE METHOD ROUND
    # The result and events go to tmpfs, as xl's log does, and are kept
    # after: a write to the 9p share costs a trip through QEMU.
    local g=$1 method=$2 img=$TB_TMP/$1.img json=$TB_TMP/save-bench-$1-$2-$3.json
    local t0 dt w m h cpu bytes rc=0
    case $method in
    xl) tb_cost timeout 600 xl save "$g" "$img" >"$TB_TMP/$g.save.log" 2>&1 ||
            { tail -n 5 "$TB_TMP/$g.save.log"; rc=1; } ;;
    *) tb_cost timeout 600 xmig save "$g" "$img" --engine "$method" --json --direct \
            >"$json" || { tail -n 3 "$json"; rc=1; } ;;
    esac
    [[ $method == xl ]] || cp "$json" "$TB_OUT/"
    ((rc == 0)) || return 1
    [[ -n $TB_COST_WALL ]] || { echo "no cost measured" >&2; return 1; }
    dt=$TB_COST_WALL w=$TB_COST_PTWR m=$TB_COST_MMU h=$TB_COST_HCALL
    cpu=$TB_COST_CPU_NS
    bytes=$(stat -c %s "$img") || return 1
    tb_note save_wall_s "$(_tb_secs $dt)"
    tb_note sys_s "$TB_COST_SYS"
    tb_note dom0_cpu_s "$(awk -v n="$cpu" 'BEGIN { printf "%.3f", n / 1e9 }')"
    tb_note bytes "$bytes"
    tb_note ptwr "$w"
    tb_note mmu "$m"
    tb_note hypercalls "$h"
    # TYPE METHOD WALL SYS CPU_S_PER_GIB PTWR_PER_PAGE HYPERCALLS_PER_PAGE
    awk -v g="$g" -v m="$method" -v wall="$(_tb_secs $dt)" -v sys="$TB_COST_SYS" \
        -v cpu="$cpu" -v b="$bytes" -v w="$w" -v h="$h" 'BEGIN {
            p = b / 4096
            printf "%s %s %s %.2f %.4f %.6f %.6f\n", g, m, wall, sys,
                (b > 0 ? cpu / 1e9 / (b / 1073741824) : 0),
                (p > 0 ? w / p : 0), (p > 0 ? h / p : 0) }' >>"$TB_TMP/save-bench.times"
    if [[ $method == xmig ]]; then
        local f v
        for f in map_s unmap_s types_s write_s unswept dom0_cpu_s traps hypercalls; do
            v=$(grep -o "\"$f\":[0-9.e+-]*" "$json" | tail -n 1 | cut -d: -f2)
            tb_note "$f" "${v:-null}"
        done
        # Where the rest of the time goes: when each phase began (s since
        # the job started; done: the image renamed into place, the guest
        # destroyed).
        for f in connect stream suspend "done"; do
            v=$(sed -n "s/.*\"t\":\([0-9.]*\),\"phase\":\"$f\".*/\1/p" "$json" | head -n 1)
            tb_note "at_${f}_s" "${v:-null}"
        done
        v=$(grep -o '"total_s":[0-9.]*' "$json" | tail -n 1 | cut -d: -f2)
        tb_note total_s "${v:-null}"
    fi
    echo "$g $method round $3: save $(_tb_secs $dt) s, ptwr $w, mmu_update $m," \
        "hypercalls $h, dom0 CPU (Xen) $(awk -v n="$cpu" 'BEGIN { printf "%.3f", n / 1e9 }') s"
    t0=$(_tb_now)
    timeout 600 xl restore "$img" >"$TB_TMP/$g.restore.log" 2>&1 ||
        { tail -n 5 "$TB_TMP/$g.restore.log"; rm -f "$img"; return 1; }
    tb_note restore_wall_s "$(_tb_secs $(($(_tb_now) - t0)))"
    rm -f "$img"
}

# A PVH guest's gfns: where its pages lie, whether those holding data add
# up to the pages Xen counts (what lets the own engine's first pass stop
# early, lib/engine.c sweep_ends), and what asking about every gfn costs.
layout() { # NAME
    local id out f
    id=$(xl domid "$1") || return 1
    out=$(/host/root/usr/libexec/xmig/xmig-probe gfns "$id") || return 1
    echo "$out"
    for f in $(tail -n 1 <<<"$out"); do
        tb_note "${f%%=*}" "${f#*=}"
    done
    [[ $out == *"gfns_data="* ]]
}

bench() { # TYPE
    local r m
    tb_step "create-$1" tb_guest_create "$1" "$1" "$MIB"
    [[ $1 == pv ]] || tb_step "layout-$1" layout "$1"
    for ((r = 1; r <= ROUNDS; r++)); do
        for m in "${METHODS[@]}"; do
            tb_step "save-$1-$m-$r" save_one "$1" "$m" "$r"
        done
    done
    tb_step "verify-$1" tb_guest_verify "$1"
    tb_step "destroy-$1" tb_guest_destroy "$1"
}
gone() { tb_guest_gone "$1"; }

# What dom0 pays to put an image's bytes into its tmpfs at all, whoever
# writes them, and what the ways a sender could write them cost.
write_floor() {
    local line k f v
    /host/root/usr/libexec/xmig/xmig-probe writebench "$TB_TMP" "$MIB" >"$TB_TMP/writebench" ||
        return 1
    cat "$TB_TMP/writebench"
    while read -r _ k line; do
        for f in $line; do
            v=${f#*=}
            tb_note "${k//-/_}_${f%%=*}" "$v"
        done
    done <"$TB_TMP/writebench"
}
tb_step write-floor write_floor

# xl runs from dom0's initramfs, in RAM; the staged xmig from the 9p share,
# where every page of it that runs is read through QEMU, at each start.  A
# host runs both from its page cache: so do they here.
in_ram() {
    mkdir -p "$TB_TMP/bin" && cp /host/root/usr/bin/xmig "$TB_TMP/bin/" &&
        "$TB_TMP/bin/xmig" --version >/dev/null
}
tb_step xmig-in-ram in_ram
PATH=$TB_TMP/bin:$PATH

: >"$TB_TMP/save-bench.times"
for type in pv pvh; do
    tb_attempts 5 gone bench "$type"
done

# Medians over the rounds; a failed attempt's saves stay out (they are
# in the log, and its guest is not the one that was verified).
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
# column COL of the last ROUNDS saves of TYPE by METHOD, its median
median_of() { # TYPE METHOD COL
    awk -v t="$1" -v m="$2" -v c="$3" '$1 == t && $2 == m { print $c }' \
        "$TB_TMP/save-bench.times" | tail -n "$ROUNDS" | median
}
declare -A W S C T H
for type in pv pvh; do
    for m in "${METHODS[@]}"; do
        W[$type.$m]=$(median_of "$type" "$m" 3)
        S[$type.$m]=$(median_of "$type" "$m" 4)
        C[$type.$m]=$(median_of "$type" "$m" 5)
        T[$type.$m]=$(median_of "$type" "$m" 6)
        H[$type.$m]=$(median_of "$type" "$m" 7)
    done
done
{
    printf '%-4s %-6s %12s %12s %10s %10s %10s\n' guest method median_save_s \
        median_sys_s cpu_s_gib ptwr_pg hcall_pg
    for type in pv pvh; do
        for m in "${METHODS[@]}"; do
            printf '%-4s %-6s %12s %12s %10s %10s %10s\n' "$type" "$m" "${W[$type.$m]}" \
                "${S[$type.$m]}" "${C[$type.$m]}" "${T[$type.$m]}" "${H[$type.$m]}"
        done
    done
} | tee "$TB_OUT/save-bench.table"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
metric() { # NAME VALUE
    tb_metric "$1" "$2"
    echo "$1=$2"
}
for type in pv pvh; do
    for m in xl libxc; do
        metric "save_ratio_vs_${m}_$type" "$(ratio "${W[$type.$m]}" "${W[$type.xmig]}")"
    done
    metric "cpu_ratio_vs_xl_$type" "$(ratio "${C[$type.xmig]}" "${C[$type.xl]}")"
done
for type in pv pvh; do
    for m in "${METHODS[@]}"; do
        metric "dom0_cpu_s_per_gib_${type}_$m" "${C[$type.$m]}"
        metric "traps_per_page_${type}_$m" "${T[$type.$m]}"
        metric "hypercalls_per_page_${type}_$m" "${H[$type.$m]}"
    done
done
