#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=stock timeout=2400
#
# pvh-restore: a PVH guest saved by stock `xl save`, by `xmig save` (own
# engine) and by `xmig save --engine libxc`, in turns, each image restored
# by stock `xl restore` and verified; PVH_RESTORE_N rounds (3).  Counts the
# restored guests that triple-faulted per sender (metrics
# faults_after_restore_SENDER), to tell QEMU's TCG SVM faults, which hit
# any sender, from a stream that a newer Xen restores badly.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
MIB=128
N=${PVH_RESTORE_N:-3}
declare -A bad=([xl]=0 [xmig]=0 [libxc]=0) ok=([xl]=0 [xmig]=0 [libxc]=0)

save_with() { # SENDER IMG
    case $1 in
    xl) timeout 600 xl save pvh "$2" >"$TB_TMP/save.log" 2>&1 ;;
    xmig) xmig save pvh "$2" --direct >"$TB_TMP/save.log" 2>&1 ;;
    libxc) xmig save pvh "$2" --direct --engine libxc >"$TB_TMP/save.log" 2>&1 ;;
    esac || { tail -n 5 "$TB_TMP/save.log"; return 1; }
}

one() { # SENDER
    local img=$TB_TMP/pvh.img before after v
    # PVH_RESTORE_FRESH=1: each save takes a guest just booted, as
    # xmig-compat's does; else the guest the last restore brought back.
    if [[ ${PVH_RESTORE_FRESH:-0} == 1 ]]; then tb_guest_gone pvh; fi
    xl domid pvh >/dev/null 2>&1 || tb_guest_create pvh pvh "$MIB" || return 1
    save_with "$1" "$img" || return 1
    before=$(xl dmesg | grep -c 'Triple fault')
    timeout 600 xl restore "$img" >"$TB_TMP/restore.log" 2>&1 ||
        { tail -n 5 "$TB_TMP/restore.log"; rm -f "$img"; return 1; }
    rm -f "$img"
    tb_sleep 3
    v=
    # In a subshell: tb_guest_cmd fails the scenario for a guest that is gone.
    xl domid pvh >/dev/null 2>&1 &&
        v=$( (tb_guest_cmd pvh verify '^integrity (OK|FAIL)' 120) 2>/dev/null)
    if [[ $v == "integrity OK"* ]]; then
        ok[$1]=$((ok[$1] + 1))
        echo "$1: restored, $v"
    else
        after=$(xl dmesg | grep -c 'Triple fault')
        bad[$1]=$((bad[$1] + 1))
        echo "$1: restored guest lost (triple faults $before -> $after): ${v:-no verdict}"
        tb_guest_gone pvh
    fi
}

for ((r = 1; r <= N; r++)); do
    for s in xl xmig libxc; do
        tb_step "round-$r-$s" one "$s"
    done
done
for s in xl xmig libxc; do
    tb_metric "faults_after_restore_$s" "${bad[$s]}"
    tb_metric "restored_ok_$s" "${ok[$s]}"
    echo "$s: ${ok[$s]} restored and verified, ${bad[$s]} lost at once"
done
