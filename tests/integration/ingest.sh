#!/bin/sh
# End-to-end tests of `vdx ingest`, `vdx search` and `vdx info` with the clip-tiny model:
# the Unsplash sample served by the loopback file server stands in for the image CDN.
# Checks that every good row (46 of the 50) is stored with its metadata and the vector
# `vdx embed --normalize` gives for its image; that each malformed row and the broken link
# are reported with their reason; that a second run is a no-op and the download cache works;
# that kill -9 (three times) or Ctrl-C mid-run and then resuming gives the same collection
# as an uninterrupted run; the folder and URL-list sources; model mismatch; and that
# filter injection through `vdx search --where` fails safely.
# Prints one line per case (ok / not ok / skip); exits non-zero on a failure.
set -u
cd "$(dirname "$0")/../.." || exit 2
B=${VDX_BUILD:-build/release}
case "$B" in /*) ;; *) B="$PWD/$B" ;; esac
VDX="$B/vdx"
DUMP="$B/tools/store_dump"
FILESERVER="$B/tools/fileserver"
SHARED=${VDX_SHARED:-../shared}
MODEL="$SHARED/fixtures/clip-tiny"
OTHER_MODEL="$SHARED/fixtures/clip-tiny-f16"
SAMPLE="$SHARED/data/unsplash-sample"
GOLDEN_IMAGES="$SHARED/fixtures/golden/clip-tiny/images"
failed=0

ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1: $2"; failed=1; }

for need in "$SAMPLE/photos.tsv000" "$MODEL/config.json" "$OTHER_MODEL/config.json" "$GOLDEN_IMAGES"; do
    if [ ! -e "$need" ]; then
        if [ "${CI:-}" = true ]; then
            echo "not ok - fixtures: $need is missing (CI=true)"
            exit 1
        fi
        echo "skip - ingest: $need not found"
        exit 0
    fi
done
for exe in "$VDX" "$DUMP" "$FILESERVER"; do
    [ -x "$exe" ] || { echo "not ok - build: $exe is missing (run make)"; exit 1; }
done

# Every vector here is compared with `vdx embed` (fp32) or with another collection's, to
# 1e-5: ingest runs fp32, not its default auto (int8 on most CPUs)
export VDX_PRECISION=fp32
T=$(mktemp -d "${TMPDIR:-/tmp}/vdx-ingest-it.XXXXXX")
SERVER_PID=""
INGEST_PID=""
cleanup() {
    [ -n "$INGEST_PID" ] && kill -9 "$INGEST_PID" 2>/dev/null
    stop_server
    rm -rf "$T"
}
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=""
    fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# start_server DIR [fileserver flags...]: sets PORT and SERVER_PID; requests go to $T/requests.log
start_server() {
    dir=$1
    shift
    rm -f "$T/port"
    "$FILESERVER" --root "$dir" --port 0 --port-file "$T/port" --log "$T/requests.log" "$@" 2>/dev/null &
    SERVER_PID=$!
    i=0
    while [ ! -s "$T/port" ] && [ $i -lt 500 ]; do sleep 0.01; i=$((i + 1)); done
    PORT=$(cat "$T/port" 2>/dev/null)
    [ -n "$PORT" ] || { echo "not ok - fileserver: did not start"; exit 1; }
    export VDX_UNSPLASH_BASE="http://127.0.0.1:$PORT/"
}

requests() { [ -f "$T/requests.log" ] && wc -l < "$T/requests.log" | tr -d ' ' || echo 0; }

# compare_dumps A B [TOLERANCE]: same ids, urls, sizes and metadata; vectors within 1e-5
compare_dumps() {
    awk -F'\t' -v tol="${3:-1e-5}" '
        NR == FNR { vec[$1] = $NF; rest[$1] = $2 FS $3 FS $4 FS $5; next }
        {
            if (!($1 in vec)) { print "unexpected item " $1; bad = 1; next }
            seen[$1] = 1
            if (rest[$1] != $2 FS $3 FS $4 FS $5) { print "metadata differs for " $1; bad = 1 }
            n = split(vec[$1], a, " "); m = split($NF, b, " ")
            if (n != m || n == 0) { print "dims differ for " $1; bad = 1; next }
            for (i = 1; i <= n; i++) {
                d = a[i] - b[i]; if (d < 0) d = -d
                if (d > tol + 0) { print "vector differs for " $1 " at " i ": " a[i] " vs " b[i]; bad = 1; break }
            }
        }
        END { for (k in vec) if (!(k in seen)) { print "missing item " k; bad = 1 }; exit bad }
    ' "$1" "$2"
}

# json_number FILE KEY: the first "KEY":NUMBER in a one-line JSON document
json_number() { sed -n "s/.*\"$2\":\([0-9.e+-]*\).*/\1/p" "$1" | head -1; }

