#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-only
# Socket activation: xmigd takes the socket systemd passes (LISTEN_FDS,
# LISTEN_PID), here from systemd-socket-activate, and leaves it to its
# owner at exit.
. "$(dirname "$0")/lib.sh"

if ! command -v systemd-socket-activate >/dev/null; then
    echo "SKIP: no systemd-socket-activate"
    exit 77
fi
systemd-socket-activate -l "$sock" "$XMIGD" -f -c "$conf" 2>"$log" &
xmigd_pid=$!
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
out=$(raw '{"cmd":"hello","id":1}')
expect "the first client starts xmigd and is served" '"id":1,"ok":true' "$out"
expect "xmigd took the passed socket" 'listening on the socket systemd passed' "$(cat "$log")"
out=$(raw '{"cmd":"stats"}')
expect "the next client too" '"ok":true,"stats"' "$out"
stop_xmigd
check "exit 0" test "$xmigd_rc" -eq 0
check "the passed socket is not removed by xmigd" test -S "$sock"
rm -f "$sock"

# LISTEN_PID of another process: not ours, so -S is used.
LISTEN_PID=1 LISTEN_FDS=1 start_xmigd || finish
expect "a LISTEN_PID not ours is ignored" "listening on $sock" "$(cat "$log")"
stop_xmigd
# fd 3 is not a socket: refuse to start, with the reason.
out=$(bash -c 'exec 3<"$1"; LISTEN_PID=$$ LISTEN_FDS=1 exec "$2" -f -c "$3"' _ "$conf" "$XMIGD" "$conf" 2>&1)
rc=$?
expect "a passed fd that is no socket is refused" 'socket activation: fd 3 is not a socket' "$out"
check "... with exit 1" test "$rc" -eq 1
finish
