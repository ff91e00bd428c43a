#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-only
# Peer credentials (SO_PEERCRED): root only by default; a group may be
# allowed, but not to run commands or write files as root.  The socket's
# mode is opened up on purpose here, so that the daemon's own check is
# what is tested.
. "$(dirname "$0")/lib.sh"

if ! command -v setpriv >/dev/null || [ "$(id -u)" != 0 ]; then
    echo "SKIP: needs root and setpriv (util-linux)"
    exit 77
fi
py=$(command -v /usr/bin/python3 || command -v python3)
cp "$here/client.py" "$tmp/client.py"
chmod 644 "$tmp/client.py"
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
nobody_raw() { as_nobody "$py" "$tmp/client.py" "$sock" "$@"; }

start_xmigd || finish
check "the socket is 0600" test "$(stat -c %a "$sock")" = 600
chmod 666 "$sock"
out=$(nobody_raw '{"cmd":"stats"}')
expect "nobody is refused" '^\{"ok":false,"error":\{"code":"permission_denied","message":"uid 65534 may not use xmigd \(root only\)"\}\}$' "$out"
expect "... and disconnected" '<closed>' "$out"
out=$(as_nobody "$XMIG" -S "$sock" stats 2>&1)
rc=$?
expect "xmig as nobody: the reason" 'uid 65534 may not use xmigd \(root only\) \(permission_denied\)' "$out"
check "xmig as nobody: exit 1" test "$rc" -eq 1
out=$(raw '{"cmd":"stats"}')
expect "root is served meanwhile" '"clients_refused":2' "$out"
stop_xmigd

# group = nogroup: nobody may connect, with a root-only subset refused.
echo "group = nogroup" >"$conf"
start_xmigd || finish
check "with a group: the socket is 0660" test "$(stat -c %a "$sock")" = 660
check "with a group: owned by it" test "$(stat -c %G "$sock")" = nogroup
chmod 666 "$sock"
out=$(nobody_raw '{"cmd":"stats"}')
expect "a member of the group is served" '"ok":true,"stats"' "$out"
out=$(nobody_raw '{"cmd":"migrate","domain":"web","dest":"exec:id"}')
expect "... but exec: is root only" '"code":"permission_denied","message":"exec: destinations run commands as root' "$out"
out=$(nobody_raw '{"cmd":"save","domain":"web","file":"/etc/shadow"}')
expect "... save is root only" '"code":"permission_denied","message":"save writes files as root' "$out"
out=$(nobody_raw '{"cmd":"migrate","domain":"web","dest":"ssh://b","ssh_command":"sh -c id"}')
expect "... ssh_command is root only" '"code":"permission_denied"' "$out"
out=$(nobody_raw '{"cmd":"migrate","domain":"web","dest":"ssh://b"}')
expect "... ssh:// is allowed (here: no Xen)" '"code":"no_xen"' "$out"
out=$(setpriv --reuid=65534 --regid=65533 --clear-groups "$py" "$tmp/client.py" "$sock" '{"cmd":"stats"}')
expect "another gid is refused" '"code":"permission_denied","message":"uid 65534 may not use xmigd \(root and group nogroup only\)"' "$out"
out=$(setpriv --reuid=65534 --regid=65533 --groups=65534 "$py" "$tmp/client.py" "$sock" '{"cmd":"stats"}')
expect "a supplementary group counts (SO_PEERGROUPS)" '"ok":true,"stats"' "$out"

# A reload that takes the group away takes its members' connections too.
timeout 10 setpriv --reuid=65534 --regid=65534 --clear-groups "$py" \
    "$tmp/client.py" "$sock" '{"cmd":"watch"}' --until '"code"' --events 1 \
    >"$tmp/watcher" 2>&1 &
watcher=$!
for ((i = 0; i < 100; i++)); do
    grep -q '"ok":true' "$tmp/watcher" && break
    sleep 0.1
done
: >"$conf"
kill -HUP "$xmigd_pid"
wait "$watcher"
expect "reload without the group: its member is told" '^\{"ok":false,"error":\{"code":"permission_denied","message":"uid 65534 may not use xmigd \(root only\)"\}\}$' "$(cat "$tmp/watcher")"
expect "... and disconnected" '<closed>' "$(cat "$tmp/watcher")"
expect "... logged" 'client [0-9]+ \(uid 65534, pid [0-9]+\): not allowed any more after the reload: disconnected' "$(cat "$log")"
out=$(raw '{"cmd":"stats"}')
expect "... root stays" '"ok":true,"stats"' "$out"
echo "group = nogroup" >"$conf"
kill -HUP "$xmigd_pid"
for ((i = 0; i < 100; i++)); do
    [ "$(grep -c 'reloaded' "$log")" -ge 2 ] && break
    sleep 0.1
done
chmod 666 "$sock"

# No member can take every connection: 16 per uid, and the last 16 of
# the 128 are root's.
cp "$here/hold.py" "$tmp/hold.py"
chmod 644 "$tmp/hold.py"
holders=()
hold() { # UID N: N connections as UID (group nogroup), held until killed
    local i
    setpriv --reuid="$1" --regid=65534 --clear-groups "$py" "$tmp/hold.py" \
        "$sock" "$2" >"$tmp/hold.$1" 2>&1 &
    holders+=($!)
    for ((i = 0; i < 100; i++)); do
        grep -q '^holding$' "$tmp/hold.$1" && return 0
        sleep 0.1
    done
    not_ok "hold.py as uid $1 did not finish connecting"
}
hold 65534 17
check "a member gets 16 connections" test "$(grep -c '"event":"hello"' "$tmp/hold.65534")" -eq 16
expect "... not 17" '^\{"ok":false,"error":\{"code":"too_many_clients","message":"uid 65534 has 16 connections to xmigd already"\}\}$' "$(cat "$tmp/hold.65534")"
for u in 65000 65001 65002 65003 65004 65005; do hold "$u" 16; done
hold 65006 2
check "112 connections for members" test "$(cat "$tmp"/hold.* | grep -c '"event":"hello"')" -eq 112
expect "... then members are refused" '"code":"too_many_clients","message":"xmigd serves 112 clients already \(its last 16 connections are root.s\)"' "$(cat "$tmp/hold.65006")"
out=$(raw '{"cmd":"stats"}')
expect "... while root is served" '"ok":true,"stats":.*"clients":113,' "$out"
kill "${holders[@]}" 2>/dev/null
wait "${holders[@]}" 2>/dev/null
stop_xmigd
check "exit 0" test "$xmigd_rc" -eq 0
finish
