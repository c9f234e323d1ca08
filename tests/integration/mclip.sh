#!/bin/sh
# Prompts in any language through an M-CLIP text tower, end to end: `vdx model pull` of an
# M-CLIP repo and of its CLIP from the loopback hub (the mclip-tiny and clip-tiny
# fixtures as M-CLIP/XLM-Roberta-Large-Vit-B-32 and openai/clip-vit-base-patch32), the
# Unsplash sample ingested with the CLIP, then `vdx search --text-model` with Chinese and
# Arabic prompts whose results must equal a brute-force cosine ranking of the `vdx embed`
# vectors (M-CLIP text vector against every stored item's image vector). Also: the known
# pairing accepted and recorded, an unknown one refused unless forced, VDX_TEXT_MODEL,
# `concept new --prompt` in Chinese, and `vdx tokenize` with the golden ids.
set -u
cd "$(dirname "$0")/../.."
build=${VDX_BUILD:-build/release}
shared=${VDX_SHARED:-../shared}
vdx="$build/vdx"
server="$build/tools/fileserver"
if [ ! -d "$shared/fixtures/mclip-tiny" ] || [ ! -d "$shared/data/unsplash-sample" ]; then
    if [ "${CI:-}" = true ]; then echo "not ok - mclip: $shared fixtures missing (CI=true)"; exit 1; fi
    echo "skip - mclip: $shared not found"; exit 0
