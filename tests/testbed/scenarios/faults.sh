#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
# testbed: xen=shadow timeout=1500
#
# faults: no failure of the receiver, of xmigd, of `xmig --direct` or of
# the disk loses a guest, runs it twice or leaves anything behind.  One
# host; a 128 MiB PV, a PVH and an HVM guest migrate through xmigd (a private
# one, journal in its default /run/xmig) to a local stock
# `xl migrate-receive` behind `xmig-probe rxproxy`, which misbehaves as
# each case asks:
#   cut: the receiver's input ends at a byte offset (headers, pages, the
#     END record, the 'ready' wait), --no-live and a few live;
#   go-ahead: the receiver reports failure after the go-ahead, (a)
#     without and (b) with its permission to resume;
#   silent: it never says 'ready'; `xmig cancel`, or the job's
#     --ready-timeout;
#   stuck: an exec: shell (busybox sh, dash) whose pipeline holds the
#     pipe and stops reading; `xmig cancel` must end the job and every
#     receiver process;
#   xmigd SIGKILLed in each phase, then restarted: it recovers the guest
#     from its journal;
#   `xmig migrate --direct` hit by SIGINT/SIGTERM/SIGHUP in each phase
#     (a cancel), or SIGKILLed and then `xmig recover`;
#   saves: a full disk (32 MiB tmpfs), over an existing file, to a FIFO,
#     to /dev/null and /dev/full.
# After each case: the guest runs exactly once (no NAME--migratedaway
# left), unpaused, not suspended, log-dirty off, integrity OK, no foreign
# mapping in xmigd, no receiver process, no stray file, no image lost;
# the step notes where the guest ended.  The last line of the log is
#   faults: cases=N lost=L duplicated=D leaked=K
# lost: the guest runs nowhere and no image holds it (or its memory is
# corrupt, or an existing image was destroyed); duplicated: it runs twice;
# leaked: a mapping, log-dirty, a paused or suspended or renamed domain, a
# receiver process or a file left behind.  Any of them, or fewer than 40
# cases, fails the scenario.

# shellcheck source=lib.sh
. "$(dirname "$0")/lib.sh"
# An HVM guest's workload on Xen's PV console: on its emulated UART it
# stopped answering after a move in the testbed (scenario hvm-boot).
export TB_HVM_CONSOLE=${TB_HVM_CONSOLE:-hvc0}

MIB=128
LIBEXEC=/host/root/usr/libexec/xmig
PROBE=$LIBEXEC/xmig-probe
D=$TB_TMP/xmigd
export XMIG_SOCKET=$D/xmigd.sock
CASES=$TB_OUT/faults.cases
RXLOG=$TB_OUT/receivers.log
SMALL=$TB_TMP/small
FLAG=$TB_TMP/rx.flag
BANNER='xl migration receiver ready, send binary domain data.\n'
XL_MAGIC='Xen saved domain, xl format'
MIN_CASES=40
: >"$CASES"
mkdir -p "$D"

# rx OPTION...: an exec: destination, a stock receiver behind rxproxy.
rx() { echo "exec:$PROBE rxproxy $* -- xl migrate-receive 2>>$RXLOG"; }

# ------------------------------------------------------------- xmigd --

xmigd_pid() { cat "$D/pid" 2>/dev/null; }

