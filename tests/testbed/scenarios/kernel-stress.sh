#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow kernel=debug timeout=2400
#
# kernel-stress: the patched dom0 kernel under concurrent abuse, built with
# CONFIG_DEBUG_VM and CONFIG_PAGE_TABLE_CHECK:
#
#   tests/testbed/run kernel-stress      # boots kernel-patch/build --debug
#
# xmig-kstress (kernel-patch/stress/) maps frames of a paused 256 MiB PVH
# guest from several threads, checks every page it reads against the
# frame's checksum, and unmaps both ways (munmap, and the privcmd batched
# unmap followed by a refill of the same mapping), while other threads read
# ranges being cleared, replace a mapping being cleared, and fork children
# that map, clear and exit.  Then full migrations with xmig (a PV guest on
# the shadow Xen, and the PVH guest), each followed by the guest's own
# integrity verdict.  Fails on any mismatch, on any kernel warning, oops or
# debug-check complaint in dom0's log, or when the kernel lacks the ioctl.
#
# Needs the static xmig-kstress in dom0: tests/testbed/stage installs it as
# /host/root/usr/libexec/xmig/xmig-kstress (or anywhere on PATH).
# KSTRESS_SECONDS (default 240) and KSTRESS_WORKERS (4) tune the run.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

SECONDS_STRESS=${KSTRESS_SECONDS:-240}
WORKERS=${KSTRESS_WORKERS:-4}
KSTRESS=/host/root/usr/libexec/xmig/xmig-kstress
[[ -x $KSTRESS ]] || KSTRESS=$(command -v xmig-kstress) ||
    tb_fail "no xmig-kstress in dom0 (tests/testbed/stage must build kernel-patch/stress/)"

# Every kernel message from now on, even if the ring buffer wraps
# (each deliberate SIGBUS on a cleared privcmd page logs a privcmd_fault line).
KMSG=$TB_OUT/kernel-stress-kmsg.log
dmesg >"$TB_OUT/kernel-stress-dmesg-boot.log"
cat /proc/kmsg >"$KMSG" 2>/dev/null &
kmsg_pid=$!   # not a trap: lib.sh's EXIT trap writes the result

BAD='WARNING:|BUG:|Oops|Bad page|Call Trace|xen_mc_flush|Bad rss|bad pte'
kernel_clean() {
    local bad
    bad=$(cat "$TB_OUT/kernel-stress-dmesg-boot.log" "$KMSG" | grep -E "$BAD" | head -n 5)
    [[ -z $bad ]] || { echo "kernel log: $bad" >&2; return 1; }
    echo "kernel log clean ($(grep -c privcmd_fault "$KMSG") deliberate privcmd_fault lines)"
}

stress() { # GUEST
    local out=$TB_OUT/kernel-stress-$1.txt line
    "$KSTRESS" "$(xl domid "$1")" $((256 * 256)) "$SECONDS_STRESS" "$WORKERS" >"$out" 2>&1
    local rc=$?
    cat "$out"
    line=$(grep '^kstress: \(OK\|FAILED\)' "$out")
    tb_note result "${line#kstress: }"
    grep -q 'ioctl: yes' "$out" || { echo "the kernel has no privcmd batched unmap" >&2; return 1; }
    return "$rc"
}

xmig_migrate() { # NAME
    local json=$TB_OUT/kernel-stress-migrate-$1.json
    xmig migrate "$1" "exec:xl migrate-receive" --json --direct >"$json" || { cat "$json"; return 1; }
    grep '"event":"result"' "$json"
}

tb_metric kernel "${TB_KERNEL:-stock}"
tb_metric uname "$(uname -r)"
[[ $(uname -r) == *debug* ]] || tb_log "warning: $(uname -r) is not a --debug build"

tb_step create-pvh tb_guest_create pvh pvh 256
tb_step pause xl pause pvh
tb_step stress stress pvh
tb_step unpause xl unpause pvh
tb_step verify-pvh tb_guest_verify pvh
tb_step kernel-log-after-stress kernel_clean

tb_step migrate-pvh xmig_migrate pvh
tb_step verify-pvh-migrated tb_guest_verify pvh
tb_step create-pv tb_guest_create pv pv 128
tb_step migrate-pv xmig_migrate pv
tb_step verify-pv-migrated tb_guest_verify pv
tb_step kernel-log kernel_clean
kill "$kmsg_pid" 2>/dev/null
