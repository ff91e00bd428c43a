#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow hosts=1 timeout=2400
#
# pvh-soak: how often the testbed's own QEMU breaks a PVH guest, to compare
# QEMUs (XMIG_TESTBED_QEMU, tests/testbed/README.md).  QEMU's TCG emulates
# AMD SVM for Xen, and Debian 12's QEMU 7.2 now and then corrupts an HVM
# vCPU: Xen reports a triple fault of the PVH guest.  A 128 MiB PVH guest
# is migrated to localhost by xmig's own engine N times
# (XMIG_PVH_SOAK_N, default 20), its integrity verified after each.  A
# migration lost to a triple fault is run again with a fresh guest
# (tb_attempts); any other failure fails the scenario.
#
# Final line: pvh_soak_migrations=N pvh_soak_testbed_faults=F (migrations
# lost to a triple fault, also the metric testbed_faults)
# pvh_soak_idle_faults=I (guests lost while idle between two migrations)
# pvh_soak_triple_faults=T (Xen's "Triple fault" lines over the run, a
# guest idling between migrations included).  The QEMU is in the results.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MIB=128
N=${XMIG_PVH_SOAK_N:-20}

one() { # I
    tb_step "migrate-$1" timeout 900 xmig migrate pvh "exec:xl migrate-receive" --direct
    tb_step "verify-$1" tb_guest_verify pvh
}
fresh() {
    tb_guest_gone pvh && tb_guest_gone pvh--incoming &&
        tb_guest_create pvh pvh "$MIB"
}

tb_step create-pvh tb_guest_create pvh pvh "$MIB"
tf0=$(_tb_tf_count)
# A guest can triple-fault while it idles between two migrations: the next
# attempt would count that fault as old, and fail on a guest that is gone.
# Such a guest is replaced before the attempt, and counted apart.
idle=0 seen=$tf0
for ((i = 1; i <= N; i++)); do
    if ! xl domid pvh >/dev/null 2>&1; then
        (( $(_tb_tf_count) > seen )) ||
            tb_fail "pvh is gone before migration $i, and Xen saw no triple fault"
        idle=$((idle + 1))
        tb_log "pvh triple-faulted while idle before migration $i: a fresh guest"
        tb_step "recreate-before-$i" fresh
    fi
    tb_attempts 5 fresh one "$i"
    seen=$(_tb_tf_count)
done
tb_step destroy-pvh tb_guest_destroy pvh
tf=$(($(_tb_tf_count) - tf0))
tb_metric pvh_soak_migrations "$N"
tb_metric pvh_soak_triple_faults "$tf"
tb_metric pvh_soak_idle_faults "$idle"
echo "pvh_soak_migrations=$N pvh_soak_testbed_faults=$_tb_faults pvh_soak_idle_faults=$idle pvh_soak_triple_faults=$tf"