export VDX_HOME="$T/data"
export VDX_MODEL="$MODEL"
have_embed=1
"$VDX" embed --help > /dev/null 2>&1 || have_embed=0
start_server "$SAMPLE/images"

# ---- the Unsplash sample ------------------------------------------------------------------
# exact decoding (by default ingest decodes large JPEGs reduced): the stored vectors are
# compared with `vdx embed` below
"$VDX" ingest unsplash "$SAMPLE" --collection sample --batch 8 --exact-decode \
    > "$T/run1.out" 2> "$T/run1.err"
rc=$?
"$VDX" info --collection sample --failures > "$T/info.json" 2> "$T/info.err"
count=$(json_number "$T/info.json" count)
if [ $rc -eq 0 ] && [ "$count" = 46 ] &&
    grep -q '^done: 46 ingested, 1 failed, 0 skipped (already in the collection), 3 source rows rejected' "$T/run1.out"; then
    ok "unsplash sample: 46 good rows stored, summary printed"
else
    not_ok "unsplash sample: 46 good rows stored, summary printed" "exit $rc, count '$count': $(cat "$T/run1.out" "$T/run1.err" | head -20)"
fi
# a run that an error ends (here a file-size limit: the store's writes fail with EFBIG) says
# "aborted:" with what it kept; it said "done:" above the error
sh -c "trap '' XFSZ; ulimit -f 400; exec '$VDX' ingest unsplash '$SAMPLE' --collection full --batch 4 --no-cache" \
    > "$T/full.out" 2> "$T/full.err"
rc=$?
"$VDX" info --collection full > "$T/full.json" 2> /dev/null
kept=$(json_number "$T/full.json" count)
if [ $rc -eq 7 ] && [ -n "$kept" ] && [ "$kept" -lt 46 ] &&
    grep -q "^aborted: $kept ingested, " "$T/full.out" && ! grep -q '^done:' "$T/full.out"; then
    ok "an ingest ended by an error: exit 7, 'aborted: $kept ingested' (what it kept), not 'done:'"
else
    not_ok "an ingest ended by an error" "exit $rc, count '$kept': $(cat "$T/full.out" "$T/full.err" | tail -4)"
fi
# what embedded them is recorded: fp32 (VDX_PRECISION above), the kernel oneDNN chose,
# exact decoding; the terminal view says it in words
if grep -q '"embedded_with":\[{"precision":"fp32","isa":"[a-z_:0-9]*","decode":"exact","items":46,"runs":1,' "$T/info.json" &&
    script -qc "'$VDX' info --data '$VDX_HOME' --collection sample" /dev/null > "$T/info.tty" 2>&1 &&
    grep -q '^embedded     fp32 on [a-z_:0-9]*, images decoded exactly: 46 items (1 run, last 20' "$T/info.tty"; then
    ok "vdx info: the collection records fp32, the oneDNN kernel and exact decoding for its 46 items"
else
    not_ok "vdx info records what embedded the items" "$(grep -o '"embedded_with":[^]]*]' "$T/info.json"; grep embedded "$T/info.tty")"
fi

missing=""
for line in \
    "vdx: photos.tsv000 line 9: skipped AJHdIEqJej_: bad URL 'not a url'" \
    "vdx: photos.tsv000 line 50: skipped FdlKdMwj6uU: duplicate photo_id 'FdlKdMwj6uU' (first on line 4)" \
    "vdx: photos.tsv000 line 51: skipped LKL3MvQHqP0: too few columns (2 of 31)"; do
    grep -qxF "$line" "$T/run1.err" || missing="$missing [$line]"
done
[ -z "$missing" ] && ok "bad URL, duplicate and short row reported with line and reason" ||
    not_ok "bad URL, duplicate and short row reported with line and reason" "missing:$missing"

if grep -q '"id":"Ol3U6AhWNmZ","url":"https://images.unsplash.com/photo-1500000039595-5fb82720797d-missing","reason":"HTTP 404"' "$T/info.json" &&
    grep -qxF "  failed: 1 x HTTP 404" "$T/run1.out"; then
    ok "broken link recorded as a failure with its reason (vdx info --failures)"
else
    not_ok "broken link recorded as a failure with its reason" "$(cat "$T/info.json")"
fi

prog="$VDX_HOME/collections/sample/progress.json"
if [ -f "$prog" ] && grep -q '"state":"done","done":47,"total":47,"failed":1' "$prog"; then
    ok "progress.json holds the final state"
else
    not_ok "progress.json holds the final state" "$(cat "$prog" 2>/dev/null)"
fi

# A run that fails before its collection opens (here: no such source) still ends
# progress.json as "failed" instead of leaving the previous run's "done" (issue 10)...
cp "$prog" "$T/progress.before"
"$VDX" ingest unsplash "$T/no-such-dir" --collection sample > /dev/null 2> "$T/early.err"
rc=$?
if [ $rc -ne 0 ] && grep -q '"state":"failed","done":0,"total":0' "$prog"; then
    ok "progress.json says 'failed' after a run that failed before opening the collection"
