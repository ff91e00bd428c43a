#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow timeout=600
#
# bench-map: xmig bench map on a 256 MiB PVH and a 256 MiB PV guest, every
# strategy, with Xen's counters (the shadow build has CONFIG_PERF_COUNTERS).
# The guests are paused while measured so that every strategy must read
# identical data (xmig compares the checksums).  On the stock kernel the
# per-batch strategy must show about one trapped PTE write per page: the
# problem this project removes, reproduced on a real host.  Then the bad
# cases: an unknown domain, no privileges, a domain destroyed mid-run.
#
# Noted per guest and STRATEGY (per-batch arena kernel exit):
# STRATEGY_ptwr_per_page (and _net: less dom0's background rate),
# STRATEGY_hypercalls_per_page (every domain's), STRATEGY_dom0_cpu_s_per_gib
# (dom0's CPU time per GiB mapped as Xen accounts it: all of dom0, the
# time Xen spends emulating its trapped writes included), wall_s, map_s,
# unmap_s.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

MIB=256

# Guests boot from dom0's tmpfs: building a PV guest from the 9p share
# while another guest runs failed here ("unable to XZ decompress kernel").
if [[ $TB_GUEST_KERNEL == /host/* ]]; then
    cp "$TB_GUEST_KERNEL" "$TB_TMP/guest-kernel" &&
        cp "$TB_GUEST_INITRD" "$TB_TMP/guest-initrd" ||
        tb_fail "cannot copy the guest kernel to tmpfs"
    TB_GUEST_KERNEL=$TB_TMP/guest-kernel
    TB_GUEST_INITRD=$TB_TMP/guest-initrd
fi

# _json_field FILE STRATEGY FIELD: a number from xmig's --json output.
_json_field() {
    grep -o "\"strategy\":\"$2\"[^}]*" "$1" | grep -o "\"$3\":[0-9.e+-]*" | cut -d: -f2
}

bench() { # GUEST
    local g=$1 json=$TB_OUT/bench-map-$1.json rc=0
    xl pause "$g" || return 1
    xmig bench map "$g" || rc=$?
    ((rc == 0)) && { xmig bench map "$g" --json >"$json" || rc=$?; }
    xl unpause "$g" || return 1
    ((rc == 0)) || return "$rc"
    cat "$json"
    local s v
    for s in per-batch arena kernel exit; do
        for v in ptwr_per_page hypercalls_per_page dom0_cpu_s_per_gib wall_s map_s unmap_s; do
            tb_note "${s}_$v" "$(_json_field "$json" "$s" "$v")"
        done
        # Net of dom0's background traps (forks and exits elsewhere).
        v=$(awk -v p="$(_json_field "$json" "$s" ptwr)" -v w="$(_json_field "$json" "$s" wall_s)" \
                -v n="$(_json_field "$json" "$s" pages)" -v r="$BG_RATE" \
                'BEGIN { if (n == "" || p == "") exit; x = (p - r * w) / n; printf "%.5f", (x < 0 ? 0 : x) }')
        tb_note "${s}_ptwr_per_page_net" "$v"
    done
    # Stock kernel: every munmap'd foreign page is one trapped, emulated write.
    # The runner names Debian's kernel by its package (linux-image-...).
    if [[ ${TB_KERNEL:-stock} == stock || ${TB_KERNEL:-} == linux-image-* ]]; then
        v=$(_json_field "$json" per-batch ptwr_per_page)
        [[ -n $v ]] || { echo "no hypervisor counters: is this the shadow/perf Xen?" >&2; return 1; }
        awk -v v="$v" 'BEGIN { exit !(v >= 0.9 && v <= 1.2) }' ||
            { echo "per-batch: $v trapped writes per page, expected about 1" >&2; return 1; }
    fi
}

# Trapped PTE writes per second while nothing is mapped: dom0's own forks
# and exits trap too (kernel-bench.sh measures it the same way).
background() {
    local w0 w1 _
    read -r w0 _ < <(tb_perf_read)
    sleep 20
    read -r w1 _ < <(tb_perf_read)
    [[ $w0 != null ]] || return 0
    BG_RATE=$(awk -v a="$w0" -v b="$w1" 'BEGIN { printf "%.2f", (b - a) / 20 }')
    tb_note ptwr_per_s "$BG_RATE"
    echo "background: $BG_RATE trapped PTE writes per second"
}
BG_RATE=0

# expect_fail RC PATTERN CMD...: CMD must exit RC with PATTERN on stderr.
expect_fail() {
    local want=$1 pattern=$2 err rc=0
    shift 2
    err=$("$@" 2>&1 >/dev/null) || rc=$?
    echo "'$*' -> exit $rc: $err"
    [[ $rc == "$want" ]] && grep -q -- "$pattern" <<<"$err" && [[ $(wc -l <<<"$err") == 1 ]]
}

vanish() { # GUEST
    local g=$1 pid rc=0 err=$TB_TMP/vanish.err
    xmig bench map "$g" 2>"$err" >/dev/null &
    pid=$!
    sleep 1
    xl destroy "$g" || return 1
    wait "$pid" || rc=$?
    echo "exit $rc: $(cat "$err")"
    [[ $rc == 1 ]] && grep -q "vanished\|does not exist\|not found" "$err"
}

tb_step background background

# PVH as an attempt (lib.sh: tb_attempts, QEMU's emulated SVM).
pvh() {
    tb_step create-pvh tb_guest_create pvh pvh "$MIB"
    tb_step bench-pvh bench pvh
    tb_step verify-pvh tb_guest_verify pvh
}
pvh_gone() { tb_guest_gone pvh; }
tb_attempts 5 pvh_gone pvh
tb_step destroy-pvh xl destroy pvh

tb_step create-pv tb_guest_create pv pv "$MIB"
tb_step bench-pv bench pv
tb_step verify-pv tb_guest_verify pv

tb_step unknown-domain expect_fail 1 "domain 'no-such-guest' not found" \
    xmig bench map no-such-guest
tb_step unknown-domid expect_fail 1 "domain 31999 does not exist" xmig bench map 31999
tb_step no-privileges expect_fail 1 "permission denied" \
    /host/root/usr/libexec/xmig/xmig-probe nobody xmig bench map pv
tb_step verify-pv-after-errors tb_guest_verify pv
tb_step vanished vanish pv
