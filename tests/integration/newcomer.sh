#!/bin/sh
# A newcomer's first hour, as an integration test: every command's --help, the README's
# cheat-sheet commands on the sample collection (served by a loopback stand-in for the image
# CDN), and the mistakes a new user makes — a misspelled option, a collection that does not
# exist, a typo in --where, a file that is not an image, a second ingest while one runs,
# Ctrl-C during ingest, a busy port, an export into a missing directory. Each message must say
# what is wrong and what to do; nothing may crash or hang.
set -u
cd "$(dirname "$0")/../.."
build=${VDX_BUILD:-build/release}
shared=${VDX_SHARED:-../shared}
if [ ! -d "$shared/fixtures/clip-tiny" ] || [ ! -d "$shared/data/unsplash-sample" ]; then
    if [ "${CI:-}" = true ]; then echo "not ok - newcomer: $shared fixtures missing (CI=true)"; exit 1; fi
    echo "skip - newcomer: $shared not found"; exit 0
fi
build=$(cd "$build" && pwd)
shared=$(cd "$shared" && pwd)
vdx=$build/vdx
model=$shared/fixtures/clip-tiny
sample=$shared/data/unsplash-sample
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-newcomer-XXXXXX")
pids=""
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "not ok - newcomer: interrupted by a signal"; exit 130' INT TERM
failures=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }
# run CMD...: runs vdx with a 30 s guard against hangs; sets $rc, $out, $err
run() {
    timeout 30 "$vdx" "$@" > "$tmp/out" 2> "$tmp/err"
    rc=$?
    out=$(cat "$tmp/out")
    err=$(cat "$tmp/err")
}
# expect_fail RC MESSAGE WHAT: the last run exited RC and stderr holds MESSAGE (fixed string)
expect_fail() {
    if [ "$rc" = "$1" ] && printf '%s' "$err" | grep -qF -- "$2"; then ok "$3"
    else not_ok "$3: expected exit $1 and '$2', got exit $rc: $err"; fi
}
# start_fileserver NAME [options]: a loopback image CDN over the sample images; sets $cdn
start_fileserver() {
    name=$1; shift
    "$build/tools/fileserver" --root "$sample/images" --port-file "$tmp/$name.port" "$@" 2> "$tmp/$name.err" &
    pids="$pids $!"
    for _ in $(seq 600); do [ -s "$tmp/$name.port" ] && break; sleep 0.1; done
    cdn="http://127.0.0.1:$(cat "$tmp/$name.port")/"
}
export VDX_HOME="$tmp/home"
unset VDX_STORE VDX_MODEL VDX_UNSPLASH_BASE

# --- help: every command the README names answers --help
run --help
unlisted=""
for c in embed model ingest search info concept serve; do
    printf '%s\n' "$out" | grep -q "^  $c " || unlisted="$unlisted $c"
done
if [ $rc -eq 0 ] && [ -z "$unlisted" ]; then
    ok "vdx --help lists every command"
else not_ok "vdx --help: exit $rc, not listed:$unlisted: $out"; fi
for c in embed model ingest search info concept serve; do
    run "$c" --help
    if [ $rc -eq 0 ] && printf '%s' "$out" | head -1 | grep -q "^usage: vdx $c"; then ok "vdx $c --help"
    else not_ok "vdx $c --help: exit $rc: $out $err"; fi
done
# the options the README's cheat sheet uses, each documented by its command's --help
missing=""
for pair in "embed --normalize" "embed --format" "ingest --limit" "ingest --vector-type" \
            "ingest --collection" "ingest --retry-failed" "info --failures" "search -k" \
            "search --offset" "search --exclude" "search --where" "search --image" "search --like" \
            "concept --prompt" "concept --example" "concept --mode" "concept --page" \
            "concept --top" "concept --threshold" "concept --labels" "concept --scores" \
            "concept --classifier" "concept --name" "serve --collection" "serve --host" \
            "serve --port" "model pull" "model path" "model info"; do
    set -- $pair
    run "$1" --help
    printf '%s' "$out" | grep -qe "[ [|]$2[] =|]" -e "[ [|]$2\$" || missing="$missing $1:$2"