else
    not_ok "progress.json after an early failure" "exit $rc: $(cat "$prog" "$T/early.err")"
fi
# ... but a run of another live process keeps its file
sleep 60 &
holder=$!
printf '{"state":"running","done":3,"total":9,"pid":%d}' "$holder" > "$prog"
"$VDX" ingest unsplash "$T/no-such-dir" --collection sample > /dev/null 2> "$T/early2.err"
rc=$?
if [ $rc -ne 0 ] && grep -qxF "{\"state\":\"running\",\"done\":3,\"total\":9,\"pid\":$holder}" "$prog"; then
    ok "an early failure leaves a live run's progress.json alone"
else
    not_ok "early failure vs a live run" "exit $rc: $(cat "$prog")"
fi
kill "$holder" 2> /dev/null
wait "$holder" 2> /dev/null
# and a new collection is not created by a failed first run
"$VDX" ingest unsplash "$T/no-such-dir" --collection never > /dev/null 2>&1
if [ ! -e "$VDX_HOME/collections/never" ]; then
    ok "a failed first run creates no collection directory"
else
    not_ok "failed first run" "$(ls -la "$VDX_HOME/collections/never")"
fi
cp "$T/progress.before" "$prog"

"$DUMP" --data "$VDX_HOME" --collection sample > "$T/sample.dump" 2> "$T/dump.err"
row=$(grep '^pHdEoziIbob	' "$T/sample.dump")
case "$row" in
*'https://images.unsplash.com/photo-1500000023757-7fcda7cad415	2562	3840	'*'"photo_description":"a \"quoted\" word and café"'*)
    if echo "$row" | grep -q '"photographer_first_name":"Zoë"' &&
        echo "$row" | grep -q '"photographer_last_name":"王"' &&
        echo "$row" | grep -q '"keywords":"yellow, flowers"' &&
        echo "$row" | grep -q '"photo_featured":"f"'; then
        ok "metadata stored: every column, unicode, the quoted field, keywords"
    else
        not_ok "metadata stored" "$row"
    fi ;;
*) not_ok "metadata stored: every column, unicode, the quoted field, keywords" "row: $row $(cat "$T/dump.err")" ;;
esac

# stored vectors = vdx embed --normalize of the same files
if [ $have_embed = 0 ]; then
    not_ok "each stored vector equals vdx embed --normalize of its image" "vdx embed --help fails"
else
    : > "$T/cmp.out"
    set --
    while IFS='	' read -r id url rest; do
        set -- "$@" --image "$SAMPLE/images/${url##*/}"
    done < "$T/sample.dump"
    "$VDX" embed --normalize "$@" 2> "$T/embed.err" |
        sed -n 's/.*"input":"[^"]*\/\([^"/]*\)".*"embedding":\[\([^]]*\)\].*/\1	\2/p' | tr ',' ' ' > "$T/embed.tsv"
    awk -F'\t' 'NR == FNR { n = split($2, p, "/"); name[p[n]] = $1; next }
                { printf "%s\t\t\t\t\t%s\n", name[$1], $2 }' "$T/sample.dump" "$T/embed.tsv" > "$T/embed.dump"
    awk -F'\t' '{ printf "%s\t\t\t\t\t%s\n", $1, $NF }' "$T/sample.dump" > "$T/sample.vectors"
    if [ "$(wc -l < "$T/embed.dump")" -eq 46 ] && compare_dumps "$T/sample.vectors" "$T/embed.dump" > "$T/cmp.out"; then
        ok "each stored vector equals vdx embed --normalize of its image (46 items, 1e-5)"
    else
        not_ok "each stored vector equals vdx embed --normalize of its image" "$(head -5 "$T/cmp.out") $(head -3 "$T/embed.err")"
    fi
fi

before=$(requests)
"$VDX" ingest unsplash "$SAMPLE" --collection sample > "$T/run2.out" 2> "$T/run2.err"
rc=$?
"$DUMP" --data "$VDX_HOME" --collection sample > "$T/sample2.dump"
if [ $rc -eq 0 ] && [ "$(requests)" = "$before" ] && cmp -s "$T/sample.dump" "$T/sample2.dump" &&
    grep -q '^done: 0 ingested, 0 failed, 47 skipped (already in the collection; 1 of them failed before' "$T/run2.out"; then
    ok "a second run is a no-op (no request, same collection)"
else
    not_ok "a second run is a no-op" "exit $rc, requests $before -> $(requests): $(cat "$T/run2.out")"
fi

