#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=stock timeout=600
#
# cross-version: what xmig sends on a Xen 4.17 host, the stock xl of a
# newer Xen takes (run it with XMIG_TESTBED_DIST=trixie: Xen 4.20).  The
# images `xmig save` wrote on the 4.17 host (xmig-compat keeps them as
# streams/NAME.xlsave; the runner hands them over: XMIG_TESTBED_CARRY=DIR)
# are restored here by this host's own `xl restore`, and each guest's
# workload checks its memory (the integrity verdict), then moves once more
# with this host's `xl migrate` to localhost (where its Xen can: PV needs
# shadow paging).  `xl migrate-receive` reads the same stream through the
# same libxl path after its handshake, whose messages xl 4.20 has from 4.17
# unchanged (tools/xl/xl_migrate.c is the same file in RELEASE-4.17.7 and
# RELEASE-4.20.4).  HVM images are left out: their QEMU state would go from
# QEMU 7.2 to the newer host's QEMU, a question of QEMU's, not of xmig's.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
export TB_HVM_CONSOLE=${TB_HVM_CONSOLE:-hvc0}

CARRY=/host/carry
pv_live=1
tb_xen_shadow || pv_live=0
echo "here: Xen $(xl info | sed -n 's/^xen_version *: //p'), $(xl info | sed -n 's/^virt_caps *: /virt_caps /p')"

restore() { # NAME
    local img=$CARRY/$1.xlsave
    echo "image: $img, $(stat -c %s "$img") bytes, from $(head -c 64 "$img" | tr -dc '[:print:]')"
    timeout 600 xl restore "$img" >"$TB_TMP/$1.restore.log" 2>&1 ||
        tb_fail "xl restore $img failed: $(tail -n 5 "$TB_TMP/$1.restore.log")"
}

guest() { # NAME
    tb_step "restore-$1-from-4.17" restore "$1"
    tb_step "verify-$1-restored" tb_guest_verify "$1"
    if [[ $1 != pv ]] || ((pv_live)); then
        tb_step "xl-migrate-$1" tb_xl_migrate_local "$1"
        tb_step "verify-$1-migrated" tb_guest_verify "$1"
    fi
    tb_step "destroy-$1" tb_guest_destroy "$1"
}

gone() { tb_guest_gone "$1" && tb_guest_gone "$1--incoming"; }

# Guests of an earlier scenario of this boot (xmig-compat's) by these names.
for g in pv pvh; do gone "$g"; done
n=0
for g in pv pvh; do
    [[ -s $CARRY/$g.xlsave ]] || continue
    if [[ $g == pvh ]]; then
        # As an attempt (lib.sh: tb_attempts): QEMU's emulated SVM
        # triple-faults PVH guests here, under xl as under xmig (a CI run
        # lost xl's own localhost migration of the restored guest to it).
        # The image is restored afresh for each attempt.
        tb_attempts 3 gone guest "$g"
    else
        guest "$g"
    fi
    n=$((n + 1))
done
tb_metric images "$n"
((n == 2)) || tb_fail "cross-version: $n of the 2 images (pv, pvh) in $CARRY: XMIG_TESTBED_CARRY must name xmig-compat's streams/ of a 4.17 host"
