#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow hosts=1 timeout=3000
#
# save-bench: the sender alone, without the link between two QEMUs, whose
# pace hides the sender's own in engine-bench.  A 128 MiB PV and a 128 MiB
# PVH guest are saved to dom0's tmpfs and restored, ROUNDS times each by
# stock `xl save`, `xmig save --engine=libxc` and `xmig save` (own engine),
# the methods taking turns so that a slow spell of the machine hits all of
# them.  Per save: wall time, dom0 system time, Xen's counters, and for the
# own engine where its time went.  Every image is restored by stock
# `xl restore` and the guest verified at the end.
#
# Final lines: save_ratio_vs_xl_TYPE and save_ratio_vs_libxc_TYPE (the
# other sender's median save time / the own engine's).

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MIB=128
ROUNDS=${XMIG_SAVE_BENCH_ROUNDS:-3}
METHODS=(xl libxc xmig)

dom0_sys_ticks() { awk '/^cpu / { print $4 }' /proc/stat; }

save_one() { # TYPE METHOD ROUND
    local g=$1 method=$2 img=$TB_TMP/$1.img json=$TB_OUT/save-bench-$1-$2-$3.json
    local t0 dt s0 s1 w m rc=0
    tb_perf_reset
    s0=$(dom0_sys_ticks)
    t0=$(_tb_now)
    case $method in
    xl) timeout 600 xl save "$g" "$img" >"$TB_TMP/$g.save.log" 2>&1 ||
            { tail -n 5 "$TB_TMP/$g.save.log"; rc=1; } ;;
    *) timeout 600 xmig save "$g" "$img" --engine "$method" --json --direct \
            >"$json" || { tail -n 3 "$json"; rc=1; } ;;
    esac
    dt=$(($(_tb_now) - t0))
    s1=$(dom0_sys_ticks)
    ((rc == 0)) || return 1
    read -r w m < <(tb_perf_read)
    tb_note save_wall_s "$(_tb_secs $dt)"
    tb_note sys_s "$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", (b - a) / 100 }')"
    tb_note bytes "$(stat -c %s "$img")"
    tb_note ptwr "$w"
    tb_note mmu "$m"
    printf '%s %s %s %s\n' "$g" "$method" "$(_tb_secs $dt)" \
        "$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", (b - a) / 100 }')" \
        >>"$TB_TMP/save-bench.times"
    if [[ $method == xmig ]]; then
        local f v
        for f in map_s unmap_s types_s write_s; do
            v=$(grep -o "\"$f\":[0-9.e+-]*" "$json" | tail -n 1 | cut -d: -f2)
            tb_note "$f" "${v:-null}"
        done
    fi
    echo "$g $method round $3: save $(_tb_secs $dt) s, ptwr $w, mmu_update $m"
    t0=$(_tb_now)
    timeout 600 xl restore "$img" >"$TB_TMP/$g.restore.log" 2>&1 ||
        { tail -n 5 "$TB_TMP/$g.restore.log"; rm -f "$img"; return 1; }
    tb_note restore_wall_s "$(_tb_secs $(($(_tb_now) - t0)))"
    rm -f "$img"
}

bench() { # TYPE
    local r m
    tb_step "create-$1" tb_guest_create "$1" "$1" "$MIB"
    for ((r = 1; r <= ROUNDS; r++)); do
        for m in "${METHODS[@]}"; do
            tb_step "save-$1-$m-$r" save_one "$1" "$m" "$r"
        done
    done
    tb_step "verify-$1" tb_guest_verify "$1"
    tb_step "destroy-$1" tb_guest_destroy "$1"
}
gone() { tb_guest_gone "$1"; }

: >"$TB_TMP/save-bench.times"
for type in pv pvh; do
    tb_attempts 5 gone bench "$type"
done

# Medians over the rounds; a failed attempt's saves stay out (they are
# in the log, and its guest is not the one that was verified).
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }
declare -A W S
for type in pv pvh; do
    for m in "${METHODS[@]}"; do
        W[$type.$m]=$(awk -v t="$type" -v m="$m" '$1 == t && $2 == m { print $3 }' \
            "$TB_TMP/save-bench.times" | tail -n "$ROUNDS" | median)
        S[$type.$m]=$(awk -v t="$type" -v m="$m" '$1 == t && $2 == m { print $4 }' \
            "$TB_TMP/save-bench.times" | tail -n "$ROUNDS" | median)
    done
done
{
    printf '%-4s %-6s %12s %12s\n' guest method median_save_s median_sys_s
    for type in pv pvh; do
        for m in "${METHODS[@]}"; do
            printf '%-4s %-6s %12s %12s\n' "$type" "$m" "${W[$type.$m]}" "${S[$type.$m]}"
        done
    done
} | tee "$TB_OUT/save-bench.table"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
for type in pv pvh; do
    for m in xl libxc; do
        v=$(ratio "${W[$type.$m]}" "${W[$type.xmig]}")
        tb_metric "save_ratio_vs_${m}_$type" "$v"
        echo "save_ratio_vs_${m}_$type=$v"
    done
done
