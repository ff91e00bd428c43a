# SPDX-License-Identifier: GPL-2.0-only
# shellcheck shell=bash
#
# lib.sh - what a testbed scenario (bash, in dom0) builds on.  See README.md
# for the full interface; in short:
#
#   tb_step NAME CMD...          run CMD as a timed step of the result
#   tb_check NAME CMD...         the same, but a failure lets the next steps run
#   tb_skip NAME WHY             record a step that does not apply here
#   tb_note KEY VALUE            attach a value to the current step
#   tb_metric KEY VALUE          attach a value to the scenario
#   tb_fail MSG                  fail the scenario now
#   tb_log MSG                   print a timestamped line
#   tb_guest_create NAME pv|pvh|hvm MIB [CFG_LINE...]   boot a workload guest, wait for it
#   tb_guest_verify NAME         ask for the verdict; fails unless "integrity OK"
#   tb_guest_cmd NAME CMD [RE]   send a protocol line, print the first reply matching RE
#   tb_guest_destroy NAME
#   tb_corrupt_if_asked NAME     with --corrupt, damage the guest's memory (see README)
#   tb_perf_reset / tb_perf_read / tb_perf_note [PREFIX]    xenperf counters
#   tb_dom0_cpu_ns               dom0's CPU time as Xen accounts it
#   tb_cost CMD...             runs CMD, sets what it cost dom0 (TB_COST_*)
#   tb_xl_save_restore NAME / tb_xl_migrate_local NAME / tb_xl_migrate_peer NAME
#   tb_on_peer CMD...            run CMD (a lib.sh function or a command) on host b
#
# The environment (from the runner, via /host/job and dom0/init):
#   TB_SCENARIO TB_HOST(a|b) TB_HOSTS(1|2) TB_XEN(stock|shadow|PATH's name)
#   TB_CORRUPT(0|1) TB_BOOT TB_KERNEL TB_IP TB_PEER_IP TB_MIGRATE_PORT
#
# Everything here checks its own errors and calls tb_fail: `set -e` is off on
# purpose, because bash ignores it inside functions run from `if` or `||`.

set -uo pipefail

TB_OUT=/host/out/${TB_HOST:-a}
TB_TMP=/tmp/tb
TB_GUEST_KERNEL=/host/boot/guest-vmlinux
TB_GUEST_INITRD=/host/boot/guest-initrd.gz
# HVM guests boot the bzImage: QEMU's direct kernel boot takes no ELF.
TB_GUEST_BZIMAGE=/host/boot/guest-vmlinuz
TB_HVM_OVERLAY=/host/boot/hvm-overlay.cpio.gz
TB_MIGRATE_PORT=${TB_MIGRATE_PORT:-8002}
: "${TB_XEN:=stock}" "${TB_HOSTS:=1}" "${TB_CORRUPT:=0}" "${TB_BOOT:=}" "${TB_KERNEL:=}"
: "${TB_IP:=}" "${TB_PEER_IP:=}"
mkdir -p "$TB_TMP/con" "$TB_OUT"

# ---------------------------------------------------------------- results --

_tb_steps=()       # finished steps, as JSON objects
_tb_metrics=()     # "key":value of the scenario
_tb_notes=()       # "key":value of the running step
_tb_step=          # name of the running step
_tb_step_t0=0
_tb_error=
_tb_t0=${EPOCHREALTIME/./}
_tb_done=0

# Every process costs dearly in a PV dom0 under TCG (each exec is a storm of
# trapped page-table writes), so what runs often here is bash builtins only.

# stderr, so that a function's log lines never end up in a caller's $(...)
tb_log() {
    local up
    read -r up _ </proc/uptime
    printf '[%s %s] %s\n' "${TB_HOST:-a}" "$up" "$*" >&2
}

# tb_sleep SECONDS (fractions allowed): a read timing out on a FIFO that
# nobody writes, instead of a sleep process.
mkfifo "$TB_TMP/.sleep.$$" 2>/dev/null
exec {_tb_sleep_fd}<>"$TB_TMP/.sleep.$$"
rm -f "$TB_TMP/.sleep.$$"
tb_sleep() { read -r -t "$1" -u "$_tb_sleep_fd" _ || :; }

# microseconds -> seconds with 3 decimals
_tb_secs() { printf '%d.%03d' $(($1 / 1000000)) $(($1 % 1000000 / 1000)); }
_tb_now() { echo "${EPOCHREALTIME/./}"; }

