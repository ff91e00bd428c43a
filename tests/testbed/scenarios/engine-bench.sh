#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow hosts=2 timeout=4200
#
# engine-bench: stock `xl migrate`, `xmig migrate --engine=libxc`,
# `xmig migrate` (own engine: on this stock dom0 kernel, strategy exit),
# `xmig migrate --no-skip` and `xmig migrate --strategy arena` of a 128 MiB PV and a
# 128 MiB PVH guest (XMIG_ENGINE_BENCH_TYPES="pv pvh hvm": an HVM guest as
# well, with xl, libxc and xmig only) from host a to a stock `xl migrate-receive` on host b,
# each guest dirtying a hot quarter of its memory.  Every sender goes
# through the same relay (xmig-probe relay), which counts the bytes it
# carried; one more, `xmig migrate` to tcp://, goes straight to host b.  On the sending host: Xen's counters (reset before each run:
# trapped PTE writes, mmu_update calls, hypercalls), dom0's CPU time as
# Xen accounts it (xmig-probe cputime 0: the time Xen spends emulating
# dom0's trapped writes included, which no clock inside dom0 sees) and
# dom0's system time from /proc/stat.  Both are all of dom0, the relay
# included: the same for every sender.  The guest itself measures its
# downtime (the longest stall it saw).
#
# One run of a sender varies with the guest's dirtying and the link more
# than the senders differ: each runs XMIG_ENGINE_BENCH_ROUNDS times (2),
# in turns, and the figures are the rounds' means (per GiB: all the CPU
# time over all the bytes).
#
# Final lines, TYPE pv, pvh or hvm and METHOD xl libxc xmig noskip arena tcp:
#   trap_ratio_vs_xl      own engine's trapped PTE writes per page sent /
#                         xl's, PV; trap_ratio_vs_xl_pvh the same for PVH
#                         (and so on: _hvm for HVM)
#   traps_vs_xl, pages_vs_xl      in all, PV
#   cpu_ratio_vs_xl       own engine's dom0 CPU per GiB sent / xl's, PV;
#                         cpu_ratio_vs_xl_pvh the same for PVH
#   cpu_total_ratio_vs_xl own engine's dom0 CPU for the whole migration of
#                         the same guest / xl's, PV (_pvh: PVH).  Per GiB
#                         sent charges a sender that sends fewer pages
#                         (skipping those dirtied again) its fixed costs
#                         over fewer bytes; both are printed.
#   time_ratio_vs_xl      xl's total time / ours, PV; time_ratio_vs_xl_pvh
#   the same four ratios with _noskip (the own engine with --no-skip),
#   _arena (with --strategy arena) and _tcp (to tcp://, no relay) appended
#   dom0_cpu_s_per_gib_TYPE_METHOD, traps_per_page_TYPE_METHOD,
#   hypercalls_per_page_TYPE_METHOD       every sender's own figures
#   dom0_cpu_s_per_gib_floor_HOP  the floor, HOP pipe or socket: dom0's
#                         CPU per GiB when xmig-probe feed sends the bytes
#                         (a write from memory, nothing mapped) through the
#                         same relay to a sink on host b, once a round.
#                         The relay, dom0's TCP stack and the emulated NIC
#                         cost every sender that much; xl's stream reaches
#                         the relay through a pipe, xmig's through a socket
#                         with a 4 MiB send buffer, as xmig's transport.
#                         The floors are context, not a sender's baseline:
#                         a migration's fixed costs (suspend, libxl, the
#                         guest's teardown) come on top, spread over the
#                         bytes each sender chose to send.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# An HVM guest's workload on Xen's PV console: on its emulated UART it
# stopped answering after a move in the testbed (scenario hvm-boot).
export TB_HVM_CONSOLE=${TB_HVM_CONSOLE:-hvc0}

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
# shellcheck disable=SC2016 # $1 is for the script, not for us
printf '#!/bin/sh\nexec %s relay "$1" %s 2>%s\n' "$PROBE" "$TB_MIGRATE_PORT" \
    "$RELAY_LOG" >"$RELAY_SSH"
