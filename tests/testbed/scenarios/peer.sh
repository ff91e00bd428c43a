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

# xmig_peer NAME DEST: a live migration that must end with the guest on
# host b ("guest":"destination"), and nothing of it left on host a.
xmig_peer() {
    local json=$TB_TMP/peer-$1.json guest
    timeout 900 xmig migrate "$1" "$2" --json --direct >"$json" ||
        { tail -n 3 "$json"; return 1; }
    guest=$(sed -n 's/.*"guest":"\([a-z]*\)".*/\1/p' "$json" | tail -n 1)
    [[ $guest == destination ]] || { echo "xmig says the guest is '$guest'" >&2; return 1; }
    tb_note bytes "$(grep -o '"bytes":[0-9]*' "$json" | tail -n 1 | cut -d: -f2)"
    if xl list 2>/dev/null | awk 'NR > 1 { print $1 }' | grep -q "^$1"; then
        echo "$1 is still on host a after its migration" >&2
        return 1
    fi
}

tb_step create-pv tb_guest_create pv pv "$MIB"
tb_step verify-pv-created tb_guest_verify pv
tb_corrupt_if_asked pv
tb_step xmig-migrate-pv-exec xmig_peer pv "exec:nc $TB_PEER_IP $TB_MIGRATE_PORT"
tb_step verify-pv-on-peer tb_on_peer tb_guest_verify pv
tb_on_peer tb_guest_destroy pv || tb_fail "cannot destroy pv on host b"

# PVH as an attempt (lib.sh: tb_attempts, QEMU's emulated SVM), on either
# host.
pvh() {
    tb_step create-pvh tb_guest_create pvh pvh "$MIB"
    tb_step verify-pvh-created tb_guest_verify pvh
    tb_corrupt_if_asked pvh
    tb_step xmig-migrate-pvh-tcp xmig_peer pvh "tcp://$TB_PEER_IP:$TB_MIGRATE_PORT"
    tb_step verify-pvh-on-peer tb_on_peer tb_guest_verify pvh
}
pvh_gone() { tb_guest_gone pvh && tb_on_peer tb_guest_gone pvh; }
tb_attempts 5 pvh_gone pvh
tb_on_peer tb_guest_destroy pvh || tb_fail "cannot destroy pvh on host b"
