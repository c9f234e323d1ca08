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
distinct=$(sed 's/"clusters":\[/\n/' "$tmp/build.json" | tail -n 1 | grep -o '"name":"[a-z]*"' | sort -u | wc -l)
[ "$distinct" -eq 4 ] && ok "no two clusters share a name" \
    || not_ok "$distinct distinct names: $(grep -o '"name":"[a-z]*"' "$tmp/build.json" | tr '\n' ' ')"

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

# --- the API (docs/api.md, "Map") ---------------------------------------------------------
"$vdx" map build --seed 3 --clusters 4 $C > /dev/null 2>&1
"$vdx" map export $C > "$tmp/map.jsonl"
token=map-test-token-0123456789
auth="Authorization: Bearer $token"
VDX_TOKEN=$token "$vdx" serve $C --model "$model" --port 0 > "$tmp/serve.out" 2> "$tmp/serve.err" &
serve_pid=$!
for _ in $(seq 600); do grep -q 'serving' "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
base=$(sed -n 's/.* at \(http:[^ ]*\)\/?token=.*$/\1/p' "$tmp/serve.out")
get() { # get PATH [curl args]: sets $code, body in $tmp/body, headers in $tmp/headers
    p=$1; shift
    code=$(curl -s --max-time 20 -o "$tmp/body" -D "$tmp/headers" -w '%{http_code}' -H "$auth" "$@" "$base$p")
}
get /api/map
[ "$code" = 200 ] && grep -q "\"items\":$count," "$tmp/body" && grep -q '"bounds":\[' "$tmp/body" \
    && ok "GET /api/map: the summary with bounds and clusters" || not_ok "/api/map: $code $(cat "$tmp/body")"
etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]: \(.*\)\r$/\1/p' "$tmp/headers")
get /api/map -H "If-None-Match: $etag"
[ -n "$etag" ] && [ "$code" = 304 ] && ok "the summary's ETag answers 304" || not_ok "etag '$etag': $code"
get /api/map/points
size=$(wc -c < "$tmp/body")
[ "$code" = 200 ] && [ "$size" -eq $((20 + 6 * count)) ] \
    && ok "GET /api/map/points: 20 + 6 bytes an item" || not_ok "points: $code, $size bytes for $count"
etag=$(sed -n 's/^[Ee][Tt][Aa][Gg]: \(.*\)\r$/\1/p' "$tmp/headers")
get /api/map/points -H "If-None-Match: $etag"
[ "$code" = 304 ] && ok "the points' ETag answers 304" || not_ok "points etag: $code"
get /api/map/ids
[ "$code" = 200 ] && [ "$(head -n 1 "$tmp/body")" = "$first_id" ] && [ "$(wc -l < "$tmp/body")" -eq "$count" ] \
    && ok "GET /api/map/ids: the ids in map order" || not_ok "ids: $code $(head -c 200 "$tmp/body")"
# the first point, dequantised, is where export says (within a quantisation step)
curl -s -H "$auth" "$base/api/map/points" -o "$tmp/points.bin"
set -- $(od -An -t f4 -j 4 -N 16 "$tmp/points.bin") $(od -An -t u2 -j 20 -N 2 "$tmp/points.bin")
awk -v lo="$1" -v hi="$3" -v q="$5" -v x="$json_x" 'BEGIN { v = lo + q * (hi - lo) / 65535; d = v - x; if (d < 0) d = -d; exit !(d <= (hi - lo) / 65535 + 1e-4) }' \
    && ok "a point's quantised x is its exported x" || not_ok "quantised x: lo $1 hi $3 q $5, export $json_x"
get /api/map/atlas/0
[ "$code" = 200 ] && [ "$(head -c 2 "$tmp/body" | od -An -t x1 | tr -d ' ')" = ffd8 ] \
    && ok "GET /api/map/atlas/0: a JPEG" || not_ok "atlas: $code"
get /api/map/atlas/1
[ "$code" = 404 ] && grep -q "the map has 1 atlases (0..0)" "$tmp/body" \
    && ok "an atlas past the end: 404 naming the range" || not_ok "atlas 1: $code $(cat "$tmp/body")"
# pages whose first item's index, 256 N, wraps a 64-bit integer (2^56-1 made -256), and
# spellings strtol would take
for page in 72057594037927935 9223372036854775807 99999999999999999999 -1 +0 ' 0'; do
    get "/api/map/atlas/$(printf %s "$page" | sed 's/ /%20/g; s/+/%2B/g')"
    [ "$code" = 404 ] && grep -q "no atlas" "$tmp/body" \
        && ok "atlas '$page': 404" || not_ok "atlas '$page': $code $(cat "$tmp/body")"
done
get /api/map/atlas/0
[ "$code" = 200 ] && ok "... and the server still answers" || not_ok "after the atlas pages: $code"
get /api/map/column/photo_width
[ "$code" = 200 ] && [ $(($(tr ',' '\n' < "$tmp/body" | wc -l) + 1)) -eq "$count" ] && grep -q '^\["[0-9]' "$tmp/body" \
    && ok "GET /api/map/column/photo_width: one value an item" || not_ok "column: $code $(head -c 200 "$tmp/body")"
get /api/map/column/nope
[ "$code" = 404 ] && grep -q "no metadata column 'nope' (columns: photo_id" "$tmp/body" \
    && ok "an unknown column: 404 naming the columns" || not_ok "unknown column: $code $(cat "$tmp/body")"
get /api/map/nothing
[ "$code" = 404 ] && ok "an unknown map endpoint: 404" || not_ok "unknown: $code"
get /api/map -X POST -H 'Content-Type: application/json' -d '{}'
[ "$code" = 405 ] && ok "POST /api/map: 405" || not_ok "POST: $code"
kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; serve_pid=""

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
: > "$tmp/none.txt"
"$vdx" ingest urls "$tmp/none.txt" --model "$model" --data "$tmp/data" --collection empty > /dev/null 2>&1
"$vdx" map build --data "$tmp/data" --collection empty > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 3 ] && grep -qx "vdx: a map needs at least 2 items; collection 'empty' holds 0" "$tmp/err" \
    && ok "an empty collection: invalid (3), before any model is loaded" || not_ok "empty: rc $rc: $(cat "$tmp/err")"
"$vdx" map --help > "$tmp/help" 2>&1
check "--help" grep -q "usage: vdx map build" "$tmp/help"

[ "$failures" -eq 0 ]