chmod +x "$RELAY_SSH"

# noskip: the own engine with --no-skip, sending what xl sends: its traps
# show what reusing mappings alone saves.  arena: the own engine with
# --strategy arena, what the default was on a stock kernel before exit
# (xmig is the default: exit here, where the dom0 kernel is stock).
# tcp: the own engine straight to host b's receiver (tcp://), no relay:
# what xl cannot do (its stream always goes through a child, ssh's
# place), and what an admin's trusted migration network allows.
METHODS=(xl libxc xmig noskip arena tcp)
ROUNDS=${XMIG_ENGINE_BENCH_ROUNDS:-2}
# XMIG_ENGINE_BENCH_TYPES: the guests, any of pv pvh hvm.  An HVM guest
# takes a minute to boot under TCG (hvmloader, SeaBIOS and the device
# model): it runs the senders that matter only, and only when asked.
read -r -a TYPES <<<"${XMIG_ENGINE_BENCH_TYPES:-pv pvh}"
HVM_METHODS=(xl libxc xmig)
# XMIG_ENGINE_BENCH_METHODS: fewer senders (tests/run-all: "xl xmig tcp"),
# xl and xmig among them, the two ends of every ratio.
if [[ -n ${XMIG_ENGINE_BENCH_METHODS:-} ]]; then
    read -r -a want <<<"$XMIG_ENGINE_BENCH_METHODS"
    for m in "${want[@]}"; do
        [[ " ${METHODS[*]} " == *" $m "* ]] ||
            tb_fail "XMIG_ENGINE_BENCH_METHODS: no sender '$m' (${METHODS[*]})"
    done
    [[ " ${want[*]} " == *" xl "* && " ${want[*]} " == *" xmig "* ]] ||
        tb_fail "XMIG_ENGINE_BENCH_METHODS must name xl and xmig"
    keep=()
    for m in "${HVM_METHODS[@]}"; do [[ " ${want[*]} " == *" $m "* ]] && keep+=("$m"); done
    METHODS=("${want[@]}") HVM_METHODS=("${keep[@]}")
fi
methods_of() { # TYPE: into M
    if [[ $1 == hvm ]]; then M=("${HVM_METHODS[@]}"); else M=("${METHODS[@]}"); fi
}
round=1
declare -A R # R[type.method.field]

# NS BYTES: seconds per GiB
per_gib() { awk -v n="$1" -v b="$2" 'BEGIN { printf "%.4f", (b > 0 ? n / 1e9 / (b / 1073741824) : 0) }'; }

