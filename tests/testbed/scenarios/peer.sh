#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow hosts=2 timeout=600
#
# peer: xmig moves a live guest to another host, to a stock receiver there
# (host b's `xl migrate-receive`, behind its port): a PV guest through
# exec: (nc in ssh's place, as xl would run it), a PVH guest straight to
# tcp://.  Each must run on host b only, with its integrity verdict intact.
# The benchmarks (engine-bench) move guests between the hosts as well; this
# is the test that CI runs.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MIB=128

tb_step create-pv tb_guest_create pv pv "$MIB"
tb_step verify-pv-created tb_guest_verify pv
tb_corrupt_if_asked pv
tb_step xmig-migrate-pv-exec tb_xmig_migrate_peer pv "exec:nc $TB_PEER_IP $TB_MIGRATE_PORT"
tb_step verify-pv-on-peer tb_on_peer tb_guest_verify pv
tb_on_peer tb_guest_destroy pv || tb_fail "cannot destroy pv on host b"

# PVH as an attempt (lib.sh: tb_attempts, QEMU's emulated SVM), on either
# host.
pvh() {
    tb_step create-pvh tb_guest_create pvh pvh "$MIB"
    tb_step verify-pvh-created tb_guest_verify pvh
    tb_corrupt_if_asked pvh
    tb_step xmig-migrate-pvh-tcp tb_xmig_migrate_peer pvh "tcp://$TB_PEER_IP:$TB_MIGRATE_PORT"
    tb_step verify-pvh-on-peer tb_on_peer tb_guest_verify pvh
}
pvh_gone() { tb_guest_gone pvh && tb_on_peer tb_guest_gone pvh; }
tb_attempts 5 pvh_gone pvh
tb_on_peer tb_guest_destroy pvh || tb_fail "cannot destroy pvh on host b"
