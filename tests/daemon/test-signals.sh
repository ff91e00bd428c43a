#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-only
# Signals and systemd's notifications: SIGHUP reloads xmigd.conf (a bad
# file keeps the old one), SIGTERM and SIGINT exit 0 and remove the
# socket; READY=1, STATUS=, RELOADING=1, STOPPING=1 reach $NOTIFY_SOCKET.
. "$(dirname "$0")/lib.sh"

# A stand-in for systemd's notify socket: prints each datagram.
python3 - "$tmp/notify" >"$tmp/notes" <<'PY' &
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
while True:
    msg = s.recv(4096).decode()
    print(msg.replace("\n", " | "), flush=True)
PY
listener=$!
for _ in $(seq 50); do [ -S "$tmp/notify" ] && break; sleep 0.1; done

printf 'max_jobs = 3\nlog_level = info\n' >"$conf"
NOTIFY_SOCKET=$tmp/notify start_xmigd || finish
out=$(raw '{"cmd":"stats"}')
expect "max_jobs from the file" '"max_jobs":3,' "$out"

printf '# reloaded\nmax_jobs = 7\nmax_iters = 9\nlog_level = debug\n' >"$conf"
reload
out=$(raw '{"cmd":"stats"}')
expect "SIGHUP: max_jobs reloaded" '"max_jobs":7,' "$out"
expect "SIGHUP: logged" 'reloaded .*max_jobs 7' "$(cat "$log")"

printf 'max_jobs = 500\n' >"$conf"
reload
out=$(raw '{"cmd":"stats"}')
expect "SIGHUP with a bad file: the old settings stay" '"max_jobs":7,' "$out"
expect "SIGHUP with a bad file: the line and the reason" 'reload: .*xmigd.conf:1: max_jobs: expected a number from 1 to 64; keeping' "$(cat "$log")"
printf 'ready_timeout = 0\n' >"$conf"
reload
expect "SIGHUP: ready_timeout is range-checked" 'xmigd.conf:1: ready_timeout: expected seconds from 1 to 86400; keeping' "$(cat "$log")"
printf 'max_iters = 3\ndowntime_ms = 3600001\n' >"$conf"
reload
expect "SIGHUP: downtime_ms says its range" 'xmigd.conf:2: downtime_ms: expected milliseconds from 0 to 3600000; keeping' "$(cat "$log")"
printf 'strategy = fast\n' >"$conf"
reload
expect "SIGHUP: strategy names the strategies" 'xmigd.conf:1: strategy: expected per-batch, arena, kernel or exit; keeping' "$(cat "$log")"
printf 'frobnicate = 1\n' >"$conf"
reload
expect "an unknown setting is an error" 'xmigd.conf:1: frobnicate: unknown setting' "$(cat "$log")"

stop_xmigd TERM
check "SIGTERM: exit 0" test "$xmigd_rc" -eq 0
check "SIGTERM: the socket is gone" test ! -e "$sock"
expect "SIGTERM: logged" 'stopping \(0 running, 0 queued\)' "$(cat "$log")"
sleep 0.3
notes=$(cat "$tmp/notes")
expect "READY=1 with MAINPID" '^READY=1 \| MAINPID=[0-9]+' "$notes"
expect "STATUS=" '^STATUS=0 running, 0 queued, 0 clients' "$notes"
expect "RELOADING=1 then READY=1" 'RELOADING=1'$'\n''READY=1' "$notes"
expect "STOPPING=1" '^STOPPING=1' "$notes"
kill "$listener"

: >"$conf"
start_xmigd || finish
stop_xmigd INT
check "SIGINT: exit 0" test "$xmigd_rc" -eq 0

# Bad start-up: a clear line and exit 1, never a half-started daemon.
printf 'max_jobs = x\n' >"$conf"
out=$("$XMIGD" -f -S "$sock" -c "$conf" 2>&1)
rc=$?
expect "a bad config at start: the reason" 'xmigd.conf:1: max_jobs: expected a number' "$out"
check "a bad config at start: exit 1" test "$rc" -eq 1
out=$("$XMIGD" -f -S "$sock" -c "$tmp/missing.conf" 2>&1)
expect "-c with a missing file is an error" 'missing.conf: No such file' "$out"
: >"$conf"
start_xmigd || finish
out=$("$XMIGD" -f -S "$sock" -c "$conf" 2>&1)
expect "a second xmigd on the same socket refuses" 'another xmigd is listening on' "$out"
stop_xmigd
touch "$tmp/file"
out=$("$XMIGD" -f -S "$tmp/file" -c "$conf" 2>&1)
expect "a socket path that is a file is refused" 'exists and is not a socket' "$out"
out=$("$XMIGD" --bogus 2>&1)
check "a bad option: exit 2" test $? -eq 2
finish