run_one() { # TYPE METHOD
    # The result and events go to tmpfs, as xl's log does, and are kept
    # after: a write to the 9p share costs a trip through QEMU.
    local type=$1 method=$2 g=$1 json=$TB_TMP/engine-bench-$1-$2.json
    local dt w m h cpu bytes gap rc=0
    rm -f "$RELAY_LOG"
    tb_guest_cmd "$g" stats '^stats' || return 1
    tb_guest_cmd "$g" gap '^gap' >/dev/null
    case $method in
    xl)
        tb_cost timeout 600 xl migrate -s "$RELAY_SSH" "$g" "$TB_PEER_IP" \
            >"$TB_TMP/$g.xl.log" 2>&1 || { tail -n 5 "$TB_TMP/$g.xl.log"; rc=1; }
        ;;
    tcp)
        tb_cost timeout 600 xmig migrate "$g" "tcp://$TB_PEER_IP:$TB_MIGRATE_PORT" \
            --json --direct >"$json" || { tail -n 3 "$json"; rc=1; }
        # No relay to count them: the stream's bytes as the engine wrote
        # them (the relay counts libxl's few framing bytes as well).
        echo "relay_sent_bytes=$(sed -n 's/.*"bytes":\([0-9]*\).*/\1/p' "$json")" >"$RELAY_LOG"
        ;;
    libxc | xmig | noskip | arena)
        local opts=(--engine "$method")
        [[ $method == noskip ]] && opts=(--engine xmig --no-skip)
        [[ $method == arena ]] && opts=(--engine xmig --strategy arena)
        tb_cost timeout 600 xmig migrate "$g" \
            "exec:$PROBE relay $TB_PEER_IP $TB_MIGRATE_PORT 2>$RELAY_LOG" \
            "${opts[@]}" --json --direct >"$json" || { tail -n 3 "$json"; rc=1; }
        ;;
    esac
    [[ $method == xl ]] || cp "$json" "$TB_OUT/"
    ((rc == 0)) || return 1
    [[ -n $TB_COST_WALL ]] || { echo "no cost measured" >&2; return 1; }
    dt=$TB_COST_WALL w=$TB_COST_PTWR m=$TB_COST_MMU h=$TB_COST_HCALL
    cpu=$TB_COST_CPU_NS
    bytes=$(sed -n 's/^relay_sent_bytes=//p' "$RELAY_LOG")
    [[ -n $bytes ]] || { echo "the relay reported no byte count" >&2; return 1; }
    gap=$(tb_on_peer tb_guest_cmd "$g" gap '^gap') || return 1
    gap=${gap##*max_ms=}
    R[$type.$method.wall]=$(_tb_secs $dt)
    R[$type.$method.bytes]=$bytes
    R[$type.$method.pages]=$((bytes / 4096))
    R[$type.$method.ptwr]=$w
    R[$type.$method.mmu]=$m
    R[$type.$method.hcall]=$h
    R[$type.$method.sys]=$TB_COST_SYS
    R[$type.$method.cpu]=$(awk -v n="$cpu" 'BEGIN { printf "%.3f", n / 1e9 }')
    R[$type.$method.cpu_gib]=$(per_gib "$cpu" "$bytes")
    R[$type.$method.down]=$(awk -v g="$gap" 'BEGIN { printf "%.3f", g / 1000 }')
    local f
    for f in wall bytes pages ptwr mmu hcall sys cpu cpu_gib down; do
        tb_note "$f" "${R[$type.$method.$f]}"
        # Attempts run in subshells: the table below reads them back.
        printf 'R[%s]=%q\n' "$type.$method.$f@$round" "${R[$type.$method.$f]}" >>"$TB_TMP/engine-bench.R"
    done
    echo "$type $method round $round: wall ${R[$type.$method.wall]} s, downtime ${R[$type.$method.down]} s," \
        "pages ${R[$type.$method.pages]}, ptwr $w, mmu_update $m, hypercalls $h," \
        "dom0 sys ${R[$type.$method.sys]} s, dom0 CPU (Xen) ${R[$type.$method.cpu]} s," \
        "${R[$type.$method.cpu_gib]} s per GiB"
}

after() { # TYPE: the guest on host b is intact; then it goes away
    tb_on_peer tb_guest_verify "$1" || return 1
    tb_on_peer tb_guest_destroy "$1"
}

one() { # TYPE METHOD ROUND
    round=$3
    tb_step "create-$1-for-$2-$3" tb_guest_create "$1" "$1" "$MIB"
    tb_step "migrate-$1-$2-$3" run_one "$1" "$2"
    tb_step "verify-$1-$2-$3" after "$1"
}
# Before a retry (lib.sh: tb_attempts; QEMU's emulated SVM has
# triple-faulted PVH guests here): no copy of the guest on either host.
gone() { # TYPE METHOD ROUND
    tb_guest_gone "$1"
    tb_on_peer tb_guest_gone "$1" || true
    tb_on_peer tb_guest_gone "$1--incoming" || true
}

