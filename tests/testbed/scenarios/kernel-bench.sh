#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow timeout=1800
#
# kernel-bench: what kernel-patch/ buys, on a real Xen 4.17 host.  The same
# 256 MiB PVH guest, paused, is mapped and unmapped by `xmig bench map` with
# every strategy, at batches of 1024 and of 64 pages, with Xen's counters
# (the shadow build has CONFIG_PERF_COUNTERS).  Run it once on the stock
# kernel and once on the patched one:
#
#   kernel-patch/bench        # both boots, then the comparison (host side)
#
# Each boot writes kernel-bench-<kernel>-b<batch>.json (xmig's --json) and
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
# strategy may trap more than 0.01 times per page.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MIB=256
BATCHES=${KBENCH_BATCHES:-1024 64}
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

# Kernel warnings, oopses and the debug checks' complaints, since boot.
kernel_clean() {
    local bad
    bad=$(dmesg | grep -E 'WARNING:|BUG:|Oops|Bad page|page_table_check|general protection|Call Trace' | head -n 5)
    [[ -z $bad ]] || { echo "kernel log: $bad" >&2; return 1; }
}

bench() { # BATCH
    local b=$1 json=$TB_OUT/kernel-bench-$KERNEL-b$1.json s v
    xmig bench map pvh --batch "$b" --json >"$json" || return 1
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
    if [[ $KERNEL == stock ]]; then
        awk -v v="$v" 'BEGIN { exit !(v >= 0.9 && v <= 1.2) }' ||
            { echo "stock kernel, per-batch: $v trapped writes per page, expected about 1" >&2; return 1; }
    elif [[ $KERNEL == patched ]]; then
        [[ $(_json_field "$json" kernel used) == kernel ]] ||
            { echo "patched kernel, but xmig found no privcmd batched unmap" >&2; return 1; }
        for s in per-batch arena kernel; do
            v=$(_json_field "$json" "$s" ptwr_per_page)
            awk -v v="$v" 'BEGIN { exit !(v <= 0.01) }' ||
                { echo "patched kernel, $s: $v trapped writes per page (> 0.01)" >&2; return 1; }
        done
    fi
}

tb_metric kernel "$KERNEL"
tb_metric uname "$(uname -r)"
tb_step create tb_guest_create pvh pvh "$MIB"
tb_step pause xl pause pvh
for b in $BATCHES; do
    tb_step "bench-b$b" bench "$b"
done
tb_step unpause xl unpause pvh
tb_step verify tb_guest_verify pvh
tb_step kernel-log kernel_clean
