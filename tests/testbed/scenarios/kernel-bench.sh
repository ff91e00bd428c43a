#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow kernel=stock timeout=600
# testbed: xen=shadow kernel=patched timeout=600
# testbed-post: kernel-patch/bench-report
#
# kernel-bench: what kernel-patch/ buys, on a real Xen 4.17 host.  The same
# 256 MiB PVH guest, paused, is mapped and unmapped by `xmig bench map` with
# every strategy, at batches of 1024 pages (with and without xmig's
# background unmap thread) and of 64 pages, with Xen's counters
# (the shadow build has CONFIG_PERF_COUNTERS).  It runs on two boots of one
# run, Debian's kernel and the patched one (built by kernel-patch/build,
# cached), and the runner then compares them on this machine:
#
#   tests/testbed/run kernel-bench
#
# Each boot writes kernel-bench-<kernel>-<variant>.json (xmig's --json) and
# notes each strategy's figures; kernel-patch/bench-report compares the two
# boots: ptwr_per_page (patched kernel, worst strategy, trapped PTE writes
# per unmapped page; done when <= 0.01) and unmap_speedup (stock per-batch
# unmap time / the patched kernel's best; done when >= 3).
#
# Checked here, per boot: the checksums of all strategies agree (xmig
# compares them: the guest is paused); the guest's own integrity verdict
# afterwards; no kernel warning in dom0's log.  On the stock kernel the
# per-batch strategy must trap about once per page (the problem is
# reproduced); on the patched kernel the ioctl must be there and no
# strategy may trap more than 0.01 times per page, net of dom0's
# background rate (measured first, while nothing is mapped: forks and
# exits elsewhere in dom0 trap too, about 30/s under TCG).

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MIB=256
# VARIANT:xmig bench map options.  Without the background unmap thread,
# "unmap s" is the unmap calls alone; with it, it also counts the thread's
# waits for the mmap lock that the mapping thread holds.
VARIANTS=${KBENCH_VARIANTS:-b1024:--batch=1024,--no-background b1024-bg:--batch=1024,--background b64:--batch=64,--no-background}
# The runner labels Debian's kernel by its package (linux-image-...).
case ${TB_KERNEL:-stock} in
    stock|linux-image-*) KERNEL=stock ;;
    patched) KERNEL=patched ;;
    *) KERNEL=$(basename "$TB_KERNEL") ;;
esac

_json_field() { # FILE STRATEGY FIELD
    grep -o "\"strategy\":\"$2\"[^}]*" "$1" | grep -o "\"$3\":[\"0-9a-z.e+-]*" |
        cut -d: -f2 | tr -d '"'
}

# Kernel warnings, oopses and the debug checks' complaints, since boot
# (not "traps:" lines: those report a user process's fault).
kernel_clean() {
    local bad
    bad=$(dmesg | grep -E 'WARNING:|BUG:|Oops|Bad page|Call Trace' | head -n 5)
    [[ -z $bad ]] || { echo "kernel log: $bad" >&2; return 1; }
}

bench() { # VARIANT OPTION...
    local json=$TB_OUT/kernel-bench-$KERNEL-$1.json s v
    shift
    xmig bench map pvh "$@" --json >"$json" || return 1
    printf '%-10s %-8s %8s %8s %8s %10s %10s\n' strategy used "map s" "unmap s" "wall s" ptwr/page mmu_update
    for s in per-batch arena kernel; do
        printf '%-10s %-8s %8s %8s %8s %10s %10s\n' "$s" "$(_json_field "$json" "$s" used)" \
            "$(_json_field "$json" "$s" map_s)" "$(_json_field "$json" "$s" unmap_s)" \
            "$(_json_field "$json" "$s" wall_s)" "$(_json_field "$json" "$s" ptwr_per_page)" \
            "$(_json_field "$json" "$s" mmu_update)"
    done
    for s in per-batch arena kernel; do
        tb_note "${s}_used" "$(_json_field "$json" "$s" used)"
        for v in ptwr_per_page unmap_s map_s wall_s unmap_calls mmu_update; do
            tb_note "${s}_$v" "$(_json_field "$json" "$s" "$v")"
        done
    done
    v=$(_json_field "$json" per-batch ptwr_per_page)
    [[ -n $v ]] || { echo "no hypervisor counters: is this the shadow/perf Xen?" >&2; return 1; }
    # Net of dom0's background traps (forks and exits elsewhere in dom0).
    for s in per-batch arena kernel; do
        v=$(awk -v p="$(_json_field "$json" "$s" ptwr)" -v w="$(_json_field "$json" "$s" wall_s)" \
                -v n="$(_json_field "$json" "$s" pages)" -v r="$BG_RATE" \
                'BEGIN { x = (p - r * w) / n; printf "%.5f", (x < 0 ? 0 : x) }')
        tb_note "${s}_ptwr_per_page_net" "$v"
        if [[ $KERNEL == patched ]]; then
            awk -v v="$v" 'BEGIN { exit !(v <= 0.01) }' ||
                { echo "patched kernel, $s: $v trapped writes per page, net (> 0.01)" >&2; return 1; }
        fi
    done
    v=$(_json_field "$json" per-batch ptwr_per_page)
    if [[ $KERNEL == stock ]]; then
        awk -v v="$v" 'BEGIN { exit !(v >= 0.9 && v <= 1.2) }' ||
            { echo "stock kernel, per-batch: $v trapped writes per page, expected about 1" >&2; return 1; }
    elif [[ $KERNEL == patched ]]; then
        [[ $(_json_field "$json" kernel used) == kernel ]] ||
            { echo "patched kernel, but xmig found no privcmd batched unmap" >&2; return 1; }
    fi
}

# Trapped PTE writes per second while nothing is mapped: dom0's own forks
# and exits (the session's polling, console readers) trap too.
background() {
    local w0 w1 _
    read -r w0 _ < <(tb_perf_read)
    sleep 20
    read -r w1 _ < <(tb_perf_read)
    [[ $w0 != null ]] || { echo "no hypervisor counters: is this the shadow/perf Xen?" >&2; return 1; }
    BG_RATE=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.2f", (b - a) / 20 }')
    tb_note ptwr_per_s "$BG_RATE"
    tb_metric background_ptwr_per_s "$BG_RATE"
    echo "background: $BG_RATE trapped PTE writes per second"
}
BG_RATE=0

tb_metric kernel "$KERNEL"
tb_metric uname "$(uname -r)"
# Paused, the guest does not run, and QEMU's emulated SVM cannot fault it;
# until then, an attempt (lib.sh: tb_attempts).
created() {
    tb_step create tb_guest_create pvh pvh "$MIB"
    tb_step pause xl pause pvh
}
pvh_gone() { tb_guest_gone pvh; }
tb_attempts 5 pvh_gone created
tb_step background background
for v in $VARIANTS; do
    IFS=, read -r -a opts <<<"${v#*:}"
    tb_step "bench-${v%%:*}" bench "${v%%:*}" "${opts[@]}"
done
tb_step unpause xl unpause pvh
tb_step verify tb_guest_verify pvh
tb_step kernel-log kernel_clean