# The floor: FLOOR_MIB through the relay to a sink on host b.
FLOOR_MIB=192
SINK_PORT=$((TB_MIGRATE_PORT + 1))
# Host b runs a request with lib.sh's functions only, not this file's.
sink_serve='setsid nc -ll -p "$1" -e "$2" sink </dev/null >/dev/null 2>&1 &'
floor() { # HOP ROUND
    local bytes
    rm -f "$RELAY_LOG"
    tb_cost "$PROBE" feed "$FLOOR_MIB" "$1" -- \
        sh -c "exec $PROBE relay $TB_PEER_IP $SINK_PORT 2>$RELAY_LOG" || return 1
    [[ -n $TB_COST_CPU_NS ]] || { echo "no cost measured" >&2; return 1; }
    bytes=$(sed -n 's/^relay_sent_bytes=//p' "$RELAY_LOG")
    [[ $bytes == $((FLOOR_MIB << 20)) ]] ||
        { echo "the relay carried '$bytes' bytes of $((FLOOR_MIB << 20))" >&2; return 1; }
    printf 'R[%s]=%q\n' "floor.$1.cpu@$2" "$TB_COST_CPU_NS" "floor.$1.bytes@$2" "$bytes" \
        >>"$TB_TMP/engine-bench.R"
    echo "floor $1 round $2: dom0 CPU (Xen) $(awk -v n="$TB_COST_CPU_NS" 'BEGIN { printf "%.3f", n / 1e9 }') s," \
        "$(per_gib "$TB_COST_CPU_NS" "$bytes") s per GiB, wall $(_tb_secs "$TB_COST_WALL") s"
}

rm -f "$TB_TMP/engine-bench.R"
tb_step sink-on-peer tb_on_peer sh -c "$sink_serve" sh "$SINK_PORT" "$PROBE"
for ((r = 1; r <= ROUNDS; r++)); do
    for type in "${TYPES[@]}"; do
        methods_of "$type"
        for method in "${M[@]}"; do
            tb_attempts 5 gone one "$type" "$method" "$r"
        done
    done
    tb_step "floor-pipe-$r" floor pipe "$r"
    tb_step "floor-socket-$r" floor socket "$r"
done
# shellcheck disable=SC1091 # written by run_one
. "$TB_TMP/engine-bench.R"

# The rounds' sum of R[KEY@r].
rounds_sum() { # KEY
    local r
    for ((r = 1; r <= ROUNDS; r++)); do echo "${R[$1@$r]}"; done |
        awk '{ s += $1 } END { printf "%.6f", s }'
}
for type in "${TYPES[@]}"; do
    methods_of "$type"
    for method in "${M[@]}"; do
        k=$type.$method
        for f in wall down sys; do
            R[$k.$f]=$(awk -v s="$(rounds_sum "$k.$f")" -v n="$ROUNDS" 'BEGIN { printf "%.3f", s / n }')
        done
        for f in bytes pages ptwr mmu hcall; do
            R[$k.$f]=$(awk -v s="$(rounds_sum "$k.$f")" -v n="$ROUNDS" 'BEGIN { printf "%.0f", s / n }')
        done
        cpu=$(rounds_sum "$k.cpu")
        R[$k.cpu]=$(awk -v s="$cpu" -v n="$ROUNDS" 'BEGIN { printf "%.3f", s / n }')
        R[$k.cpu_gib]=$(awk -v c="$cpu" -v b="$(rounds_sum "$k.bytes")" \
            'BEGIN { printf "%.4f", (b > 0 ? c / (b / 1073741824) : 0) }')
    done
done

for hop in pipe socket; do
    R[floor.$hop.cpu_gib]=$(awk -v c="$(rounds_sum "floor.$hop.cpu")" -v b="$(rounds_sum "floor.$hop.bytes")" \
        'BEGIN { printf "%.4f", (b > 0 ? c / 1e9 / (b / 1073741824) : 0) }')
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }'; }
per_page() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.6f", (b > 0 ? a / b : 0) }'; }