before=$(requests)
"$VDX" ingest unsplash "$SAMPLE" --collection sample --retry-failed > "$T/run3.out" 2> "$T/run3.err"
if grep -q '^done: 0 ingested, 1 failed, 46 skipped' "$T/run3.out" && [ "$(requests)" -eq $((before + 1)) ] &&
    grep -q 'GET /photo-1500000039595-5fb82720797d-missing 404' "$T/requests.log"; then
    ok "--retry-failed tries the broken link again, and only it"
else
    not_ok "--retry-failed tries the broken link again" "requests $before -> $(requests): $(cat "$T/run3.out")"
fi

before=$(requests)
"$VDX" ingest unsplash "$SAMPLE" --collection cached > "$T/run4.out" 2> "$T/run4.err"
"$DUMP" --data "$VDX_HOME" --collection cached > "$T/cached.dump"
if [ "$(requests)" -eq $((before + 1)) ] && compare_dumps "$T/sample.dump" "$T/cached.dump" > "$T/cmp.out"; then
    ok "download cache: a new collection from the same data fetches only the broken link"
else
    not_ok "download cache" "requests $before -> $(requests); $(head -3 "$T/cmp.out")"
fi

before=$(requests)
"$VDX" ingest unsplash "$SAMPLE" --collection limited --limit 5 > "$T/lim1.out" 2>&1
"$VDX" ingest unsplash "$SAMPLE" --collection limited > "$T/lim2.out" 2>&1
"$DUMP" --data "$VDX_HOME" --collection limited > "$T/limited.dump"
if grep -q '^done: 5 ingested, 0 failed, 0 skipped' "$T/lim1.out" &&
    grep -q '^done: 41 ingested, 1 failed, 5 skipped' "$T/lim2.out" &&
    compare_dumps "$T/sample.dump" "$T/limited.dump" > "$T/cmp.out"; then
    ok "--limit 5 takes the first five rows; the next run adds the rest"
else
    not_ok "--limit" "$(cat "$T/lim1.out" "$T/lim2.out" "$T/cmp.out" | head -8)"
fi

"$VDX" ingest unsplash "$SAMPLE" --collection half --vector-type f16 > "$T/f16.out" 2>&1
"$DUMP" --data "$VDX_HOME" --collection half > "$T/half.dump"
"$VDX" info --collection half > "$T/half-info.json"
if grep -q '"vector_type":"f16"' "$T/half-info.json" &&
    compare_dumps "$T/sample.dump" "$T/half.dump" 1e-3 > "$T/cmp.out"; then
    ok "--vector-type f16 stores half-precision vectors (within 1e-3 of f32)"
else
    not_ok "--vector-type f16" "$(head -c 300 "$T/half-info.json") $(head -3 "$T/cmp.out")"
fi

# ---- interruptions ----------------------------------------------------------------------
# collection_count NAME: items with a vector (0 while the collection does not exist yet)
collection_count() {
    "$VDX" info --collection "$1" > "$T/count.json" 2>/dev/null || { echo 0; return; }
    json_number "$T/count.json" count
}
# wait_for_more NAME N: waits (up to 60 s) until the collection holds more than N items
wait_for_more() {
    i=0
    while [ "$(collection_count "$1")" -le "$2" ] && [ $i -lt 1200 ]; do
        kill -0 "$INGEST_PID" 2>/dev/null || return
        sleep 0.05
        i=$((i + 1))
    done
}

# Each round holds the ingest after its first commit (VDX_TEST_HOLD_FILE: it waits while the
# file exists), so it is certainly running however loaded the machine; then releases it and
# kills it right away or a little later (the slow server keeps it going for seconds, so the
# kill also lands mid-batch); the next round resumes.
stop_server
start_server "$SAMPLE/images" --delay-ms 150
kills=0
partial=0
for extra in 0 0.1 0.25; do
    before=$(collection_count killed)
    touch "$T/hold"
    VDX_TEST_HOLD_FILE="$T/hold" "$VDX" ingest unsplash "$SAMPLE" --collection killed --no-cache \
        --parallel 2 --batch 4 --threads 1 > /dev/null 2>&1 &
    INGEST_PID=$!
    wait_for_more killed "$before"
    rm -f "$T/hold"
    sleep $extra
    kill -9 $INGEST_PID 2>/dev/null && kills=$((kills + 1))
    wait $INGEST_PID 2>/dev/null
    INGEST_PID=""
    n=$(collection_count killed)
    [ -n "$n" ] && [ "$n" -gt "$before" ] && [ "$n" -lt 46 ] && partial=$((partial + 1))
done
# on a terminal, vdx info says the killed ingest was interrupted (its process is gone)
script -qec "$VDX info --collection killed" /dev/null 2>&1 | tr -d '\r' > "$T/tty-info.out"
if grep -q "^ingest       interrupted (its process is gone; run the ingest again to resume): [0-9]*/[0-9]* done" "$T/tty-info.out" &&
    grep -q "^items        [0-9]" "$T/tty-info.out"; then
    ok "vdx info on a terminal: a table, and the killed ingest reported as interrupted"
