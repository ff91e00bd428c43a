#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-only
# What the installed programs and libraries export: of the project's own
# global symbols, only the ones an installed header declares.  Anything
# else that is exported (libxmig's xmig__ internals above all) is a name
# some other program could bind to, and that we could never change again.
# make check passes the lists of what `make install` installs (Makefile.am:
# XMIG_INSTALLED_*); the test runs in the build directory.
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

tmp=$(mktemp -d /tmp/xmig-exports-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
NM=${NM:-nm}
if ! command -v "$NM" >/dev/null; then
    echo "$NM (binutils) is needed"
    exit 1
fi
if [ -z "$XMIG_INSTALLED_PROGRAMS" ] || [ -z "$XMIG_SRCDIR" ]; then
    echo "run by make check: XMIG_INSTALLED_PROGRAMS and XMIG_SRCDIR unset"
    exit 1
fi

# The project's symbols: every global one its objects define.
find . -name '*.o' -exec "$NM" --defined-only --extern-only --format=posix {} + \
    2>/dev/null | awk '{ print $1 }' | sort -u >"$tmp/ours"
if grep -qx xmig_job_run "$tmp/ours" && grep -qx xmig__log "$tmp/ours"; then
    ok "the project's objects are found ($(wc -l <"$tmp/ours") symbols)"
else
    bad "no object defines xmig_job_run and xmig__log: not a built tree?"
fi

# The public ones: every xmig_ name the installed headers mention.
: >"$tmp/public"
for h in $XMIG_INSTALLED_HEADERS; do
    grep -o 'xmig_[A-Za-z0-9_]*' "$XMIG_SRCDIR/$h" >>"$tmp/public"
done
grep -v '^xmig__' "$tmp/public" | sort -u -o "$tmp/public"

# elf FILE: FILE, or the program a libtool wrapper script FILE runs.
elf() {
    d=$(dirname "$1") b=$(basename "$1")
    for f in "$1" "$d/.libs/$b" "$d/.libs/lt-$b"; do
        if [ -f "$f" ] && [ "$(head -c 4 "$f" | tr -d '\177')" = ELF ]; then
            echo "$f"
            return
        fi
    done
}

# check FILE: FILE exports no internal name.
check() {
    "$NM" -D --defined-only --format=posix "$1" >"$tmp/dyn" 2>"$tmp/err" || {
        bad "$1: $NM -D: $(cat "$tmp/err")"
        return
    }
    awk '{ sub(/@.*/, "", $1); print $1 }' "$tmp/dyn" | sort -u >"$tmp/names"
    # Ours and exported, but declared by no installed header; and xmig__
    # names, whoever defines them.
    comm -12 "$tmp/names" "$tmp/ours" | comm -23 - "$tmp/public" >"$tmp/leak"
    grep '^xmig__' "$tmp/names" >>"$tmp/leak"
    n=$(sort -u "$tmp/leak" | wc -l)
    if [ "$n" -eq 0 ]; then
        ok "$1 exports no internal name"
    else
        bad "$1 exports $n internal names: $(sort -u "$tmp/leak" | tr '\n' ' ')"
    fi
}

checked=0
for p in $XMIG_INSTALLED_PROGRAMS; do
    f=$(elf "$p")
    if [ -z "$f" ]; then
        bad "$p: no ELF program built"
        continue
    fi
    check "$f"
    checked=$((checked + 1))
done
for la in $XMIG_INSTALLED_LIBS; do
    # The shared object that the .la names (none with --disable-shared).
    dlname=$(sed -n "s/^dlname='\(.*\)'$/\1/p" "$la")
    [ -n "$dlname" ] || continue
    check "$(dirname "$la")/.libs/$dlname"
    checked=$((checked + 1))
done
if [ "$checked" -gt 0 ]; then
    ok "$checked installed files checked"
else
    bad "nothing installed was checked"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
