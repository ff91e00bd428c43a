#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-only
# Bad input: each gets a clear error and the daemon serves everyone else.
. "$(dirname "$0")/lib.sh"

start_xmigd || finish

bad() { # NAME LINE CODE
    local out
    out=$(raw "$2" '{"cmd":"hello","id":"after"}')
    expect "$1 -> $3" "\"code\":\"$3\"" "$out"
    expect "$1: the connection still works" '"id":"after","ok":true' "$out"
}
bad "garbage" 'hello there' bad_json
bad "trailing comma" '{"cmd":"list",}' bad_json
bad "duplicate key" '{"cmd":"list","cmd":"stats"}' bad_json
bad "single quotes" "{'cmd':'list'}" bad_json
bad "NUL escape" '{"cmd":"li\u0000st"}' bad_json
bad "lone surrogate" '{"cmd":"\ud800"}' bad_json
bad "invalid UTF-8" $'{"cmd":"\xc0\xaf"}' bad_json
bad "control character" $'{"cmd":"li\tst"}' bad_json
bad "too deep" '[[[[[[[[[[1]]]]]]]]]]' bad_json
bad "huge number" '{"cmd":"list","x":1e999}' bad_json
bad "NaN" '{"cmd":"list","id":NaN}' bad_json
bad "Infinity" '{"cmd":"list","x":[Infinity]}' bad_json
bad "a bare word" '{"cmd":"list","x":truth}' bad_json
bad "trailing garbage" '{"cmd":"list"} x' bad_json
# What json-c takes unless strict, which xmigd cannot ask of json-c 0.18.
bad "a comment" '{"cmd":"list"/* c */}' bad_json
bad "trailing comma in an array" '{"cmd":"list","x":[1,2,]}' bad_json
bad "a word in capitals" '{"cmd":"list","x":TRUE}' bad_json
bad "a form feed between values" $'{"cmd":"list",\f"x":1}' bad_json
# ... while any UTF-8 in a string is taken (json-c 0.18 refuses it when
# strict: json-c issue #875).
out=$(raw '{"cmd":"hello","id":"café ☕"}')
expect "UTF-8 in a string is taken" '"id":"café ☕","ok":true' "$out"
bad "not an object" '["list"]' bad_request
bad "no cmd" '{"id":1}' bad_request
bad "cmd not a string" '{"cmd":5}' bad_request
bad "unknown command" '{"cmd":"frobnicate"}' unknown_command
bad "bad id" '{"cmd":"list","id":[1]}' bad_request
long=$(seq -s, 1 65)
bad "65 members" "{\"cmd\":\"list\",\"x\":[$long]}" bad_json

# A line over 16384 bytes: an error, then the connection is closed.
big=$(head -c 20000 /dev/zero | tr '\0' 'x')
out=$(raw --send "{\"cmd\":\"list\",\"pad\":\"$big\"}"$'\n' --events 2)
expect "oversized line -> line_too_long" '"code":"line_too_long"' "$out"
expect "oversized line: then closed" '<closed>' "$out"
out=$(raw '{"cmd":"hello","id":1}')
expect "others are served after an oversized line" '"id":1,"ok":true' "$out"

# A slow client: one byte at a time still works.
out=$(python3 - "$sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); f = s.makefile("rb")
f.readline()
for b in b'{"cmd":"hello","id":"slow"}\n':
    s.send(bytes([b])); time.sleep(0.005)
print(f.readline().decode().strip())
PY
)
expect "a slow client is served" '"id":"slow","ok":true' "$out"

# A client that never reads its answers: throttled, never in the way.
python3 - "$sock" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.setblocking(False)
req = b'{"cmd":"stats"}\n' * 1000
sent = 0
t0 = time.time()
while time.time() - t0 < 3:
    try:
        sent += s.send(req)
    except BlockingIOError:
        time.sleep(0.05)
time.sleep(20)
PY
flood=$!
sleep 1
t0=$(date +%s%N)
out=$(raw '{"cmd":"hello","id":"meanwhile"}')
t1=$(date +%s%N)
expect "served while another client floods and never reads" '"id":"meanwhile","ok":true' "$out"
# Liveness, not speed: a daemon blocked on the flooder would answer only
# once the flooder hangs up, 20 s later.
check "... while the flooder still holds its connection" test $(( (t1 - t0) / 1000000 )) -lt 15000
wait "$flood"

# Clients that vanish: mid-watch, mid-line, right after connecting.
raw '{"cmd":"watch"}' --close >/dev/null
raw --send '{"cmd":"li' --close >/dev/null
python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$sock"
out=$(raw '{"cmd":"stats"}')
expect "after vanishing clients: 1 client (this one)" '"clients":1,' "$out"

# The connection limit: 128; number 129 is turned away.
out=$(python3 - "$sock" <<'PY'
import socket, sys
conns = []
for i in range(128):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
    s.makefile("rb").readline()
    conns.append(s)
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
print(s.makefile("rb").readline().decode().strip())
PY
)
expect "the 129th client -> too_many_clients" '"code":"too_many_clients"' "$out"
out=$(raw '{"cmd":"stats"}')
expect "the daemon still serves after that" '"ok":true' "$out"

stop_xmigd
check "SIGTERM: exit 0" test "$xmigd_rc" -eq 0
check "nothing fatal in the log" bash -c "! grep -q 'error:' '$log'"

# Strings: arguments hold no control characters, requests are UTF-8, and
# nothing a client sends reaches the log or a reply raw (with -d, the log
# shows each error sent).
start_xmigd -d || finish
out=$(raw '{"cmd":"migrate","domain":"web\nxmigd: warning: forged","dest":"ssh://b"}')
expect "a newline in a domain -> bad_request" '"code":"bad_request","message":"'\''domain'\'' contains a control character \(U\+000A at byte 3\): not allowed"' "$out"
out=$(raw '{"cmd":"migrate","domain":"web","dest":"ssh://b\u009b2J"}')
expect "a C1 control in dest -> bad_request" '"message":"'\''dest'\'' contains a control character \(U\+009B at byte 7\)' "$out"
out=$(raw $'{"cmd":"migrate","domain":"web\xff","dest":"ssh://b"}')
expect "a raw 0xff -> bad_json" '"code":"bad_json","message":"malformed JSON: at byte 30: invalid UTF-8 in a string"' "$out"
out=$(raw '{"cmd":"x\nxmigd: warning: forged"}')
expect "a newline in an unknown command: echoed as \\x0a" "unknown command 'x\\\\\\\\x0axmigd: warning: forged'" "$out"
check "... no forged line in the log" bash -c "! grep -q '^xmigd: warning: forged' '$log'"
expect "... where it is \\x0a too" "unknown command 'x\\\\x0axmigd: warning: forged'" "$(cat "$log")"
a63=$(printf 'a%.0s' $(seq 63))
out=$(raw '{"cmd":"'"$a63"'é"}')
expect "a command cut inside a character: the reply is UTF-8" "unknown command '$a63\\\\\\\\xc3'" "$out"
stop_xmigd
finish