else
    not_ok "vdx info on a terminal after kill -9" "$(head -c 600 "$T/tty-info.out")"
fi
stop_server
start_server "$SAMPLE/images"
"$VDX" ingest unsplash "$SAMPLE" --collection killed --no-cache > "$T/resume.out" 2>&1
rc=$?
"$DUMP" --data "$VDX_HOME" --collection killed > "$T/killed.dump"
if [ $rc -eq 0 ] && [ $kills -eq 3 ] && [ $partial -eq 3 ] &&
    compare_dumps "$T/sample.dump" "$T/killed.dump" > "$T/cmp.out"; then
    ok "kill -9 mid-run (3 times, each leaving a partial collection) then resume = uninterrupted run"
else
    not_ok "kill -9 mid-run then resume = uninterrupted run" "exit $rc, kills $kills, partial $partial: $(head -5 "$T/cmp.out") $(tail -3 "$T/resume.out")"
fi

stop_server
start_server "$SAMPLE/images" --delay-ms 150
touch "$T/hold" # held after its first commit: Ctrl-C certainly finds it running
VDX_TEST_HOLD_FILE="$T/hold" "$VDX" ingest unsplash "$SAMPLE" --collection stopped --no-cache \
    --parallel 2 --batch 4 --threads 1 > "$T/int.out" 2> "$T/int.err" &
INGEST_PID=$!
wait_for_more stopped 0
kill -INT $INGEST_PID
wait $INGEST_PID
rc=$?
INGEST_PID=""
n=$(collection_count stopped)
stored=$(sed -n 's/^stopped: \([0-9]*\) ingested.*/\1/p' "$T/int.out")
state=$(sed -n 's/.*"state":"\([a-z]*\)".*/\1/p' "$VDX_HOME/collections/stopped/progress.json")
stop_server
start_server "$SAMPLE/images"
"$VDX" ingest unsplash "$SAMPLE" --collection stopped --no-cache > /dev/null 2>&1
"$DUMP" --data "$VDX_HOME" --collection stopped > "$T/stopped.dump"
if [ $rc -eq 130 ] && [ -n "$stored" ] && [ "$stored" -gt 0 ] && [ "$stored" -lt 46 ] &&
    [ "$n" = "$stored" ] && [ "$state" = stopped ] &&
    compare_dumps "$T/sample.dump" "$T/stopped.dump" > "$T/cmp.out"; then
    ok "Ctrl-C stops cleanly (exit 130, $stored committed, progress.json 'stopped'), resume completes"
else
    not_ok "Ctrl-C stops cleanly" "exit $rc, summary '$stored', count '$n', state '$state': $(head -3 "$T/cmp.out") $(cat "$T/int.out")"
fi

# ---- folder and URL-list sources ----------------------------------------------------------
mkdir -p "$T/folder/jpeg/deeper" "$T/folder/other"
cp "$GOLDEN_IMAGES/gray_500x375.jpg" "$T/folder/jpeg/"
cp "$GOLDEN_IMAGES/exif_orient6_600x400.jpg" "$T/folder/jpeg/deeper/"
cp "$GOLDEN_IMAGES/bmp_300x250.bmp" "$GOLDEN_IMAGES/gif_256x200.gif" "$T/folder/other/"
cp "$GOLDEN_IMAGES/exact_224x224.png" "$T/folder/"
echo "not an image" > "$T/folder/notes.txt"
printf 'garbage, not a JPEG' > "$T/folder/other/broken.jpg"
"$VDX" ingest folder "$T/folder" --collection folder --exact-decode \
    > "$T/folder.out" 2> "$T/folder.err"
rc=$?
"$DUMP" --data "$VDX_HOME" --collection folder --no-meta > "$T/folder.dump"
"$VDX" info --collection folder > "$T/folder-info.json"
ids=$(cut -f1 "$T/folder.dump" | tr '\n' ' ')
if [ $rc -eq 0 ] &&
    [ "$ids" = "exact_224x224.png jpeg/deeper/exif_orient6_600x400.jpg jpeg/gray_500x375.jpg other/bmp_300x250.bmp other/gif_256x200.gif " ] &&
    grep -q '"id":"other/broken.jpg","url":"[^"]*/folder/other/broken.jpg","reason":"cannot decode image' "$T/folder-info.json"; then
    ok "folder source: images stored under relative-path ids, undecodable file recorded"
else
    not_ok "folder source" "exit $rc, ids '$ids': $(head -c 600 "$T/folder-info.json")"
