#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-only
# The docs name exactly the options of the table (proto/options.c), with its
# ranges and values: xmig(1)'s JOB OPTIONS, xmigd.conf(5)'s keys and
# PROTOCOL.md's table of job options.  proto/options-dump lists the table;
# it also checks the table itself.  Then the same comparison must find a
# doc that lost, gained or misstated an option.  Last, the bash completion
# made from the table offers each command its own options.
pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

DUMP=${XMIG_OPTIONS_DUMP:-proto/options-dump}
src=${XMIG_SRCDIR:-$(cd "$(dirname "$0")/../.." && pwd)}
tmp=$(mktemp -d /tmp/xmig-options-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

if "$DUMP" check >"$tmp/check"; then
    ok "the table is consistent: $(tail -n 1 "$tmp/check")"
else
    bad "the table: $(cat "$tmp/check")"
fi
for w in cli conf request; do
    "$DUMP" $w >"$tmp/$w" && [ -s "$tmp/$w" ] || bad "options-dump $w"
done

# man_entries FILE SECTION: "NAME<TAB>the entry's text" for each .TP of the
# section, NAME being each --option of its first line (xmig.1), else the
# first word after the macro (xmigd.conf.5's keys).
man_entries() {
    awk -v want="$2" '
        function flush(  s, n, i, w) {
            if (head == "") return
            s = head
            gsub(/\\-/, "-", s)
            text = s " " body
            n = 0
            while (match(s, /--[a-z][a-z-]*/)) {
                print substr(s, RSTART, RLENGTH) "\t" text
                s = substr(s, RSTART + RLENGTH)
                n++
            }
            if (!n) {
                split(head, w, /[ \t"]+/)
                print w[2] "\t" text
            }
            head = ""; body = ""
        }
        /^\.SH / { flush(); sect = substr($0, 5); gsub(/"/, "", sect); next }
        sect != want { next }
        /^\.(TP|PP)/ { flush(); tp = ($1 == ".TP"); next }
        tp && head == "" { head = $0; next }
        tp { gsub(/^\.[A-Z]+ /, ""); gsub(/\\f[BIRP]|"/, ""); body = body " " $0 }
        END { flush() }' "$1"
}

# md_entries FILE: "KEY<TAB>TYPE<TAB>FOR<TAB>the row" for the rows of
# PROTOCOL.md's table of job options.
md_entries() {
    awk '
        /^#/ { on = ($0 == "### Job options"); next }
        on && /^\| `/ {
            n = split($0, c, / \| /)
            key = c[1]; sub(/^\| `/, "", key); sub(/`.*/, "", key)
            print key "\t" c[2] "\t" c[3] "\t" $0
        }' "$1"
}

# compare WHAT TABLE ENTRIES: every name of the table (its lines: NAME
# RANGE VALUES, or for the protocol NAME TYPE FOR VALUES) has an entry
# that states its range and names its values; no entry names anything
# else.  Prints one line per disagreement.
compare() {
    awk -F '\t' -v what="$1" '
        # Whether the words s are in text, punctuation aside.
        function has(text, s) {
            gsub(/[|,;:()"]/, " ", text)
            gsub(/[ ]+/, " ", text)
            return index(" " text " ", " " s " ") > 0
        }
        NR == FNR {
            if ($1 in doc) print what ": " $1 " is named twice"
            doc[$1] = 1; row[$1] = $0; next
        }
        {
            named[$1] = 1
            if (!($1 in doc)) { print what ": " $1 " is missing"; next }
            split(row[$1], d, "\t")
            if (what == "PROTOCOL.md") {
                if (d[2] != $2) print what ": " $1 ": type \"" d[2] "\", the table says \"" $2 "\""
                if (d[3] != $3) print what ": " $1 ": for \"" d[3] "\", the table says \"" $3 "\""
                vals = $4; text = d[4]
            } else {
                if ($2 != "-" && !has(d[2], $2))
                    print what ": " $1 ": the range " $2 " is not stated"
                vals = $3; text = d[2]
            }
            n = vals == "-" ? 0 : split(vals, v, " ")
            for (i = 1; i <= n; i++)
                if (what == "PROTOCOL.md" ? !index(text, "`" v[i] "`") : !has(text, v[i]))
                    print what ": " $1 ": the value " v[i] " is not named"
        }
        END {
            for (k in doc)
                if (!(k in named)) print what ": " k " is not in the table"
        }' "$3" "$2"
}

# check_docs MAN1 MAN5 PROTOCOL: every disagreement, one a line.
check_docs() {
    man_entries "$1" "JOB OPTIONS" >"$tmp/e1"
    man_entries "$2" DESCRIPTION >"$tmp/e5"
    md_entries "$3" >"$tmp/em"
    for f in e1 e5 em; do
        [ -s "$tmp/$f" ] || echo "$f: no entries found: has the layout changed?"
    done
    compare "xmig.1" "$tmp/cli" "$tmp/e1"
    compare "xmigd.conf.5" "$tmp/conf" "$tmp/e5"
    compare "PROTOCOL.md" "$tmp/request" "$tmp/em"
}

check_docs "$src/man/xmig.1" "$src/man/xmigd.conf.5" \
    "$src/daemon/PROTOCOL.md" >"$tmp/found"
if [ -s "$tmp/found" ]; then
    while read -r line; do bad "$line"; done <"$tmp/found"
else
    ok "xmig(1), xmigd.conf(5) and PROTOCOL.md name the table's options," \
        "$(cat "$tmp/cli" "$tmp/conf" "$tmp/request" | wc -l) in all"
fi

# Docs that are wrong, each in one way, must be found out.
sed -e '/^\.BI \\-\\-max\\-iters/,/^\.TP/s/1 to 1000/1 to 100/' \
    -e 's/^\.B \\-\\-abort\\-if\\-busy$/.B \\-\\-abort\\-when\\-busy/' \
    "$src/man/xmig.1" >"$tmp/xmig.1"
sed -e '/^\.BI downtime_ms/,/^\.TP/d' "$src/man/xmigd.conf.5" >"$tmp/xmigd.conf.5"
sed -e 's/^| `batch` | int 1\.\.1024 /| `batch` | int 1..4096 /' \
    -e 's/`kernel` or `exit`/`kernel`/' \
    -e 's/^| `keep` | bool | save /| `keep` | bool | save, evacuate /' \
    "$src/daemon/PROTOCOL.md" >"$tmp/PROTOCOL.md"
check_docs "$tmp/xmig.1" "$tmp/xmigd.conf.5" "$tmp/PROTOCOL.md" >"$tmp/found"
for want in "xmig.1: --max-iters: the range 1 to 1000 is not stated" \
    "xmig.1: --abort-if-busy is missing" \
    "xmig.1: --abort-when-busy is not in the table" \
    "xmigd.conf.5: downtime_ms is missing" \
    'PROTOCOL.md: batch: type "int 1..4096", the table says "int 1..1024"' \
    "PROTOCOL.md: strategy: the value exit is not named" \
    'PROTOCOL.md: keep: for "save, evacuate", the table says "save"'; do
    if grep -qxF "$want" "$tmp/found"; then
        ok "a wrong doc is found: $want"
    else
        bad "not found: $want (found: $(cat "$tmp/found"))"
    fi
done
if [ "$(wc -l <"$tmp/found")" -eq 7 ]; then
    ok "nothing else is found in them"
else
    bad "found more than the 7 faults: $(cat "$tmp/found")"
fi

# complete WORD...: what the completion offers for the last word.
complete_words() {
    bash -c '
        complete() { :; }
        compopt() { :; }
        _filedir() { :; }
        _init_completion() {
            words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
            cur=${words[cword]} prev=${words[cword - 1]}
        }
        . "$0"
        COMP_WORDS=("$@") COMP_CWORD=$(($# - 1))
        _xmig
        echo "${COMPREPLY[*]}"' "$COMPLETION" xmig "$@"
}
COMPLETION=${XMIG_COMPLETION:-cli/xmig.bash-completion}
if ! command -v bash >/dev/null || [ ! -f "$COMPLETION" ]; then
    bad "bash and the built completion ($COMPLETION) are needed"
else
    # WANTED|THE WORDS BEFORE|THE WORD BEING COMPLETED
    for t in "--no-skip|save web /tmp/x|--no-s" \
        "--keep|save web|--k" \
        "|migrate web|--ke" \
        "--parallel|evacuate|--par" \
        "|evacuate|--dir" \
        "per-batch arena kernel exit|migrate web ssh://b --strategy|" \
        "xmig libxc|evacuate --engine|" \
        "ssh:// tcp:// exec:|migrate web --max-iters 3|"; do
        want=${t%%|*} rest=${t#*|}
        before=${rest%|*} cur=${rest#*|}
        # shellcheck disable=SC2086 # the words of a command line
        got=$(complete_words $before "$cur")
        if [ "$got" = "$want" ]; then
            ok "completion of 'xmig $before $cur': '$want'"
        else
            bad "completion of 'xmig $before $cur': '$got', not '$want'"
        fi
    done
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
