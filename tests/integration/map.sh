#!/bin/sh
# `vdx map` end to end on the ingested sample collection (../shared/data/unsplash-sample
# embedded with ../shared/fixtures/clip-tiny, images served by the loopback fileserver):
# build with the WordNet vocabulary embedded by the text tower and stored, export as JSON
# lines and CSV (one line per item, the same coordinates), the same seed gives the same
# map, another seed another; a rebuild reuses the stored vocabulary; the exact errors of
# bad input; a map killed mid-build leaves the old map.
set -u
cd "$(dirname "$0")/../.."
build=${VDX_BUILD:-build/release}
shared=${VDX_SHARED:-../shared}
vdx="$build/vdx"
if [ ! -d "$shared/fixtures/clip-tiny" ] || [ ! -d "$shared/data/unsplash-sample" ]; then
    if [ "${CI:-}" = true ]; then echo "not ok - map: $shared fixtures missing (CI=true)"; exit 1; fi
    echo "skip - map: $shared not found"; exit 0
fi
shared=$(cd "$shared" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-map-XXXXXX")
server_pid=""
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }
check() { what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

"$build/tools/fileserver" --root "$shared/data/unsplash-sample/images" --port 0 \
    --port-file "$tmp/fs.port" 2> "$tmp/fs.err" &
server_pid=$!
for _ in $(seq 600); do [ -s "$tmp/fs.port" ] && break; sleep 0.1; done
fs="http://127.0.0.1:$(cat "$tmp/fs.port")"
unset VDX_STORE VDX_MODEL
model="$shared/fixtures/clip-tiny"
C="--data $tmp/data --collection sample"
"$vdx" ingest unsplash "$shared/data/unsplash-sample" --base-url "$fs/" --model "$model" $C \
    > "$tmp/ingest.out" 2> "$tmp/ingest.err"
count=$("$vdx" info $C 2>/dev/null | sed -n 's/.*"count":\([0-9]*\).*/\1/p' | head -n 1)
if [ -z "$count" ] || [ "$count" -lt 30 ]; then
    not_ok "ingest the sample collection: count '$count' ($(tail -n 3 "$tmp/ingest.err" | tr '\n' ' '))"
    exit 1
fi
ok "ingest the sample collection ($count items)"

# --- build ------------------------------------------------------------------------------
"$vdx" map build --seed 3 --clusters 4 $C > "$tmp/build.json" 2> "$tmp/build.err"; rc=$?
[ $rc -eq 0 ] && grep -q "\"items\":$count," "$tmp/build.json" \
    && ok "map build maps every item" || not_ok "map build: rc $rc: $(cat "$tmp/build.err")"
check "build records its parameters" grep -q '"parameters":{"method":"umap","neighbors":15,"min_dist":0.1,"epochs":500,"negatives":5,"seed":3,"clusters":4' "$tmp/build.json"
check "build reports its stages" grep -q "map: layout" "$tmp/build.err"
check "build embeds the vocabulary once" grep -q "embedding [0-9]* WordNet nouns" "$tmp/build.err"
check "the vocabulary is stored beside the collection" test -s "$tmp/data/collections/sample/map-vocab.bin"
check "map.bin is beside the collection" test -s "$tmp/data/collections/sample/map.bin"
names=$(sed 's/"clusters":\[/\n/' "$tmp/build.json" | tail -n 1 | grep -o '"name":"[a-z]*"' | wc -l)
[ "$names" -eq 4 ] && ok "4 clusters, each named by a word" || not_ok "named clusters: $names"

# --- export -----------------------------------------------------------------------------
"$vdx" map export $C > "$tmp/map.jsonl" 2> "$tmp/err"
[ "$(wc -l < "$tmp/map.jsonl")" -eq "$count" ] && ok "export: one JSON line per item" \
    || not_ok "export: $(wc -l < "$tmp/map.jsonl") lines for $count items: $(cat "$tmp/err")"
check "export lines have id, x, y, cluster, cluster_name" \
    grep -qE '^\{"id":"[^"]+","x":-?[0-9.e+-]+,"y":-?[0-9.e+-]+,"cluster":[0-3],"cluster_name":"[a-z]+"\}$' "$tmp/map.jsonl"
"$vdx" map export --format csv $C > "$tmp/map.csv" 2> "$tmp/err"
check "export csv: a header and one row per item" test "$(head -n 1 "$tmp/map.csv")" = "id,x,y,cluster,cluster_name" -a "$(wc -l < "$tmp/map.csv")" -eq $((count + 1))
first_id=$(sed -n '1s/^{"id":"\([^"]*\)".*/\1/p' "$tmp/map.jsonl")
json_x=$(sed -n '1s/.*"x":\([^,]*\),.*/\1/p' "$tmp/map.jsonl")
csv_x=$(grep "^$first_id," "$tmp/map.csv" | cut -d, -f2)
awk -v a="$json_x" -v b="$csv_x" 'BEGIN { exit !(a - b < 1e-4 && b - a < 1e-4) }' \
    && ok "csv and jsonl give the same coordinates" || not_ok "x $json_x vs $csv_x"

# --- determinism ------------------------------------------------------------------------
"$vdx" map build --seed 3 --clusters 4 $C > /dev/null 2> "$tmp/build2.err"
"$vdx" map export $C > "$tmp/map2.jsonl"
check "the same seed gives the same map" cmp -s "$tmp/map.jsonl" "$tmp/map2.jsonl"
check "a rebuild reuses the stored vocabulary" sh -c "! grep -q 'embedding' '$tmp/build2.err'"
"$vdx" map build --seed 4 --clusters 4 $C > /dev/null 2>&1
"$vdx" map export $C > "$tmp/map3.jsonl"
check "another seed gives another map" sh -c "! cmp -s '$tmp/map.jsonl' '$tmp/map3.jsonl'"

# --- errors -----------------------------------------------------------------------------
"$vdx" map build --seed zero $C > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "seed wants a number from 1 to 2147483647, not 'zero'" "$tmp/err" \
    && ok "a bad --seed is a usage error" || not_ok "bad seed: rc $rc: $(cat "$tmp/err")"
"$vdx" map export --format xml $C > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "format is jsonl or csv, not 'xml'" "$tmp/err" \
    && ok "a bad --format is a usage error" || not_ok "bad format: rc $rc: $(cat "$tmp/err")"
"$vdx" map export --data "$tmp/data" --collection nothing > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 4 ] && ok "export of a missing collection: not found (4)" || not_ok "missing collection: rc $rc: $(cat "$tmp/err")"
"$vdx" ingest unsplash "$shared/data/unsplash-sample" --base-url "$fs/" --model "$model" \
    --data "$tmp/data" --collection other --limit 5 > /dev/null 2>&1