fi
# F4: a file name that is not UTF-8 is ingested under an escaped id; search prints valid JSON
mkdir -p "$T/latin1"
cp "$GOLDEN_IMAGES/gray_500x375.jpg" "$(printf '%s/latin1/caf\351.jpg' "$T")"
"$VDX" ingest folder "$T/latin1" --collection latin1 > "$T/latin1.out" 2> "$T/latin1.err"
rc=$?
"$VDX" search --collection latin1 -k 1 "a photo" > "$T/latin1-search.json" 2> "$T/latin1-search.err"
src=$?
"$VDX" info --collection latin1 > "$T/latin1-info.json"
if [ $rc -eq 0 ] && [ $src -eq 0 ] && grep -q '"count":1' "$T/latin1-info.json" &&
   grep -q '"id":"caf%E9.jpg"' "$T/latin1-search.json" &&
   python3 -c 'import json,sys; [json.loads(l) for f in sys.argv[1:] for l in open(f, encoding="utf-8")]' \
       "$T/latin1-info.json" "$T/latin1-search.json"; then
    ok "folder source: a non-UTF-8 file name is read and stored as 'caf%E9.jpg', JSON stays valid"
else
    not_ok "non-UTF-8 file name" "ingest $rc, search $src: $(cat "$T/latin1.err" "$T/latin1-search.json" "$T/latin1-info.json" | head -c 600)"
fi
if [ $have_embed = 0 ]; then
    not_ok "folder source: vectors = vdx embed --normalize" "vdx embed --help fails"
else
    : > "$T/cmp.out"
    "$VDX" embed --normalize --image "$T/folder/exact_224x224.png" \
        --image "$T/folder/jpeg/deeper/exif_orient6_600x400.jpg" \
        --image "$T/folder/jpeg/gray_500x375.jpg" --image "$T/folder/other/bmp_300x250.bmp" \
        --image "$T/folder/other/gif_256x200.gif" 2> "$T/embed.err" |
        sed -n 's/.*"input":"[^"]*\/folder\/\([^"]*\)".*"embedding":\[\([^]]*\)\].*/\1					\2/p' |
        tr ',' ' ' > "$T/folder-embed.dump"
    awk -F'\t' '{ printf "%s\t\t\t\t\t%s\n", $1, $NF }' "$T/folder.dump" > "$T/folder.vectors"
    if compare_dumps "$T/folder.vectors" "$T/folder-embed.dump" > "$T/cmp.out"; then
        ok "folder source: vectors = vdx embed --normalize (EXIF, BMP, GIF, grey, PNG)"
    else
        not_ok "folder source: vectors = vdx embed --normalize" "$(head -3 "$T/cmp.out") $(head -3 "$T/embed.err")"
    fi
fi

{
    echo "# three CDN images, one local file, one dead link"
    echo "http://127.0.0.1:$PORT/photo-1500000000000-3b8f37f8a88b"
    echo ""
    echo "http://127.0.0.1:$PORT/photo-1500000007919-43b79a8dca03"
    echo "  http://127.0.0.1:$PORT/photo-1500000015838-5af35ec42e08  "
    echo "folder/exact_224x224.png"
    echo "http://127.0.0.1:$PORT/no-such-photo"
    echo "http://127.0.0.1:$PORT/photo-1500000000000-3b8f37f8a88b"
    echo "gopher://127.0.0.1/x"
} > "$T/list.txt"
"$VDX" ingest urls "$T/list.txt" --collection urls > "$T/urls.out" 2> "$T/urls.err"
rc=$?
"$VDX" info --collection urls > "$T/urls-info.json"
"$DUMP" --data "$VDX_HOME" --collection urls --no-meta > "$T/urls.dump"
if [ $rc -eq 0 ] && [ "$(json_number "$T/urls-info.json" count)" = 4 ] &&
    grep -q "^folder/exact_224x224.png	$T/folder/exact_224x224.png	" "$T/urls.dump" &&
    grep -q '"reason":"HTTP 404"' "$T/urls-info.json" &&
    grep -qF "vdx: list.txt line 8: skipped http://127.0.0.1:$PORT/photo-1500000000000-3b8f37f8a88b: duplicate entry (first on line 2)" "$T/urls.err" &&
    grep -qF "vdx: list.txt line 9: skipped gopher://127.0.0.1/x: unsupported URL scheme" "$T/urls.err"; then
    ok "URL-list source: URLs and paths stored, dead link failed, duplicate and bad scheme reported"
else
    not_ok "URL-list source" "exit $rc: $(cat "$T/urls.out" "$T/urls.err" "$T/urls-info.json" | head -c 800)"
fi

