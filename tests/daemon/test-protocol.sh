#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-only
# The protocol as PROTOCOL.md writes it: greeting and version, ids echoed,
# every read-only command, pipelining, and the no_xen answer of a machine
# without Xen (the daemon runs anyway).
. "$(dirname "$0")/lib.sh"

start_xmigd || finish

out=$(raw)
expect "greeting names protocol 1" '^\{"event":"hello","protocol":1,"server":"xmigd [0-9.]+","xen":false\}$' "$out"
out=$(raw '{"cmd":"hello","protocol":1,"id":7}')
expect "hello" '^\{"id":7,"ok":true,"protocol":1,"server":"xmigd ' "$out"
out=$(raw '{"cmd":"hello","protocol":2,"id":"v2"}')
expect "another protocol version is refused" '"id":"v2","ok":false,"error":\{"code":"unsupported_protocol"' "$out"
out=$(raw '{"cmd":"list","id":"a-string-id"}')
expect "string ids are echoed" '^\{"id":"a-string-id","ok":true,"jobs":\[\]\}$' "$out"
out=$(raw '{"cmd":"stats"}')
expect "stats" '"ok":true,"stats":\{"uptime_s":[0-9.e-]+,"protocol":1,"xen":false,"max_jobs":4,"running":0,"queued":0' "$out"
expect "stats without jobs has no downtime" '"downtime_s":null' "$out"
out=$(raw '{"cmd":"status","job":42}')
expect "status of an unknown job" '"code":"unknown_job","message":"no job 42"' "$out"
out=$(raw '{"cmd":"cancel","job":42}')
expect "cancel of an unknown job" '"code":"unknown_job"' "$out"
out=$(raw '{"cmd":"cancel"}')
expect "cancel without a job" '"code":"bad_request","message":"'"'"'job'"'"' is required"' "$out"
out=$(raw '{"cmd":"watch"}')
expect "watch everything" '^\{"ok":true\}$' "$out"

# Without Xen: a clear answer, and the daemon goes on.
out=$(raw '{"cmd":"migrate","domain":"web","dest":"ssh://b"}')
expect "migrate without Xen" '"code":"no_xen","message":"Xen is not available here \(no /dev/xen/privcmd\)' "$out"
out=$(raw '{"cmd":"evacuate","dest":"ssh://b","parallel":2}')
expect "evacuate without Xen" '"code":"no_xen"' "$out"
out=$(raw '{"cmd":"domains"}')
expect "domains without Xen" '"code":"no_xen"' "$out"

# Arguments are checked before anything happens.
out=$(raw '{"cmd":"save","domain":"web","file":"relative/path"}')
expect "save needs an absolute path" "'file' must be an absolute path" "$out"
out=$(raw '{"cmd":"migrate","domain":"web"}')
expect "migrate needs dest" "'dest' is required" "$out"
out=$(raw '{"cmd":"migrate","domain":"web","dest":"ssh://b","max_iters":0}')
expect "max_iters is range-checked" "'max_iters' must be from 1 to 1000" "$out"
for v in 0 -1 86401 99999999999; do
    out=$(raw '{"cmd":"migrate","domain":"web","dest":"ssh://b","ready_timeout":'"$v"'}')
    expect "ready_timeout $v is refused" "\"code\":\"bad_request\",\"message\":\"'ready_timeout' must be from 1 to 86400\"" "$out"
done
out=$(raw '{"cmd":"evacuate","dest":"ssh://b","ready_timeout":0}')
expect "evacuate: ready_timeout is range-checked" "'ready_timeout' must be from 1 to 86400" "$out"
out=$(raw '{"cmd":"migrate","domain":"web","dest":"ssh://b","ready_timeout":"20"}')
expect "ready_timeout must be an integer" "'ready_timeout' must be an integer, not a string" "$out"
out=$(raw '{"cmd":"migrate","domain":"web","dest":"ssh://b","ready_timeout":2.5}')
expect "... not a fraction" "'ready_timeout' must be an integer, not a number" "$out"
out=$(raw '{"cmd":"save","domain":"web","file":"/tmp/x","ready_timeout":20}')
expect "save has no receiver: no ready_timeout" "'ready_timeout' is for migrations: a save has no receiver" "$out"
out=$(raw '{"cmd":"migrate","domain":"web","dest":"ssh://b","ready_timeout":86400}')
expect "ready_timeout 86400 is accepted (then: no Xen)" '"code":"no_xen"' "$out"
out=$(raw '{"cmd":"migrate","domain":"web","dest":"ssh://b","live":"yes"}')
expect "live must be a boolean" "'live' must be true or false, not a string" "$out"
out=$(raw '{"cmd":"evacuate","dest":"ssh://b","parallel":65}')
expect "parallel is range-checked" "'parallel' must be from 1 to 64" "$out"
out=$(raw '{"cmd":"migrate","domain":"web","dest":"ssh://b","engine":"fast"}')
expect "unknown engine" "unknown engine 'fast'" "$out"
out=$(raw '{"cmd":"migrate","domain":"web","dest":"ssh://b","strategy":"fast"}')
expect "unknown strategy: refused with the names" "\"code\":\"bad_request\",\"message\":\"unknown strategy 'fast' \\(per-batch, arena, kernel, exit\\)\"" "$out"
out=$(raw '{"cmd":"save","domain":"web","file":"/tmp/x","skip_redirtied":1}')
expect "skip_redirtied must be a boolean" "'skip_redirtied' must be true or false, not an integer" "$out"
out=$(raw '{"cmd":"migrate","domain":"web","dest":"ssh://b","downtime_ms":0,"keep":"x"}')
expect "downtime_ms 0 is taken, keep is not for migrate (then: no Xen)" '"code":"no_xen"' "$out"
out=$(raw '{"cmd":"status","job":1.5}')
expect "job ids are integers" "'job' must be an integer, not a number" "$out"
out=$(raw '{"cmd":"list","future_field":{"x":[1,2]}}')
expect "unknown keys are ignored" '^\{"ok":true,"jobs":\[\]\}$' "$out"

# Several requests in one write: answered in order.
out=$(raw --send $'{"cmd":"hello","id":1}\n{"cmd":"list","id":2}\n\n{"cmd":"stats","id":3}\n' --events 3)
expect "pipelined requests are answered in order" '"id":1,.*'$'\n''.*"id":2,.*'$'\n''.*"id":3,' "$out"
# The last line may lack its newline when the client closes.
out=$(raw --send '{"cmd":"hello","id":9}' --eof)
expect "a last line without newline at EOF" '"id":9,"ok":true' "$out"

stop_xmigd
check "SIGTERM: exit 0" test "$xmigd_rc" -eq 0
check "the socket is removed" test ! -e "$sock"
finish
