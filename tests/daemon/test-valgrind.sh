#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-only
# xmigd under valgrind (memcheck): requests, bad input, vanishing
# clients, jobs on worker threads (with the Xen double), cancel, SIGHUP,
# SIGTERM; no error and no leak at exit.  Needs a build without
# sanitizers (tests/run-all makes one); with ASan it is skipped.
. "$(dirname "$0")/lib.sh"

command -v valgrind >/dev/null || { echo "SKIP: no valgrind"; exit 77; }
daemon=${XMIGD_DOUBLE:-tests/daemon/xmigd-double}
[ -x "$daemon" ] || { echo "SKIP: no $daemon"; exit 77; }
if grep -q -a __asan_init "$daemon"; then
    echo "SKIP: $daemon is built with ASan (configure without --enable-sanitizers)"
    exit 77
fi
rx="exec:python3 $here/receiver.py"
export XMIGD_DOUBLE_DOMAINS=5,6,7
wrap="valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible --log-file=$tmp/valgrind.log"
echo "max_jobs = 2" >"$conf"
start_xmigd || finish

raw '{"cmd":"hello"}' '{"cmd":"stats"}' '{"cmd":"list"}' '{"cmd":"domains"}' \
    '{bad' '{"cmd":"nope"}' '{"cmd":"status","job":9}' >/dev/null
raw --send "$(head -c 17000 /dev/zero | tr '\0' x)"$'\n' --events 1 >/dev/null
raw '{"cmd":"watch"}' --close >/dev/null
raw --send '{"cmd":"li' --close >/dev/null
out=$("$XMIG" -S "$sock" migrate 5 "$rx ok" --engine libxc 2>&1)
expect "a migration under valgrind" '^domain 5 migrated to' "$out"
out=$("$XMIG" -S "$sock" evacuate "$rx ok" --parallel 2 --engine libxc 2>&1)
expect "an evacuation under valgrind" '^evacuated 3 of 3 domains$' "$out"
kill -HUP "$xmigd_pid"
sleep 1
stop_xmigd TERM
check "SIGTERM when idle: exit 0 (99: valgrind found errors)" test "$xmigd_rc" -eq 0
vg=$(cat "$tmp/valgrind.log")
if [ -z "$vg" ]; then ok "valgrind: no error, no leak"; else not_ok "valgrind:"; echo "$vg" | head -60; fi

# Jobs in the stream (slow domains) when SIGTERM comes.
export XMIGD_DOUBLE_SLOW=6,7
start_xmigd || finish
raw '{"cmd":"migrate","domain":"6","dest":"'"$rx"' stall","engine":"libxc"}' \
    '{"cmd":"migrate","domain":"7","dest":"'"$rx"' stall","engine":"libxc"}' \
    '{"cmd":"migrate","domain":"5","dest":"exec:true"}' >/dev/null
sleep 2
out=$(raw '{"cmd":"watch","job":1}' '{"cmd":"cancel","job":1}' --until '"event":"end"')
expect "a cancel under valgrind" '"state":"cancelled"' "$out"
raw '{"cmd":"watch","job":2}' --close >/dev/null
stop_xmigd TERM
check "SIGTERM with a job running: exit 0 (99: valgrind found errors)" test "$xmigd_rc" -eq 0
vg=$(cat "$tmp/valgrind.log")
if [ -z "$vg" ]; then ok "valgrind: no error, no leak"; else not_ok "valgrind:"; echo "$vg" | head -60; fi
finish