# ---- model identity ------------------------------------------------------------------------
"$VDX" ingest unsplash "$SAMPLE" --collection sample --model "$OTHER_MODEL" > "$T/mm.out" 2> "$T/mm.err"
rc1=$?
"$VDX" search --collection sample --model "$OTHER_MODEL" "red" > "$T/mm2.out" 2> "$T/mm2.err"
rc2=$?
# the collection after the refused runs: still 46 items, nothing appended
"$VDX" info --collection sample > "$T/mm-info.json" 2> "$T/mm-info.err"
# exit status 6: model mismatch (vdx(1), EXIT STATUS)
if [ $rc1 -eq 6 ] && [ $rc2 -eq 6 ] && grep -q "was embedded with model" "$T/mm.err" &&
    grep -q "was embedded with model" "$T/mm2.err" &&
    [ "$(json_number "$T/mm-info.json" count)" = 46 ]; then
    ok "another model is refused for ingest and search, the collection unchanged"
else
    not_ok "another model is refused" "exit $rc1/$rc2, count after: $(json_number "$T/mm-info.json" count): $(cat "$T/mm.err" "$T/mm2.err" "$T/mm-info.err")"
fi

# ---- search ---------------------------------------------------------------------------------
"$VDX" search --collection sample -k 5 "a red circle on a field" > "$T/s1.out" 2> "$T/s1.err"
rc=$?
lines=$(grep -c '^{"id":"[^"]*","url":"https://images.unsplash.com/[^"]*","dist":[0-9.e-]*}$' "$T/s1.out")
sorted=$(sed 's/.*"dist":\([0-9.e-]*\)}/\1/' "$T/s1.out" | sort -g | tr '\n' ' ')
asis=$(sed 's/.*"dist":\([0-9.e-]*\)}/\1/' "$T/s1.out" | tr '\n' ' ')
if [ $rc -eq 0 ] && [ "$lines" = 5 ] && [ "$sorted" = "$asis" ]; then
    ok "search prints k JSON lines {id,url,dist}, nearest first"
else
    not_ok "search prints k JSON lines" "exit $rc: $(cat "$T/s1.out" "$T/s1.err")"
fi

# the same search on a terminal: a table (header, then rank, distance to 4 places, id, url)
# with the same ids in the same order
script -qec "$VDX search --collection sample -k 5 'a red circle on a field'" /dev/null | tr -d '\r' > "$T/s1.tty"
table_ids=$(sed -n 's/^ *[1-5]  [0-9]\.[0-9]\{4\}  *\([^ ]*\)  *https:.*/\1/p' "$T/s1.tty" | tr '\n' ' ')
json_ids=$(sed 's/^{"id":"\([^"]*\)".*/\1/' "$T/s1.out" | tr '\n' ' ')
if head -1 "$T/s1.tty" | grep -q '^ *#  dist  *id  *url$' && [ "$table_ids" = "$json_ids" ] && [ -n "$json_ids" ]; then
    ok "search on a terminal prints a table of the same hits"
else
    not_ok "search on a terminal" "ids '$table_ids' vs '$json_ids': $(head -c 400 "$T/s1.tty")"
fi

first=$(sed -n '1s/^{"id":"\([^"]*\)".*/\1/p' "$T/s1.out")
second=$(sed -n '2s/^{"id":"\([^"]*\)".*/\1/p' "$T/s1.out")
"$VDX" search --collection sample -k 4 --exclude "$first" "a red circle on a field" > "$T/s2.out"
"$VDX" search --collection sample -k 1 --offset 1 "a red circle on a field" > "$T/s3.out"
if ! grep -q "\"$first\"" "$T/s2.out" && sed -n 1p "$T/s2.out" | grep -q "\"$second\"" &&
    grep -q "\"$second\"" "$T/s3.out" && [ "$(wc -l < "$T/s2.out")" = 4 ]; then
    ok "search --exclude and --offset"
else
    not_ok "search --exclude and --offset" "$(cat "$T/s2.out" "$T/s3.out")"
fi

img=$(grep '^rjTbrNLwMts	' "$T/sample.dump" | cut -f2)
"$VDX" search --collection sample -k 1 --image "$SAMPLE/images/${img##*/}" > "$T/s4.out" 2> "$T/s4.err"
"$VDX" search --collection sample -k 1 --image "http://127.0.0.1:$PORT/${img##*/}" > "$T/s5.out" 2> "$T/s5.err"
if grep -q '^{"id":"rjTbrNLwMts",.*"dist":[0-9.e-]*}$' "$T/s4.out" &&
    awk -F'"dist":' '{ d = $2 + 0; exit !(d < 1e-5 && d > -1e-5) }' "$T/s4.out" &&
    grep -q '^{"id":"rjTbrNLwMts"' "$T/s5.out"; then
    ok "search --image (file and URL) finds the image itself at distance 0"
else
    not_ok "search --image finds the image itself" "$(cat "$T/s4.out" "$T/s4.err" "$T/s5.out" "$T/s5.err")"
fi

"$VDX" search --collection sample -k 4 --image "$SAMPLE/images/${img##*/}" | sed 1d | cut -d, -f1 > "$T/l1.out"
"$VDX" search --collection sample -k 3 --like rjTbrNLwMts 2> "$T/l2.err" | cut -d, -f1 > "$T/l2.out"
if [ "$(wc -l < "$T/l2.out")" = 3 ] && cmp -s "$T/l1.out" "$T/l2.out"; then
    ok "search --like ID: the item's neighbours, without the item"
