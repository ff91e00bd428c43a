#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow hosts=2 peer=trixie timeout=900
#
# cross-live: live migration from a Xen 4.17 host (host a, Debian 12, the
# shadow build: PV guests move live) to a Xen 4.20 host (host b, Debian
# 13's own Xen and 6.12 dom0, its stock `xl migrate-receive`), the one
# direction xl supports across versions.  Stock xl 4.17 moves a PV guest
# first (the baseline: what an admin does today), then xmig moves PV with
# both engines through exec: (nc in ssh's place) and PVH to tcp://.  Each
# guest must then run on host b only, its integrity verdict intact, and
# is destroyed there (nothing moves back: xl takes no stream from a newer
# Xen).  cross-version does the same with files (xmig save on 4.17, xl
# restore on 4.20); HVM is left out for the reason given there.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MIB=128
DEST_EXEC="exec:nc $TB_PEER_IP $TB_MIGRATE_PORT"

# (host b runs lib.sh's functions and commands, not this file's)
xen_of() { sed -n 's/^xen_version *: //p'; }
here=$(xl info | xen_of)
there=$(tb_on_peer xl info | xen_of) || tb_fail "cannot ask host b for its Xen version"
echo "host a: Xen $here; host b: Xen $there"
tb_note xen_a "$here"
tb_note xen_b "$there"
[[ $here == 4.17.* && $there == 4.20.* ]] ||
    tb_fail "cross-live needs Xen 4.17 on host a and 4.20 on host b, not $here and $there"

on_b_gone() { tb_on_peer tb_guest_destroy "$1" || tb_fail "cannot destroy $1 on host b"; }

tb_step create-pv tb_guest_create pv pv "$MIB"
tb_step xl-migrate-pv tb_xl_migrate_peer pv
tb_step pv-left-host-a tb_guest_left pv
tb_step verify-pv-xl-on-b tb_on_peer tb_guest_verify pv
on_b_gone pv

tb_step recreate-pv tb_guest_create pv pv "$MIB"
tb_step xmig-migrate-pv tb_xmig_migrate_peer pv "$DEST_EXEC"
tb_step verify-pv-xmig-on-b tb_on_peer tb_guest_verify pv
on_b_gone pv

tb_step recreate-pv-libxc tb_guest_create pv pv "$MIB"
tb_step xmig-migrate-pv-libxc tb_xmig_migrate_peer pv "$DEST_EXEC" --engine libxc
tb_step verify-pv-libxc-on-b tb_on_peer tb_guest_verify pv
on_b_gone pv

# PVH as an attempt (lib.sh: tb_attempts, QEMU's emulated SVM), on either
# host.
pvh() {
    tb_step create-pvh tb_guest_create pvh pvh "$MIB"
    tb_step xmig-migrate-pvh tb_xmig_migrate_peer pvh "tcp://$TB_PEER_IP:$TB_MIGRATE_PORT"
    tb_step verify-pvh-xmig-on-b tb_on_peer tb_guest_verify pvh
}
pvh_gone() { tb_guest_gone pvh && tb_on_peer tb_guest_gone pvh; }
tb_attempts 5 pvh_gone pvh
on_b_gone pvh
