#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-only
# xmig reads whatever xmigd can send: replies with hundreds of jobs (a full
# queue, a full history) and evacuations of hundreds of domains.  The
# request limits of PROTOCOL.md §1 bound what clients send, not this.
# With xmigd linked against the Xen double (tests/daemon/xen-shim.c).
. "$(dirname "$0")/lib.sh"

daemon=${XMIGD_DOUBLE:-tests/daemon/xmigd-double}
[ -x "$daemon" ] || { echo "SKIP: no $daemon"; exit 77; }
rx="exec:python3 $here/receiver.py"
lines() { printf '%s\n' "$1" | grep -E -c -- "$2"; }

# 20 domains to evacuate, all of them moved.
XMIGD_DOUBLE_DOMAINS=$(seq -s, 0 20)
export XMIGD_DOUBLE_DOMAINS
echo "max_jobs = 8" >"$conf"
start_xmigd || finish
out=$("$XMIG" -S "$sock" evacuate "$rx ok 0 0.1" --parallel 8 --engine libxc 2>&1)
rc=$?
expect "evacuate 20 domains: all moved" '^evacuated 20 of 20 domains$' "$out"
check "evacuate 20 domains: exit 0 (got $rc)" test "$rc" -eq 0
out=$("$XMIG" -S "$sock" status 2>&1)
rc=$?
check "status with 20 ended jobs: exit 0" test "$rc" -eq 0
check "... one row each" test "$(lines "$out" '^[0-9]+ +done ')" -eq 20
stop_xmigd

# 300 domains whose streams stall: 256 jobs queue up (the most there can
# be), the rest are skipped ("queue full"); one starts; then 100 queued
# are cancelled, and the last 64 of those stay listed.
XMIGD_DOUBLE_DOMAINS=$(seq -s, 0 300)
XMIGD_DOUBLE_SLOW=$XMIGD_DOUBLE_DOMAINS
export XMIGD_DOUBLE_DOMAINS XMIGD_DOUBLE_SLOW
echo "max_jobs = 1" >"$conf"
start_xmigd || finish
out=$("$XMIG" -S "$sock" evacuate "$rx stall" --engine libxc --detach 2>&1)
rc=$?
check "evacuate 300 domains --detach: exit 0" test "$rc" -eq 0
check "... 256 jobs" test "$(lines "$out" '^job [0-9]+: guest \(domain [0-9]+\)')" -eq 256
check "... 44 skipped: the queue is full" test "$(lines "$out" '^skipping domain [0-9]+ \(guest\): queue full$')" -eq 44
out=$("$XMIG" -S "$sock" status 2>&1)
rc=$?
check "status with 255 queued: exit 0" test "$rc" -eq 0
check "... one row each" test "$(lines "$out" '^[0-9]+ +queued ')" -eq 255
check "... and the running one" test "$(lines "$out" '^1 +running ')" -eq 1
out=$("$XMIG" -S "$sock" status --json 2>&1)
expect "status --json: the daemon's line" '^\{"ok":true,"jobs":\[\{"id":1,' "$out"
cancels=()
for ((i = 2; i <= 101; i++)); do cancels+=('{"cmd":"cancel","job":'"$i"'}'); done
out=$(raw "${cancels[@]}")
check "100 queued jobs cancelled" test "$(lines "$out" '"ok":true,"job":\{"id":[0-9]+,.*"state":"cancelled"')" -eq 100
out=$("$XMIG" -S "$sock" status 2>&1)
rc=$?
check "status with a full history: exit 0" test "$rc" -eq 0
check "... the last 64 ended jobs" test "$(lines "$out" '^[0-9]+ +cancelled ')" -eq 64
check "... the 155 still queued" test "$(lines "$out" '^[0-9]+ +queued ')" -eq 155
stop_xmigd TERM
check "SIGTERM: exit 0" test "$xmigd_rc" -eq 0
finish
