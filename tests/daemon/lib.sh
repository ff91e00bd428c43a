# SPDX-License-Identifier: LGPL-2.1-only
# shellcheck shell=bash
#
# lib.sh - what a tests/daemon/*.sh script builds on: a private xmigd on a
# socket in a temporary directory, a raw client, and pass/fail counting.
#
#   start_xmigd [ARGS...]   xmigd -f -S $sock -c $conf -J $tmp/journal ARGS,
#                           wait for it
#   stop_xmigd [SIGNAL]     send SIGNAL (TERM), wait; sets $xmigd_rc
#   raw LINE...             send each line on one connection, print every
#                           line received (greeting first) until the
#                           responses are in (client.py)
#   check NAME CMD...       CMD must succeed
#   expect NAME PATTERN TEXT   TEXT must match the extended regex PATTERN
#   finish                  summary; the exit status of the script
# $XMIGD (default: the daemon under test), $XMIG (the CLI), $tmp, $sock,
# $conf, $log (the daemon's stderr).

XMIG=${XMIG:-cli/xmig}
XMIGD=${XMIGD:-daemon/xmigd}
srcdir=${XMIG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
here=$srcdir/tests/daemon
tmp=$(mktemp -d /tmp/xmigd-test.XXXXXX)
chmod 755 "$tmp" # other users (nobody) reach the socket in some tests
sock=$tmp/sock
conf=$tmp/xmigd.conf
log=$tmp/xmigd.log
: >"$conf"
xmigd_pid=
xmigd_rc=
pass=0
fail=0

cleanup() {
    if [ -n "$xmigd_pid" ] && kill -0 "$xmigd_pid" 2>/dev/null; then
        kill -KILL "$xmigd_pid" 2>/dev/null
        wait "$xmigd_pid" 2>/dev/null
    fi
    if [ "$fail" -ne 0 ] && [ -f "$log" ]; then
        echo "--- xmigd's log:"
        tail -n 40 "$log"
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

ok() { pass=$((pass + 1)); echo "ok   $*"; }
not_ok() { fail=$((fail + 1)); echo "FAIL $*"; }

check() { # NAME CMD...
    local name=$1
    shift
    if "$@"; then ok "$name"; else not_ok "$name"; fi
}

expect() { # NAME PATTERN TEXT
    if printf '%s\n' "$3" | grep -E -q -- "$2"; then
        ok "$1"
    else
        not_ok "$1: expected /$2/ in:"
        # The head and the end: where it went wrong is often in the last.
        printf '%s\n' "$3" | awk 'NR <= 20 { print; next } { t[NR % 20] = $0 }
            END { if (NR > 40) print "..."; for (i = (NR > 40 ? NR - 19 : 21); i <= NR; i++) print t[i % 20] }' |
            sed 's/^/     | /'
    fi
}

# reload: SIGHUP, and wait until xmigd has read $conf again (it logs
# "reloaded ..." or, keeping what it had, "reload: ...").
reload() {
    local i n
    n=$(grep -c -E "reloaded |reload: " "$log")
    kill -HUP "$xmigd_pid"
    for ((i = 0; i < 300; i++)); do
        [ "$(grep -c -E "reloaded |reload: " "$log")" -gt "$n" ] && return 0
        sleep 0.1
    done
    not_ok "xmigd did not reload $conf"
}

# start_xmigd [ARGS...]: with the binary in $daemon (default $XMIGD).
start_xmigd() {
    local i
    rm -f "$sock"
    ${wrap:-} "${daemon:-$XMIGD}" -f -S "$sock" -c "$conf" -J "$tmp/journal" \
        "$@" 2>"$log" &
    xmigd_pid=$!
    for ((i = 0; i < 200; i++)); do
        [ -S "$sock" ] && grep -q "ready" "$log" 2>/dev/null && return 0
        kill -0 "$xmigd_pid" 2>/dev/null || break
        sleep 0.1
    done
    not_ok "xmigd did not start"
    cat "$log"
    return 1
}

stop_xmigd() { # [SIGNAL]
    kill -"${1:-TERM}" "$xmigd_pid" 2>/dev/null
    xmigd_rc=0
    wait "$xmigd_pid" || xmigd_rc=$?
    xmigd_pid=
}

raw() {
    python3 "$here/client.py" "$sock" "$@"
}

finish() {
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
    exit
}