fi
shared=$(cd "$shared" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-mclip-XXXXXX")
fs_pid="" hub_pid=""
cleanup() {
    for p in $fs_pid $hub_pid; do kill "$p" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
[ -n "${VDX_KEEP_TMP:-}" ] && trap 'for p in $fs_pid $hub_pid; do kill "$p"; done' EXIT || trap cleanup EXIT
failures=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }
check() { what=$1; shift; if "$@"; then ok "$what"; else not_ok "$what"; fi; }

"$server" --root "$shared/data/unsplash-sample/images" --port 0 --port-file "$tmp/fs.port" \
    2>> "$tmp/servers.err" &
fs_pid=$!
"$server" --hub "M-CLIP/XLM-Roberta-Large-Vit-B-32=$shared/fixtures/mclip-tiny" \
    --hub "openai/clip-vit-base-patch32=$shared/fixtures/clip-tiny" \
    --port 0 --port-file "$tmp/hub.port" 2>> "$tmp/servers.err" &
hub_pid=$!
for _ in $(seq 100); do [ -s "$tmp/fs.port" ] && [ -s "$tmp/hub.port" ] && break; sleep 0.05; done
fs="http://127.0.0.1:$(cat "$tmp/fs.port")"
export HF_ENDPOINT="http://127.0.0.1:$(cat "$tmp/hub.port")" HF_HOME="$tmp/hf"
unset HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_TOKEN VDX_STORE VDX_MODEL VDX_TEXT_MODEL
MCLIP=M-CLIP/XLM-Roberta-Large-Vit-B-32
CLIP=openai/clip-vit-base-patch32

# --- model pull: an M-CLIP repo like any other -------------------------------------------
if "$vdx" model pull $MCLIP > "$tmp/pull.out" 2> "$tmp/pull.err"; then
    snap=$(cat "$tmp/pull.out")
    bad=""
    for f in config.json model.safetensors sentencepiece.bpe.model tokenizer_config.json special_tokens_map.json; do
        cmp -s "$snap/$f" "$shared/fixtures/mclip-tiny/$f" || bad="$bad $f"
    done
    [ -e "$snap/vocab.json" ] && bad="$bad (vocab.json pulled)"
    [ -z "$bad" ] && ok "model pull $MCLIP: its files in the HF cache" || not_ok "model pull $MCLIP: differs:$bad"
else
    not_ok "model pull $MCLIP: $(tail -n 2 "$tmp/pull.err" | tr '\n' ' ')"
fi
"$vdx" model pull $CLIP > /dev/null 2> "$tmp/pull2.err" || not_ok "model pull $CLIP: $(tail -n 1 "$tmp/pull2.err")"
"$vdx" model info $MCLIP > "$tmp/info.out" 2> "$tmp/err"
check "model info describes the M-CLIP tower from its tensor shapes" \
    grep -q "^text       M-CLIP (random-xlm-roberta-tiny): XLM-R width 64, 2 layers, 2 heads, MLP 256, 514 positions, vocabulary 8002" "$tmp/info.out"

# --- tokenize: golden ids (fixtures/golden/mclip-tiny/texts.json, prompt 1) ------------------
"$vdx" tokenize --model $MCLIP "一只猫在沙发上睡觉" > "$tmp/tok.json" 2> "$tmp/err"
check "vdx tokenize (SentencePiece): golden ids and pieces" \
    grep -q '"ids":\[0,4,1462,2579,3,474,6443,4175,1399,3,2\],"pieces":\["<s>","▁","一","只","猫","在","沙","发","上","睡觉","</s>"\]' "$tmp/tok.json"
"$vdx" tokenize --model $CLIP "a photo of a cat" > "$tmp/tok2.json" 2> "$tmp/err"
check "vdx tokenize (CLIP BPE): ids and pieces" \
    grep -q '"ids":\[49406,320,1125,539,320,2368,49407\],"pieces":\["<|startoftext|>","a</w>","photo</w>","of</w>","a</w>","cat</w>","<|endoftext|>"\]' "$tmp/tok2.json"

# --- the sample, embedded with the CLIP --------------------------------------------------
C="--data $tmp/data --collection sample"
# fp32, exact decoding: the results are compared with `vdx embed` vectors to 1e-5
"$vdx" ingest unsplash "$shared/data/unsplash-sample" --base-url "$fs/" --model $CLIP $C \
    --precision fp32 --exact-decode \
    > "$tmp/ingest.out" 2> "$tmp/ingest.err" || not_ok "ingest: $(tail -n 2 "$tmp/ingest.err" | tr '\n' ' ')"

# brute_force PROMPT OUT: every stored item (search with a large k lists them all, with
# their urls) ranked by cosine between `vdx embed` vectors: the M-CLIP prompt and each image
brute_force() {
    prompt=$1 out=$2
    "$vdx" search --text-model $MCLIP $C -k 1000 "$prompt" > "$tmp/all.jsonl" 2>> "$tmp/err"
    sed -n 's/.*"url":"[^"]*\/\(photo-[^"]*\)".*/\1/p' "$tmp/all.jsonl" > "$tmp/files"
    set --
    while read -r f; do set -- "$@" --image "$shared/data/unsplash-sample/images/$f"; done < "$tmp/files"
    "$vdx" embed --model $CLIP "$@" > "$tmp/images.jsonl" 2>> "$tmp/err"
    "$vdx" embed --model $MCLIP --text "$prompt" > "$tmp/text.jsonl" 2>> "$tmp/err"
    sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$tmp/all.jsonl" > "$tmp/ids"
    sed 's/.*"embedding":\[//; s/\]}$//' "$tmp/images.jsonl" > "$tmp/vecs"
    t=$(sed 's/.*"embedding":\[//; s/\]}$//' "$tmp/text.jsonl")
    paste -d' ' "$tmp/ids" "$tmp/vecs" | awk -v t="$t" '
        BEGIN { n = split(t, q, ","); for (i = 1; i <= n; i++) qq += q[i] * q[i] }
        { split($2, v, ","); d = 0; vv = 0
          for (i = 1; i <= n; i++) { d += q[i] * v[i]; vv += v[i] * v[i] }
          printf "%s %.7f\n", $1, 1 - d / sqrt(qq * vv) }' | sort -k2,2g -s > "$out"
}
# same_ranking EXPECTED SEARCH_OUTPUT: the same items, and at every rank the distance of
# the brute-force ranking within 1e-5 (so only near-ties may swap places)
same_ranking() {
    sed -n 's/.*"id":"\([^"]*\)".*"dist":\([-0-9.e]*\).*/\1 \2/p' "$2" > "$tmp/got"
    [ "$(wc -l < "$tmp/got")" -eq "$(wc -l < "$1")" ] && [ "$(wc -l < "$1")" -ge 30 ] || return 1
    paste -d' ' "$1" "$tmp/got" | awk '
        { d = $2 - $4; if (d < 0) d = -d; if (d > 1e-5) bad = 1 }
        END { exit bad }' || return 1
    sort "$1" | cut -d' ' -f1 > "$tmp/a"; sort "$tmp/got" | cut -d' ' -f1 > "$tmp/b"
    cmp -s "$tmp/a" "$tmp/b"
}

# --- the known pairing: accepted and recorded ----------------------------------------------
zh="一只猫在沙发上睡觉"
if "$vdx" search --text-model $MCLIP $C "$zh" > "$tmp/zh.jsonl" 2> "$tmp/err"; then
    check "search with a Chinese prompt (M-CLIP, known pairing)" [ "$(wc -l < "$tmp/zh.jsonl")" -eq 9 ]
else
    not_ok "search with a Chinese prompt: $(cat "$tmp/err")"
fi
check "the pairing is recorded in the collection" \
    grep -q '"pairing":[[:space:]]*"known"' "$tmp/data/collections/sample/text-models.json"
: > "$tmp/err"
brute_force "$zh" "$tmp/zh.expected"
"$vdx" search --text-model $MCLIP $C -k 1000 "$zh" > "$tmp/zh.all" 2>> "$tmp/err"
check "Chinese prompt: results equal the brute-force ranking of vdx embed vectors" same_ranking "$tmp/zh.expected" "$tmp/zh.all"
ar="قطة نائمة على الأريكة"
brute_force "$ar" "$tmp/ar.expected"
VDX_TEXT_MODEL=$MCLIP "$vdx" search $C -k 1000 "$ar" > "$tmp/ar.all" 2>> "$tmp/err"
check "Arabic prompt via VDX_TEXT_MODEL: results equal the brute-force ranking" same_ranking "$tmp/ar.expected" "$tmp/ar.all"
check "the two prompts rank differently" sh -c "! cmp -s '$tmp/zh.expected' '$tmp/ar.expected'"
[ -s "$tmp/err" ] && not_ok "no errors along the way: $(head -c 300 "$tmp/err")"

# --- concept new with a Chinese prompt ---------------------------------------------------------
if "$vdx" concept new 猫 --prompt "$zh" --text-model $MCLIP $C > "$tmp/new.json" 2> "$tmp/err" &&
   "$vdx" concept next 猫 $C -k 3 > "$tmp/next.jsonl" 2>> "$tmp/err"; then
    head -n 3 "$tmp/zh.all" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p' > "$tmp/top3"
    sed -n 's/.*"id":"\([^"]*\)".*/\1/p' "$tmp/next.jsonl" > "$tmp/next3"
    check "concept new --prompt (Chinese): its first candidates are the search's top 3" cmp -s "$tmp/top3" "$tmp/next3"
else
    not_ok "concept new --prompt (Chinese): $(cat "$tmp/err")"
fi

# --- an unknown pairing: refused, unless forced (then recorded) --------------------------------
C2="--data $tmp/data --collection local"
"$vdx" ingest unsplash "$shared/data/unsplash-sample" --base-url "$fs/" --limit 5 \
    --model "$shared/fixtures/clip-tiny" $C2 > /dev/null 2> "$tmp/ingest2.err"
if "$vdx" search --text-model "$shared/fixtures/mclip-tiny" $C2 "$zh" > /dev/null 2> "$tmp/err"; then
    not_ok "an unknown pairing is refused"
else
    check "an unknown pairing is refused, naming --force-text-model" \
        grep -q "is not known to share the space of the collection's image model .*--force-text-model" "$tmp/err"
fi
"$vdx" search --text-model "$shared/fixtures/mclip-tiny" --force-text-model $C2 "$zh" > "$tmp/forced.jsonl" 2> "$tmp/err"
check "--force-text-model accepts it" [ "$(wc -l < "$tmp/forced.jsonl")" -eq 5 ]
"$vdx" search --text-model "$shared/fixtures/mclip-tiny" $C2 "$zh" > "$tmp/again.jsonl" 2> "$tmp/err"
check "a recorded pairing needs no force the next time" cmp -s "$tmp/forced.jsonl" "$tmp/again.jsonl"
check "the forced pairing is recorded as such" \
    grep -q '"pairing":[[:space:]]*"forced"' "$tmp/data/collections/local/text-models.json"
# --- precisions of the M-CLIP tower: int8 (and bf16 where the CPU has it) near fp32 -----------
# cos A B: cosine between the embeddings of two `vdx embed` JSON lines
cos() {
    a=$(sed 's/.*"embedding":\[//; s/\]}$//' "$1"); b=$(sed 's/.*"embedding":\[//; s/\]}$//' "$2")
    awk -v a="$a" -v b="$b" 'BEGIN { n = split(a, x, ","); split(b, y, ",")
        for (i = 1; i <= n; i++) { d += x[i] * y[i]; xx += x[i] * x[i]; yy += y[i] * y[i] }
        printf "%.6f\n", d / sqrt(xx * yy) }'
}
"$vdx" embed --model $MCLIP --text "$zh" --precision fp32 > "$tmp/p-fp32.jsonl" 2> "$tmp/err"
"$vdx" embed --model $MCLIP --text "$zh" --precision int8 > "$tmp/p-int8.jsonl" 2>> "$tmp/err"
c=$(cos "$tmp/p-fp32.jsonl" "$tmp/p-int8.jsonl")
check "M-CLIP prompt in int8: cosine $c to fp32 (>= 0.99) and not the fp32 vector" \
    awk -v c="$c" 'BEGIN { exit !(c >= 0.99 && c < 0.9999999) }'
