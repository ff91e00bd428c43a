#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-only
# Crash recovery through xmigd, with the unit tests' Xen double: a job
# journals itself, xmigd is SIGKILLed mid-job, and the next start finds
# the journal and puts the guest back before it takes any job.  The
# double's guest does not outlive its xmigd, so this proves the plumbing;
# tests/unit/test-journal.c proves what recovery does to a guest.
. "$(dirname "$0")/lib.sh"

daemon=${XMIGD_DOUBLE:-tests/daemon/xmigd-double}
[ -x "$daemon" ] || { echo "SKIP: no $daemon"; exit 77; }
rx="exec:python3 $here/receiver.py"
export XMIGD_DOUBLE_DOMAINS=5,6
export XMIGD_DOUBLE_SLOW=5
start_xmigd || finish

raw '{"cmd":"migrate","domain":"5","dest":"'"$rx"' ok","engine":"libxc"}' >/dev/null
for ((i = 0; i < 50; i++)); do
    grep -q '^phase=stream$' "$tmp/journal/dom-5" 2>/dev/null && break
    sleep 0.1
done
check "a running job journals its phase" grep -q '^phase=stream$' "$tmp/journal/dom-5"
check "... holding its lock" test -e "$tmp/journal/dom-5.lock"
stop_xmigd KILL
check "SIGKILL leaves the journal" test -e "$tmp/journal/dom-5"

unset XMIGD_DOUBLE_SLOW
start_xmigd || finish
expect "the next start recovers the guest" \
    "recovery: restored: domain 5 'guest' \(migrate to 'exec:.*', its job died in phase 'stream'\).*the guest runs here as 'guest'" \
    "$(cat "$log")"
check "... and removes the journal" test -z "$(ls -A "$tmp/journal")"
out=$("$XMIG" -S "$sock" migrate 5 "$rx ok" --engine libxc 2>&1)
expect "the domain migrates again" "^domain 5 migrated to exec:" "$out"
check "... and leaves no journal" test -z "$(ls -A "$tmp/journal")"
stop_xmigd
finish
