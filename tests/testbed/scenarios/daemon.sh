#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow timeout=900
#
# daemon: xmigd as systemd would start it (socket activation, through
# xmig-activate: this dom0 has no systemd), driven by xmig:
#   two PV guests migrated at once through it to stock receivers
#   (exec:xl migrate-receive), integrity OK;
#   a migration cancelled mid-pass: the guest keeps running here, same
#   domain, log-dirty off (xmig-probe), integrity OK, and xmigd keeps no
#   foreign mapping (its /proc/PID/maps); the same after a failed job;
#   an evacuation of three guests, two at a time (they come back as new
#   domains: the receiver is local), integrity OK;
#   SIGTERM: exit 0.
# Then xmigd again, twice, for its memory:
#   built with ASan/UBSan/LSan (xmigd-asan, staged): one real migration and
#   one cancelled, SIGTERM, no sanitizer report and no leak;
#   under valgrind's memcheck (staged from the build host): valgrind 3.19
#   cannot follow Xen 4.17's hypercalls (it rejects domctl interface 0x15,
#   so every domain looks absent), hence only what needs no hypercall:
#   start, stats, requests for unknown domains and jobs, SIGTERM; no error
#   and no leak.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"

# 128 MiB: the least a PV guest of the stock kernel builds in.
MIB=128
LIBEXEC=/host/root/usr/libexec/xmig
RX="exec:xl migrate-receive"
D=$TB_TMP/xmigd
export XMIG_SOCKET=$D/xmigd.sock
VALGRIND=(env VALGRIND_LIB=/host/root/opt/valgrind/lib /host/root/opt/valgrind/valgrind
    --error-exitcode=99 --leak-check=full
    --show-leak-kinds=definite,indirect,possible
    --errors-for-leak-kinds=definite,indirect,possible
    --log-file="$TB_OUT/xmigd-valgrind.log")
[[ -x /host/root/opt/valgrind/valgrind ]] || VALGRIND=()
VG=()
XMIGD=xmigd
xmigd_pid=

start_xmigd() {
    local i
    mkdir -p "$D"
    printf 'max_jobs = 2\nlog_level = debug\n' >"$D/xmigd.conf"
    "$LIBEXEC/xmig-activate" "$XMIG_SOCKET" "${VG[@]}" "$XMIGD" -f \
        -c "$D/xmigd.conf" 2>"$TB_OUT/xmigd.log" &
    xmigd_pid=$!
    for ((i = 0; i < 600; i++)); do
        grep -q ' ready: ' "$TB_OUT/xmigd.log" 2>/dev/null && break
        kill -0 "$xmigd_pid" 2>/dev/null || { cat "$TB_OUT/xmigd.log"; return 1; }
        sleep 0.5
    done
    grep -q 'listening on the socket systemd passed' "$TB_OUT/xmigd.log" ||
        { echo "xmigd did not take the passed socket" >&2; return 1; }
    xmig stats || return 1
}


# Two migrations at once; both must overlap (max_jobs = 2) and succeed.
migrate_two() {
    local r1=0 r2=0 t0
    t0=$(_tb_now)
    xmig migrate g1 "$RX" --json >"$TB_OUT/migrate-g1.json" 2>"$TB_TMP/m1.err" &
    local p1=$!
    xmig migrate g2 "$RX" --json >"$TB_OUT/migrate-g2.json" 2>"$TB_TMP/m2.err" &
    local p2=$!
    wait "$p1" || r1=$?
    wait "$p2" || r2=$?
    tb_note wall_s "$(_tb_secs $(($(_tb_now) - t0)))"
    cat "$TB_TMP/m1.err" "$TB_TMP/m2.err"
    grep -h '"event":"result"' "$TB_OUT/migrate-g1.json" "$TB_OUT/migrate-g2.json"
    ((r1 == 0 && r2 == 0)) || { echo "exit $r1 and $r2" >&2; return 1; }
    # Overlap: the second started before the first ended.
    awk '/job [0-9]+: started/ { s++ } /job [0-9]+: done/ { if (s < 2) bad = 1 }
         END { exit bad || s < 2 }' "$TB_OUT/xmigd.log" ||
        { echo "the two jobs did not run at once" >&2; return 1; }
    tb_note g1_downtime_s "$(grep -o '"downtime_s":[0-9.e-]*' "$TB_OUT/migrate-g1.json" | cut -d: -f2)"
    tb_note g2_downtime_s "$(grep -o '"downtime_s":[0-9.e-]*' "$TB_OUT/migrate-g2.json" | cut -d: -f2)"
}

# Cancel during the live passes; the guest must not have moved.
cancel_mid_pass() {
    local id job i line st=
    id=$(xl domid g1) || return 1
    # Many passes allowed; the cancel comes as soon as pages flow (pass 0
    # alone takes seconds, with log-dirty already on).  A later pass cannot
    # be waited for: a short pass can see no dirty page and end the job.
    line=$(xmig migrate g1 "$RX" --detach --max-iters 1000 --target-dirty 0) || return 1
    echo "$line"
    job=$(sed -n 's/^job \([0-9]*\) queued.*/\1/p' <<<"$line")
    [[ -n $job ]] || return 1
    for ((i = 0; i < 1200; i++)); do
        st=$(xmig status "$job" --json) || return 1
        grep -q '"phase":"stream","pass":[0-9]*,"sent":[1-9]' <<<"$st" && break
        grep -q '"state":"\(done\|failed\|cancelled\)"' <<<"$st" &&
            { echo "job $job ended before it could be cancelled: $st" >&2; return 1; }
        sleep 0.1
    done
    xmig status "$job"
    xmig cancel "$job" --wait || return 1
    st=$(xmig status "$job" --json) || return 1
    xmig status "$job"
    grep -q '"state":"cancelled"' <<<"$st" || { echo "job $job: not cancelled: $st" >&2; return 1; }
    tb_note cancelled_job "$job"
    # The receiver was killed before the go-ahead: its half-made copy goes.
    xl destroy g1--incoming 2>/dev/null || true
    tb_intact g1 "$id" && no_mappings
}