"$vdx" map export --data "$tmp/data" --collection other > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 4 ] && grep -q "collection 'other' has no map yet: run 'vdx map build'" "$tmp/err" \
    && ok "export before any build says to build" || not_ok "no map: rc $rc: $(cat "$tmp/err")"
"$vdx" map build --wordnet "$tmp/nowordnet" --data "$tmp/data" --collection other > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 4 ] && grep -q "nowordnet/data.noun: cannot open" "$tmp/err" && grep -q -- "--no-names" "$tmp/err" \
    && ok "a missing WordNet is named, with the way out" || not_ok "no wordnet: rc $rc: $(cat "$tmp/err")"
"$vdx" map build --no-names --data "$tmp/data" --collection other > "$tmp/b.json" 2> "$tmp/err"; rc=$?
[ $rc -eq 0 ] && grep -q '"name":""' "$tmp/b.json" && ok "--no-names builds without names" \
    || not_ok "--no-names: rc $rc: $(cat "$tmp/err")"
printf 'garbage' > "$tmp/data/collections/other/map.bin"
"$vdx" map export --data "$tmp/data" --collection other > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 10 ] && grep -q "map.bin: not a vdx map file (bad magic) at byte 0" "$tmp/err" \
    && ok "a damaged map.bin is corrupt data (10)" || not_ok "damaged: rc $rc: $(cat "$tmp/err")"
"$vdx" map --help > "$tmp/help" 2>&1
check "--help" grep -q "usage: vdx map build" "$tmp/help"

[ "$failures" -eq 0 ]
