#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-only
# What a job and `xmig bench map` report of dom0's CPU time (Xen's account)
# and of Xen's counters: per GiB and per page as the double's prices make
# them, null where Xen has no counters, and the same through xmigd as
# --direct.  Runs xmig and xmigd linked with the unit tests' Xen double
# (tests/daemon/xen-shim.c): its clock charges 1000 ns per frame mapped and
# 300 ns per trapped PTE write; it proves the arithmetic and the plumbing,
# not Xen (the testbed's bench-map, save-bench and engine-bench do).
XMIG=${XMIG_DOUBLE:-tests/cli/xmig-double}
here=$(cd "$(dirname "$0")" && pwd)
rx="exec:exec python3 $here/../daemon/receiver.py ok"
tmp=$(mktemp -d /tmp/xmig-cost-XXXXXX)
xmigd=
trap '[ -z "$xmigd" ] || kill "$xmigd" 2>/dev/null; rm -rf "$tmp"' EXIT
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
# NAME PATTERN FILE: FILE holds a line matching the extended regex.
expect() {
    if grep -E -q -- "$2" "$3"; then ok "$1"; else bad "$1: no /$2/ in: $(cat "$3")"; fi
}

if ! command -v python3 >/dev/null; then
    echo "python3 is needed"
    exit 1
fi
export XMIGD_DOUBLE_DOMAINS=5
num='[0-9][0-9.e+-]*'

# bench map: every strategy maps 2048 frames in two batches.  Per GiB
# mapped: 262144 pages x (1000 ns + 300 ns per trap) = 0.340787 s; the
# exit strategy's worker never traps: 0.262144 s.
"$XMIG" bench map 5 --json >"$tmp/bench" 2>&1
expect "bench map, no counters: dom0 CPU per GiB, per batch" \
    '"strategy":"per-batch",[^}]*"dom0_cpu_s_per_gib":0\.340787,' "$tmp/bench"
expect "... exit: no trapped writes to pay for" \
    '"strategy":"exit",[^}]*"dom0_cpu_s_per_gib":0\.262144,' "$tmp/bench"
expect "... hypercalls unknown" \
    '"strategy":"arena",[^}]*"hypercalls":null,"hypercalls_per_page":null' "$tmp/bench"
XMIGD_DOUBLE_PERFC=1 "$XMIG" bench map 5 --json >"$tmp/bench" 2>&1
expect "bench map, counters: per batch, a trap and 1/1024 hypercall a page" \
    '"strategy":"per-batch",[^}]*"ptwr_per_page":1,[^}]*"hypercalls":2,"hypercalls_per_page":0\.000976562' \
    "$tmp/bench"
expect "... exit: none trapped" '"strategy":"exit",[^}]*"ptwr":0,' "$tmp/bench"
XMIGD_DOUBLE_PERFC=1 "$XMIG" bench map 5 --strategy per-batch >"$tmp/table" 2>&1
expect "bench map's table: cpu s/GiB and hcall/page beside ptwr/page" \
    '^per-batch +2048 +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9]+ +0\.341 +1\.000 +0\.001 +2$' \
    "$tmp/table"

# A job: dom0 CPU per GiB of the stream; traps and hypercalls per data page.
"$XMIG" save 5 "$tmp/img" --direct --journal-dir "$tmp/journal" --json >"$tmp/save" 2>&1
expect "save --json, no counters: dom0 CPU measured, counters null" \
    "\"event\":\"result\",\"ok\":true,.*\"dom0_cpu_s\":$num,\"dom0_cpu_s_per_gib\":$num,\"traps\":null,\"traps_per_page\":null,\"hypercalls\":null,\"hypercalls_per_page\":null" \
    "$tmp/save"
XMIGD_DOUBLE_PERFC=1 "$XMIG" save 5 "$tmp/img" --direct --journal-dir "$tmp/journal" --json >"$tmp/save" 2>&1
expect "save --json, counters: traps and hypercalls, in all and per page" \
    "\"event\":\"result\",\"ok\":true,.*\"dom0_cpu_s_per_gib\":$num,\"traps\":[1-9][0-9]*,\"traps_per_page\":$num,\"hypercalls\":[1-9][0-9]*,\"hypercalls_per_page\":$num" \
    "$tmp/save"
XMIGD_DOUBLE_PERFC=1 "$XMIG" save 5 "$tmp/img" --direct --journal-dir "$tmp/journal" >"$tmp/save" 2>&1
expect "save: the line for people says whose figures they are" \
    "^dom0 CPU \(all of dom0, as Xen accounts it\) [0-9.]+ s, [0-9.]+ s per GiB sent; per page \(all domains\) [0-9.]+ trapped PTE writes, [0-9.]+ hypercalls$" \
    "$tmp/save"
XMIGD_DOUBLE_PERFC=1 "$XMIG" migrate 5 "$rx" --direct --journal-dir "$tmp/journal" --engine libxc --json >"$tmp/libxc" 2>&1
expect "the libxc engine: measured, nothing to divide by" \
    "\"engine\":\"libxc\",\"dom0_cpu_s\":$num,\"dom0_cpu_s_per_gib\":null,\"traps\":[1-9][0-9]*,\"traps_per_page\":null,\"hypercalls\":[1-9][0-9]*,\"hypercalls_per_page\":null" \
    "$tmp/libxc"

# Through xmigd: its result object carries the figures, and xmig shows
# them as it does for --direct.
daemon=${XMIGD_DOUBLE:-tests/daemon/xmigd-double}
sock=$tmp/sock
XMIGD_DOUBLE_PERFC=1 "$daemon" -f -S "$sock" -c /dev/null -J "$tmp/journal" \
    2>"$tmp/xmigd.log" &
xmigd=$!
i=0
until [ -S "$sock" ] && grep -q ready "$tmp/xmigd.log"; do
    [ $i -lt 200 ] || break
    sleep 0.1
    i=$((i + 1))
done
"$XMIG" -S "$sock" migrate 5 "$rx" --json >"$tmp/daemon" 2>&1
expect "through xmigd: the same figures" \
    "\"event\":\"result\",\"ok\":true,.*\"dom0_cpu_s\":$num,\"dom0_cpu_s_per_gib\":$num,\"traps\":[1-9][0-9]*,\"traps_per_page\":$num,\"hypercalls\":[1-9][0-9]*,\"hypercalls_per_page\":$num" \
    "$tmp/daemon"
python3 "$here/../daemon/client.py" "$sock" '{"cmd":"list"}' >"$tmp/status" 2>&1
expect "xmigd's job object: the figures in its result" \
    "\"result\":\{.*\"dom0_cpu_s\":$num,\"dom0_cpu_s_per_gib\":$num,\"traps\":[0-9]+,\"traps_per_page\":$num,\"hypercalls\":[0-9]+" \
    "$tmp/status"
kill "$xmigd"
wait "$xmigd"
xmigd=

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