_tb_jstr() {
    local s=$1
    s=${s//\\/\\\\}; s=${s//\"/\\\"}; s=${s//$'\n'/\\n}; s=${s//$'\t'/\\t}; s=${s//$'\r'/}
    s=${s//[$'\001'-$'\037']/}
    printf '"%s"' "$s"
}
_tb_jval() {
    if [[ $1 =~ ^-?(0|[1-9][0-9]*)(\.[0-9]+)?$ || $1 == true || $1 == false || $1 == null ]]; then
        printf '%s' "$1"
    else
        _tb_jstr "$1"
    fi
}
_tb_join() { local IFS=,; printf '%s' "$*"; }

# To the running step, else to the last finished one, else to the scenario.
# On the peer (inside tb_on_peer), notes travel back to host a as lines.
tb_note() {
    local n=${#_tb_steps[@]}
    if [[ -n ${_tb_agent:-} ]]; then
        printf 'TB-NOTE %s %s\n' "$1" "$2"
    elif [[ -n $_tb_step ]]; then
        _tb_notes+=("$(_tb_jstr "$1"):$(_tb_jval "$2")")
    elif (( n )); then
        _tb_steps[n - 1]="${_tb_steps[n - 1]%\}},$(_tb_jstr "$1"):$(_tb_jval "$2")}"
    else
        tb_metric "$1" "$2"
    fi
}
tb_metric() { _tb_metrics+=("$(_tb_jstr "$1"):$(_tb_jval "$2")"); }

_tb_end_step() { # OK(true|false) [ERROR]
    local dt=$(( $(_tb_now) - _tb_step_t0 )) obj
    obj="{\"name\":$(_tb_jstr "$_tb_step"),\"ok\":$1,\"wall_s\":$(_tb_secs $dt)"
    (( ${#_tb_notes[@]} )) && obj+=",$(_tb_join "${_tb_notes[@]}")"
    [[ -n ${2:-} ]] && obj+=",\"error\":$(_tb_jstr "$2")"
    _tb_steps+=("$obj}")
    if [[ $1 == true ]]; then
        tb_log "step $_tb_step: OK in $(_tb_secs $dt) s"
    else
        tb_log "step $_tb_step: FAILED after $(_tb_secs $dt) s"
    fi
    _tb_step=
    _tb_notes=()
}

tb_step() { # NAME CMD...
    local name=$1 rc=0
    shift
    [[ -z $_tb_step ]] || tb_fail "tb_step $name inside step $_tb_step"
    _tb_step=$name
    _tb_step_t0=$(_tb_now)
    tb_log "step $name: $*"
    "$@" || rc=$?
    (( rc == 0 )) || tb_fail "$(_tb_sub_error "step $name: '$*' failed (rc=$rc)")"
    _tb_end_step true
}

# tb_check NAME CMD...: a step whose failure fails the scenario at its
# end, not at once: the steps after it still run and report (a scenario
# of many independent cases).  Inside tb_attempts a failure at a testbed
# fault is a tb_fail, so the attempt runs again.  CMD must not tb_fail.
tb_check() {
    local name=$1 rc=0 why
    shift
    [[ -z $_tb_step ]] || tb_fail "tb_check $name inside step $_tb_step"
    _tb_step=$name
    _tb_step_t0=$(_tb_now)
    tb_log "step $name: $*"
    "$@" || rc=$?
    if (( rc == 0 )); then
        _tb_end_step true
        return 0
    fi
    why=$(_tb_sub_error "step $name: '$*' failed (rc=$rc)")
    [[ -n $_tb_attempt ]] && _tb_testbed_fault >/dev/null && tb_fail "$why"
    [[ -n $_tb_error ]] || _tb_error=$why
    tb_log "FAIL (going on): $why"
    _tb_end_step false "$why"
    return 1
}

# Testbed faults.  QEMU 7.2's TCG emulates AMD SVM for Xen, and now and then
# it corrupts an HVM vCPU's state: Xen then reports a triple fault of a PVH
# guest, once even with Xen's own code segment (e008) in the guest's
# registers -- nothing a guest or a dom0 tool can cause.  Seen under stock
# `xl migrate` as much as under xmig.  tb_attempts runs a function of steps
# again, with a fresh guest, when it failed at such a fault and only then;
# the failed attempt stays in the results, its step marked "testbed_fault".
_tb_attempt=       # BASH_SUBSHELL of the running attempt
_tb_tf_base=0
_tb_faults=0
# Both hosts' faults count: a guest migrated to host b faults there (a PVH
# guest verified on b, then gone before its destroy, failed a run).
_tb_tf_local() { xl dmesg 2>/dev/null | grep 'Triple fault' | sed 's/^(XEN) //'; }
_tb_tf_lines() {
    _tb_tf_local
    # As an agent would (a failure says so, nothing more), and briefly:
    # this runs while a step fails, and host b may be what broke.
    [[ ${TB_HOSTS:-1} -gt 1 && -z ${_tb_agent:-} ]] &&
        (_tb_agent=1 TB_PEER_TIMEOUT=60; tb_on_peer _tb_tf_local 2>/dev/null) |
        sed 's/^/host b: /'
    return 0
}
_tb_tf_count() { _tb_tf_lines | grep -c 'Triple fault'; }
_tb_testbed_fault() {
    local lines n
    lines=$(_tb_tf_lines)
    n=$(grep -c 'Triple fault' <<<"$lines")
    (( n > _tb_tf_base )) || return 1
    printf 'testbed fault: Xen saw %d triple fault(s) of an HVM vCPU (%s): QEMU TCG SVM emulation\n' \
        $((n - _tb_tf_base)) "$(tail -n 1 <<<"$lines")"
}

# The end of an attempt's subshell: what it recorded goes to the parent.
_tb_attempt_exit() { # RC
    {
        declare -p _tb_metrics _tb_error
        printf '_tb_new_steps=('
        printf '%q ' "${_tb_steps[@]:_tb_attempt_steps}"
        printf ')\n'
    } >"$TB_TMP/attempt.state"
    exit "$1"
}

# tb_attempts N CLEANUP FN ARG...: FN (steps for one guest) up to N times
# while it fails at a testbed fault; CLEANUP ARG... runs before each retry.
tb_attempts() {
    local n=$1 cleanup=$2 i rc _tb_new_steps
    shift 2
    for ((i = 1; ; i++)); do
        rm -f "$TB_TMP/attempt.state"
        rc=0
        (
            _tb_attempt=$BASH_SUBSHELL _tb_attempt_steps=${#_tb_steps[@]}
            _tb_tf_base=$(_tb_tf_count)
            "$@"
            _tb_attempt_exit 0
        ) || rc=$?
        [[ -s $TB_TMP/attempt.state ]] || tb_fail "attempt of '$*' died (rc=$rc)"
        # shellcheck disable=SC1091 # written just above
        . "$TB_TMP/attempt.state"
        _tb_steps+=("${_tb_new_steps[@]}")
        (( rc == 3 )) || break
        _tb_faults=$((_tb_faults + 1))
        (( i < n )) || { _tb_error="'$*' hit a testbed fault $n times"; exit 1; }
        tb_log "attempt $i of '$*' hit a testbed fault; again with a fresh guest"
        "$cleanup" "${@:2}"
    done
    (( rc == 0 )) || exit 1   # _tb_error came back from the attempt
}

# tb_guest_gone NAME: NAME, and what a crashed restart left ("(null)"), go.
tb_guest_gone() {
    local d i
    for ((i = 0; i < 60; i++)); do
        d=$(xl list 2>/dev/null | awk -v n="$1" 'NR > 1 && ($1 == n || $1 == "(null)") { print $2 }')
        [[ -n $d ]] || return 0
        for d in $d; do timeout 60 xl destroy "$d" 2>/dev/null; done
        tb_sleep 1
    done
    echo "$1 does not go away" >&2
    return 1
}

tb_skip() { # NAME WHY
    _tb_steps+=("{\"name\":$(_tb_jstr "$1"),\"ok\":true,\"skipped\":true,\"reason\":$(_tb_jstr "$2")}")
    tb_log "step $1: skipped ($2)"
}

tb_fail() {
    local why
    if [[ -n ${_tb_agent:-} ]]; then
        echo "FAIL: $*" >&2
        exit 1
    fi
    # At the top of a tb_attempts subshell: record, and tell a testbed fault.
    if [[ -n $_tb_attempt ]] && (( BASH_SUBSHELL == _tb_attempt )); then
        rm -f "$TB_TMP/fail.$$"
        if why=$(_tb_testbed_fault); then
            tb_log "FAIL: $*"
            tb_log "$why"
            _tb_notes+=("$(_tb_jstr testbed_fault):$(_tb_jstr "$why")")
            [[ -z $_tb_step ]] || _tb_end_step false "$*"
            _tb_attempt_exit 3
        fi
        [[ -n $_tb_error ]] || _tb_error=$*
        tb_log "FAIL: $*"
        [[ -z $_tb_step ]] || _tb_end_step false "$*"
        _tb_attempt_exit 1
    fi
    # In a $(...) or ( ): leave the message for the caller (_tb_sub_error).
    if (( BASH_SUBSHELL > 0 )); then
        printf '%s\n' "$*" >"$TB_TMP/fail.$$"
        exit 1
    fi
    [[ -n $_tb_error ]] || _tb_error=$*
    tb_log "FAIL: $*"
    # Outside an attempt a testbed fault is no excuse, but it may be the
    # cause: say so, for whoever reads the log of a failed run.
    local tf
    tf=$(_tb_tf_lines 2>/dev/null | grep 'Triple fault') &&
        tb_log "Xen saw $(grep -c . <<<"$tf") triple fault(s) in this boot, the last: $(tail -n 1 <<<"$tf")"
    [[ -z $_tb_step ]] || _tb_end_step false "$*"
    exit 1
}

# _tb_sub_error DEFAULT: the message of a tb_fail in a subshell, or DEFAULT.
_tb_sub_error() {
    if [[ -s $TB_TMP/fail.$$ ]]; then
        cat "$TB_TMP/fail.$$"
        rm -f "$TB_TMP/fail.$$"
    else
        printf '%s\n' "$1"
    fi
}

_tb_finish() {
    local rc=$? ok=true obj f
    (( _tb_done )) && return
    _tb_done=1
    [[ -z $_tb_step ]] || _tb_end_step false "${_tb_error:-interrupted}"
    if (( rc )) && [[ -z $_tb_error ]]; then
        _tb_error="scenario exited with status $rc"
    fi
    [[ -z $_tb_error ]] || ok=false
    (( _tb_faults )) && tb_metric testbed_faults "$_tb_faults"
    obj="{\"scenario\":$(_tb_jstr "$TB_SCENARIO"),\"host\":$(_tb_jstr "${TB_HOST:-a}")"
    obj+=",\"boot\":{\"label\":$(_tb_jstr "$TB_BOOT"),\"xen\":$(_tb_jstr "$TB_XEN"),\"hosts\":$TB_HOSTS"
    obj+=",\"kernel\":$(_tb_jstr "$TB_KERNEL"),\"uname\":$(_tb_jstr "$(uname -r)"),\"corrupt\":$( ((TB_CORRUPT)) && echo true || echo false)}"
    obj+=",\"ok\":$ok,\"error\":"
    if [[ -n $_tb_error ]]; then obj+=$(_tb_jstr "$_tb_error"); else obj+=null; fi
    obj+=",\"wall_s\":$(_tb_secs $(( $(_tb_now) - _tb_t0 )))"
    obj+=",\"steps\":[$(_tb_join "${_tb_steps[@]}")],\"metrics\":{$(_tb_join "${_tb_metrics[@]}")}}"
    f=$TB_OUT/$TB_SCENARIO.json
    printf '%s\n' "$obj" >"$f.tmp" && mv "$f.tmp" "$f"
    if [[ $ok == true ]]; then tb_log "scenario $TB_SCENARIO: OK"; else tb_log "scenario $TB_SCENARIO: FAILED: $_tb_error"; fi
    (( rc )) || [[ $ok == true ]] || exit 1
}

# ----------------------------------------------------------------- guests --
# A guest's console is the pty xenconsoled publishes in xenstore; a reader
# per domain id appends it to $TB_TMP/con/NAME.log.  Commands are lines
# written to the pty; replies are read from that log, after its length at
# the time the command was sent.

_tb_domid() { xl domid "$1" 2>/dev/null; }

# _tb_con_attach NAME: sets _tb_domid, _tb_tty and _tb_con_log; starts a
# reader if the domain id changed (after restore or migration).  The pty is
# xenconsoled's (console/tty: Xen's PV console, hvc0 in the guest) unless
# tb_guest_create wrote another xenstore key to con/NAME.key: an HVM
# guest's serial port is a pty of its device model (serial/0/tty).
_tb_con_attach() {
    local name=$1 i old='' pid='' key=console/tty
    _tb_domid=$(_tb_domid "$name") || tb_fail "guest $name does not exist"
    _tb_con_log=$TB_TMP/con/$name.log
    [[ -f $_tb_con_log ]] || : >"$_tb_con_log"
    [[ -f $TB_TMP/con/$name.domid ]] && read -r old _tb_tty pid <"$TB_TMP/con/$name.domid"
    [[ $old == "$_tb_domid" ]] && kill -0 "$pid" 2>/dev/null && return 0
    [[ -f $TB_TMP/con/$name.key ]] && read -r key <"$TB_TMP/con/$name.key"
    for ((i = 0; i < 100; i++)); do
        _tb_tty=$(xenstore-read "/local/domain/$_tb_domid/$key" 2>/dev/null) &&
            [[ -c $_tb_tty ]] && break
        _tb_tty=
        tb_sleep 0.2
    done
    [[ -n $_tb_tty ]] || tb_fail "guest $name (domain $_tb_domid) has no console pty in xenstore ($key)"
    # Raw and without echo, or our commands would be echoed back to the guest.
    stty -F "$_tb_tty" raw -echo 2>/dev/null
    # Not a job of ours (no "Hangup" notice when the domain goes), and in its
    # own session: it must outlive the peer agent's subshell that started it.
    (setsid cat "$_tb_tty" >>"$_tb_con_log" 2>/dev/null </dev/null & echo "$_tb_domid $_tb_tty $!" >"$TB_TMP/con/$name.domid")
    read -r _ _ pid <"$TB_TMP/con/$name.domid"
}

# _tb_con_wait NAME FD REGEX TIMEOUT: read console lines from FD (the log,
# opened by the caller where the reply may start) until one matches REGEX;
# sets TB_REPLY to it.
_tb_con_wait() {
    local name=$1 fd=$2 re=$3 limit=$4 t0=$SECONDS checked=$SECONDS buf='' line
    while (( SECONDS - t0 < limit )); do
        # At the end of the file read fails, leaving a partial line in $line.
        while IFS= read -r -u "$fd" line; do
            line=${buf}${line%$'\r'}
            buf=
            if [[ $line =~ $re ]]; then
                TB_REPLY=$line
                return 0
            fi
            [[ $line != "memtest exited"* ]] || tb_fail "guest $name: the workload exited ($line)"
        done
        buf+=$line
        if (( SECONDS - checked >= 10 )); then
            checked=$SECONDS
            _tb_domid "$name" >/dev/null || tb_fail "guest $name disappeared (see xl dmesg)"
        fi
        tb_sleep 0.2
    done
    return 1
}

# Sends one protocol line; with REGEX, waits for the reply line matching it,
# prints it and leaves it in TB_REPLY.
tb_guest_cmd() { # NAME CMD [REGEX [TIMEOUT]]
    local name=$1 cmd=$2 re=${3:-} limit=${4:-120} fd rc=0
    TB_REPLY=
    _tb_con_attach "$name"
    exec {fd}<"$_tb_con_log"
    while read -r -u "$fd" _; do :; done   # skip what was said before
    printf '%s\n' "$cmd" >"$_tb_tty" || { exec {fd}<&-; tb_fail "cannot write to $name's console $_tb_tty"; }
    if [[ -n $re ]]; then
        _tb_con_wait "$name" "$fd" "$re" "$limit" || rc=1
    fi
    exec {fd}<&-
    (( rc == 0 )) || tb_fail "guest $name: no reply matching /$re/ to '$cmd' within ${limit}s"
    [[ -z $re ]] || printf '%s\n' "$TB_REPLY"
}

# tb_hvm_install: puts what HVM guests need into dom0 (once per boot): the
# overlay the runner builds (mkinitramfs hvm) with Xen's device model
# (qemu-system-xen), its libraries, hvmloader and SeaBIOS, at their Debian
# paths.  Not in dom0's initramfs: 35 MiB that only HVM scenarios use.
tb_hvm_install() {
    [[ -x /usr/libexec/xen-qemu-system-i386 ]] && return 0
    [[ -f $TB_HVM_OVERLAY ]] || tb_fail "no $TB_HVM_OVERLAY on the share"
    tb_log "installing the HVM device model, hvmloader and SeaBIOS in dom0"
    (cd / && gzip -dc "$TB_HVM_OVERLAY" | cpio -i -d -m 2>/dev/null) ||
        tb_fail "cannot unpack $TB_HVM_OVERLAY"
    [[ -x /usr/libexec/xen-qemu-system-i386 ]] || tb_fail "no device model after unpacking the overlay"
}

tb_guest_create() { # NAME pv|pvh|hvm MIB [CFG_LINE...]
    local name=$1 type=$2 mib=$3 cfg=$TB_TMP/$1.cfg line kernel=$TB_GUEST_KERNEL
    shift 3
    [[ $type == pv || $type == pvh || $type == hvm ]] ||
        tb_fail "guest type must be pv, pvh or hvm, not '$type'"
    # 8250.nr_uarts=0: probing absent UARTs costs seconds under TCG.  An HVM
    # guest talks on its one emulated UART (TB_HVM_CONSOLE=hvc0: on Xen's PV
    # console instead, which Linux offers HVM guests too).
    local con=hvc0 uarts=0
    if [[ $type == hvm ]]; then
        con=${TB_HVM_CONSOLE:-ttyS0} uarts=1 kernel=$TB_GUEST_BZIMAGE
        tb_hvm_install
        (( TB_HOSTS > 1 )) && { tb_on_peer tb_hvm_install >/dev/null || tb_fail "cannot install the HVM device model on host b"; }
    fi
    local extra="console=$con quiet loglevel=1 8250.nr_uarts=$uarts${TB_GUEST_EXTRA:+ $TB_GUEST_EXTRA}"
    # A PVH or HVM kernel calibrates its TSC against the PIT, ~25 s under
    # TCG; Xen knows the frequency (PV guests get it from Xen anyway).
    if [[ $type != pv ]]; then
        [[ -n ${_tb_tsc_khz:-} ]] ||
            _tb_tsc_khz=$(xl info | awk '/^cpu_mhz/ { printf "%d", $3 * 1000 }')
        extra+=" tsc_early_khz=$_tb_tsc_khz"
    fi
    {
        echo "name = \"$name\""
        echo "type = \"$type\""
        echo "kernel = \"$kernel\""
        echo "ramdisk = \"$TB_GUEST_INITRD\""
        echo "extra = \"$extra\""
        echo "memory = $mib"
        echo "vcpus = 1"
        echo "on_crash = \"preserve\""
        # A triple fault is a reboot to Xen; xl would restart the guest
        # behind the scenario's back (see tb_attempts).
        echo "on_reboot = \"destroy\""
        # TCG's emulated SVM gives Xen no instruction length for RDTSCP.
        [[ $type != pv ]] && echo 'cpuid = "host,rdtscp=0"'
        if [[ $type == hvm ]]; then
            # Xen's QEMU in dom0 (qemu-xen) boots the kernel itself (-kernel),
            # after hvmloader and SeaBIOS; no disk, no network, no display.
            echo 'device_model_version = "qemu-xen"'
            echo 'serial = "pty"'
            echo 'vga = "none"'
            echo 'vnc = 0'
            echo 'sdl = 0'
        fi
        for line in "$@"; do echo "$line"; done
    } >"$cfg"
    rm -f "$TB_TMP/con/$name".*
    [[ $con == hvc0 ]] || echo serial/0/tty >"$TB_TMP/con/$name.key"
    timeout 600 xl create "$cfg" >"$TB_TMP/$name.create.log" 2>&1 ||
        tb_fail "xl create $name failed: $(tail -n 5 "$TB_TMP/$name.create.log")"
    # An HVM guest first runs hvmloader and SeaBIOS, whose every port
    # access is a round trip to the device model in dom0.
    if [[ $type == hvm ]]; then tb_guest_wait_ready "$name" 600; else tb_guest_wait_ready "$name"; fi
}

tb_guest_wait_ready() { # NAME [TIMEOUT]
    local name=$1 limit=${2:-300} fd rc=0
    _tb_con_attach "$name"
    exec {fd}<"$_tb_con_log"
    _tb_con_wait "$name" "$fd" '^memtest ready pages=[0-9]+' "$limit" || rc=1
    exec {fd}<&-
    (( rc == 0 )) || tb_fail "guest $name: no 'memtest ready' within ${limit}s"
    tb_log "guest $name: $TB_REPLY"
    [[ $TB_REPLY =~ pages=([0-9]+) ]] && tb_note "${name}_pages" "${BASH_REMATCH[1]}"
}

# Prints the verdict line; records it in the current step; fails on FAIL.
tb_guest_verify() { # NAME
    local name=$1
    tb_guest_cmd "$name" verify '^integrity (OK|FAIL)' 600 >/dev/null
    tb_log "guest $name: $TB_REPLY"
    tb_note verdict "$TB_REPLY"
    [[ $TB_REPLY == "integrity OK"* ]] || tb_fail "guest $name: $TB_REPLY"
}

tb_guest_destroy() { # NAME
    timeout 60 xl destroy "$1" || tb_fail "xl destroy $1 failed"
}

# With --corrupt the runner asks for proof that a verdict can fail: damage a
# few pages of the guest behind the workload's back; the next verify must
# then report FAIL and the scenario must fail.
tb_corrupt_if_asked() { # NAME [PAGES]
    (( TB_CORRUPT )) || return 0
    tb_log "guest $1: --corrupt: corrupting ${2:-8} pages"
    tb_guest_cmd "$1" "corrupt ${2:-8}" >/dev/null
}

# ------------------------------------------------------------- counters --
# xenperf exists only in hypervisors built with CONFIG_PERF_COUNTERS (the
# shadow build); elsewhere the counters read as null.

# tb_intact NAME DOMID: NAME is still domain DOMID here, running (not
# paused, not suspended), with log-dirty off: what every failed or cancelled
# migration must leave behind.
tb_intact() {
    local probe=/host/root/usr/libexec/xmig/xmig-probe id st ld
    id=$(xl domid "$1" 2>/dev/null) || { echo "$1 is gone" >&2; return 1; }
    [[ $id == "$2" ]] || { echo "$1 moved from domain $2 to $id" >&2; return 1; }
    st=$("$probe" state "$id") || return 1
    ld=$("$probe" logdirty "$id") || return 1
    echo "$1: domain $id $st, log-dirty $ld"
    [[ $st == running && $ld == off ]]
}

# tb_bad NAME PATTERN CMD...: CMD fails with exit 1 and PATTERN (a grep
# basic regex) in its stderr, and NAME is intact afterwards.
tb_bad() {
    local name=$1 pattern=$2 id err rc=0
    shift 2
    id=$(xl domid "$name") || return 1
    err=$("$@" 2>&1 >/dev/null) || rc=$?
    echo "'$*' -> exit $rc: $err"
    [[ $rc == 1 ]] || { echo "expected exit 1" >&2; return 1; }
    grep -q -- "$pattern" <<<"$err" || { echo "expected /$pattern/" >&2; return 1; }
    tb_intact "$name" "$id"
}

# tb_foreign_vmas PID LOG: how many foreign mappings (privcmd or gntdev
# VMAs) process PID holds, less the M2P that libxmig keeps mapped for the
# process's life: it is Xen's table, no guest's, and LOG (the process's
# debug log) says where it is.
tb_foreign_vmas() {
    local pid=$1 log=$2 m2p=' ' range s e n=0
    local re="m2p: Xen's machine-to-phys table stays mapped at 0x([0-9a-f]+) \(([0-9]+) bytes\)"
    while read -r range; do
        [[ $range =~ $re ]] && m2p+="$((16#${BASH_REMATCH[1]})):${BASH_REMATCH[2]} "
    done < <(grep -o "m2p: .* bytes)" "$log" 2>/dev/null)
    while read -r range _; do
        s=$((16#${range%-*})) e=$((16#${range#*-}))
        [[ $m2p == *" $s:$((e - s)) "* ]] || n=$((n + 1))
    done < <(grep -E '/dev/xen/(privcmd|gntdev)' "/proc/$pid/maps" 2>/dev/null)
    echo "$n"
}

# tb_xen_shadow: this Xen has shadow paging (virt_caps), hence log-dirty
# for PV guests and their live migration; Debian's own builds have none.
# (No `| grep -q`: under pipefail grep's early exit could fail xl.)
tb_xen_shadow() {
    local caps
    caps=$(xl info | sed -n 's/^virt_caps *: *//p') || return 1
    [[ " $caps " == *" shadow "* ]]
}

tb_perf_reset() { xenperf -r >/dev/null 2>&1 || tb_fail "xenperf -r failed"; }

# prints "WRITABLE_PT_EMULATIONS MMU_UPDATE_CALLS HYPERCALLS" (null null null
# without counters); hypercalls are every domain's, of every kind
tb_perf_read() {
    xenperf 2>/dev/null | awk '
        /^writable pt emulations / { sub(/.*T= */, ""); w = $1 }
        /^calls to mmu_update / { sub(/.*T= */, ""); m = $1 }
        /^hypercalls +T=/ { sub(/.*T= */, ""); h = $1 }
        END { printf "%s %s %s\n", (w == "" ? "null" : w), (m == "" ? "null" : m),
                  (h == "" ? "null" : h) }'
}

tb_perf_note() { # [PREFIX]
    local w m
    read -r w m _ < <(tb_perf_read)
    tb_note "${1:-}writable_pt_emulations" "$w"
    tb_note "${1:-}mmu_update_calls" "$m"
}

# Nanoseconds of CPU time Xen has accounted to dom0, all its vcpus: unlike
# /proc/stat inside a PV dom0 it includes the time Xen spends emulating
# dom0's trapped page-table writes.  All of dom0: whatever else runs there
# meanwhile counts too, this probe's own start and exit among it.
tb_dom0_cpu_ns() { /host/root/usr/libexec/xmig/xmig-probe cputime 0; }

# tb_cost CMD [ARG...]: runs CMD (its status is tb_cost's) and sets what it
# cost dom0: TB_COST_WALL (µs), TB_COST_SYS (dom0's system time in s,
# /proc/stat), TB_COST_CPU_NS (dom0's CPU time as Xen accounts it) and the
# xenperf counters TB_COST_PTWR, TB_COST_MMU, TB_COST_HCALL; all empty if
# they could not be read.  xmig-probe measures and starts CMD without a
# fork: this shell's command substitutions around CMD would each have
# cost a trapped write per page of the shell (xmig-probe.c, "cost").
tb_cost() {
    local f=$TB_TMP/cost.out rc=0
    TB_COST_WALL='' TB_COST_SYS='' TB_COST_CPU_NS='' TB_COST_PTWR='' TB_COST_MMU='' TB_COST_HCALL=''
    /host/root/usr/libexec/xmig/xmig-probe cost "$f" -- "$@" || rc=$?
    [[ -s $f ]] && read -r TB_COST_WALL TB_COST_SYS TB_COST_CPU_NS TB_COST_PTWR \
        TB_COST_MMU TB_COST_HCALL <"$f"
    return "$rc"
}

# ------------------------------------------------------- save / migrate --

# Stand-ins for ssh, for `xl migrate -s`: xl runs "CMD HOST xl migrate-receive".
# ssh-local runs the receiver here; ssh-peer connects to the receiver that
# host b's session keeps listening on TB_MIGRATE_PORT.
TB_SSH_LOCAL=$TB_TMP/ssh-local
TB_SSH_PEER=$TB_TMP/ssh-peer
[[ -x $TB_SSH_LOCAL ]] || printf '#!/bin/sh\nshift\nexec "$@"\n' >"$TB_SSH_LOCAL"
# shellcheck disable=SC2016 # $1 is for the script, not for us
[[ -x $TB_SSH_PEER ]] || printf '#!/bin/sh\nexec nc "$1" %s\n' "$TB_MIGRATE_PORT" >"$TB_SSH_PEER"
chmod +x "$TB_SSH_LOCAL" "$TB_SSH_PEER"

# The image goes to tmpfs: a save stream cannot be written to 9p (EFAULT
# from foreign mappings in the zero-copy path).
tb_xl_save_restore() { # NAME
    local img=$TB_TMP/$1.save t0
    t0=$(_tb_now)
    timeout 600 xl save "$1" "$img" >"$TB_TMP/$1.save.log" 2>&1 ||
        tb_fail "xl save $1 failed: $(tail -n 5 "$TB_TMP/$1.save.log")"
    tb_note save_wall_s "$(_tb_secs $(($(_tb_now) - t0)))"
    tb_note save_bytes "$(stat -c %s "$img")"
    t0=$(_tb_now)
    timeout 600 xl restore "$img" >"$TB_TMP/$1.restore.log" 2>&1 ||
        tb_fail "xl restore $1 failed: $(tail -n 5 "$TB_TMP/$1.restore.log")"
    tb_note restore_wall_s "$(_tb_secs $(($(_tb_now) - t0)))"
    rm -f "$img"
}

tb_xl_migrate_local() { # NAME
    timeout 900 xl migrate -s "$TB_SSH_LOCAL" "$1" localhost >"$TB_TMP/$1.migrate.log" 2>&1 ||
        tb_fail "xl migrate $1 localhost failed: $(tail -n 5 "$TB_TMP/$1.migrate.log")"
}

# tb_xmig_migrate_peer NAME DEST ARG...: xmig migrates NAME live to host
# b's receiver at DEST; it must end with the guest on host b
# ("guest":"destination") and nothing of it left on host a.
tb_xmig_migrate_peer() {
    local name=$1 dest=$2 json=$TB_TMP/peer-$1.json guest
    shift 2
    timeout 900 xmig migrate "$name" "$dest" --json --direct "$@" >"$json" ||
        { tail -n 3 "$json"; return 1; }
    guest=$(sed -n 's/.*"guest":"\([a-z]*\)".*/\1/p' "$json" | tail -n 1)
    [[ $guest == destination ]] || { echo "xmig says the guest is '$guest'" >&2; return 1; }
    tb_note bytes "$(grep -o '"bytes":[0-9]*' "$json" | tail -n 1 | cut -d: -f2)"
    tb_guest_left "$name"
}

# tb_guest_left NAME: fails while NAME (or a receiver's NAME--incoming)
# is on this host.
tb_guest_left() {
    if xl list 2>/dev/null | awk -v n="$1" 'NR > 1 && ($1 == n || $1 == n "--incoming") { f = 1 } END { exit !f }'; then
        echo "$1 is still on this host after its migration" >&2
        return 1
    fi
}

tb_xl_migrate_peer() { # NAME
    [[ -n $TB_PEER_IP ]] || tb_fail "tb_xl_migrate_peer needs two hosts (# testbed: hosts=2)"
    timeout 900 xl migrate -s "$TB_SSH_PEER" "$1" "$TB_PEER_IP" >"$TB_TMP/$1.migrate.log" 2>&1 ||
        tb_fail "xl migrate $1 to $TB_PEER_IP failed: $(tail -n 5 "$TB_TMP/$1.migrate.log")"
}

# ------------------------------------------------------------------ peer --
# Host a asks host b through a mailbox on the share (/host/peer): the network
# between the hosts stays free for the migration streams being measured.

tb_on_peer() { # CMD... ; prints its output, returns its status
    local id t0=$SECONDS limit=${TB_PEER_TIMEOUT:-900} rc line
    [[ $TB_HOSTS -gt 1 ]] || tb_fail "tb_on_peer needs two hosts (# testbed: hosts=2)"
    _tb_peer_seq=$(( ${_tb_peer_seq:-0} + 1 ))
    id=$$-$BASHPID-$_tb_peer_seq # unique in subshells too
    mkdir -p /host/peer
    { printf '%q ' "$@" >"/host/peer/.req.$id" && mv "/host/peer/.req.$id" "/host/peer/req.$id"; } ||
        tb_fail "cannot post a request to the peer"
    until [[ -e /host/peer/rc.$id ]]; do
        (( SECONDS - t0 < limit )) || tb_fail "peer did not answer '$*' within ${limit}s"
        tb_sleep 0.3
    done
    rc=$(cat "/host/peer/rc.$id")
    while IFS= read -r line; do
        if [[ $line == "TB-NOTE "* ]]; then
            line=${line#TB-NOTE }
            tb_note "${line%% *}" "${line#* }"
        else
            printf '%s\n' "$line"
        fi
    done <"/host/peer/out.$id"
    rm -f "/host/peer/rc.$id" "/host/peer/out.$id"
    return "$rc"
}

# Host b's service loop (dom0/session): stock receiver on TB_MIGRATE_PORT,
# then mailbox requests, one at a time, each in a subshell with lib.sh's
# functions, until host a is done.
tb_peer_serve() {
    local req id rc
    mkdir -p /host/peer
    # sigdfl: see xmig-probe.c (busybox nc leaves SIGCHLD ignored).
    setsid nc -ll -p "$TB_MIGRATE_PORT" \
        -e /host/root/usr/libexec/xmig/xmig-probe sigdfl xl migrate-receive \
        </dev/null >>"$TB_TMP/migrate-receive.log" 2>&1 &
    touch "$TB_OUT/ready"
    tb_log "peer: ready (receiver on port $TB_MIGRATE_PORT)"
    until [[ -e /host/out/a/done || -e /host/stop ]]; do
        for req in /host/peer/req.*; do
            [[ -e $req ]] || continue
            id=${req##*/req.}
            mv "$req" "$TB_TMP/req.$id"
            tb_log "peer: $(cat "$TB_TMP/req.$id")"
            ( _tb_agent=1; eval "$(cat "$TB_TMP/req.$id")" ) >"/host/peer/.out.$id" 2>&1
            rc=$?
            sed 's/^/  | /' "/host/peer/.out.$id"
            mv "/host/peer/.out.$id" "/host/peer/out.$id"
            echo "$rc" >"/host/peer/.rc.$id" && mv "/host/peer/.rc.$id" "/host/peer/rc.$id"
        done
        tb_sleep 0.3
    done
    tb_log "peer: host a is done"
}

# Only a scenario (TB_SCENARIO set) owns a result file; the peer does not.
if [[ -n ${TB_SCENARIO:-} ]]; then
    trap _tb_finish EXIT
    trap 'tb_fail "terminated by SIGTERM (scenario deadline?)"' TERM
    trap 'tb_fail "interrupted"' INT
fi
