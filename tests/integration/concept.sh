#!/bin/sh
# The explore loop through the `vdx concept` CLI on the ingested sample collection
# (../shared/data/unsplash-sample embedded with ../shared/fixtures/clip-tiny, images served
# by the loopback fileserver): several rounds of next -> label -> train where no labelled
# item is ever offered again, state identical across processes, undo restoring the
# previous weight and labels, exports, a classifier import (and its refusal by a
# collection of another model), and the exact errors of bad input.
set -u
cd "$(dirname "$0")/../.."
build=${VDX_BUILD:-build/release}
shared=${VDX_SHARED:-../shared}
vdx="$build/vdx"
if [ ! -d "$shared/fixtures/clip-tiny" ] || [ ! -d "$shared/data/unsplash-sample" ]; then
    if [ "${CI:-}" = true ]; then echo "not ok - concept: $shared fixtures missing (CI=true)"; exit 1; fi
    echo "skip - concept: $shared not found"; exit 0
fi
shared=$(cd "$shared" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-concept-XXXXXX")
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
check() { # check WHAT COMMAND...: ok when the command succeeds
    what=$1; shift
    if "$@"; then ok "$what"; else not_ok "$what"; fi
}
ids_of() { sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$1"; }
field() { sed -n "s/.*\"$1\":\([-0-9.e]*\).*/\1/p" | head -n 1; }

# --- the sample collection ------------------------------------------------------------
"$build/tools/fileserver" --root "$shared/data/unsplash-sample/images" --port 0 \
    --port-file "$tmp/fs.port" 2> "$tmp/fs.err" &
server_pid=$!
for _ in $(seq 600); do [ -s "$tmp/fs.port" ] && break; sleep 0.1; done
fs="http://127.0.0.1:$(cat "$tmp/fs.port")"
unset VDX_STORE VDX_MODEL
C="--data $tmp/data --collection sample"
"$vdx" ingest unsplash "$shared/data/unsplash-sample" --base-url "$fs/" \
    --model "$shared/fixtures/clip-tiny" $C > "$tmp/ingest.out" 2> "$tmp/ingest.err"
# --- create ---------------------------------------------------------------------------
"$vdx" concept new dogs --prompt "a photo of a dog" --model "$shared/fixtures/clip-tiny" $C \
    > "$tmp/new.json" 2> "$tmp/new.err"
check "concept new from a prompt" grep -q '"name":"dogs","prompt":"a photo of a dog"' "$tmp/new.json"
check "concept new: the trainer is auto unless given, its next round the seed's" \
    grep -q '"threshold":0,"trainer":"auto","next_trainer":"seed",' "$tmp/new.json"
script -qec "'$vdx' concept history dogs $C" /dev/null 2>&1 | tr -d '\r' > "$tmp/history0.txt"
"$vdx" concept history dogs $C > "$tmp/history0.jsonl" 2>&1
check "history of a new concept: a terminal says there is none yet, JSON lines are none" \
    sh -c "grep -qx \"no label actions yet for 'dogs' (vdx concept label NAME +ID -ID adds one)\" '$tmp/history0.txt' && test ! -s '$tmp/history0.jsonl'"
"$vdx" concept show dogs $C > "$tmp/show0.json" 2> "$tmp/err"
count=$(sed -n 's/.*"evaluation":.*"count":\([0-9]*\).*/\1/p' "$tmp/show0.json")
if [ -z "$count" ] || [ "$count" -lt 30 ]; then
    not_ok "ingest the sample collection: count '$count' ($(tail -n 3 "$tmp/ingest.err" "$tmp/new.err" "$tmp/err" | tr '\n' ' '))"
    exit 1
fi
ok "ingest the sample collection ($count items)"

# --- rounds of next -> label -> train ---------------------------------------------------
: > "$tmp/labelled"
for round in 1 2 3; do
    "$vdx" concept next dogs -k 9 $C > "$tmp/next.$round" 2> "$tmp/err"
    ids_of "$tmp/next.$round" > "$tmp/ids.$round"
    n=$(wc -l < "$tmp/ids.$round")
    [ "$n" -eq 9 ] && ok "round $round: next offers 9 candidates" || not_ok "round $round: next offers $n candidates: $(cat "$tmp/err")"
    again=$(grep -cxF -f "$tmp/labelled" "$tmp/ids.$round" 2>/dev/null)
    [ -s "$tmp/labelled" ] || again=0
    [ "$again" -eq 0 ] && ok "round $round: no labelled item offered again" || not_ok "round $round: $again labelled items offered again"
    if [ "$round" -eq 3 ]; then # the state undo must bring back: before round 3's labels
        "$vdx" concept show dogs --weight $C > "$tmp/before-round3.json" 2>&1
        "$vdx" concept export dogs --labels $C -o "$tmp/labels-before-round3.csv" 2> /dev/null
    fi
    set -- $(awk 'NR <= 3 { print "+" $0; next } { print "-" $0 }' "$tmp/ids.$round")
    "$vdx" concept label dogs "$@" $C > "$tmp/label.$round" 2> "$tmp/err"
    check "round $round: label 3 positive, 6 negative" grep -q '"changed":9' "$tmp/label.$round"
    cat "$tmp/ids.$round" >> "$tmp/labelled"
    "$vdx" concept train dogs $C > "$tmp/train.$round" 2> "$tmp/err"
    check "round $round: train records round $round" grep -q "\"round\":$round," "$tmp/train.$round"
done

check "an auto concept without audit labels trains as the seed's" \
    grep -q '"iters":5,"lr":0.1,"trainer":"seed","losses"' "$tmp/train.1"

# every mode and page after the rounds: still nothing labelled
for mode in nearest boundary random; do
    for page in 0 1; do
        "$vdx" concept next dogs --mode $mode --page $page -k 5 $C > "$tmp/m" 2> "$tmp/err"
        ids_of "$tmp/m" > "$tmp/mids"
        again=$(grep -cxF -f "$tmp/labelled" "$tmp/mids")
        [ "$again" -eq 0 ] && [ -s "$tmp/mids" ] && ok "$mode page $page: unlabelled items only" || not_ok "$mode page $page: $again labelled / $(wc -l < "$tmp/mids") items: $(cat "$tmp/err")"
    done
done

# --- state across processes (each vdx call is a restart) ---------------------------------
"$vdx" concept show dogs --weight $C > "$tmp/show1.json" 2>&1
"$vdx" concept show dogs --weight $C > "$tmp/show2.json" 2>&1
check "show: identical in two processes" cmp -s "$tmp/show1.json" "$tmp/show2.json"
check "show: 3 rounds, 9 positive, 18 negative" grep -q '"positive":9,"negative":18,"pending":0' "$tmp/show1.json"
check "show: evaluation with leave-one-out estimate" grep -q '"method":"leave-one-out"' "$tmp/show1.json"

# --- exports -------------------------------------------------------------------------
"$vdx" concept export dogs --labels $C -o "$tmp/labels.csv" 2> "$tmp/err"
rows=$(wc -l < "$tmp/labels.csv")
[ "$rows" -eq 28 ] && ok "export labels: header + 27 rows" || not_ok "export labels: $rows lines"
check "export labels: RFC 4180 header with CRLF" sh -c "head -n 1 '$tmp/labels.csv' | od -c | grep -q 'e  \\\\r  \\\\n'"
"$vdx" concept export dogs --labels --format jsonl $C > "$tmp/labels.jsonl" 2> "$tmp/err"
check "export labels jsonl: 27 lines with id, url, label, time" \
    test "$(grep -c '^{"id":"[^"]*","url":"[^"]*","label":[01],"time":"[0-9T:Z-]*"}$' "$tmp/labels.jsonl")" -eq 27
"$vdx" concept score dogs --threshold 0 $C > "$tmp/above.jsonl" 2> "$tmp/err"
"$vdx" concept export dogs --scores $C -o "$tmp/scores.csv" 2> "$tmp/err"
check "export scores: one row per item above the threshold" \
    test "$(($(wc -l < "$tmp/scores.csv") - 1))" -eq "$(wc -l < "$tmp/above.jsonl")"
"$vdx" concept score dogs --top 5 $C > "$tmp/top5" 2> "$tmp/err"
check "score --top 5: five ranked items" test "$(grep -c '"rank":' "$tmp/top5")" -eq 5
"$vdx" concept export dogs --classifier $C -o "$tmp/dogs.json" 2> "$tmp/err"
check "export classifier" grep -q '"format":	"vdx-classifier"' "$tmp/dogs.json"

# --- import: same model accepted, another model refused -----------------------------------
"$vdx" concept import "$tmp/dogs.json" --name "dogs again" $C > "$tmp/import.json" 2> "$tmp/err"
check "import into a collection of the same model" grep -q '"name":"dogs again".*"rounds":3' "$tmp/import.json"
w_orig=$(sed -n 's/.*"weight":\(\[[^]]*\]\).*/\1/p' "$tmp/show1.json")
"$vdx" concept show "dogs again" --weight $C > "$tmp/show-import.json" 2>&1
w_imp=$(sed -n 's/.*"weight":\(\[[^]]*\]\).*/\1/p' "$tmp/show-import.json")
[ -n "$w_orig" ] && [ "$w_orig" = "$w_imp" ] && ok "imported weight identical" || not_ok "imported weight differs"
"$vdx" ingest unsplash "$shared/data/unsplash-sample" --base-url "$fs/" --limit 3 \
    --model "$shared/fixtures/clip-tiny-f16" --data "$tmp/data" --collection f16 > /dev/null 2>&1
"$vdx" concept import "$tmp/dogs.json" --data "$tmp/data" --collection f16 > /dev/null 2> "$tmp/err"
check "another model's classifier: exit status 6 (model mismatch)" [ $? -eq 6 ]
check "import refused by a collection of another model" \
    grep -q "^vdx: concept import: $tmp/dogs.json: classifier was trained on vectors of model /[^ ]*/clip-tiny (fingerprint [0-9a-f]*, 32 dims); this collection holds model /[^ ]*/clip-tiny-f16" "$tmp/err"
printf '{"format": "vdx-classifier", "version": 1,, }' > "$tmp/bad.json"
"$vdx" concept import "$tmp/bad.json" $C > /dev/null 2> "$tmp/err"
check "import of malformed JSON says where" grep -q "classifier: not valid JSON at line 1, column 44 (byte 43)" "$tmp/err"

# --- undo ----------------------------------------------------------------------------
# one label action at a time: undo takes back exactly it, redo replays it
extra=$(sed -n 1p "$tmp/ids.3")
"$vdx" concept label dogs "~$extra" $C > /dev/null 2> "$tmp/err"
"$vdx" concept undo dogs $C > "$tmp/undo-labels.json" 2> "$tmp/err"
check "undo takes back one label action" grep -q "\"undone\":\"labels\",.*\"labels_reverted\":1,\"changes\":\[{\"id\":\"$extra\",\"label\":1,\"previous\":null}\]" "$tmp/undo-labels.json"
"$vdx" concept redo dogs $C > "$tmp/redo.json" 2> "$tmp/err"
check "redo replays it" grep -q '"redone":"labels"' "$tmp/redo.json"
"$vdx" concept history dogs $C > "$tmp/history.jsonl" 2> "$tmp/err"
check "history lists the actions, newest first (the clear of $extra)" sh -c "head -1 '$tmp/history.jsonl' | grep -q '\"changes\":\[{\"id\":\"$extra\",\"label\":null,\"previous\":1}\]'"
"$vdx" concept undo dogs $C > /dev/null 2> "$tmp/err"
"$vdx" concept undo dogs --round --revert-labels $C > "$tmp/undo.json" 2> "$tmp/err"
check "undo --round --revert-labels reports round 3, the weight of round 2 and its 9 labels" grep -q '"undone":"round","round":3,"weight":"round 2","labels_reverted":9' "$tmp/undo.json"
"$vdx" concept show dogs --weight $C > "$tmp/after-undo.json" 2>&1
w_before=$(sed -n 's/.*"weight":\(\[[^]]*\]\).*/\1/p' "$tmp/before-round3.json")
w_after=$(sed -n 's/.*"weight":\(\[[^]]*\]\).*/\1/p' "$tmp/after-undo.json")
[ -n "$w_before" ] && [ "$w_before" = "$w_after" ] && ok "undo restores the weight before round 3" || not_ok "undo: weight differs"
"$vdx" concept export dogs --labels $C -o "$tmp/labels-after-undo.csv" 2> /dev/null
check "undo restores the labels before round 3" cmp -s "$tmp/labels-before-round3.csv" "$tmp/labels-after-undo.csv"

# --- errors --------------------------------------------------------------------------
"$vdx" concept label dogs +nope -also-not $C > /dev/null 2> "$tmp/err"; rc=$?  # 4: not found (vdx(1) EXIT STATUS)
[ $rc -eq 4 ] && grep -qx "vdx: concept label: unknown item ids: nope, also-not" "$tmp/err" \
    && ok "unknown ids refused with their names" || not_ok "unknown ids: rc $rc: $(cat "$tmp/err")"
"$vdx" concept copy dogs doomed $C > /dev/null 2>&1
"$vdx" concept rm doomed $C > /dev/null 2>&1
first=$(head -n 1 "$tmp/ids.1")
"$vdx" concept label doomed "+$first" $C > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 4 ] && grep -qx "vdx: concept label: no concept named 'doomed'" "$tmp/err" \
    && ok "labelling a deleted concept is refused" || not_ok "deleted concept: rc $rc: $(cat "$tmp/err")"
"$vdx" concept next dogs --mode sideways $C > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "mode is nearest, boundary, random or audit, not 'sideways'" "$tmp/err" \
    && ok "bad --mode is a usage error" || not_ok "bad mode: rc $rc"
"$vdx" concept new --data "$tmp/nowhere" > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -qx "vdx concept new: expected NAME" "$tmp/err" \
    && ok "a missing argument is a usage error, before any collection is opened" \
    || not_ok "missing NAME: rc $rc: $(cat "$tmp/err")"
"$vdx" concept --help > "$tmp/help" 2>&1
check "--help" grep -q "usage: vdx concept <command>" "$tmp/help"
"$vdx" concept list $C > "$tmp/list" 2>&1
check "list shows both concepts" test "$(grep -c '"name":' "$tmp/list")" -eq 2

# --- calibration and the audit sample ----------------------------------------------------
check "show: the round's calibration, estimates unknown before an audit" \
    sh -c "grep -q '\"calibration\":{\"method\":\"platt\",\"a\":' '$tmp/show1.json' &&
           grep -q '\"estimates\":{\"status\":\"unknown\",\"audit_labels\":0,.*\"positives\":null,\"precision\":null,\"recall\":null}' '$tmp/show1.json'"
"$vdx" concept export dogs --labels --format jsonl $C > "$tmp/census.jsonl" 2> "$tmp/err"
ids_of "$tmp/census.jsonl" > "$tmp/census-ids"
census=$(wc -l < "$tmp/census-ids")
census_pos=$(grep -c '"label":1' "$tmp/census.jsonl")
"$vdx" concept next dogs --mode audit -k 6 $C > "$tmp/audit" 2> "$tmp/err"
ids_of "$tmp/audit" > "$tmp/aids"
n=$(wc -l < "$tmp/aids")
again=$(grep -cxF -f "$tmp/census-ids" "$tmp/aids")
[ "$n" -eq 6 ] && [ "$again" -eq 0 ] && ok "next --mode audit: 6 unlabelled items" \
    || not_ok "audit: $n items, $again labelled: $(cat "$tmp/err")"
"$vdx" concept next dogs --mode audit -k 6 $C 2> /dev/null | ids_of /dev/stdin > "$tmp/aids2"
check "the audit sample stays until labelled" cmp -s "$tmp/aids" "$tmp/aids2"
set -- $(awk '{ print "-" $0 }' "$tmp/aids")
"$vdx" concept label dogs "$@" $C > /dev/null 2> "$tmp/err"
"$vdx" concept threshold dogs 1000 $C > /dev/null 2> "$tmp/err"
"$vdx" concept show dogs $C > "$tmp/show-audit.json" 2> "$tmp/err"
# nothing above the threshold and 6 negative audit labels: the estimate of positives is
# the census's positives, its interval up to census + (count - census) x Wilson(0 of n),
# n the labels' effective number: the pool of count - census items is cut at ranks
# ceil(1%) and ceil(10%), the 6 draws shared as calib_strata shares them, each weighing
# its stratum's size over its draws, and n = (sum w)^2 / sum w^2 = pool^2 / sum size^2/take
want=$(awk -v n="$count" -v c="$census" -v p="$census_pos" 'function ceil(x) { return x == int(x) ? x : int(x) + 1 }
BEGIN {
    pool = n - c; b1 = ceil(pool / 100); b2 = ceil(pool / 10)
    size[0] = b1; size[1] = b2 - b1; size[2] = pool - b2; left = 6; sq = 0
    for (h = 0; h < 3; h++) {
        share = ceil(left / (3 - h)); take = share < size[h] ? share : size[h]; left -= take
        if (take > 0) sq += size[h] * size[h] / take
    }
    k = pool * pool / sq; z = 1.96; hi = (z * z / k) / (1 + z * z / k)
    printf "%.4f %.4f", p, p + pool * hi }')
got=$(sed -n "s/.*\"estimates\":{\"status\":\"estimated\",\"audit_labels\":6,\"census_labels\":$census,[^}]*\"positives\":{\"value\":\([0-9.e+-]*\),\"lo\":\([0-9.e+-]*\),\"hi\":\([0-9.e+-]*\)},\"precision\":null.*/\1 \3/p" "$tmp/show-audit.json")
[ -n "$got" ] && [ "$(echo "$got" | awk '{ printf "%.4f %.4f", $1, $2 }')" = "$want" ] \
    && ok "audited estimate of positives: $census_pos [.., Wilson bound $want]" \
    || not_ok "audited positives '$got', want $want: $(grep -o '"estimates":{[^}]*}[^}]*}' "$tmp/show-audit.json")"
"$vdx" concept fit-threshold dogs --source calibration $C > "$tmp/fit.json" 2> "$tmp/err"
check "fit-threshold --source calibration: expected precision over the collection" \
    grep -q '"source":"calibration","items":[0-9]*,"precision":' "$tmp/fit.json"
"$vdx" concept fit-threshold dogs --source guess $C > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "source is auto, calibration or labels, not 'guess'" "$tmp/err" \
    && ok "bad --source is a usage error" || not_ok "bad source: rc $rc: $(cat "$tmp/err")"


# --- the anchored trainer (an option; docs/explore.md) ----------------------------------
"$vdx" concept new cats --prompt "a photo of a cat" --trainer anchored \
    --model "$shared/fixtures/clip-tiny" $C > "$tmp/cats.json" 2> "$tmp/err"
check "concept new --trainer anchored" grep -q '"threshold":0,"trainer":"anchored"' "$tmp/cats.json"
"$vdx" concept new bad --prompt "x" --trainer sgd --model "$shared/fixtures/clip-tiny" $C \
    > /dev/null 2> "$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q "trainer is seed, anchored or auto, not 'sgd'" "$tmp/err" \
    && ok "a bad --trainer is a usage error" || not_ok "bad trainer: rc $rc: $(cat "$tmp/err")"
"$vdx" concept next cats -k 6 $C 2> /dev/null | ids_of /dev/stdin > "$tmp/cat-ids"
set -- $(awk 'NR <= 2 { print "+" $0 } NR > 2 { print "-" $0 }' "$tmp/cat-ids")
"$vdx" concept label cats "$@" $C > /dev/null 2> "$tmp/err"
"$vdx" concept train cats $C > "$tmp/cat-round.json" 2> "$tmp/err"
check "an anchored round: 100 steps, lr 0, its bias" \
    grep -q '"iters":100,"lr":0,"trainer":"anchored","bias":-*[0-9]' "$tmp/cat-round.json"
"$vdx" concept trainer cats seed $C > "$tmp/out" 2> "$tmp/err"
"$vdx" concept train cats $C > "$tmp/cat-round2.json" 2> "$tmp/err"
check "concept trainer NAME seed: the next round is the seed's" \
    grep -q '"iters":5,"lr":0.1,"trainer":"seed","losses"' "$tmp/cat-round2.json"
"$vdx" concept trainer cats newton $C > /dev/null 2> "$tmp/err"; rc=$?
"$vdx" concept show cats $C > "$tmp/cat-show.json" 2> /dev/null
[ $rc -eq 2 ] && grep -q "the trainer is seed, anchored or auto, not 'newton'" "$tmp/err" &&
    grep -q '"trainer":"seed"' "$tmp/cat-show.json" \
    && ok "an unknown trainer is a usage error (exit 2, as new --trainer) and changes nothing" \
    || not_ok "trainer newton: rc $rc: $(cat "$tmp/err")"

# --- the default trainer, auto: the seed's until 20 audit labels, then anchored ----------
"$vdx" concept new birds --prompt "a photo of a bird" --model "$shared/fixtures/clip-tiny" $C \
    > /dev/null 2> "$tmp/err"
"$vdx" concept next birds -k 6 $C 2> /dev/null | ids_of /dev/stdin > "$tmp/bird-ids"
set -- $(awk 'NR <= 2 { print "+" $0 } NR > 2 { print "-" $0 }' "$tmp/bird-ids")
"$vdx" concept label birds "$@" $C > /dev/null 2> "$tmp/err"
script -qec "'$vdx' concept show birds $C" /dev/null 2>&1 | tr -d '\r' > "$tmp/bird-show.txt"
check "show (terminal): auto, the next round the seed's" \
    grep -q '^trainer   auto (next round: seed; anchored from 20 audit labels)$' "$tmp/bird-show.txt"
"$vdx" concept next birds --mode audit -k 20 $C 2> /dev/null | ids_of /dev/stdin > "$tmp/bird-audit"
set -- $(awk '{ print "-" $0 }' "$tmp/bird-audit")
"$vdx" concept label birds "$@" $C > "$tmp/bird-label.json" 2> "$tmp/err"
[ "$(wc -l < "$tmp/bird-audit")" -eq 20 ] && grep -q '"next_trainer":"anchored"' "$tmp/bird-label.json" \
    && ok "20 audit labels: the label result says the next round is anchored" \
    || not_ok "20 audit labels: $(cat "$tmp/bird-label.json" "$tmp/err")"
script -qec "'$vdx' concept show birds $C" /dev/null 2>&1 | tr -d '\r' > "$tmp/bird-show.txt"
check "show (terminal): auto, the next round anchored" \
    grep -q '^trainer   auto (next round: anchored, with 20 or more audit labels)$' "$tmp/bird-show.txt"
"$vdx" concept train birds $C > "$tmp/bird-round.json" 2> "$tmp/err"
check "an auto concept with 20 audit labels trains anchored: 100 steps, lr 0, its bias" \
    grep -q '"round":1,.*"iters":100,"lr":0,"trainer":"anchored","bias":-*[0-9]' "$tmp/bird-round.json"
"$vdx" concept trainer birds seed $C > /dev/null 2> "$tmp/err"
"$vdx" concept trainer birds auto $C > "$tmp/out" 2> "$tmp/err"
"$vdx" concept show birds $C > "$tmp/bird-show.json" 2> "$tmp/err"
grep -q '"trainer":"auto"' "$tmp/out" &&
    grep -q '"trainer":"auto","next_trainer":"anchored",' "$tmp/bird-show.json" \
    && ok "concept trainer NAME auto: back to auto" \
    || not_ok "trainer auto: $(cat "$tmp/out" "$tmp/err")"
"$vdx" concept export birds --classifier -o "$tmp/birds.classifier.json" $C 2> "$tmp/err"
"$vdx" concept import "$tmp/birds.classifier.json" --name "birds again" $C > /dev/null 2> "$tmp/err"
"$vdx" concept show "birds again" $C > "$tmp/birds-again.json" 2> "$tmp/err"
grep -q '"trainer":[[:space:]]*"auto"' "$tmp/birds.classifier.json" &&
    grep -q '"trainer":"auto","next_trainer":"seed",' "$tmp/birds-again.json" \
    && ok "export + import keep auto (the audit sample stays behind: next round the seed's)" \
    || not_ok "export/import auto: $(cat "$tmp/err")"

[ "$failures" -eq 0 ]
