#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-only
# xmig as xmigd's client: exit codes (0 ok, 1 failed, 2 usage, 3 no
# daemon), the socket from -S or $XMIG_SOCKET, --direct as before.
. "$(dirname "$0")/lib.sh"

run() { # EXPECTED-EXIT PATTERN -- ARGS...
    local want=$1 pattern=$2 out rc
    shift 2
    out=$("$XMIG" "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want" ] && printf '%s\n' "$out" | grep -E -q -- "$pattern"; then
        ok "xmig $* -> $rc"
    else
        not_ok "xmig $*: exit $rc (want $want), output: $out"
    fi
}

# No daemon.
run 3 "^xmig: xmigd is not running \(socket $sock\): start it with \`systemctl start xmigd\`, or use --direct$" \
    -S "$sock" migrate web ssh://b
run 3 "xmigd is not running \(socket $sock\): start it with \`systemctl start xmigd\`$" -S "$sock" status
XMIG_SOCKET=$sock run 3 "xmigd is not running \(socket $sock\)" stats
run 3 "socket $sock\)" -S "$sock" evacuate ssh://b
run 1 "Xen is not available here" migrate web exec:true --direct
run 1 "Xen is not available here" save web /tmp/x --direct

# Usage.
run 2 "usage: xmig cancel" cancel
run 2 "usage: xmig evacuate" evacuate
run 2 "usage: xmig evacuate" evacuate a b
run 2 "expected a number from 1 to 64, got '0'" evacuate ssh://b --parallel 0
run 2 "usage: xmig migrate" migrate web ssh://b --parallel 2
run 2 "cannot go with --direct" migrate web ssh://b --direct --detach
run 2 "expected a job number, got 'x'" -S "$sock" watch x
run 2 "needs the path" -S

start_xmigd || finish
run 0 "^JOB +STATE +PHASE +DOMAIN +DEST +PROGRESS$" -S "$sock" status
XMIG_SOCKET=$sock run 0 "^xmigd: up [0-9]+ s, protocol 1, Xen not available$" stats
run 0 '^\{"ok":true,"stats":\{' -S "$sock" stats --json
run 0 '^\{"ok":true,"jobs":\[\]\}$' -S "$sock" status --json
run 1 "Xen is not available here .*\(no_xen\)$" -S "$sock" migrate web ssh://b
run 1 "\(no_xen\)" -S "$sock" save web /tmp/x.save
run 1 "\(no_xen\)" -S "$sock" evacuate ssh://b --parallel 2
run 1 "no job 5 \(unknown_job\)" -S "$sock" watch 5
run 1 "no job 5 \(unknown_job\)" -S "$sock" cancel 5
run 1 "no job 5 \(unknown_job\)" -S "$sock" status 5
stop_xmigd
check "exit 0" test "$xmigd_rc" -eq 0
finish
