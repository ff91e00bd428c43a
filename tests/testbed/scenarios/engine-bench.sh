#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow hosts=2 timeout=4200
#
# engine-bench: stock `xl migrate`, `xmig migrate --engine=libxc`,
# `xmig migrate` (own engine) and `xmig migrate --no-skip` of a 128 MiB PV and a 128 MiB PVH guest from
# host a to a stock `xl migrate-receive` on host b, each guest dirtying a
# hot quarter of its memory.  Every sender goes through the same relay
# (xmig-probe relay), which counts the bytes it carried.  On the sending
# host: Xen's counters (reset before each run) and dom0 system time.  The
# guest itself measures its downtime (the longest stall it saw).
#
# Final lines: trap_ratio_vs_xl (own engine's trapped PTE writes per page
# sent / xl's, PV), traps_vs_xl and pages_vs_xl (in all, PV),
# time_ratio_vs_xl (xl's total time / ours, PV) and the same time ratio for
# PVH; the _noskip lines are for the own engine with --no-skip.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MIB=128
# The hot working set: about a quarter of the guest's memory.  The workload
# fills what the guest kernel leaves (~9000 of 32768 pages at 128 MiB) and
# re-dirties the first P % of it, 3000 pages/s: 90 % is ~8100 pages, 32 MiB.
export TB_GUEST_EXTRA="xmig.memtest=--wss-pct,90"
PROBE=/host/root/usr/libexec/xmig/xmig-probe
RELAY_LOG=$TB_TMP/relay.log
RELAY_SSH=$TB_TMP/ssh-relay
# xl runs "CMD HOST xl migrate-receive": the relay ignores the command, the
# receiver on host b runs it.
printf '#!/bin/sh\nexec %s relay "$1" %s 2>%s\n' "$PROBE" "$TB_MIGRATE_PORT" \
    "$RELAY_LOG" >"$RELAY_SSH"
chmod +x "$RELAY_SSH"

# noskip: the own engine with --no-skip, sending what xl sends: its traps
# show what reusing mappings alone saves.
METHODS=(xl libxc xmig noskip)
declare -A R # R[type.method.field]

dom0_sys_ticks() { awk '/^cpu / { print $4 }' /proc/stat; }

run_one() { # TYPE METHOD
    local type=$1 method=$2 g=$1 json=$TB_OUT/engine-bench-$1-$2.json
    local t0 dt s0 s1 w m bytes gap rc=0
    rm -f "$RELAY_LOG"
    tb_guest_cmd "$g" stats '^stats' || return 1
    tb_guest_cmd "$g" gap '^gap' >/dev/null
    tb_perf_reset
    s0=$(dom0_sys_ticks)
    t0=$(_tb_now)
    case $method in
    xl)
        timeout 600 xl migrate -s "$RELAY_SSH" "$g" "$TB_PEER_IP" \
            >"$TB_TMP/$g.xl.log" 2>&1 || { tail -n 5 "$TB_TMP/$g.xl.log"; rc=1; }
        ;;
    libxc | xmig | noskip)
        local opts=(--engine "$method")
        [[ $method == noskip ]] && opts=(--engine xmig --no-skip)
        timeout 600 xmig migrate "$g" \
            "exec:$PROBE relay $TB_PEER_IP $TB_MIGRATE_PORT 2>$RELAY_LOG" \
            "${opts[@]}" --json --direct >"$json" || { tail -n 3 "$json"; rc=1; }
        ;;
    esac
    dt=$(($(_tb_now) - t0))
    s1=$(dom0_sys_ticks)
    ((rc == 0)) || return 1
    read -r w m < <(tb_perf_read)
    bytes=$(sed -n 's/^relay_sent_bytes=//p' "$RELAY_LOG")
    [[ -n $bytes ]] || { echo "the relay reported no byte count" >&2; return 1; }
    gap=$(tb_on_peer tb_guest_cmd "$g" gap '^gap') || return 1
    gap=${gap##*max_ms=}
    R[$type.$method.wall]=$(_tb_secs $dt)
    R[$type.$method.pages]=$((bytes / 4096))
    R[$type.$method.ptwr]=$w
    R[$type.$method.mmu]=$m
    R[$type.$method.sys]=$(awk -v a="$s0" -v b="$s1" 'BEGIN { printf "%.2f", (b - a) / 100 }')
    R[$type.$method.down]=$(awk -v g="$gap" 'BEGIN { printf "%.3f", g / 1000 }')
    local f
    for f in wall pages ptwr mmu sys down; do
        tb_note "$f" "${R[$type.$method.$f]}"
        # Attempts run in subshells: the table below reads them back.
        printf 'R[%s]=%q\n' "$type.$method.$f" "${R[$type.$method.$f]}" >>"$TB_TMP/engine-bench.R"
    done
    echo "$type $method: wall ${R[$type.$method.wall]} s, downtime ${R[$type.$method.down]} s," \
        "pages ${R[$type.$method.pages]}, ptwr $w, mmu_update $m, dom0 sys ${R[$type.$method.sys]} s"
}

