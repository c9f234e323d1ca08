#!/bin/sh
# End-to-end tests of vectors made elsewhere and of the approximate index, through the
# CLI with the clip-tiny model's identity (32-d): `vdx ingest vectors` of a float16 .npy
# (synthetic CLIP-like vectors from tests/tools/synth_npy) with ids and a metadata TSV,
# a re-run that stores nothing twice, refusals (dimension, NaN row, id count) that store
# nothing; `vdx search --vector` (one result list per row, "row" in every line) with and
# without a filter; `vdx index build` and `vdx info`; indexed search with every
# partition visited equal to `--exact`; rows appended after the build found; the same
# for product codes (`--codes pq`).
# Prints one line per case (ok / not ok / skip); exits non-zero on a failure.
set -u
cd "$(dirname "$0")/../.." || exit 2
B=${VDX_BUILD:-build/release}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
VDX="$B/vdx"
SYNTH="$B/tools/synth_npy"
SHARED=${VDX_SHARED:-../shared}
MODEL="$SHARED/fixtures/clip-tiny"
failed=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1: $2"; failed=1; }

if [ ! -e "$MODEL/config.json" ]; then
    if [ "${CI:-}" = true ]; then echo "not ok - fixtures: $MODEL is missing (CI=true)"; exit 1; fi
    echo "skip - vectors: $MODEL not found"; exit 0
fi
for exe in "$VDX" "$SYNTH"; do
    [ -x "$exe" ] || { echo "not ok - build: $exe is missing (run make)"; exit 1; }
done
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-vectors.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
D="$tmp/data"
S="--synth-dim=32 --synth-clusters=40"

"$SYNTH" "$tmp/v.npy" "$tmp/ids.txt" 3000 --f16 $S || { echo "not ok - synth_npy"; exit 1; }
awk 'BEGIN { print "id\tbucket" } { print $1 "\t" (NR - 1) % 10 }' "$tmp/ids.txt" > "$tmp/meta.tsv"
if "$VDX" ingest vectors "$tmp/v.npy" --ids "$tmp/ids.txt" --meta "$tmp/meta.tsv" \
       --model "$MODEL" --data "$D" > "$tmp/out" 2> "$tmp/err" &&
   grep -q "3000 ingested" "$tmp/out"; then
    ok "ingest vectors: 3000 f16 rows with metadata"
    [ "$(grep -c '^ingest: ' "$tmp/err")" -ge 1 ] && [ -z "$(grep '^ingest: ' "$tmp/err" | uniq -d)" ] \
        && ok "plain progress lines (stderr not a terminal): the last one is not repeated" \
        || not_ok "progress lines: $(grep '^ingest: ' "$tmp/err" | tr '\n' '|')"
else
    not_ok "ingest vectors" "$(cat "$tmp/out" "$tmp/err" | tail -3)"
fi
"$VDX" ingest vectors "$tmp/v.npy" --ids "$tmp/ids.txt" --model "$MODEL" --data "$D" > "$tmp/out" 2>&1
if grep -q "0 ingested.*3000 skipped" "$tmp/out"; then
    ok "ingest vectors: a re-run stores nothing twice"
else
    not_ok "ingest vectors re-run" "$(tail -2 "$tmp/out")"
fi

# refusals: nothing stored, the message names file and row
"$SYNTH" "$tmp/wide.npy" "$tmp/wide.txt" 10 --synth-dim=64
"$SYNTH" "$tmp/nan.npy" "$tmp/nan.txt" 10 --synth-dim=32 --first 5000 --nan-row 7
head -5 "$tmp/nan.txt" > "$tmp/five.txt"
check_refusal() { # name npy ids expected-text
    if "$VDX" ingest vectors "$2" --ids "$3" --model "$MODEL" --data "$D" > /dev/null 2> "$tmp/err"; then
        not_ok "refuses $1" "exit status 0"
    elif grep -q "$4" "$tmp/err"; then
        ok "refuses $1"
    else
        not_ok "refuses $1" "$(cat "$tmp/err")"
    fi
}
check_refusal "another dimension" "$tmp/wide.npy" "$tmp/wide.txt" "dimension 64.*32-d"
check_refusal "a NaN row" "$tmp/nan.npy" "$tmp/nan.txt" "nan.npy: row 7, column 16 is NaN"
check_refusal "an id count that differs" "$tmp/nan.npy" "$tmp/five.txt" "has 5 ids but"
count=$("$VDX" info --data "$D" --json | sed 's/.*"count":\([0-9]*\).*/\1/')
[ "$count" = 3000 ] && ok "refusals stored nothing" || not_ok "refusals stored nothing" "count $count"
# a refused first load makes no collection (it would tie the name to the model), and says
# why with the invalid-input status (3)
"$VDX" ingest vectors "$tmp/nan.npy" --ids "$tmp/nan.txt" --model "$MODEL" --data "$tmp/fresh" \
    --collection first > /dev/null 2> "$tmp/err"
