#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-only
# Jobs, with xmigd linked against the unit tests' Xen double
# (tests/daemon/xen-shim.c) and a stand-in receiver: the queue behind
# max_jobs, one job per domain, strict domain ids, a save to /tmp, a
# relative save path, the receiver's 'ready' timeout, evacuate, cancel (in the stream, in the handshake, and too late once
# committed), watchers, SIGTERM while jobs run.  It proves
# nothing about Xen: the testbed's daemon scenario does that.
. "$(dirname "$0")/lib.sh"

daemon=${XMIGD_DOUBLE:-tests/daemon/xmigd-double}
[ -x "$daemon" ] || { echo "SKIP: no $daemon"; exit 77; }
rx="exec:python3 $here/receiver.py"
export XMIGD_DOUBLE_DOMAINS=0,5,6,7,8
echo "max_jobs = 2" >"$conf"
start_xmigd || finish

# One migration, followed to its end by xmig.
out=$("$XMIG" -S "$sock" migrate 5 "$rx ok" --engine libxc 2>&1)
rc=$?
expect "migrate through xmigd: the result" "^domain 5 migrated to exec:.*: [0-9]+ passes, [0-9]+ pages" "$out"
check "migrate through xmigd: exit 0" test "$rc" -eq 0
out=$("$XMIG" -S "$sock" migrate 5 "$rx ok" --engine libxc --json 2>&1)
expect "--json through xmigd: the same lines as --direct" '"event":"phase",.*"phase":"connect"' "$out"
expect "--json: the result line" '^\{"event":"result","ok":true,"domid":5,.*"guest":"destination","engine":"libxc"' "$out"
out=$(raw '{"cmd":"domains"}')
expect "domains" '"domains":\[\{"domid":5,"name":"guest","type":"pv","job":null\},\{"domid":6' "$out"
out=$(raw '{"cmd":"migrate","domain":"99","dest":"exec:true"}')
expect "an unknown domain" '"code":"unknown_domain","message":"domain 99 does not exist"' "$out"
out=$(raw '{"cmd":"migrate","domain":" 5","dest":"exec:true"}')
expect "' 5' is not domain 5" '"code":"unknown_domain","message":"not a domain id or name: a name has no whitespace' "$out"
out=$(raw '{"cmd":"migrate","domain":"+5","dest":"exec:true"}')
expect "'+5' is a name, not domain 5" '"code":"unknown_domain","message":"domain '\''\+5'\'' not found"' "$out"
out=$(raw '{"cmd":"migrate","domain":"-18446744073709551611","dest":"exec:true"}')
expect "'-18446744073709551611' is not domain 5" '"code":"unknown_domain","message":"'\''-18446744073709551611'\'' is not a domain id or name: ids are digits only, names do not start with '\''-'\''"' "$out"
out=$(raw '{"cmd":"migrate","domain":"32752","dest":"exec:true"}')
expect "an id out of range" '"code":"unknown_domain","message":"domain id 32752 is out of range' "$out"
# A save lands in the /tmp the client sees: the unit gives xmigd no
# private one (xmigd(8), SAVE FILES).
if [ "$(id -u)" = 0 ]; then
    out=$("$XMIG" -S "$sock" save 6 "$tmp/six.save" --engine libxc 2>&1)
    rc=$?
    expect "save to /tmp through xmigd" "^domain 6 saved to $tmp/six.save: " "$out"
    check "... exit 0" test "$rc" -eq 0
    check "... the image is there for the client" test -s "$tmp/six.save"
    # xmigd cannot know the client's directory: xmig resolves it.
    xmig=$(cd "$(dirname "$XMIG")" && pwd)/$(basename "$XMIG")
    mkdir "$tmp/rel"
    out=$(cd "$tmp" && "$xmig" -S "$sock" save 6 rel/six.save --engine libxc 2>&1)
    rc=$?
    expect "a relative save path through xmigd" "^domain 6 saved to $tmp/rel/six.save: " "$out"
    check "... exit 0" test "$rc" -eq 0
    check "... the image is where the client meant" test -s "$tmp/rel/six.save"
    # Strategy exit: xmigd's job forks the worker that writes the pages.
    out=$("$XMIG" -S "$sock" save 6 "$tmp/six-exit.save" --engine xmig --strategy exit 2>&1)
    rc=$?
    expect "save --strategy exit through xmigd" "^domain 6 saved to $tmp/six-exit.save: " "$out"
    expect "... by the worker" "^engine xmig \(exit\): 8 MiB written" "$out"
    check "... exit 0" test "$rc" -eq 0
    check "... the image is there" test -s "$tmp/six-exit.save"
    out=$(cd "$tmp/rel" && "$xmig" -S "$sock" save 6 plain.save --engine libxc 2>&1)
    expect "a bare file name: in the client's directory" "^domain 6 saved to $tmp/rel/plain.save: " "$out"
    # The own engine's figures go from the job's result through xmigd to
    # the client; the double's guest needs one hypercall buffer of more
    # than a page, the page types'.
    out=$("$XMIG" -S "$sock" save 6 "$tmp/six-xmig.save" --engine xmig --json 2>&1)
    expect "the xmig engine's figures in the result, hcall_buffers too" '^\{"event":"result","ok":true,.*"engine":"xmig",.*"hcall_buffers":1[,}]' "$out"
    out=$("$XMIG" -S "$sock" save 6 "$tmp/six-xmig.save" --engine xmig 2>&1)
    expect "... and in its text" '^engine xmig \(.*\): .*, 1 hypercall buffers$' "$out"
    out=$(cd "$tmp" && "$xmig" -S "$sock" save 6 nodir/six.save 2>&1)
    rc=$?
    expect "a relative path into no directory: said" "^xmig: cannot save to 'nodir/six.save': there is no directory 'nodir'$" "$out"
    check "... exit 1" test "$rc" -eq 1
