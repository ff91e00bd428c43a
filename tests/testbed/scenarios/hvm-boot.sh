#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow hosts=1 timeout=1800
#
# hvm-boot: an HVM guest (Xen's QEMU in dom0 as its device model,
# hvmloader, SeaBIOS, the workload's kernel booted by QEMU's -kernel) boots
# and runs the integrity workload on its serial port; then stock
# `xl save`/`xl restore` and a stock `xl migrate` to localhost, each
# followed by the guest's own verdict.  Not in tests/run-all: the HVM
# counterpart of pvh-soak, to learn whether the testbed's QEMU can run HVM
# guests at all (issue #15).  No retries: every triple fault Xen logs is
# counted (metric hvm_triple_faults) and fails what it broke.
#
# HVM_CFG (an array of xl config lines), HVM_CYCLES (rounds of save/restore
# and migrate, default 1), TB_HVM_CONSOLE and TB_GUEST_EXTRA may be set by
# a scenario that sources this one, to try guest options (hap=0, ...).
#
# Final line: hvm_boot_ok=0|1 hvm_triple_faults=T.

# shellcheck source=tests/testbed/scenarios/lib.sh
. "$(dirname "$0")/lib.sh"

MIB=128
[[ -v HVM_CFG ]] || HVM_CFG=()

# Whatever ends the scenario: the triple faults of its run, and on a
# failure what the device model and Xen said last.
_hvm_tf0=$(_tb_tf_count)
_hvm_end() {
    local rc=$? tf
    tf=$(( $(_tb_tf_count) - _hvm_tf0 ))
    tb_metric hvm_triple_faults "$tf"
    # Kept per scenario: variants that source this file reuse the name hvm.
    cp "$TB_TMP/con/hvm.log" "$TB_OUT/$TB_SCENARIO.guest-console.log" 2>/dev/null
    xl dmesg >"$TB_OUT/$TB_SCENARIO.xl-dmesg.txt" 2>&1
    mkdir -p "$TB_OUT/$TB_SCENARIO.var-log-xen" &&
        cp /var/log/xen/*hvm* "$TB_OUT/$TB_SCENARIO.var-log-xen/" 2>/dev/null
    if [[ -n $_tb_error ]] || (( rc )); then
        echo "--- xl list"; xl list 2>&1
        # A guest that hangs: where its vCPU is (Xen prints its VMCB).
        alive && xl debug-keys v
        echo "--- guest console (tail)"; tail -n 30 "$TB_TMP/con/hvm.log" 2>&1
        echo "--- /var/log/xen/qemu-dm-hvm.log (tail)"; tail -n 30 /var/log/xen/qemu-dm-hvm.log 2>&1
        echo "--- xl dmesg (tail)"; xl dmesg 2>&1 | tail -n 80
        echo "hvm_boot_ok=0 hvm_triple_faults=$tf"
    else
        echo "hvm_boot_ok=1 hvm_triple_faults=$tf"
    fi
    (exit "$rc")
    _tb_finish
}
trap _hvm_end EXIT

# tb_check's command must not tb_fail in this shell: run it in a subshell
# (its tb_fail message still reaches the step).
sub() { ( "$@" ); }
alive() { _tb_domid hvm >/dev/null; }
# The guest verifies 128 MiB in about a second: two minutes means no
# answer is coming.  Then what the domain is doing: its CPU time twice,
# 10 s apart (spinning or idle?), and its vCPU state.
verify() {
    local reply
    if ! reply=$(tb_guest_cmd hvm verify '^integrity (OK|FAIL)' 120); then
        xl list hvm; tb_sleep 10; xl list hvm
        xl debug-keys v
        return 1
    fi
    tb_log "guest hvm: $reply"
    [[ $reply == "integrity OK"* ]]
}

tb_step create-hvm tb_guest_create hvm hvm "$MIB" "${HVM_CFG[@]}"
tb_step verify-hvm-created tb_guest_verify hvm
tb_corrupt_if_asked hvm

# HVM_CYCLES save/restore + migrate rounds (default 1; steps get a -N
# suffix when there are more).  A verify without an answer does not end
# the run: metric hvm_verify_lost counts them.
lost=0
for ((i = 1; i <= ${HVM_CYCLES:-1}; i++)); do
    sfx=; (( ${HVM_CYCLES:-1} > 1 )) && sfx=-$i
    alive || break
    if tb_check "save-restore-hvm$sfx" sub tb_xl_save_restore hvm; then
        tb_check "verify-hvm-restored$sfx" sub verify || lost=$((lost + 1))
    fi
    if alive; then
        if tb_check "migrate-local-hvm$sfx" sub tb_xl_migrate_local hvm; then
            tb_check "verify-hvm-migrated$sfx" sub verify || lost=$((lost + 1))
        fi
    else
        tb_skip "migrate-local-hvm$sfx" "the guest did not survive save/restore"
    fi
done
tb_metric hvm_verify_lost "$lost"
alive && tb_step destroy-hvm tb_guest_destroy hvm
