#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-only
# The CLI's answers to bad input: one clear line on stderr and the
# documented exit code (0 ok, 1 failed, 2 usage).
XMIG=${XMIG:-cli/xmig}
pass=0
fail=0

check() { # expected-exit pattern -- args...
    want=$1 pattern=$2
    shift 2
    err=$("$XMIG" "$@" 2>&1 >/dev/null)
    got=$?
    if [ "$got" -eq "$want" ] && printf '%s\n' "$err" | grep -q -- "$pattern"; then
        pass=$((pass + 1))
        echo "ok   xmig $* -> $got"
    else
        fail=$((fail + 1))
        echo "FAIL xmig $*: exit $got (want $want), stderr: $err"
    fi
}

check 2 "unknown command 'frobnicate'" frobnicate
check 2 "usage: xmig bench" bench
check 2 "usage: xmig bench" bench map
check 2 "usage: xmig bench" bench map a b
check 2 "expected a number from 1 to 1024, got '0'" bench map 1 --batch 0
check 2 "expected a number from 1 to 1024, got '4096'" bench map 1 --batch 4096
check 2 "unknown strategy 'bogus'" bench map 1 --strategy bogus
check 2 "unknown strategy 'bogus' (per-batch, arena, kernel, exit)" migrate a exec:x --strategy bogus
check 2 "unknown strategy 'bogus' (per-batch, arena, kernel, exit)" save a /tmp/x --strategy bogus
check 2 "unknown option '--frob'" --frob
check 2 "expected a number from 1 to 86400, got '0'" migrate a exec:x --ready-timeout 0
check 2 "expected a number from 1 to 86400, got '86401'" migrate a exec:x --ready-timeout 86401
check 2 "expected a number from 1 to 86400, got '-5'" evacuate exec:x --ready-timeout -5
check 2 "expected a number from 1 to 86400, got '1m'" migrate a exec:x --direct --ready-timeout 1m
check 2 "ready-timeout is for migrations: a save has no receiver" save a /tmp/x --ready-timeout 20
check 2 "^xmig: --downtime-ms: expected a number from 0 to 3600000, got '3600001'$" migrate a exec:x --downtime-ms 3600001
check 2 "^usage: xmig migrate DOMAIN DEST \[--live|--no-live\] .*\[--direct\]" migrate a exec:x --keep
check 2 "^usage: xmig save DOMAIN FILE .*\[--keep\]" save a
check 2 "^usage: xmig evacuate DEST .*\[--parallel N\]" evacuate exec:x --direct
check 2 "^xmig: --journal-dir goes with --direct" save a /tmp/x --journal-dir /tmp
check 2 "usage: xmig evacuate" evacuate exec:x --journal-dir /tmp
check 2 "usage: xmig recover" recover extra
check 2 "usage: xmig recover" recover --frob
# Job numbers are digits only, like domain ids: never sent to xmigd
# (there is none at this socket) as some other number.
export XMIG_SOCKET=/nonexistent/xmigd.sock
for job in " 5" "+5" "5 " "5x" "0x5" "0" ""; do
    check 2 "expected a job number, got '$job' (digits only" status "$job"
done
check 2 "got '5 ' (digits only" watch "5 "
check 2 "got '+7' (digits only" cancel +7
check 2 "got '-1' (digits only" status -- -1
check 2 "got '0' (digits only, from 1 to 9223372036854775807;" cancel 0
check 2 "got '9223372036854775808' (digits only, from 1 to" cancel \
    9223372036854775808
check 2 "got '99999999999999999999999' (digits only, from 1 to" watch \
    99999999999999999999999
check 3 "" status 9223372036854775807
# exit is a strategy for jobs too: parsed, then xmigd (none here) is asked.
check 3 "" migrate a exec:x --strategy exit
check 3 "" save a /tmp/x --strategy exit
# 0 is the library's "off": a job can turn off what xmigd.conf turned on.
check 3 "" migrate a exec:x --downtime-ms 0
check 3 "" cancel 007
if [ -e /dev/xen/privcmd ] || [ -e /proc/xen/privcmd ]; then
    # A Xen host: the domain lookup is what must fail.
    check 1 "domain 'no-such-domain-xmig' not found" bench map no-such-domain-xmig
    check 1 "domain 32000 does not exist" bench map 32000
else
    # No Xen at all: one line saying so, before anything else is tried.
    check 1 "Xen is not available here" bench map 1
    check 1 "Xen is not available here" recover
    lines=$("$XMIG" bench map 1 2>&1 | wc -l)
    if [ "$lines" -eq 1 ]; then pass=$((pass + 1)); echo "ok   one line"; else
        fail=$((fail + 1)); echo "FAIL expected one line of error, got $lines"; fi
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