done
[ -z "$missing" ] && ok "every option of the README's cheat sheet is in its command's --help" ||
    not_ok "options the README uses but --help does not mention:$missing"

# exit statuses by error kind (vdx(1) EXIT STATUS): 3 invalid input, 4 not found
# --- before any ingest
run info
expect_fail 4 "collection 'default' does not exist" "vdx info before any ingest says the collection does not exist"
run search "a dog on a beach" --model "$model"
expect_fail 4 "collection 'default' does not exist" "vdx search before any ingest says the collection does not exist"
printf '%s' "$err" | grep -qF "create it with 'vdx ingest folder|unsplash|urls SOURCE --collection default'" &&
    ok "... and how to create it" || not_ok "search before ingest does not say how to create the collection: $err"

# --- the sample collection, as in the README
start_fileserver cdn
run ingest unsplash "$sample" --model "$model" --base-url "$cdn"
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "^done: 46 ingested, 1 failed, 0 skipped"; then
    ok "vdx ingest unsplash DIR: 46 ingested, 1 failed (the link with no image)"
else not_ok "vdx ingest unsplash: exit $rc: $out $err"; fi
run info --failures
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q '"count":46' &&
   printf '%s' "$out" | grep -q '"id":"Ol3U6AhWNmZ"[^}]*"reason":"HTTP 404"'; then
    ok "vdx info --failures: count and the failed item with its reason"
else not_ok "vdx info --failures: exit $rc: $out"; fi

run search "a dog on a beach" -k 3
if [ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | grep -c '^{"id":')" = 3 ]; then
    ok "a collection made with a model directory finds that model again for a text search"
else not_ok "search without --model on a collection made with a model directory: exit $rc: $out"; fi
export VDX_MODEL="$model"
run search "a dog on a beach" -k 3
if [ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | grep -c '^{"id":"[^"]*","url":"https://images.unsplash.com/photo-[^"]*","dist":[0-9.e-]*}$')" = 3 ]; then
    ok "vdx search PROMPT -k 3: three JSON lines"
else not_ok "vdx search -k 3: exit $rc: $out $err"; fi
first=$(printf '%s\n' "$out" | sed -n '1s/^{"id":"\([^"]*\)".*/\1/p')
second=$(printf '%s\n' "$out" | sed -n '2s/^{"id":"\([^"]*\)".*/\1/p')
run search "a dog on a beach" -k 2 --offset 1
[ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | sed -n '1s/^{"id":"\([^"]*\)".*/\1/p')" = "$second" ] &&
    ok "vdx search --offset 1 starts at the second hit" || not_ok "search --offset: $out $err"
run search "a dog on a beach" -k 3 --exclude "$first"
[ $rc -eq 0 ] && ! printf '%s' "$out" | grep -q "\"$first\"" && [ "$(printf '%s\n' "$out" | wc -l)" = 3 ] &&
    ok "vdx search --exclude ID leaves that item out" || not_ok "search --exclude: $out $err"
featured=$(awk -F '\t' '$5 == "t"' "$sample/photos.tsv000" | wc -l)
run search "a dog on a beach" -k 48 --where "photo_featured = 't'"
n=$(printf '%s\n' "$out" | grep -c '^{"id"')
[ $rc -eq 0 ] && [ "$n" -ge 1 ] && [ "$n" -lt 46 ] && [ "$n" -le "$featured" ] &&
    ok "vdx search --where \"photo_featured = 't'\" keeps $n featured photos" || not_ok "search --where: exit $rc, $n hits: $err"
run search --like "$first" -k 2
[ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | grep -c '^{"id"')" = 2 ] && ! printf '%s' "$out" | grep -q "\"$first\"" &&
    ok "vdx search --like ID: more like it, without it" || not_ok "search --like: $out $err"
run search --image "$shared/fixtures/golden/clip-tiny/images/bmp_300x250.bmp" -k 1
[ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | grep -c '^{"id"')" = 1 ] && ok "vdx search --image FILE" ||
    not_ok "search --image: $out $err"