else
    not_ok "search --like ID" "$(cat "$T/l1.out" "$T/l2.out" "$T/l2.err")"
fi

"$VDX" search --collection sample -k 50 --where "photographer_last_name = 'O''Neil'" "red" > "$T/w1.out" 2> "$T/w1.err"
"$VDX" search --collection sample -k 9 --where "photo_featured = 't' AND photo_location_country = 'Iceland'" "red" > "$T/w2.out" 2> "$T/w2.err"
w2=$(sed 's/^{"id":"\([^"]*\)".*/\1/' "$T/w2.out" | LC_ALL=C sort | tr '\n' ' ')
# 15 stored rows have photographer_last_name O'Neil; 5 are featured and in Iceland
if [ "$(wc -l < "$T/w1.out")" = 15 ] && grep -q '"id":"K_IQQ8Vh2bZ"' "$T/w1.out" &&
    [ "$w2" = "58lEdkk6Jdh 8wxT-EQqM4M MHzrNfYY5R2 TeUW0DWq0fi ZSDFf8J61Yx " ]; then
    ok "search --where filters on metadata (quoted literal, AND)"
else
    not_ok "search --where filters on metadata" "w1 $(wc -l < "$T/w1.out") rows, w2 '$w2': $(cat "$T/w1.err" "$T/w2.err")"
fi

bad=""
for expr in "photo_featured = 't'; DROP TABLE items" "1=1 --" "photo_id = 'x' OR 1=1) --" \
    "photo_id IN (SELECT id FROM items)" "no_such_column = 1" "load_extension('x')" \
    "photo_id = 'a1\\' OR 1=1 --"; do
    if "$VDX" search --collection sample -k 50 --where "$expr" "red" > "$T/inj.out" 2> "$T/inj.err"; then
        [ -s "$T/inj.out" ] && bad="$bad [accepted and returned rows: $expr]"
    elif ! grep -q '^vdx: ' "$T/inj.err"; then
        bad="$bad [no clear error: $expr]"
    fi
done
"$VDX" search --collection sample -k 50 --where "photo_id = 'x'' OR ''1''=''1'" "red" > "$T/inj.out" 2>&1
[ -s "$T/inj.out" ] && bad="$bad [a quoted OR matched: $(head -c 200 "$T/inj.out")]"
"$VDX" info --collection sample > "$T/info2.json"
[ "$(json_number "$T/info2.json" count)" = 46 ] || bad="$bad [collection changed: $(cat "$T/info2.json" | head -c 300)]"
[ -z "$bad" ] && ok "filter injection attempts fail safely (errors, no rows, collection intact)" ||
    not_ok "filter injection attempts fail safely" "$bad"

# ---- the collection's own model, gone ------------------------------------------------------
cp -r "$MODEL" "$T/moved-model"
VDX_MODEL="$T/moved-model" "$VDX" ingest folder "$T/folder/jpeg" --collection moved > /dev/null 2> "$T/mv1.err"
rc1=$?
mv "$T/moved-model" "$T/moved-model.away"
VDX_MODEL= "$VDX" search --collection moved "red" > /dev/null 2> "$T/mv2.err"
rc2=$?
if [ $rc1 -eq 0 ] && [ $rc2 -eq 4 ] &&
    grep -qF "this collection was embedded with the model '$(cd "$T" && pwd -P)/moved-model', which is not available (model '$(cd "$T" && pwd -P)/moved-model': no such directory" "$T/mv2.err"; then
    ok "search without --model says why the collection's model cannot be loaded"
else
    not_ok "collection's model gone" "exit $rc1/$rc2: $(cat "$T/mv1.err" "$T/mv2.err")"
fi

# ---- usage ------------------------------------------------------------------------------------
"$VDX" ingest --help > "$T/h1" && "$VDX" search --help > "$T/h2" && "$VDX" info --help > "$T/h3"
"$VDX" ingest spreadsheet x > /dev/null 2> "$T/u1"
rc1=$?
"$VDX" search > /dev/null 2> "$T/u2"
rc2=$?
if grep -q "^usage: vdx ingest unsplash" "$T/h1" && grep -q -- "--where EXPR" "$T/h2" &&
    grep -q -- "--failures" "$T/h3" && [ $rc1 -eq 2 ] && [ $rc2 -eq 2 ] &&
    grep -q "unknown source 'spreadsheet'" "$T/u1"; then
    ok "--help for ingest, search and info; usage errors exit 2"
else
    not_ok "--help and usage errors" "exit $rc1/$rc2: $(cat "$T/u1" "$T/u2")"
fi

exit $failed