rc=$?
if [ $rc -eq 3 ] && grep -q "row 7, column 16 is NaN" "$tmp/err" && [ ! -e "$tmp/fresh/collections/first" ]; then
    ok "a refused first load creates no collection (exit 3)"
else
    not_ok "a refused first load" "exit $rc, $(ls "$tmp/fresh/collections" 2>&1), $(cat "$tmp/err")"
fi
# a vector file damaged after the load (a NaN written over row 0's first float, past the
# 64-byte header): search still prints valid JSON, the distance null
"$SYNTH" "$tmp/ten.npy" "$tmp/ten.txt" 10 --synth-dim=32
"$VDX" ingest vectors "$tmp/ten.npy" --ids "$tmp/ten.txt" --model "$MODEL" --data "$tmp/damaged" > /dev/null 2>&1
python3 -c 'import sys
f = open(sys.argv[1], "r+b"); f.seek(64); f.write(bytes([0, 0, 0xc0, 0x7f]))' "$tmp/damaged/collections/default/vectors.f32"
"$VDX" search --vector "$tmp/ten.npy" -k 10 --data "$tmp/damaged" > "$tmp/damaged.out" 2>&1
if python3 -c 'import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert any(r["dist"] is None for r in rows) and len(rows) == 100, rows' "$tmp/damaged.out" 2> /dev/null; then
    ok "a NaN in a damaged vector file prints as null: every line is JSON"
else
    not_ok "damaged vector file" "$(head -c 300 "$tmp/damaged.out")"
fi
printf 'a\n\377\376\n' > "$tmp/badutf8.txt"
"$SYNTH" "$tmp/two.npy" "$tmp/two.txt" 2 --synth-dim=32
check_refusal "an id that is not UTF-8" "$tmp/two.npy" "$tmp/badutf8.txt" "badutf8.txt line 2: the id is not valid UTF-8 (byte 0)"

# search by raw vectors: captions of items 10 and 20
"$SYNTH" "$tmp/q.npy" "$tmp/q.txt" 2 --first 10 --texts $S
"$SYNTH" "$tmp/q2.npy" "$tmp/q2.txt" 1 --first 20 --texts $S
"$VDX" search --vector "$tmp/q.npy" -k 5 --data "$D" > "$tmp/res" 2> "$tmp/err"
rows0=$(grep -c '"row":0,' "$tmp/res"); rows1=$(grep -c '"row":1,' "$tmp/res")
if [ "$rows0" = 5 ] && [ "$rows1" = 5 ]; then
    ok "search --vector: one list of 5 per row"
else
    not_ok "search --vector" "rows $rows0/$rows1: $(cat "$tmp/res" "$tmp/err" | head -3)"
fi
"$VDX" search --vector "$tmp/q.npy" -k 20 --where "bucket = '3'" --data "$D" > "$tmp/res"
bad=$(grep -o '"id":"i[0-9]*"' "$tmp/res" | tr -dc '0-9\n' | awk '$1 % 10 != 3' | wc -l)
n=$(wc -l < "$tmp/res")
[ "$bad" = 0 ] && [ "$n" = 40 ] && ok "search --vector --where: 20 matching per row" ||
    not_ok "search --vector --where" "$n lines, $bad not matching"
# a bad row 7: refused before any row is searched (rows 0-6's results were printed first)
"$VDX" search --vector "$tmp/nan.npy" -k 2 --data "$D" > "$tmp/res" 2> "$tmp/err"
rc=$?
[ $rc -eq 3 ] && [ ! -s "$tmp/res" ] && grep -q "nan.npy: row 7, column 16 is NaN" "$tmp/err" &&
    ok "search --vector with a NaN row 7: exit 3, no result printed" ||
    not_ok "search --vector with a NaN row" "exit $rc, $(wc -l < "$tmp/res") lines: $(cat "$tmp/err")"
if "$VDX" search --vector "$tmp/wide.npy" --data "$D" > /dev/null 2> "$tmp/err"; then
    not_ok "search --vector refuses another dimension" "exit 0"
else
    grep -q "dimension 64" "$tmp/err" && ok "search --vector refuses another dimension" ||
        not_ok "search --vector refuses another dimension" "$(cat "$tmp/err")"
fi