after() { # TYPE: the guest on host b is intact; then it goes away
    tb_on_peer tb_guest_verify "$1" || return 1
    tb_on_peer tb_guest_destroy "$1"
}

one() { # TYPE METHOD
    tb_step "create-$1-for-$2" tb_guest_create "$1" "$1" "$MIB"
    tb_step "migrate-$1-$2" run_one "$1" "$2"
    tb_step "verify-$1-$2" after "$1"
}
# Before a retry (lib.sh: tb_attempts; QEMU's emulated SVM has
# triple-faulted PVH guests here): no copy of the guest on either host.
gone() { # TYPE METHOD
    tb_guest_gone "$1"
    tb_on_peer tb_guest_gone "$1" || true
    tb_on_peer tb_guest_gone "$1--incoming" || true
}

rm -f "$TB_TMP/engine-bench.R"
for type in pv pvh; do
    for method in "${METHODS[@]}"; do
        tb_attempts 5 gone one "$type" "$method"
    done
done
# shellcheck disable=SC1091 # written by run_one
. "$TB_TMP/engine-bench.R"

table() {
    local type method
    printf '%-4s %-6s %8s %8s %8s %9s %9s %9s\n' guest method wall_s down_s \
        pages ptwr mmu_upd sys_s
    for type in pv pvh; do
        for method in "${METHODS[@]}"; do
            printf '%-4s %-6s %8s %8s %8s %9s %9s %9s\n' "$type" "$method" \
                "${R[$type.$method.wall]}" "${R[$type.$method.down]}" \
                "${R[$type.$method.pages]}" "${R[$type.$method.ptwr]}" \
                "${R[$type.$method.mmu]}" "${R[$type.$method.sys]}"
        done
    done
}
table | tee "$TB_OUT/engine-bench.table"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
per_page() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", (b > 0 ? a / b : 0) }'; }

# Per page sent, as xl counts them, and in all.
metric() { # NAME VALUE
    tb_metric "$1" "$2"
    echo "$1=$2"
}
trap_ratio() { # METHOD
    ratio "$(per_page "${R[pv.$1.ptwr]}" "${R[pv.$1.pages]}")" \
        "$(per_page "${R[pv.xl.ptwr]}" "${R[pv.xl.pages]}")"
}
metric trap_ratio_vs_xl "$(trap_ratio xmig)"
metric trap_ratio_vs_xl_noskip "$(trap_ratio noskip)"
metric traps_vs_xl "$(ratio "${R[pv.xmig.ptwr]}" "${R[pv.xl.ptwr]}")"
metric pages_vs_xl "$(ratio "${R[pv.xmig.pages]}" "${R[pv.xl.pages]}")"
metric time_ratio_vs_xl "$(ratio "${R[pv.xl.wall]}" "${R[pv.xmig.wall]}")"
metric time_ratio_vs_xl_noskip "$(ratio "${R[pv.xl.wall]}" "${R[pv.noskip.wall]}")"
metric time_ratio_vs_xl_pvh "$(ratio "${R[pvh.xl.wall]}" "${R[pvh.xmig.wall]}")"
metric time_ratio_vs_xl_pvh_noskip "$(ratio "${R[pvh.xl.wall]}" "${R[pvh.noskip.wall]}")"
