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
stop_xmigd
check "exit 0" test "$xmigd_rc" -eq 0
finish
