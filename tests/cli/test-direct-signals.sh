#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-only
# `xmig migrate/save --direct`: SIGINT, SIGTERM and SIGHUP cancel the job
# (exit 1, one line saying so, the guest still here); after the go-ahead
# they change nothing and the migration completes.  --ready-timeout ends
# the wait for a receiver that never says 'ready'.  Runs xmig linked with
# the unit tests' Xen double (tests/daemon/xen-shim.c): it proves the
# signal plumbing, not Xen (the testbed's faults scenario does).
XMIG=${XMIG_DOUBLE:-tests/cli/xmig-double}
here=$(cd "$(dirname "$0")" && pwd)
rx=$here/../daemon/receiver.py
tmp=$(mktemp -d /tmp/xmig-direct-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

if ! command -v python3 >/dev/null; then
    echo "python3 is needed"
    exit 1
fi
# `&` in a script ignores SIGINT, and xmig leaves ignored signals alone:
# start it with the default dispositions, as from a terminal.  dfl execs:
# `dfl ... &` makes $! xmig's pid; in the foreground it needs ( ).
dfl() {
    exec python3 -c 'import os, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_DFL)
os.execv(sys.argv[1], sys.argv[1:])' "$@"
}

export XMIGD_DOUBLE_DOMAINS=5
# Domain 5's stream takes a minute unless cancelled.  The time limits
# below only tell a cancel from a stream left to run, and a 1 s timeout
# from the default 600 s: a loaded machine is slow, not wrong.
for sig in INT TERM HUP; do
    rm -f "$tmp/streaming"
    XMIGD_DOUBLE_SLOW=5 dfl "$XMIG" migrate 5 \
        "exec:exec python3 $rx stream $tmp/streaming" \
        --direct --journal-dir "$tmp/journal" --engine libxc >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    i=0
    while [ ! -e "$tmp/streaming" ] && [ $i -lt 100 ]; do
        sleep 0.1
        i=$((i + 1))
    done
    sleep 0.3
    # Its journal is where --journal-dir says (the host's stays untouched).
    if [ "$sig" = INT ]; then
        if [ -n "$(ls -A "$tmp/journal" 2>/dev/null)" ]; then
            ok "migrate --direct --journal-dir: the job's journal is there"
        else
            bad "migrate --direct --journal-dir: no journal in $tmp/journal"
        fi
    fi
    start=$(date +%s)
    kill -"$sig" "$pid"
    wait "$pid"
    rc=$?
    took=$(($(date +%s) - start))
    if [ "$rc" -eq 1 ] && [ "$took" -le 30 ] &&
        grep -q "cancelling the job" "$tmp/err" &&
        grep -q "^xmig: cancelled (the guest is still running here)" "$tmp/err"; then
        ok "migrate --direct, SIG$sig while streaming: cancelled in ${took}s"
    else
        bad "migrate --direct, SIG$sig: exit $rc after ${took}s, stderr: $(cat "$tmp/err")"
    fi
done

XMIGD_DOUBLE_SLOW=5 dfl "$XMIG" save 5 "$tmp/image" --direct --journal-dir "$tmp/journal" --engine libxc \
    >"$tmp/out" 2>"$tmp/err" &
pid=$!
# Once the image's temporary file is there, the job runs and xmig's
# handlers are in place: a signal before that would meet the default
# disposition (seen under load, SIGTERM killing xmig).
i=0
while ! ls "$tmp"/.image.xmig-* >/dev/null 2>&1 && [ $i -lt 300 ]; do
    sleep 0.1
    i=$((i + 1))
done
# A second signal while the cancel is under way does not kill xmig.
kill -INT "$pid"
kill -TERM "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 1 ] && [ ! -e "$tmp/image" ] &&
    grep -q "^xmig: cancelled (the guest is still running here)" "$tmp/err"; then
    ok "save --direct, SIGINT then SIGTERM: cancelled"
else
    bad "save --direct, SIGINT then SIGTERM: exit $rc, stderr: $(cat "$tmp/err")"
fi

# The receiver itself signals xmig once it has the go-ahead.
(dfl "$XMIG" migrate 5 "exec:exec python3 $rx committed" \
    --direct --journal-dir "$tmp/journal" --engine libxc >"$tmp/out" 2>"$tmp/err")
rc=$?
if [ "$rc" -eq 0 ] && [ "$(grep -c "too late to cancel" "$tmp/err")" -eq 3 ]; then
    ok "migrate --direct, SIGINT SIGTERM SIGHUP after the go-ahead: migrated"
else
    bad "migrate --direct after the go-ahead: exit $rc, stderr: $(cat "$tmp/err")"
fi

# The receiver reads everything and never says 'ready'.
start=$(date +%s)
"$XMIG" migrate 5 "exec:exec python3 $rx stream $tmp/silent" \
    --direct --journal-dir "$tmp/journal" --engine libxc --ready-timeout 1 >"$tmp/out" 2>"$tmp/err"
rc=$?
took=$(($(date +%s) - start))
if [ "$rc" -eq 1 ] && [ "$took" -le 60 ] &&
    grep -q "^xmig: the receiver did not say 'ready' within 1 s: migration abandoned before the go-ahead, domain 5 runs here again (the guest is still running here)$" "$tmp/err"; then
    ok "migrate --direct --ready-timeout 1: given up in ${took}s, guest here"
else
    bad "migrate --direct --ready-timeout 1: exit $rc after ${took}s, stderr: $(cat "$tmp/err")"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