# A process that is gone or a zombie.
pid_alive() {
    local st
    [[ -r /proc/$1/stat ]] || return 1
    read -r st <"/proc/$1/stat" || return 1
    st=${st##*) }
    [[ ${st%% *} != Z ]]
}

# Not our child: it outlives the tb_attempts subshells that restart it.
start_xmigd() {
    local i log=$TB_OUT/xmigd.log size=0 pid
    printf 'max_jobs = 2\nlog_level = debug\n' >"$D/xmigd.conf"
    [[ -f $log ]] && size=$(stat -c %s "$log")
    (
        "$LIBEXEC/xmig-activate" "$XMIG_SOCKET" xmigd -f -c "$D/xmigd.conf" \
            2>>"$log" </dev/null &
        echo $! >"$D/pid"
    )
    pid=$(xmigd_pid)
    for ((i = 0; i < 600; i++)); do
        tail -c +$((size + 1)) "$log" | grep -q ' ready: ' && break
        pid_alive "$pid" || { tail -c +$((size + 1)) "$log"; return 1; }
        tb_sleep 0.5
    done
    tail -c +$((size + 1)) "$log" | grep -i 'recover\|journal' | tail -n 20
    xmig stats >/dev/null || return 1
    echo "xmigd $pid ready"
}

kill_xmigd() {
    local pid i
    pid=$(xmigd_pid)
    kill -KILL "$pid" || return 1
    for ((i = 0; i < 100; i++)); do
        pid_alive "$pid" || return 0
        tb_sleep 0.1
    done
    echo "xmigd $pid survives SIGKILL" >&2
    return 1
}

# Foreign mappings xmigd still holds (between jobs: none but the M2P).
xmigd_mappings() {
    local pid
    pid=$(xmigd_pid)
    pid_alive "$pid" || { echo 0; return; }
    tb_foreign_vmas "$pid" "$TB_OUT/xmigd.log"
}

# `xmig recover`, or 127 where this xmig does not have it yet.
xmig_recover() {
    local out rc=0
    out=$(xmig recover 2>&1) || rc=$?
    printf '%s\n' "$out" >&2
    if ((rc == 2)) && grep -qi 'unknown\|usage' <<<"$out"; then
        echo "xmig has no 'recover' command" >&2
        return 127
    fi
    return "$rc"
}

# --------------------------------------------------------- inspection --

# "NAME ID" of every domain.
domains() { xl list 2>/dev/null | awk 'NR > 1 { print $1, $2 }'; }

# has_domain NAME: (not `domains | grep -q`: under pipefail an early exit
# of grep can fail the pipeline)
has_domain() {
    local n d
    while read -r n d; do [[ $n == "$1" ]] && return 0; done < <(domains)
    return 1
}

# Receiver processes left: "PID CMDLINE" lines (the xmig clients that
# name them in their arguments, and xl's domain daemons, excepted).
rx_procs() {
    local f pid a c
    for f in /proc/[0-9]*/cmdline; do
        pid=${f#/proc/}
        pid=${pid%/cmdline}
        mapfile -d '' -t a <"$f" 2>/dev/null || continue
        ((${#a[@]})) || continue
        [[ ${a[0]##*/} == xmig ]] && continue
        [[ ${a[0]##*/} == timeout ]] && continue
        c="${a[*]}"
        # xl's daemon that watches a domain it made (stdin /dev/null) is
        # no leftover: every domain xl creates has one.
        [[ $c == *migrate-receive* && /proc/$pid/fd/0 -ef /dev/null ]] && continue
        case $c in
        *migrate-receive* | *rxproxy* | *"sleep 100000"*) echo "$pid $c" ;;
        esac
    done
}

# Waits until the receivers are gone: no NAME--incoming, no process.
rx_settle() { # NAME LIMIT
    local i procs
    for ((i = 0; i < $2; i++)); do
        procs=$(rx_procs)
        [[ -z $procs ]] && ! has_domain "$1--incoming" && return 0
        tb_sleep 1
    done
    return 1
}

# ---------------------------------------------------------- the cases --
# A case function runs the fault against guest $1 and sets:
#   C_RC      xmig's exit status (or that of the command that resolves)
#   C_GUEST   "guest" of the job's result, if it reported one
#   C_WANT    where the guest must end: source | destination | unknown |
#             moved (destination, or unknown resolved to the destination)
#   C_WANT_RC the exit status it must have ("" = any)
#   C_WANT_GUEST  the result's "guest" it must report ("" = any)
#   C_LEAK    leaks it found itself (files), C_LOST images it destroyed,
#   C_BAD     other deviations (outcome, message)

C_JSON=$TB_TMP/case.json
C_ERR=$TB_TMP/case.err

# job_guest FILE: the "guest" of the last result in FILE.
job_guest() { sed -n 's/.*"guest":"\([a-z]*\)".*/\1/p' "$1" | tail -n 1; }

c_reset() {
    C_RC=0 C_GUEST='' C_WANT=source C_WANT_RC=1 C_WANT_GUEST=source
    C_LEAK=() C_LOST=() C_BAD=() C_PID="" C_JOB=""
    rm -f "$FLAG" "$C_JSON" "$C_ERR"
}

# migrate NAME DEST OPTION...: through xmigd unless --direct is given.
migrate() {
    local g=$1 dest=$2
    shift 2
    C_RC=0
    xmig migrate "$g" "$dest" --json "$@" >"$C_JSON" 2>"$C_ERR" || C_RC=$?
    C_GUEST=$(job_guest "$C_JSON")
    echo "xmig migrate $g ... $* -> exit $C_RC, guest '${C_GUEST:-?}': $(tail -n 1 "$C_ERR")"
}

# A whole migration, counting the stream's bytes: the offsets come from it.
c_full() { # NAME
    migrate "$1" "$(rx count="$TB_TMP/$1.size")" --no-live
    C_WANT=destination C_WANT_RC=0 C_WANT_GUEST=destination
    [[ -s $TB_TMP/$1.size ]] && echo "stream: $(cat "$TB_TMP/$1.size") bytes"
}

# The receiver's input ends after N bytes of the stream.
c_cut() { # NAME N [--live]
    local g=$1 n=$2
    shift 2
    migrate "$g" "$(rx cut="$n")" "${@:---no-live}"
    tb_note cut_at "$n"
}

# The receiver gets everything, but its 'ready' never arrives: it goes.
c_no_ready() { migrate "$1" "$(rx drop-ready)" --no-live; }

# Failure after the go-ahead.  (a): no permission to resume follows, so,
# as xl 4.17 does, the source stays suspended as NAME--migratedaway and
# the job reports "unknown" (exit 4); the admin resolves.  (b): the
# receiver destroyed its copy and grants permission: resumed here, exit 1.
c_goahead() { # NAME a|b
    migrate "$1" "$(rx fail-go="$2")" --no-live
    if [[ $2 == a ]]; then
        C_WANT=unknown C_WANT_RC=4 C_WANT_GUEST=unknown
        grep -q 'granted no permission to resume' "$C_ERR" ||
            C_BAD+=("not the failure after the go-ahead: $(tail -n 1 "$C_ERR")")
    else
        grep -q 'it destroyed its copy' "$C_ERR" ||
            C_BAD+=("not the failure after the go-ahead: $(tail -n 1 "$C_ERR")")
    fi
}

# wait_flag LIMIT PID: until rxproxy holds (FLAG), while PID runs.
wait_flag() {
    local i
    for ((i = 0; i < $1 * 5; i++)); do
        [[ -s $FLAG ]] && { echo "receiver holds: $(cat "$FLAG")"; return 0; }
        pid_alive "$2" || { echo "the migration ended before the receiver held" >&2; return 1; }
        tb_sleep 0.2
    done
    echo "the receiver never held (${1}s)" >&2
    return 1
}

# A job in the background; sets C_PID (the process to wait for) and,
# through xmigd, C_JOB (--detach, then `xmig watch`: the events of
# `migrate --json` name no job).
migrate_bg() { # NAME DEST OPTION...
    local g=$1 dest=$2 line
    shift 2
    C_JOB=''
    if [[ " $* " == *" --direct "* ]]; then
        # sigdfl: bash starts background jobs with SIGINT ignored.
        "$PROBE" sigdfl xmig migrate "$g" "$dest" --json "$@" >"$C_JSON" 2>"$C_ERR" &
        C_PID=$!
        return
    fi
    line=$(xmig migrate "$g" "$dest" --detach "$@") || return 1
    echo "$line"
    C_JOB=$(sed -n 's/^job \([0-9]*\) queued.*/\1/p' <<<"$line")
    xmig watch "$C_JOB" --json >"$C_JSON" 2>"$C_ERR" &
    C_PID=$!
}

migrate_bg_wait() {
    C_RC=0
    wait "$C_PID" || C_RC=$?
    C_GUEST=$(job_guest "$C_JSON")
    echo "xmig migrate -> exit $C_RC, guest '${C_GUEST:-?}': $(tail -n 1 "$C_ERR")"
}


job_phase() { # JOB
    xmig status "$1" --json 2>/dev/null | sed -n 's/.*"phase":"\([a-z]*\)".*/\1/p' | head -n 1
}

# The receiver never says 'ready': `xmig cancel` must end the job with the
# guest here.  (c_silent_timeout tries the 'ready' timeout instead.)
c_silent() { # NAME
    local g=$1 job rc=0 pid
    migrate_bg "$g" "$(rx hold=ready flag="$FLAG" secs=900)" --no-live
    wait_flag 300 "$C_PID" || { C_BAD+=("no hold"); kill "$C_PID"; migrate_bg_wait; return; }
    job=$C_JOB
    tb_note phase "$(job_phase "$job")"
    timeout 60 xmig cancel "$job" --wait || rc=$?
    if ((rc)); then
        C_BAD+=("xmig cancel $job in the 'ready' wait: exit $rc")
        read -r pid _ <"$FLAG"
        kill "$pid" # end the wait, so that the guest comes back
    fi
    migrate_bg_wait
    C_WANT_RC=1
}

# The receiver never says 'ready' and would hold for 900 s: the job's
# --ready-timeout ends the wait, no go-ahead has gone out, so the guest
# runs here again; assess() then finds no receiver process left.
c_silent_timeout() { # NAME
    local t0=$SECONDS
    migrate "$1" "$(rx hold=ready flag="$FLAG" secs=900)" --no-live --ready-timeout 20
    tb_note took_s $((SECONDS - t0))
    [[ -s $FLAG ]] || C_BAD+=("the receiver never held at 'ready'")
    grep -q "did not say 'ready' within 20 s" "$C_ERR" "$C_JSON" ||
        C_BAD+=("no word of the 'ready' timeout: $(tail -n 1 "$C_ERR")")
    C_WANT=source C_WANT_RC=1 C_WANT_GUEST=source
}

# An exec: receiver whose shell runs a pipeline that holds the pipe and
# never reads: cancel must end the job promptly and leave no receiver
# process behind.  sh: the /bin/sh that xmig runs (busybox here); dash:
# Debian's /bin/sh, which forks every command of the pipeline and waits,
# so that signalling the shell alone ends nothing.
c_stuck() { # NAME sh|dash
    local g=$1 job rc=0 i t0 pid p cmd="printf '$BANNER'; sleep 100000 | sleep 100000"
    [[ $2 == dash ]] && cmd="dash -c \"$cmd\""
    migrate_bg "$g" "exec:$cmd" --live
    job=$C_JOB
    for ((i = 0; i < 600; i++)); do
        [[ $(job_phase "$job") == stream ]] && break
        tb_sleep 0.2
    done
    tb_sleep 3 # the pipe is full by now
    t0=$SECONDS
    timeout 60 xmig cancel "$job" --wait || rc=$?
    tb_note cancel_s $((SECONDS - t0))
    ((rc == 0)) || C_BAD+=("xmig cancel $job with a stuck receiver: exit $rc after $((SECONDS - t0)) s")
    for ((i = 0; i < 50; i++)); do pid_alive "$C_PID" || break; tb_sleep 0.2; done
    if pid_alive "$C_PID"; then
        C_BAD+=("the cancelled job did not end")
        # What the library did not kill: end it, so the job can end.
        while read -r pid p; do
            C_LEAK+=("receiver process left: $pid $p")
            kill "$pid"
        done < <(rx_procs)
    fi
    migrate_bg_wait
}

# xmigd SIGKILLed in PHASE, restarted: its start recovers the guest.
c_kill_xmigd() { # NAME connect|stream|suspend|handshake|committed
    local g=$1 ph=$2 hold opt=--no-live job
    case $ph in
    connect) hold=banner ;;
    stream) hold=in:$(($(cat "$TB_TMP/$g.size") / 2)) opt=--live ;;
    suspend) hold=in:$(($(cat "$TB_TMP/$g.size") / 2)) ;;
    handshake) hold=ready ;;
    committed) hold=report ;;
    esac
    migrate_bg "$g" "$(rx hold="$hold" flag="$FLAG" secs=300)" "$opt"
    wait_flag 300 "$C_PID" || { C_BAD+=("no hold"); migrate_bg_wait; return; }
    job=$C_JOB
    tb_note phase "$(job_phase "$job")"
    kill_xmigd || C_BAD+=("kill")
    migrate_bg_wait
    start_xmigd || C_BAD+=("xmigd does not start again")
    C_RC=0 C_WANT_RC='' C_WANT_GUEST=''
    # In 'committed' the receiver has run its copy; the report never came.
    [[ $ph == committed ]] && C_WANT=moved
}

# `xmig migrate --direct`, SIG in PHASE: a cancel (too late in 'committed':
# the migration completes).  SIG KILL: then `xmig recover`.
c_direct() { # NAME PHASE SIG
    local g=$1 ph=$2 sig=$3 hold opt=--no-live secs=300
    case $ph in
    connect) hold=banner ;;
    stream) hold=in:$(($(cat "$TB_TMP/$g.size") / 2)) opt=--live ;;
    suspend) hold=in:$(($(cat "$TB_TMP/$g.size") / 2)) ;;
    handshake) hold=ready ;;
    committed) hold=report secs=10 ;;
    esac
    migrate_bg "$g" "$(rx hold="$hold" flag="$FLAG" secs=$secs)" "$opt" --direct
    wait_flag 300 "$C_PID" || { C_BAD+=("no hold"); migrate_bg_wait; return; }
    kill -"$sig" "$C_PID"
    migrate_bg_wait
    tb_note signal "$sig"
    if [[ $sig == KILL ]]; then
        C_RC=0
        xmig_recover || C_RC=$?
        C_WANT_RC=0 C_WANT_GUEST=''
    elif [[ $ph == committed ]]; then
        C_WANT=destination C_WANT_RC=0 C_WANT_GUEST=destination
    fi
}