VDX_PRECISION=bf16 "$vdx" embed --model $MCLIP --text "$zh" > "$tmp/p-bf16.jsonl" 2> "$tmp/bf16.err"
c=$(cos "$tmp/p-fp32.jsonl" "$tmp/p-bf16.jsonl")
if grep -q 'avx512_bf16\|amx_bf16' /proc/cpuinfo; then
    check "M-CLIP prompt in bf16 (VDX_PRECISION): cosine $c to fp32 (>= 0.9995), no fallback notice" \
        sh -c "awk -v c='$c' 'BEGIN { exit !(c >= 0.9995 && c < 0.9999999) }' && ! [ -s '$tmp/bf16.err' ]"
else
    check "M-CLIP prompt in bf16 without native bf16: the fallback is said and fp32 runs" \
        sh -c "grep -q 'no native bf16' '$tmp/bf16.err' && cmp -s '$tmp/p-fp32.jsonl' '$tmp/p-bf16.jsonl'"
fi
# auto: the CPU's fastest precision (int8; bf16 with AMX) once its features of this model
# meet that precision's floor against a float32 copy (src/clip/autoprecision.c)
VDX_PRECISION=auto "$vdx" embed --model $MCLIP --text "$zh" > "$tmp/p-auto.jsonl" 2> "$tmp/auto.err"
if grep -q 'amx_bf16' /proc/cpuinfo; then want=bf16; else want=int8; fi
check "M-CLIP prompt under auto runs $want (its floor met: the same vector, nothing said)" \
    sh -c "cmp -s '$tmp/p-$want.jsonl' '$tmp/p-auto.jsonl' && ! [ -s '$tmp/auto.err' ]"
# oneDNN held to AVX2 (ONEDNN_MAX_CPU_ISA) has no bf16 kernel even on a CPU that has bf16:
# bf16 falls back to fp32 with the notice instead of failing to build its matmuls
ONEDNN_MAX_CPU_ISA=AVX2 VDX_PRECISION=bf16 "$vdx" embed --model $MCLIP --text "$zh" > "$tmp/p-avx2.jsonl" 2> "$tmp/avx2.err"
# (AVX2's fp32 kernels may round differently from AVX-512's: the cosine to fp32, not the bytes)
c=$(cos "$tmp/p-fp32.jsonl" "$tmp/p-avx2.jsonl")
check "M-CLIP prompt in bf16 with oneDNN held to AVX2: the fallback is said and fp32 runs (cosine $c)" \
    sh -c "grep -q 'no native bf16' '$tmp/avx2.err' && [ '$c' = 1.000000 ]"

"$vdx" embed --model $MCLIP --image "$shared/data/unsplash-sample/images/photo-1500000000000-3b8f37f8a88b" > /dev/null 2> "$tmp/err"
check "embed refuses an image for an M-CLIP model" grep -q "is an M-CLIP text model: it embeds texts only" "$tmp/err"

[ "$failures" -eq 0 ]