# Between jobs xmigd holds no foreign mapping: none of its VMAs is a
# privcmd (or gntdev) mapping.
no_mappings() {
    local n
    n=$(tb_foreign_vmas "$xmigd_pid" "$TB_OUT/xmigd.log")
    echo "xmigd ($xmigd_pid): $n foreign-mapping VMAs"
    ((n == 0))
}

# A job that fails (the receiver exits at once) through the daemon: one
# clear line, exit 1, the guest intact, nothing left mapped in xmigd.
failed_job() {
    tb_bad g2 "banner" xmig migrate g2 "exec:exit 0" && no_mappings
}

evacuate() {
    local out rc=0 t0
    t0=$(_tb_now)
    out=$(xmig evacuate "$RX" --parallel 2 2>&1) || rc=$?
    echo "$out"
    tb_note wall_s "$(_tb_secs $(($(_tb_now) - t0)))"
    ((rc == 0)) && grep -q '^evacuated 3 of 3 domains$' <<<"$out"
}

stop_xmigd() {
    local rc=0
    xmig stats
    kill -TERM "$xmigd_pid"
    wait "$xmigd_pid" || rc=$?
    tail -n 5 "$TB_OUT/xmigd.log"
    tb_note exit "$rc"
    if ((${#VG[@]})); then
        cat "$TB_OUT/xmigd-valgrind.log"
        grep -q 'ERROR SUMMARY: 0 errors' "$TB_OUT/xmigd-valgrind.log" ||
            { echo "valgrind found errors" >&2; return 1; }
    fi
    ((rc == 0)) || { echo "xmigd exited $rc (99: valgrind errors)" >&2; return 1; }
}

tb_step create-g1 tb_guest_create g1 pv "$MIB"
tb_step create-g2 tb_guest_create g2 pv "$MIB"
tb_step create-g3 tb_guest_create g3 pv "$MIB"
tb_corrupt_if_asked g1
tb_step xmigd-start start_xmigd
tb_step migrate-two-at-once migrate_two
tb_step verify-g1-migrated tb_guest_verify g1
tb_step verify-g2-migrated tb_guest_verify g2
tb_step cancel-mid-pass cancel_mid_pass
tb_step verify-g1-after-cancel tb_guest_verify g1
tb_step failed-job failed_job
tb_step evacuate-three evacuate
tb_step verify-g1-evacuated tb_guest_verify g1
tb_step verify-g2-evacuated tb_guest_verify g2
tb_step verify-g3-evacuated tb_guest_verify g3
tb_step xmigd-stop stop_xmigd

# The sanitizer build: LSan reports at exit, into ASAN_LOG.*.
ASAN_LOG=$TB_OUT/xmigd-asan
asan_clean() {
    local f bad=0
    for f in "$ASAN_LOG".*; do
        [[ -e $f ]] || continue
        cat "$f"
        bad=1
    done
    ((bad == 0)) || { echo "the sanitizers reported errors (above)" >&2; return 1; }
    echo "no sanitizer report"
}
if [[ -x $LIBEXEC/xmigd-asan ]]; then
    XMIGD=$LIBEXEC/xmigd-asan
    export ASAN_OPTIONS="detect_leaks=1:log_path=$ASAN_LOG"
    export UBSAN_OPTIONS="print_stacktrace=1:log_path=$ASAN_LOG"
    tb_step asan-xmigd-start start_xmigd
    tb_step asan-migrate-g3 bash -c 'xmig migrate g3 "$1" >&2' _ "$RX"
    tb_step verify-g3-asan tb_guest_verify g3
    tb_step asan-cancel-mid-pass cancel_mid_pass
    tb_step asan-xmigd-stop stop_xmigd
    tb_step asan-report asan_clean
    unset ASAN_OPTIONS UBSAN_OPTIONS
    XMIGD=xmigd
else
    tb_fail "no $LIBEXEC/xmigd-asan (tests/testbed/stage builds it)"
fi

# memcheck, for what it can follow (see the top).
vg_requests() {
    xmig stats || return 1
    tb_bad g1 "not found" xmig migrate no-such-guest "$RX" || return 1
    local err rc=0
    err=$(xmig status 4242 2>&1) || rc=$?
    echo "xmig status 4242 -> exit $rc: $err"
    ((rc == 1))
}
if ((${#VALGRIND[@]})); then
    VG=("${VALGRIND[@]}")
    tb_step xmigd-valgrind-start start_xmigd
    tb_step valgrind-requests vg_requests
    tb_step xmigd-valgrind-stop stop_xmigd
else
    tb_fail "no valgrind staged (the build host needs valgrind)"
fi