# the index
"$VDX" search --vector "$tmp/q.npy" -k 30 --exclude i1,i2,i3 --data "$D" > "$tmp/exact" 2>&1
if "$VDX" index build --lists 20 --nprobe 2 --data "$D" --json > "$tmp/ix" 2> "$tmp/err" &&
   grep -q '"rows":3000' "$tmp/ix" && grep -q '"lists":20' "$tmp/ix"; then
    ok "index build"
else
    not_ok "index build" "$(cat "$tmp/ix" "$tmp/err")"
fi
"$VDX" info --data "$D" --json > "$tmp/info"
grep -q '"index":{"kind":"ivf-int8","rows":3000' "$tmp/info" && ok "info shows the index" ||
    not_ok "info shows the index" "$(cat "$tmp/info")"
grep -q '"embedded_with":\[{"precision":"external","items":[0-9]*,"runs":[0-9]*,' "$tmp/info" &&
    ok "info says the vectors were made elsewhere (ingest vectors)" ||
    not_ok "info says the vectors were made elsewhere" "$(grep -o '"embedded_with":[^]]*]' "$tmp/info")"
VDX_INDEX_NPROBE=20 "$VDX" search --vector "$tmp/q.npy" -k 30 --exclude i1,i2,i3 --data "$D" > "$tmp/all" 2>&1
cmp -s "$tmp/exact" "$tmp/all" && ok "every partition visited = the exact scan" ||
    not_ok "every partition visited = the exact scan" "$(diff "$tmp/exact" "$tmp/all" | head -4)"
"$VDX" search --vector "$tmp/q.npy" -k 30 --exact --exclude i1,i2,i3 --data "$D" > "$tmp/exact2" 2>&1
cmp -s "$tmp/exact" "$tmp/exact2" && ok "--exact with an index = the exact scan" ||
    not_ok "--exact with an index" "$(diff "$tmp/exact" "$tmp/exact2" | head -4)"

# rows appended after the build: found (scanned exactly), info counts them
"$SYNTH" "$tmp/more.npy" "$tmp/more.txt" 100 --first 3000 $S
"$VDX" ingest vectors "$tmp/more.npy" --ids "$tmp/more.txt" --model "$MODEL" --data "$D" > /dev/null 2>&1
"$SYNTH" "$tmp/q3.npy" "$tmp/q3.txt" 1 --first 3050 $S
first=$("$VDX" search --vector "$tmp/q3.npy" -k 1 --data "$D" | grep -o '"id":"[^"]*"')
[ "$first" = '"id":"i3050"' ] && ok "a row appended after the build is found" ||
    not_ok "a row appended after the build is found" "got $first"
"$VDX" info --data "$D" --json | grep -q '"unindexed":100' && ok "info counts the unindexed tail" ||
    not_ok "info counts the unindexed tail" "$("$VDX" info --data "$D" --json)"

# product codes (--codes pq): info names them; every partition visited and every estimate
# re-scored = the exact scan; a wrong --codes is a usage error that changes nothing
"$VDX" search --vector "$tmp/q.npy" -k 30 --exclude i1,i2,i3 --data "$D" --exact > "$tmp/exact3" 2>&1
if "$VDX" index build --codes pq --lists 20 --data "$D" --json > "$tmp/ixpq" 2> "$tmp/err" &&
   grep -q '"kind":"ivf-pq"' "$tmp/ixpq" && grep -q '"rows":3100' "$tmp/ixpq"; then
    ok "index build --codes pq"
else
    not_ok "index build --codes pq" "$(cat "$tmp/ixpq" "$tmp/err")"
fi
VDX_INDEX_NPROBE=20 VDX_INDEX_RERANK=3100 "$VDX" search --vector "$tmp/q.npy" -k 30 \
    --exclude i1,i2,i3 --data "$D" > "$tmp/allpq" 2>&1
cmp -s "$tmp/exact3" "$tmp/allpq" && ok "pq: every partition and estimate = the exact scan" ||
    not_ok "pq: every partition and estimate = the exact scan" "$(diff "$tmp/exact3" "$tmp/allpq" | head -4)"
if "$VDX" index build --codes pq4 --data "$D" > /dev/null 2> "$tmp/err"; then
    not_ok "index build refuses --codes pq4" "exit 0"
else
    grep -q "codes wants int8 or pq, not 'pq4'" "$tmp/err" &&
        "$VDX" info --data "$D" --json | grep -q '"kind":"ivf-pq"' &&
        ok "index build refuses --codes pq4, the index stays" ||
        not_ok "index build refuses --codes pq4" "$(cat "$tmp/err")"
fi
exit $failed
