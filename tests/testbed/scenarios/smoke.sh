#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=stock timeout=600
# testbed: xen=shadow hosts=2 timeout=600
#
# smoke: the testbed itself works, with stock tools only.  Runs once per boot
# above; each boot checks what its hypervisor can do:
#   stock Xen (Debian's): PV and PVH guests boot; xl save/restore of PV;
#                         xl migrate to localhost of PVH (HAP log-dirty).
#   shadow Xen (build-xen): xl migrate to localhost of PV (PV log-dirty needs
#                         shadow paging), then of the same guest to host b.
# Every move is followed by the guest's own integrity verdict.  With
# --corrupt the guest's memory is damaged first and the scenario must fail.

# shellcheck source=tests/testbed/scenarios/lib.sh
. "$(dirname "$0")/lib.sh"

# 128 MiB: the stock kernel alone takes 58 MiB of a PV guest, and the link
# between two hosts moves about 2 MB/s, so not more.
MIB=128

tb_step create-pv tb_guest_create pv pv "$MIB"
tb_step verify-pv-created tb_guest_verify pv
tb_corrupt_if_asked pv

# PVH as an attempt (lib.sh: tb_attempts, QEMU's emulated SVM).
pvh() {
    tb_step create-pvh tb_guest_create pvh pvh "$MIB"
    tb_step verify-pvh-created tb_guest_verify pvh
    tb_corrupt_if_asked pvh
    tb_step migrate-local-pvh tb_xl_migrate_local pvh
    tb_step verify-pvh-migrated tb_guest_verify pvh
}
pvh_gone() { tb_guest_gone pvh; tb_guest_gone pvh--incoming; }

if [[ $TB_XEN == stock ]]; then
    tb_step save-restore-pv tb_xl_save_restore pv
    tb_step verify-pv-restored tb_guest_verify pv

    tb_attempts 5 pvh_gone pvh
    tb_skip migrate-local-pv "PV log-dirty needs shadow paging, absent from Debian's Xen"
else
    tb_perf_reset
    tb_step migrate-local-pv tb_xl_migrate_local pv
    tb_perf_note
    tb_step verify-pv-migrated tb_guest_verify pv

    if (( TB_HOSTS > 1 )); then
        tb_perf_reset
        tb_on_peer tb_perf_reset || tb_fail "cannot reset host b's counters"
        tb_step migrate-peer-pv tb_xl_migrate_peer pv
        tb_perf_note sender_
        tb_on_peer tb_perf_note receiver_ || tb_fail "cannot read host b's counters"
        xl domid pv >/dev/null 2>&1 && tb_fail "pv still exists on host a after migrating it"
        tb_step verify-pv-on-peer tb_on_peer tb_guest_verify pv
        tb_on_peer tb_guest_destroy pv || tb_fail "cannot destroy pv on host b"
    else
        tb_skip migrate-peer-pv "needs two hosts (hosts=2)"
    fi
fi