table() {
    local type method f='%-4s %-6s %8s %8s %8s %9s %9s %9s %8s %8s %9s %9s %9s\n'
    # shellcheck disable=SC2059 # the format is ours, for both lines
    printf "$f" guest method wall_s down_s pages ptwr mmu_upd hcalls sys_s \
        cpu_s cpu_s_gib ptwr_pg hcall_pg
    for type in "${TYPES[@]}"; do
        methods_of "$type"
        for method in "${M[@]}"; do
            # shellcheck disable=SC2059
            printf "$f" "$type" "$method" \
                "${R[$type.$method.wall]}" "${R[$type.$method.down]}" \
                "${R[$type.$method.pages]}" "${R[$type.$method.ptwr]}" \
                "${R[$type.$method.mmu]}" "${R[$type.$method.hcall]}" \
                "${R[$type.$method.sys]}" "${R[$type.$method.cpu]}" \
                "${R[$type.$method.cpu_gib]}" \
                "$(per_page "${R[$type.$method.ptwr]}" "${R[$type.$method.pages]}")" \
                "$(per_page "${R[$type.$method.hcall]}" "${R[$type.$method.pages]}")"
        done
    done
}
table | tee "$TB_OUT/engine-bench.table"

# Per page sent, as xl counts them, and in all.
metric() { # NAME VALUE
    tb_metric "$1" "$2"
    echo "$1=$2"
}
trap_ratio() { # TYPE METHOD
    ratio "$(per_page "${R[$1.$2.ptwr]}" "${R[$1.$2.pages]}")" \
        "$(per_page "${R[$1.xl.ptwr]}" "${R[$1.xl.pages]}")"
}
cpu_ratio() { ratio "${R[$1.$2.cpu_gib]}" "${R[$1.xl.cpu_gib]}"; } # TYPE METHOD
cpu_total_ratio() { ratio "${R[$1.$2.cpu]}" "${R[$1.xl.cpu]}"; }    # TYPE METHOD
time_ratio() { ratio "${R[$1.xl.wall]}" "${R[$1.$2.wall]}"; }       # TYPE METHOD
has_type() { [[ " ${TYPES[*]} " == *" $1 "* ]]; }
has_type pv && metric traps_vs_xl "$(ratio "${R[pv.xmig.ptwr]}" "${R[pv.xl.ptwr]}")"
has_type pv && metric pages_vs_xl "$(ratio "${R[pv.xmig.pages]}" "${R[pv.xl.pages]}")"
for type in "${TYPES[@]}"; do
    # PV's lines carry no suffix, the others their type's.
    tsfx=_$type
    [[ $type == pv ]] && tsfx=
    methods_of "$type"
    for method in "${M[@]}"; do
        case $method in
        xmig) sfx=$tsfx ;;
        noskip | arena | tcp) sfx=${tsfx}_$method ;;
        *) continue ;;
        esac
        metric "trap_ratio_vs_xl$sfx" "$(trap_ratio "$type" "$method")"
        metric "cpu_ratio_vs_xl$sfx" "$(cpu_ratio "$type" "$method")"
        metric "cpu_total_ratio_vs_xl$sfx" "$(cpu_total_ratio "$type" "$method")"
        metric "time_ratio_vs_xl$sfx" "$(time_ratio "$type" "$method")"
    done
done
metric dom0_cpu_s_per_gib_floor_pipe "${R[floor.pipe.cpu_gib]}"
metric dom0_cpu_s_per_gib_floor_socket "${R[floor.socket.cpu_gib]}"
for type in "${TYPES[@]}"; do
    methods_of "$type"
    for method in "${M[@]}"; do
        metric "dom0_cpu_s_per_gib_${type}_$method" "${R[$type.$method.cpu_gib]}"
        metric "traps_per_page_${type}_$method" \
            "$(per_page "${R[$type.$method.ptwr]}" "${R[$type.$method.pages]}")"
        metric "hypercalls_per_page_${type}_$method" \
            "$(per_page "${R[$type.$method.hcall]}" "${R[$type.$method.pages]}")"
    done
done
