#!/bin/sh
# The man page cannot silently fall behind the binary: every command `vdx --help` lists,
# every subcommand and every option each `vdx CMD --help` prints must appear in
# docs/vdx.1, and every option the page documents must be one some help text prints
# (so a removed option does not linger). Every environment variable the sources read
# with getenv() and every one scripts/demo.sh reads is documented. groff renders the
# page without a warning, when groff is installed.
set -u
VDX=${VDX_BUILD:-build/release}/vdx
MAN=docs/vdx.1
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-docs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1: $2"; failed=1; }

[ -x "$VDX" ] || { echo "not ok - vdx binary: $VDX is missing (build first)"; exit 1; }
[ -f "$MAN" ] || { echo "not ok - man page: $MAN is missing"; exit 1; }

# The page as plain text: roff escapes for '-' and fonts removed, so "\-\-batch" and
# "\fB\-k\fR" read as "--batch" and "-k".
sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(aq/'"'"'/g' "$MAN" > "$tmp/page.txt"

# Commands listed by `vdx --help` (the indented lines after "commands:").
"$VDX" --help > "$tmp/help.txt" 2>&1 || not_ok "vdx --help" "exit status $?"
commands=$(sed -n '/^commands:/,/^$/p' "$tmp/help.txt" | awk '/^  [a-z]/ {print $1}')
[ -n "$commands" ] || not_ok "vdx --help" "lists no commands"
: > "$tmp/all-help.txt"
cat "$tmp/help.txt" >> "$tmp/all-help.txt"

for cmd in $commands; do
    if grep -q "^\.SS \"vdx $cmd[ \"]" "$tmp/page.txt"; then
        ok "vdx.1 has a section for 'vdx $cmd'"
    else
        not_ok "vdx.1 has a section for 'vdx $cmd'" "no '.SS \"vdx $cmd ...\"' heading"
    fi
    "$VDX" "$cmd" --help > "$tmp/$cmd.txt" 2>&1
    status=$?
    if [ $status -ne 0 ]; then
        not_ok "vdx $cmd --help" "exit status $status ($(head -1 "$tmp/$cmd.txt"))"
        continue
    fi
    cat "$tmp/$cmd.txt" >> "$tmp/all-help.txt"

    # Subcommands: "vdx CMD SUB" in usage lines, the sources of ingest and the
    # command list of concept ("  new NAME ...", "  list | rm NAME | ...").
    subs=$( { grep -o "vdx $cmd [a-z][a-z]*" "$tmp/$cmd.txt" | awk '{print $3}'
              sed -n '/^\(sources\|commands\):/,/^$/p' "$tmp/$cmd.txt" |
                  awk '/^  [a-z]/ {print $1}'
              sed -n '/^\(sources\|commands\):/,/^$/p' "$tmp/$cmd.txt" |
                  grep '^  [a-z]* |' | tr '|' '\n' | awk 'NF {print $1}'
            } | sort -u)
    # The part of the page about this command (its .SS sections).
    awk -v c="vdx $cmd" '/^\.SS /{on = index($0, "\"" c) == 5} /^\.SH /{on = 0} on' \
        "$tmp/page.txt" > "$tmp/$cmd.section"
    for sub in $subs; do
        if grep -q "^\.SS \"vdx $cmd $sub\b" "$tmp/page.txt" ||
           grep -q "^\.\(B\|BI\) \"\?$sub\b" "$tmp/$cmd.section"; then
            ok "vdx.1 documents 'vdx $cmd $sub'"
        else
            not_ok "vdx.1 documents 'vdx $cmd $sub'" "no heading or item for it"
        fi
    done

    # Options: every --long and every -x short option the help prints.
    options=$(grep -o -- '\(^\|[[ ,|(]\)--\?[a-z][a-z0-9-]*' "$tmp/$cmd.txt" |
              sed 's/^[[ ,|(]//' | grep -- '^-\(-[a-z]\|[a-z]$\)' | sort -u)
    missing=""
    for opt in $options; do
        grep -q -- "\(^\|[^a-z0-9-]\)$opt\([^a-z0-9-]\|$\)" "$tmp/page.txt" || missing="$missing $opt"
    done
    if [ -z "$missing" ]; then
        ok "vdx.1 documents every option of 'vdx $cmd --help' ($(echo $options | wc -w))"
    else
        not_ok "vdx.1 documents every option of 'vdx $cmd --help'" "missing:$missing"
    fi

    # ... and in the command's own section, not only somewhere in the page: --precision was
    # once named only under VDX_PRECISION, so its default and meaning per command were
    # nowhere. -h/--help are COMMON OPTIONS; "'vdx info --failures'" in ingest's help is
    # another command's option.
    own=$(sed -E "s/vdx [a-z]+( [a-z]+)? --[a-z-]+//g" "$tmp/$cmd.txt" |
          grep -o -- '\(^\|[[ ,|(]\)--\?[a-z][a-z0-9-]*' | sed 's/^[[ ,|(]//' |
          grep -- '^-\(-[a-z]\|[a-z]$\)' | grep -vx -e -h -e --help | sort -u)
    missing=""
    for opt in $own; do
        grep -q -- "\(^\|[^a-z0-9-]\)$opt\([^a-z0-9-]\|$\)" "$tmp/$cmd.section" || missing="$missing $opt"
    done
    if [ -z "$missing" ]; then
        ok "vdx.1's 'vdx $cmd' section documents each of its options ($(echo $own | wc -w))"
    else
        not_ok "vdx.1's 'vdx $cmd' section documents each of its options" "missing:$missing"
    fi
done

# The reverse: no option in the page (the examples included) that no help text knows.
page_options=$(grep -o -- '\(^\|[[ ,|(]\)--[a-z][a-z0-9-]*' "$tmp/page.txt" |
               sed 's/^[[ ,|(]//' | sort -u)
unknown=""
for opt in $page_options; do
    grep -q -- "\(^\|[^a-z0-9-]\)$opt\([^a-z0-9-]\|$\)" "$tmp/all-help.txt" || unknown="$unknown $opt"
done
if [ -z "$unknown" ]; then
    ok "every option in vdx.1 is one a help text prints ($(echo $page_options | wc -w))"
else
    not_ok "every option in vdx.1 is one a help text prints" "unknown:$unknown"
fi

# Environment variables the program reads, and those of `make demo`.
vars=$( { grep -rho 'getenv("[A-Z_][A-Z0-9_]*")' src | sed 's/getenv("\(.*\)")/\1/'
          grep -o 'VDX_[A-Z_]*' scripts/demo.sh; } | sort -u)
missing=""
for v in $vars; do
    grep -q "\b$v\b" "$tmp/page.txt" || missing="$missing $v"
done
if [ -z "$missing" ]; then
    ok "vdx.1 documents every environment variable read ($(echo $vars | wc -w))"
else
    not_ok "vdx.1 documents every environment variable read" "missing:$missing"
fi

# The sections a man page has.
missing=""
for section in NAME SYNOPSIS DESCRIPTION COMMANDS ENVIRONMENT FILES "EXIT STATUS" EXAMPLES \
               "SEE ALSO"; do
    grep -q "^\.SH \"\?$section\"\?$" "$MAN" || missing="$missing '$section'"
done
if [ -z "$missing" ]; then
    ok "vdx.1 has every standard section"
else
    not_ok "vdx.1 has every standard section" "missing:$missing"
fi

# Every document the page points to exists.
refs=$(grep -o 'docs/[a-z-]*\.md' "$tmp/page.txt" | sort -u)
missing=""
for r in $refs; do [ -f "$r" ] || missing="$missing $r"; done
if [ -z "$missing" ]; then
    ok "every docs/*.md named in vdx.1 exists ($(echo $refs | wc -w))"
else
    not_ok "every docs/*.md named in vdx.1 exists" "missing:$missing"
fi

# The index lists every document in docs/, and names none that is missing.
missing=""
for f in docs/*; do
    [ -f "$f" ] || continue
    name=${f#docs/}
    [ "$name" = README.md ] && continue
    grep -q "](${name})" docs/README.md || missing="$missing $name"
done
for name in $(grep -o '](\([^)]*\))' docs/README.md | sed 's/^](\(.*\))$/\1/'); do
    [ -e "docs/$name" ] || missing="$missing $name(listed, absent)"
done
if [ -z "$missing" ]; then
    ok "docs/README.md indexes every document in docs/"
else
    not_ok "docs/README.md indexes every document in docs/" "not in step:$missing"
fi

# One version (VDX_VERSION in include/vdx/common.h): the page's header names the one
# `vdx --version` prints.
version=$("$VDX" --version 2>/dev/null)
if [ -n "$version" ] && grep -q "^\.TH VDX 1 [0-9-]* \"$version\"" "$MAN"; then
    ok "vdx.1 names the version vdx --version prints ($version)"
else
    not_ok "vdx.1 names the version vdx --version prints" "'$version' vs '$(grep '^\.TH' "$MAN")'"
fi

# Exit statuses: every status of an error kind (src/cli/cli_common.c) is documented.
for status in 1 2 3 4 5 6 7 8 9 10; do
    awk '/^\.SH EXIT STATUS/{on=1; next} /^\.SH /{on=0} on' "$tmp/page.txt" |
        grep -qx "\.B $status" || not_ok "vdx.1 documents exit status $status" "no '.B $status' under EXIT STATUS"
done

# Rendering.
if command -v groff > /dev/null 2>&1; then
    if groff -man -Tutf8 -ww "$MAN" > "$tmp/rendered.txt" 2> "$tmp/groff.err" &&
       [ ! -s "$tmp/groff.err" ]; then
        ok "groff renders vdx.1 without warnings"
    else
        not_ok "groff renders vdx.1 without warnings" "$(head -3 "$tmp/groff.err" | tr '\n' ' ')"
    fi
elif [ "${CI:-}" = true ]; then
    not_ok "groff renders vdx.1 without warnings" "groff is not installed (CI=true; scripts/deps.sh --test installs groff-base)"
else
    echo "skip - groff renders vdx.1 without warnings: groff is not installed (apt-get install groff-base)"
fi
exit $failed