run embed --normalize --image "$shared/fixtures/golden/clip-tiny/images/bmp_300x250.bmp" --text "a photo of a cat"
[ $rc -eq 0 ] && printf '%s\n' "$out" | sed -n 1p | grep -q '^{"kind":"image","input":"[^"]*bmp_300x250.bmp","embedding":\[' &&
    printf '%s\n' "$out" | sed -n 2p | grep -q '^{"kind":"text","input":"a photo of a cat","embedding":\[' &&
    ok "vdx embed --normalize --image --text: one line per input, in order" || not_ok "embed: $out $err"
run model info "$model"
[ $rc -eq 0 ] && printf '%s' "$out" | grep -q "embedding  32 dimensions" && ok "vdx model info DIR" ||
    not_ok "model info: $out $err"

# --- the concept cheat sheet
cd "$tmp" || { echo "not ok - newcomer: cannot enter $tmp"; exit 1; }
run concept new dogs --prompt "a photo of a dog"
[ $rc -eq 0 ] && printf '%s' "$out" | grep -q '^{"name":"dogs","prompt":"a photo of a dog"' && ok "vdx concept new" ||
    not_ok "concept new: $out $err"
run concept next dogs -k 4
ids=$(printf '%s\n' "$out" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p' | tr '\n' ' ')
set -- $ids
if [ $rc -eq 0 ] && [ $# -eq 4 ]; then ok "vdx concept next -k 4"; else not_ok "concept next: $out $err"; set -- a b c d; fi
run concept label dogs "+$1" "+$2" "-$3" "~$4"
[ $rc -eq 0 ] && [ "$out" = '{"changed":3,"action":1,"positive":2,"negative":1,"pending":3,"next_trainer":"seed"}' ] && ok "vdx concept label +ID +ID -ID ~ID" ||
    not_ok "concept label: $out $err"
run concept train dogs
[ $rc -eq 0 ] && printf '%s' "$out" | grep -q '^{"round":1,.*"positive":2,"negative":1,"iters":5,"lr":0.1,"trainer":"seed","losses":\[' &&
    ok "vdx concept train: round 1, five losses" || not_ok "concept train: $out $err"
run concept next dogs -k 4
[ $rc -eq 0 ] && [ -n "$out" ] && ! printf '%s' "$out" | grep -qe "\"$1\"" -e "\"$2\"" -e "\"$3\"" && ok "vdx concept next never offers labelled items" ||
    not_ok "concept next offers a labelled item: $out"
run concept show dogs
[ $rc -eq 0 ] && printf '%s' "$out" | grep -q '"rounds":1' && printf '%s' "$out" | grep -q '"count":46' &&
    ok "vdx concept show: one round, the collection's histogram" || not_ok "concept show: $out $err"
run concept score dogs --top 3
[ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | grep -c '^{"rank":[123],"id"')" = 3 ] && ok "vdx concept score --top 3" ||
    not_ok "concept score: $out $err"
run concept score dogs --threshold 1000
[ $rc -eq 0 ] && [ -z "$out" ] && ok "vdx concept score --threshold above every score lists nothing" ||
    not_ok "concept score --threshold 1000: $out $err"
run concept export dogs --labels
out=$(printf '%s\n' "$out" | tr -d '\r')   # CSV lines end in CRLF (RFC 4180)
[ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | sed -n 1p)" = "id,url,label,time" ] && [ "$(printf '%s\n' "$out" | wc -l)" = 4 ] &&
    ok "vdx concept export --labels: CSV with a header and the 3 labels" || not_ok "export --labels: $out $err"
run concept export dogs --scores --format csv -o dogs.csv
[ $rc -eq 0 ] && [ "$(sed -n 1p dogs.csv | tr -d '\r')" = "rank,id,url,score,probability" ] && [ "$(wc -l < dogs.csv)" = 47 ] &&
    ok "vdx concept export --scores -o FILE: 46 rows" || not_ok "export --scores: $err"
run concept threshold dogs 1000
run concept export dogs --scores --format csv -o above.csv
[ $rc -eq 0 ] && [ "$(wc -l < above.csv)" = 1 ] && ok "vdx concept threshold: the scores export keeps only items above it" ||
    not_ok "export --scores after threshold 1000: $(cat above.csv) $err"
run concept threshold dogs 0
run concept export dogs --classifier -o dogs.json
run concept import dogs.json --name dogs2
[ $rc -eq 0 ] && printf '%s' "$out" | grep -q '^{"name":"dogs2".*"rounds":1' && ok "vdx concept export --classifier, import --name" ||
    not_ok "concept import: $out $err"
run concept rename dogs2 dogs3 && run concept copy dogs3 dogs4 && run concept rm dogs3
run concept list
[ $rc -eq 0 ] && [ "$(printf '%s\n' "$out" | sed 's/^{"name":"\([^"]*\)".*/\1/' | tr '\n' ' ')" = "dogs dogs4 " ] &&
    ok "vdx concept rename, copy, rm, list" || not_ok "concept list after rename/copy/rm: $out $err"
run concept undo dogs
[ $rc -eq 0 ] && printf '%s' "$out" | grep -q '^{"undone":"labels","action":1,"labels_reverted":3,' && ok "vdx concept undo: one label action" ||
    not_ok "concept undo: $out $err"
run concept redo dogs
[ $rc -eq 0 ] && printf '%s' "$out" | grep -q '^{"redone":"labels","action":1,"labels_redone":3,' && ok "vdx concept redo" ||
    not_ok "concept redo: $out $err"
run concept undo dogs --round --revert-labels
[ $rc -eq 0 ] && [ "$out" = '{"undone":"round","round":1,"weight":"initial","labels_reverted":3,"labels_kept":0,"positive":0,"negative":0,"pending":0}' ] &&
    ok "vdx concept undo --round --revert-labels" || not_ok "concept undo --round: $out $err"
run concept export dogs --scores -o "$tmp/missing-dir/dogs.csv"
expect_fail 4 "$tmp/missing-dir/dogs.csv: cannot create: No such file or directory" \
    "an export into a missing directory names the file asked for"
cd - > /dev/null || { echo "not ok - newcomer: cannot return from $tmp"; exit 1; }

# --- mistakes
run search "dog" --colection default
expect_fail 2 "vdx search: unknown option '--colection'" "a misspelled option is named, exit 2"
run search "dog" --collection nope
expect_fail 4 "collection 'nope' does not exist (no $VDX_HOME/collections/nope/collection.db; collections there: default)" \
    "a collection that does not exist: the ones that do are listed"
run search "dog" --where "photo_featurd = 't'"
expect_fail 3 "where: unknown column 'photo_featurd' at byte 0 (columns: id, url," "--where with a misspelled column"
run search "dog" --where "photo_featured = 't"
expect_fail 3 "where: string starting at byte 17 is not closed" "--where with an unclosed string"
run search "dog" --where "photo_featured = 't'; DROP TABLE items"
expect_fail 3 "where: ';' at byte 20 is not allowed" "--where refuses a second statement"
printf 'root:x:0:0\n' > "$tmp/notes.jpg"
run search --image "$tmp/notes.jpg"
expect_fail 3 "unsupported or unrecognised image format (first bytes: 72 6f 6f 74" "search --image with a file that is not an image"
run embed --text
expect_fail 2 "vdx embed: --text needs a value" "vdx embed --text without a value"
run embed --bogus
expect_fail 2 "vdx embed: unknown option '--bogus'" "vdx embed with an unknown option"
run serve --port
expect_fail 2 "vdx serve: --port needs a value" "vdx serve --port without a value"
mkdir -p "$tmp/pics/sub"
cp "$sample/images/$(ls "$sample/images" | head -1)" "$tmp/pics/a.jpg"
echo hello > "$tmp/pics/sub/b.jpg"
: > "$tmp/pics/empty.png"
run ingest folder "$tmp/pics" --collection pics
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -q "^done: 1 ingested, 2 failed"; then
    run info --collection pics --failures
    if printf '%s' "$out" | grep -qF '"id":"sub/b.jpg"' && printf '%s' "$out" | grep -qF 'empty file (0 bytes), not an image'; then
        ok "ingest folder: files that are not images are listed by vdx info --failures with the reason"
    else not_ok "info --failures after a folder ingest: $out $err"; fi
else not_ok "ingest folder with bad files: exit $rc: $out $err"; fi
run ingest folder "$tmp/does-not-exist" --collection pics
expect_fail 4 "$tmp/does-not-exist: No such file or directory" "ingest folder with a wrong path"

# --- the exit status says the kind of mistake (vdx(1) EXIT STATUS), for every command
run index build --collection nope
expect_fail 4 "collection 'nope' does not exist" "vdx index build on a missing collection: exit 4, not 1"
run index build --lists 0
expect_fail 2 "vdx index: --lists wants a number from 1 to 100000000, not '0'" \
    "vdx index --lists 0 names the option, not its value"
run tokenize --model "$tmp/no-model" "a cat"
expect_fail 4 "model '$tmp/no-model': no such directory" "vdx tokenize with a missing model: exit 4"
run search --vector "$sample/images/$(ls "$sample/images" | head -1)"
expect_fail 3 "not a NumPy .npy file (no \\x93NUMPY magic)" "search --vector with a JPEG: invalid input, exit 3"
run search --vector "$tmp"
expect_fail 3 "$tmp: a directory, not a .npy file" "search --vector with a directory says so"
run search "a dog" --text-model "$tmp/no-model"
expect_fail 4 "model '$tmp/no-model': no such directory" "search --text-model with a missing model: exit 4"
run search ""
expect_fail 2 "vdx search: the prompt is empty" "an empty prompt (an unset variable) is refused, not searched"
run search --image ""
expect_fail 2 "vdx search: --image needs a value, not ''" "search --image '' is a usage error (it said 'vdx: : cannot open')"
run embed --image ""
expect_fail 2 "vdx embed: --image needs a path or URL, not ''" "embed --image '' is a usage error"
run ingest folder "" --collection pics
expect_fail 2 "vdx ingest: the source path is empty" "ingest folder '' is a usage error (it said 'vdx: : No such file')"
export VDX_INDEX_NPROBE=all
run search "dog" -k 1
unset VDX_INDEX_NPROBE
expect_fail 2 "vdx: VDX_INDEX_NPROBE='all' is not a number from 1 to 1000000000" \
    "a malformed VDX_INDEX_NPROBE is refused (it was ignored: the default nprobe, silently)"
run search "dog" -k 99999999
expect_fail 2 "vdx search: -k wants a number from 1 to 1000000, not '99999999'" "-k above its maximum says the range"
run ingest urls "$tmp/pics" --collection pics
expect_fail 3 "$tmp/pics: a directory, not a list of URLs" "ingest urls DIR says it is a directory"
run ingest folder "$sample/photos.tsv000" --collection pics
expect_fail 3 "$sample/photos.tsv000: not a directory" "ingest folder FILE: invalid input, exit 3"
run ingest unsplash "$sample/photos.tsv000" --collection pics
expect_fail 3 "not a directory, and not a readable zip archive" "ingest unsplash FILE: invalid input, exit 3"
run ingest folder "$tmp/My" "Pictures" --collection pics
expect_fail 2 "vdx ingest: one source path only; unexpected argument 'Pictures'" "an unquoted path with a space is named"
run ingest folder "$tmp/pics" --collection pics --threads 99999
expect_fail 2 "vdx ingest: --threads wants a number from 1 to 256, not '99999'" \
    "ingest --threads 99999 is refused at once (it spent 23 s failing to start threads)"
run model pull "not a repo!"
expect_fail 3 "'not a repo!' is not a Hugging Face repo id" "model pull with a malformed repo id: exit 3"
run concept next dogs --top 2
expect_fail 2 "vdx concept next: --top is not an option of 'next' (its own: -k" \
    "concept next --top (score's option) is refused, not ignored"
run concept show dogs --threshold 5
expect_fail 2 "vdx concept show: --threshold is not an option of 'show'" "concept show --threshold is refused, not ignored"
run concept list --prompt x
expect_fail 2 "--prompt is an option of 'concept new', not of 'list'" "concept list --prompt is refused"
run concept next dogs extra
expect_fail 2 "vdx concept next: expected NAME; unexpected argument 'extra'" "an extra argument is named"
run concept new "" --prompt "a dog"
expect_fail 3 "concept new: a concept name must not be empty" "an empty concept name: invalid input, exit 3"
run concept new cats --prompt ""
expect_fail 2 "vdx concept new: --prompt is empty" "concept new --prompt '' is refused"
run concept new cats --prompt "a cat"
run concept train cats
expect_fail 3 "concept 'cats' has no labels to train on" "concept train without labels: exit 3, not 1"
run concept export dogs --labels -o ""
expect_fail 2 "vdx concept export: -o needs a file name" "concept export -o '' is a usage error"
run concept import "$tmp"
expect_fail 3 "concept import: $tmp: read error after 0 bytes: Is a directory" \
    "concept import DIR: a directory given as a file is invalid input (3), not an I/O error (7)"

# --- a busy port
"$vdx" serve --port 0 > "$tmp/serve.out" 2> "$tmp/serve.err" &
serve_pid=$!
pids="$pids $serve_pid"
for _ in $(seq 600); do grep -q 'serving' "$tmp/serve.out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.*:\([0-9]*\)\/?token=[0-9a-f]*$/\1/p' "$tmp/serve.out")
if [ -n "$port" ]; then
    run serve --port "$port"
    expect_fail 1 "cannot listen on 127.0.0.1 port $port: " "vdx serve on a port in use fails at once"
    printf '%s' "$err" | grep -qF -- "--port 0 for a free one" && ok "... and says how to pick another port" ||
        not_ok "busy port message gives no way out: $err"
else not_ok "vdx serve --port 0 did not start: $(cat "$tmp/serve.out" "$tmp/serve.err")"; fi
kill "$serve_pid" 2>/dev/null

# --- a second ingest while one runs; Ctrl-C; resume
# the ingest holds after its first commit while $tmp/hold exists (VDX_TEST_HOLD_FILE), so the
# second ingest and Ctrl-C certainly find it running, however loaded the machine
start_fileserver slow --delay-ms 200
touch "$tmp/hold"
VDX_TEST_HOLD_FILE="$tmp/hold" "$vdx" ingest unsplash "$sample" --collection slow --base-url "$cdn" \
    --parallel 1 --no-cache > "$tmp/slow.out" 2> "$tmp/slow.err" &
ingest_pid=$!
pids="$pids $ingest_pid"
for _ in $(seq 600); do grep -q '"stored":[1-9]' "$VDX_HOME/collections/slow/progress.json" 2>/dev/null && break; sleep 0.1; done
run ingest unsplash "$sample" --collection slow --base-url "$cdn"
expect_fail 5 "collection 'slow' is being written by another process (pid $ingest_pid holds" \
    "a second ingest into the same collection is refused with the pid holding it"
kill -INT "$ingest_pid"
wait "$ingest_pid"
irc=$?
if [ $irc -eq 130 ] && grep -q "^stopped: [0-9]* ingested" "$tmp/slow.out"; then ok "Ctrl-C stops an ingest: exit 130, a 'stopped:' summary"
else not_ok "Ctrl-C during ingest: exit $irc: $(cat "$tmp/slow.out")"; fi
stored=$(sed -n 's/^stopped: \([0-9]*\) ingested.*/\1/p' "$tmp/slow.out")
run info --collection slow
printf '%s' "$out" | grep -q "\"count\":$stored," && ok "what was ingested before Ctrl-C is kept ($stored items)" ||
    not_ok "count after Ctrl-C is not $stored: $out"
run ingest unsplash "$sample" --collection slow --base-url "$cdn" --parallel 4
# the photo with no image failed either before Ctrl-C (now skipped) or fails now
if [ $rc -eq 0 ] && printf '%s' "$out" | grep -qe "^done: $((46 - stored)) ingested, 1 failed, $stored skipped" \
                                               -e "^done: $((46 - stored)) ingested, 0 failed, $((stored + 1)) skipped"; then
    ok "re-running resumes: only the $((46 - stored)) missing items are embedded"
else not_ok "resume after Ctrl-C: exit $rc: $out"; fi

[ $failures -eq 0 ]