fi
unit=$srcdir/systemd/xmigd.service.in
check "the unit has no PrivateTmp=" bash -c "! grep -q '^PrivateTmp=' '$unit'"
check "... and lets xmigd write to /tmp and /var/tmp" grep -q '^ReadWritePaths=/tmp /var/tmp$' "$unit"
out=$(raw '{"cmd":"migrate","domain":"0","dest":"exec:true"}')
expect "domain 0" '"code":"bad_request","message":"domain 0 cannot be migrated"' "$out"

# A receiver that takes the stream and never says 'ready': the job gives
# up after the 'ready' timeout, and the guest runs here again.
t0=$(date +%s)
out=$("$XMIG" -S "$sock" migrate 5 "$rx silent" --engine libxc --ready-timeout 1 2>&1)
rc=$?
took=$(($(date +%s) - t0))
expect "--ready-timeout 1 through xmigd: the reason" "failed: the receiver did not say 'ready' within 1 s: migration abandoned before the go-ahead, domain 5 runs here again \(the guest is still running here\)$" "$out"
check "... exit 1" test "$rc" -eq 1
# Only tells the 1 s asked for from the default 600 s: a loaded machine
# is slow, not wrong.
check "... within a minute, not ten (${took} s)" test "$took" -le 60
# xmigd.conf's ready_timeout for requests without one; theirs wins.
printf 'max_jobs = 2\nready_timeout = 1\n' >"$conf"
reload
out=$(raw '{"cmd":"migrate","domain":"5","dest":"'"$rx"' silent","engine":"libxc","watch":true}' --until '"event":"end"')
expect "ready_timeout = 1 in xmigd.conf: the job fails, the guest stays" '"event":"end","job":\{"id":[0-9]+,.*"state":"failed".*"guest":"source".*"message":"the receiver did not say '"'"'ready'"'"' within 1 s' "$out"
out=$(raw '{"cmd":"migrate","domain":"5","dest":"'"$rx"' ok 2","engine":"libxc","ready_timeout":10,"watch":true}' --until '"event":"end"')
expect "... a request's ready_timeout overrides it" '"event":"end","job":\{"id":[0-9]+,.*"state":"done".*"guest":"destination"' "$out"
echo "max_jobs = 2" >"$conf"
reload

# Stalled receivers: jobs that stay in the stream until cancelled.
export XMIGD_DOUBLE_SLOW=5,6,7,8
stop_xmigd; start_xmigd || finish
out=$(raw '{"cmd":"migrate","domain":"5","dest":"'"$rx"' stall","engine":"libxc","id":1}' \
          '{"cmd":"migrate","domain":"5","dest":"exec:true","id":2}')
expect "one job per domain" '"id":2,"ok":false,"error":\{"code":"busy","message":"domain 5 \(guest\) already has job 1 \((queued|running)\)"' "$out"
raw '{"cmd":"migrate","domain":"6","dest":"'"$rx"' stall","engine":"libxc"}' >/dev/null
raw '{"cmd":"migrate","domain":"7","dest":"'"$rx"' stall","engine":"libxc"}' >/dev/null
sleep 1
out=$(raw '{"cmd":"list"}')
expect "max_jobs = 2: two run" '"id":1,.*"state":"running".*"id":2,.*"state":"running"' "$out"
expect "... the third waits" '"id":3,.*"state":"queued"' "$out"
out=$(raw '{"cmd":"cancel","job":3}')
expect "cancel a queued job: at once" '"id":3,.*"state":"cancelled".*"message":"cancelled before it started"' "$out"

