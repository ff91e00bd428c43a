#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=stock timeout=600
#
# package: the Debian package's xmig and xmigd, as installed, work in dom0.
# Run with XMIG_TESTBED_DEB=FILE.deb (tests/run-all passes the package that
# tests/package/build-deb made): tests/testbed/stage then puts the
# package's files over the build's, at the paths dpkg would, and notes
# which package in /host/root/.deb.  Both programs report the package's
# version; a PV guest saved by the packaged xmig is restored by stock xl,
# and its workload's verdict is OK.

# shellcheck source=tests/testbed/scenarios/lib.sh
. "$(dirname "$0")/lib.sh"

MIB=128

versions() {
    local pkg ver arch v
    [[ -f /host/root/.deb ]] ||
        { echo "no package staged (XMIG_TESTBED_DEB was not given)" >&2; return 1; }
    read -r pkg ver arch </host/root/.deb
    echo "package: $pkg $ver $arch"
    tb_note package "$pkg $ver $arch"
    # A native package's version is the program's; a Debian revision
    # (-N) would follow it.
    for p in xmig xmigd; do
        v=$("$p" --version) || return 1
        echo "$(command -v "$p"): $v"
        [[ $v == "$p ${ver%-*}" ]] || { echo "$p says '$v', the package is $ver" >&2; return 1; }
    done
}

save_restore() {
    local img=$TB_TMP/pv.pkg.save
    xmig save pv "$img" --direct || return 1
    timeout 600 xl restore "$img" >"$TB_TMP/pv.pkg-restore.log" 2>&1 ||
        { tail -n 5 "$TB_TMP/pv.pkg-restore.log"; return 1; }
    rm -f "$img"
}

tb_step versions versions
tb_step create-pv tb_guest_create pv pv "$MIB"
tb_step xmig-save-restore-pv save_restore
tb_step verify-pv-restored tb_guest_verify pv
tb_step destroy-pv tb_guest_destroy pv