# saves, all with --keep: the guest runs on here.
save() { # NAME FILE OPTION...
    local g=$1 f=$2
    shift 2
    C_RC=0
    xmig save "$g" "$f" --keep --json "$@" >"$C_JSON" 2>"$C_ERR" || C_RC=$?
    C_GUEST=$(job_guest "$C_JSON")
    echo "xmig save $g $f --keep -> exit $C_RC: $(tail -n 1 "$C_ERR")"
}

# Files in DIR but the ones named.
stray_files() { # DIR KEEP...
    local f k ok
    for f in "$1"/* "$1"/.[!.]*; do
        [[ -e $f || -L $f ]] || continue
        ok=0
        for k in "${@:2}"; do [[ ${f##*/} == "$k" ]] && ok=1; done
        ((ok)) || echo "$f"
    done
}

is_image() { [[ $(head -c ${#XL_MAGIC} "$1" 2>/dev/null) == "$XL_MAGIC" ]]; }

c_save_full() {
    local s
    save "$1" "$SMALL/$1.img"
    C_WANT_GUEST=source
    grep -qi 'space' "$C_ERR" || C_BAD+=("no clear 'No space left' message")
    for s in $(stray_files "$SMALL"); do C_LEAK+=("file $s"); done
    rm -f "$SMALL"/* "$SMALL"/.[!.]*
}

c_save_over_failing() {
    local s ref=$TB_TMP/old.ref
    head -c 1048576 /dev/urandom >"$ref"
    cp "$ref" "$SMALL/old.img"
    save "$1" "$SMALL/old.img"
    cmp -s "$ref" "$SMALL/old.img" || C_LOST+=("the existing $SMALL/old.img was destroyed")
    rm -f "$ref"
    for s in $(stray_files "$SMALL" old.img); do C_LEAK+=("file $s"); done
    rm -f "$SMALL"/* "$SMALL"/.[!.]*
}

c_save_over() {
    local f=$TB_TMP/over.img s
    echo "an old image" >"$f"
    save "$1" "$f"
    C_WANT_RC=0
    is_image "$f" || C_BAD+=("$f was not replaced by the image")
    for s in $(stray_files "$TB_TMP" | grep '/over\.img.'); do C_LEAK+=("file $s"); done
    rm -f "$f"
}

c_save_fifo() { # NAME ok|failing
    local f=$TB_TMP/save.fifo out=$TB_TMP/fifo.img reader
    rm -f "$f" "$out"
    mkfifo "$f"
    if [[ $2 == ok ]]; then
        cat "$f" >"$out" &
    else
        head -c 100000 "$f" >"$out" &
    fi
    reader=$!
    save "$1" "$f"
    wait "$reader"
    [[ -p $f ]] || C_LEAK+=("the FIFO $f is gone (unlinked)")
    if [[ $2 == ok ]]; then
        C_WANT_RC=0
        is_image "$out" || C_LOST+=("no image came out of the FIFO")
        echo "through the FIFO: $(stat -c %s "$out") bytes"
    fi
    rm -f "$f" "$out"
}

c_save_dev() { # NAME DEVICE
    local dev=$2 mm
    mm=$(stat -c '%t %T' "$dev")
    save "$1" "$dev"
    [[ $dev == /dev/null ]] && C_WANT_RC=0
    if [[ ! -c $dev ]]; then
        C_LEAK+=("$dev is no longer a character device")
        rm -f "$dev"
        mknod "$dev" c $((16#${mm% *})) $((16#${mm#* })) && chmod 666 "$dev"
    fi
}

# --------------------------------------------------------- the checks --

# Puts the guest back as it was before a failed case: fresh.
repair() { # NAME
    local g=$1 t
    echo "repair: a fresh $g"
    for t in "$g--migratedaway" "$g--incoming" "$g"; do tb_guest_gone "$t" || return 1; done
    tb_guest_create "$g" "${g%%-*}" "$MIB"
}

# The admin's resolution of "unknown": nothing runs the guest elsewhere
# (here: no domain NAME), so `xmig recover`, else rename back and resume.
resolve_unknown() { # NAME AWAY_ID
    local g=$1 id=$2 rc=0
    if has_domain "$g"; then
        echo "$g runs elsewhere: $g--migratedaway goes"
        xl destroy "$id"
    else
        xmig_recover || rc=$?
        if has_domain "$g--migratedaway"; then
            echo "xmig recover (exit $rc) left it: xl rename and resume by hand"
            xl rename "$g--migratedaway" "$g" && "$PROBE" resume "$id"
        fi
    fi
    # As the admin then does: the journal goes once recover sees it settled.
    rc=0
    xmig_recover || rc=$?
    ((rc == 0)) || C_LEAK+=("xmig recover after the admin settled $g: exit $rc")
}

# Journals left in xmigd's journal directory.
journals() { ls -A /run/xmig/journal 2>/dev/null || true; }

# assess ID NAME DOMID_BEFORE: the checks after every case; appends
# "ID lost duplicated leaked" to CASES.
assess() {
    local id=$1 g=$2 id0=$3 lost=0 dup=0 leaked=0 where='' problems=() n d st ld v m
    local -a ids=() aways=()
    rx_settle "$g" 60 || {
        while read -r d v; do
            problems+=("receiver process left: $d $v")
            leaked=$((leaked + 1))
            kill "$d"
        done < <(rx_procs)
        if has_domain "$g--incoming"; then
            problems+=("the receiver left $g--incoming")
            leaked=$((leaked + 1))
            tb_guest_gone "$g--incoming"
        fi
    }
    while read -r n d; do
        [[ $n == "$g" ]] && ids+=("$d")
        [[ $n == "$g--migratedaway" ]] && aways+=("$d")
    done < <(domains)
    if ((${#aways[@]} == 1)) && [[ $C_WANT == unknown || $C_WANT == moved ]]; then
        st=$("$PROBE" state "${aways[0]}")
        [[ $st == running ]] && { dup=$((dup + 1)); problems+=("$g--migratedaway runs"); }
        resolve_unknown "$g" "${aways[0]}"
        where=unknown-resolved
        ids=() aways=()
        while read -r n d; do
            [[ $n == "$g" ]] && ids+=("$d")
            [[ $n == "$g--migratedaway" ]] && aways+=("$d")
        done < <(domains)
    fi
    if ((${#ids[@]} + ${#aways[@]} == 0)); then
        lost=$((lost + 1))
        problems+=("$g is nowhere")
    fi
    if ((${#ids[@]} > 1)); then
        dup=$((dup + 1))
        problems+=("${#ids[@]} domains named $g")
    fi
    for d in "${aways[@]}"; do
        st=$("$PROBE" state "$d")
        if [[ $st == running ]]; then
            dup=$((dup + 1))
        else
            leaked=$((leaked + 1))
        fi
        problems+=("$g--migratedaway (domain $d) left, $st")
    done
    if ((${#ids[@]} == 1)); then
        d=${ids[0]}
        if [[ $d == "$id0" ]]; then where=${where:+$where:}source; else where=${where:+$where:}destination; fi
        st=$("$PROBE" state "$d")
        ld=$("$PROBE" logdirty "$d")
        echo "$g: domain $d ($where) $st, log-dirty $ld"
        [[ $st == running ]] || { leaked=$((leaked + 1)); problems+=("$g is $st"); }
        [[ $ld == off ]] || { leaked=$((leaked + 1)); problems+=("log-dirty $ld"); }
        if [[ $st == running ]]; then
            # ~1 s when well; a triple-faulted PVH guest never answers.
            v=$(tb_guest_cmd "$g" verify '^integrity (OK|FAIL)' 120) ||
                v="no verdict: $(_tb_sub_error "no reply")"
            tb_note verdict "$v"
            [[ $v == "integrity OK"* ]] || { lost=$((lost + 1)); problems+=("$g: $v"); }
        fi
        # An HVM guest's QEMU: running again (its console, hvc0, does not
        # go through QEMU, so the verdict would not show a stopped one),
        # and no saved state of an undone suspend left.
        if [[ $g == hvm ]]; then
            v=$(xl qemu-monitor-command "$g" "info status" 2>&1)
            [[ $v == *"status: running"* ]] ||
                { leaked=$((leaked + 1)); problems+=("QEMU of $g: ${v:-no answer}"); }
            [[ ! -e /var/lib/xen/qemu-save.$d ]] ||
                { leaked=$((leaked + 1)); problems+=("/var/lib/xen/qemu-save.$d left"); }
        fi
    fi
    tb_note where "${where:-nowhere}"
    m=$(xmigd_mappings)
    ((m == 0)) || { leaked=$((leaked + 1)); problems+=("xmigd holds $m foreign mappings"); }
    m=$(journals)
    [[ -z $m ]] || { leaked=$((leaked + 1)); problems+=("journal left: $(echo $m)"); }
    leaked=$((leaked + ${#C_LEAK[@]}))
    lost=$((lost + ${#C_LOST[@]}))
    problems+=("${C_LEAK[@]}" "${C_LOST[@]}")
    # A job refused for a journal an earlier case left tests nothing.
    grep -q 'a job that died left' "$C_ERR" 2>/dev/null &&
        C_BAD+=("refused for an old journal: $(tail -n 1 "$C_ERR")")
    # The expected outcome.
    [[ -z $C_WANT_RC || $C_RC == "$C_WANT_RC" ]] || C_BAD+=("exit $C_RC, not $C_WANT_RC")
    [[ -z $C_WANT_GUEST || $C_GUEST == "$C_WANT_GUEST" ]] ||
        C_BAD+=("result guest '$C_GUEST', not '$C_WANT_GUEST'")
    case $C_WANT in
    source | destination) [[ $where == "$C_WANT" ]] ;;
    unknown) [[ $where == unknown-resolved:source ]] ;;
    moved) [[ $where == destination || $where == unknown-resolved:destination ]] ;;
    esac || C_BAD+=("ended on '${where:-nowhere}', not '$C_WANT'")
    tb_note exit "$C_RC"
    tb_note guest "${C_GUEST:-none}"
    tb_note lost "$lost"
    tb_note duplicated "$dup"
    tb_note leaked "$leaked"
    ((${#problems[@]} + ${#C_BAD[@]})) &&
        tb_note problems "$(printf '%s; ' "${problems[@]}" "${C_BAD[@]}")"
    # A testbed fault (PVH) is no case: the attempt runs again.
    if ((lost + dup + leaked + ${#C_BAD[@]})) && [[ -n $_tb_attempt ]] &&
        _tb_testbed_fault >/dev/null; then
        return 1
    fi
    echo "$id $lost $dup $leaked" >>"$CASES"
    if ((lost + dup + leaked)) || [[ $where != *source && $where != *destination ]]; then
        repair "$g" || return 1
    fi
    if ((lost + dup + leaked + ${#C_BAD[@]})); then
        printf 'problem: %s\n' "${problems[@]}" "${C_BAD[@]}" >&2
        return 1
    fi
    return 0
}

# fault ID NAME FN ARG...: one case, one step.  FAULTS_ONLY (a regex of
# case ids) picks some, when working on the scenario.
FAULTS_ONLY=${FAULTS_ONLY:-}
fault() {
    [[ -z $FAULTS_ONLY || $1 =~ $FAULTS_ONLY ]] || return 0
    tb_check "$1" fault_run "$@"
}
fault_run() {
    local id=$1 g=$2 fn=$3 id0
    shift 3
    c_reset
    id0=$(xl domid "$g" 2>/dev/null) || { echo "no guest $g before $id" >&2; return 1; }
    "$fn" "$g" "$@"
    assess "$id" "$g" "$id0"
}

# PVH cases run as attempts (lib.sh: QEMU's SVM triple-faults them now
# and then); each attempt makes the guest afresh if it is gone.
pvh_gone() {
    local t
    for t in pvh--migratedaway pvh--incoming pvh; do tb_guest_gone "$t"; done
}
pvh_attempt() { # ID FN ARG...
    local d
    # A triple fault between two cases (before this attempt counts them)
    # leaves it shut down: that is no case either.
    if d=$(xl domid pvh 2>/dev/null) && [[ $("$PROBE" state "$d") != running ]]; then
        echo "pvh (domain $d) is $("$PROBE" state "$d") before $1: made afresh"
        pvh_gone
    fi
    xl domid pvh >/dev/null 2>&1 || tb_step "create-pvh-for-$1" tb_guest_create pvh pvh "$MIB"
    fault "$1" pvh "${@:2}"
}
pvh() {
    [[ -z $FAULTS_ONLY || $1 =~ $FAULTS_ONLY ]] || return 0
    tb_attempts 5 pvh_gone pvh_attempt "$@"
}

# HVM: QEMU's state goes in the stream, and a failure gives QEMU back
# (cont) with the guest.  A minute to boot under TCG: three cases.
hvm_gone() {
    local t
    for t in hvm--migratedaway hvm--incoming hvm; do tb_guest_gone "$t"; done
}
hvm_attempt() { # ID FN ARG...
    xl domid hvm >/dev/null 2>&1 || tb_step "create-hvm-for-$1" tb_guest_create hvm hvm "$MIB"
    fault "$1" hvm "${@:2}"
}
hvm() {
    [[ -z $FAULTS_ONLY || $1 =~ $FAULTS_ONLY ]] || return 0
    tb_attempts 3 hvm_gone hvm_attempt "$@"
}

# ---------------------------------------------------------- the run --

setup_small() {
    mkdir -p "$SMALL" && mount -t tmpfs -o size=32m tmpfs "$SMALL"
}

summary() {
    local cases lost dup leaked
    read -r cases lost dup leaked < <(awk '{ n++; l += $2; d += $3; k += $4 }
        END { printf "%d %d %d %d\n", n, l, d, k }' "$CASES")
    tb_metric cases "$cases"
    tb_metric lost "$lost"
    tb_metric duplicated "$dup"
    tb_metric leaked "$leaked"
    echo "faults: cases=$cases lost=$lost duplicated=$dup leaked=$leaked"
    ((lost == 0 && dup == 0 && leaked == 0 && cases >= MIN_CASES)) && return 0
    tb_note problems "cases=$cases (at least $MIN_CASES) lost=$lost duplicated=$dup leaked=$leaked; failed: $(awk '$2 + $3 + $4 { printf "%s ", $1 }' "$CASES")"
    return 1
}

tb_step setup-small-tmpfs setup_small
tb_step xmigd-start start_xmigd
tb_step create-pv tb_guest_create pv pv "$MIB"
tb_corrupt_if_asked pv

# 1. cuts across the stream: xl header (magic, config), libxl and libxc
# headers, early pages, the middle, the last pages, the END records, all
# of it ('ready' never comes).
fault pv-full pv c_full
S=$(cat "$TB_TMP/pv.size" 2>/dev/null || echo 134000000)
tb_metric pv_stream_bytes "$S"
for n in 1 20 54 300 2000 12000 65536 1048576 $((S / 4)) $((S / 2)) $((S * 3 / 4)) \
    $((S - 200000)) $((S - 8)) $((S - 1)) "$S"; do
    fault "pv-cut-$n" pv c_cut "$n"
done
fault pv-no-ready pv c_no_ready
fault pv-cut-live pv c_cut $((S / 2)) --live

pvh pvh-full c_full
P=$(cat "$TB_TMP/pvh.size" 2>/dev/null || echo 134000000)
tb_metric pvh_stream_bytes "$P"
for n in 1 300 65536 $((P / 2)) $((P - 1)) "$P"; do
    pvh "pvh-cut-$n" c_cut "$n"
done
pvh pvh-no-ready c_no_ready
pvh pvh-cut-live c_cut $((P / 2)) --live

hvm hvm-full c_full
H=$(cat "$TB_TMP/hvm.size" 2>/dev/null || echo 134000000)
tb_metric hvm_stream_bytes "$H"
# One byte short: inside libxl's END, after QEMU's state.
hvm "hvm-cut-$((H - 1))" c_cut $((H - 1))
hvm hvm-goahead-fail-permission c_goahead b
[[ -z $FAULTS_ONLY || hvm =~ $FAULTS_ONLY ]] && tb_step destroy-hvm hvm_gone

# 2. failure after the go-ahead.
fault pv-goahead-fail-no-permission pv c_goahead a
fault pv-goahead-fail-permission pv c_goahead b
pvh pvh-goahead-fail-no-permission c_goahead a
pvh pvh-goahead-fail-permission c_goahead b

# 3. a receiver that never answers; 4. one that stops reading.
fault pv-silent-cancel pv c_silent
fault pv-silent-timeout pv c_silent_timeout
fault pv-stuck-exec-cancel pv c_stuck sh
fault pv-stuck-exec-dash-cancel pv c_stuck dash

# 5. xmigd SIGKILLed in each phase, restarted.
for ph in connect stream suspend handshake committed; do
    fault "pv-kill-xmigd-$ph" pv c_kill_xmigd "$ph"
done
pvh pvh-kill-xmigd-stream c_kill_xmigd stream
pvh pvh-kill-xmigd-handshake c_kill_xmigd handshake

# 6. --direct interrupted in each phase; SIGKILLed, then xmig recover.
fault pv-direct-connect-INT pv c_direct connect INT
fault pv-direct-stream-TERM pv c_direct stream TERM
fault pv-direct-suspend-HUP pv c_direct suspend HUP
fault pv-direct-handshake-INT pv c_direct handshake INT
fault pv-direct-committed-TERM pv c_direct committed TERM
fault pv-direct-stream-KILL-recover pv c_direct stream KILL
fault pv-direct-handshake-KILL-recover pv c_direct handshake KILL

# 7.-9. saves.
fault pv-save-full-disk pv c_save_full
fault pv-save-over-existing-failing pv c_save_over_failing
fault pv-save-over-existing pv c_save_over
fault pv-save-fifo pv c_save_fifo ok
fault pv-save-fifo-failing pv c_save_fifo failing
fault pv-save-dev-null pv c_save_dev /dev/null
[[ -c /dev/full ]] && fault pv-save-dev-full pv c_save_dev /dev/full

tb_step summary summary