# A watcher sees the end of a cancelled job; the guest stays here.
out=$(raw '{"cmd":"watch","job":2}' '{"cmd":"cancel","job":2}' --until '"event":"end"')
expect "cancel a running job" '"ok":true,"job":\{"id":2,.*"cancel_requested":true' "$out"
expect "... its end: cancelled, guest on the source" '"event":"end","job":\{"id":2,.*"state":"cancelled".*"guest":"source".*"message":"cancelled"' "$out"
out=$("$XMIG" -S "$sock" cancel 1 --wait 2>&1)
rc=$?
expect "xmig cancel --wait" '^job 1: cancelled$' "$out"
check "xmig cancel --wait: exit 0" test "$rc" -eq 0
run_rc() { "$@" >/dev/null 2>&1; echo $?; }
check "xmig cancel of an ended job: exit 1" test "$(run_rc "$XMIG" -S "$sock" cancel 1)" -eq 1

# In the handshake, until the go-ahead is written, cancel still works.
unset XMIGD_DOUBLE_SLOW
stop_xmigd; start_xmigd || finish
out=$(raw '{"cmd":"migrate","domain":"8","dest":"'"$rx"' ok 3","engine":"libxc","watch":true}' \
          --until '"phase":"handshake"' '{"cmd":"cancel","job":1}' --until '"event":"end"')
expect "cancel in the handshake: accepted" '"ok":true,"job":\{"id":1,.*"cancel_requested":true' "$out"
expect "... the job is cancelled, the guest stays here" '"event":"end","job":\{"id":1,.*"state":"cancelled".*"guest":"source"' "$out"
# Too late: once the go-ahead is written (phase committed), it finishes.
out=$(raw '{"cmd":"migrate","domain":"8","dest":"'"$rx"' ok 0 0.5 3","engine":"libxc","watch":true}' \
          --until '"phase":"committed"' '{"cmd":"cancel","job":2}' --until '"event":"end"')
expect "cancel when committed -> too_late" '"code":"too_late","message":"job 2 has sent the go-ahead \(phase committed\)' "$out"
expect "... and the job succeeds" '"event":"end","job":\{"id":2,.*"state":"done"' "$out"

# Evacuate: all four domains, two at a time, followed by xmig.
out=$("$XMIG" -S "$sock" evacuate "$rx ok" --parallel 2 --engine libxc 2>&1)
rc=$?
expect "evacuate: one job per domain" '^job [0-9]+: guest \(domain 5\).*'$'\n''job [0-9]+: guest \(domain 6\)' "$out"
expect "evacuate: all done" '^evacuated 4 of 4 domains$' "$out"
check "evacuate: exit 0" test "$rc" -eq 0
out=$(raw '{"cmd":"stats"}')
expect "stats count the jobs" '"jobs":\{"submitted":6,"done":5,"failed":0,"cancelled":1\}' "$out"
expect "stats: downtime figures" '"downtime_s":\{"min":[0-9.e-]+,"avg":[0-9.e-]+,"max":[0-9.e-]+\}' "$out"
out=$("$XMIG" -S "$sock" status 2>&1)
expect "xmig status lists ended jobs" '^5 +done +done +guest +exec:' "$out"
out=$("$XMIG" -S "$sock" migrate 6 "exec:exit 0" --engine libxc 2>&1)
rc=$?
expect "a failed job: the reason" "job [0-9]+ failed: .*banner.* \(the guest is still running here\)" "$out"
check "a failed job: exit 1" test "$rc" -eq 1

# SIGTERM with a job in the stream and one queued: both cancelled, exit 0.
export XMIGD_DOUBLE_SLOW=5,6,7,8
echo "max_jobs = 1" >"$conf"
stop_xmigd; start_xmigd || finish
# Job N is listed before the next client goes: a loaded machine can run
# the second client first.
listed() { # ID
    local i
    for ((i = 0; i < 300; i++)); do
        "$XMIG" -S "$sock" status 2>/dev/null | grep -E -q "^$1 " && return 0
        sleep 0.1
    done
    return 1
}
"$XMIG" -S "$sock" migrate 5 "$rx stall" --engine libxc >"$tmp/m5" 2>&1 &
m5=$!
listed 1
"$XMIG" -S "$sock" migrate 6 "$rx stall" --engine libxc >"$tmp/m6" 2>&1 &
m6=$!
listed 2
out=$(raw '{"cmd":"migrate","domain":"7","dest":"exec:true"}' --sleep 0.2)
stop_xmigd TERM
check "SIGTERM with jobs: exit 0" test "$xmigd_rc" -eq 0
wait "$m5"; r5=$?
wait "$m6"; r6=$?
expect "the running job was cancelled" 'job 1 cancelled: cancelled \(the guest is still running here\)' "$(cat "$tmp/m5")"
expect "the queued job was cancelled" 'job 2 cancelled: cancelled: xmigd is stopping' "$(cat "$tmp/m6")"
check "their clients exit 1" test "$r5" -eq 1 -a "$r6" -eq 1
expect "SIGTERM: logged" 'stopping \(1 running, 2 queued\)' "$(cat "$log")"
finish
