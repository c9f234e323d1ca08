#!/bin/sh
# `vdx embed` end to end with the clip-tiny model: image files and URLs and texts give
# the golden transformers features (so the CLI prints the library's vectors), in the order
# given; --normalize, --format npy, --batch; the truncation warning; errors and usage
# (an error prints no vector at all).
set -u
cd "$(dirname "$0")/../.."
B=${VDX_BUILD:-build/release}
VDX="$B/vdx"
SHARED=${VDX_SHARED:-../shared}
MODEL="$SHARED/fixtures/clip-tiny"
GOLDEN="$SHARED/fixtures/golden/clip-tiny"
if [ ! -d "$MODEL" ] || [ ! -d "$GOLDEN" ]; then
    if [ "${CI:-}" = true ]; then echo "not ok - embed: $SHARED fixtures missing (CI=true)"; exit 1; fi
    echo "skip - embed: $SHARED/fixtures not found"; exit 0
fi
T=$(mktemp -d "${TMPDIR:-/tmp}/vdx-embed-XXXXXX")
SERVER_PID=""
cleanup() {
    [ -z "$SERVER_PID" ] || kill "$SERVER_PID" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$T"
}
trap cleanup EXIT
failed=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failed=$((failed + 1)); }
DIM=32

embed() { "$VDX" embed --model "$MODEL" "$@"; }
# line N of a JSON-lines file → its embedding, one number per line
vector_of() { sed -n "${2}p" "$1" | sed 's/.*"embedding":\[//; s/\]}$//' | tr ',' '\n'; }
# row R of an N×32 float32 file → one number per line
golden_row() { od -An -v -f -j $(($2 * DIM * 4)) -N $((DIM * 4)) "$1" | tr -s ' \t' '\n\n' | sed '/^$/d'; }
# close A B TOL: max|a-b| <= TOL * max|b| over paired lines, and as many values as DIM
close() {
    paste "$1" "$2" | awk -v tol="$3" -v dim="$DIM" '
        { d = $1 - $2; if (d < 0) d = -d; if (d > md) md = d
          g = $2 < 0 ? -$2 : $2; if (g > mg) mg = g; n++ }
        END { if (n != dim || !(md <= tol * mg)) { printf "n=%d max|d|/max|g|=%g", n, (mg ? md / mg : md); exit 1 } }'
}

# --- images from files, in order, against the golden features -----------------------
rows="0 7 11"
names="landscape_640x480.jpg tall_300x1500.webp progressive_800x533.jpg"
set -- $names
if embed --image "$GOLDEN/images/$1" --image "$GOLDEN/images/$2" --image "$GOLDEN/images/$3" > "$T/images.jsonl" 2> "$T/err"; then
    i=1 bad=""
    for r in $rows; do
        vector_of "$T/images.jsonl" $i > "$T/got"
        golden_row "$GOLDEN/image_features.f32" "$r" > "$T/want"
        why=$(close "$T/got" "$T/want" 1e-5) || bad="$bad line $i (row $r): $why;"
        i=$((i + 1))
    done
    kinds=$(grep -c '^{"kind":"image","input":"[^"]*/images/[a-z0-9_]*\.[a-z]*","embedding":\[' "$T/images.jsonl")
    [ "$kinds" = 3 ] || bad="$bad $kinds well-formed image lines;"
    [ -z "$bad" ] && ok "image files: golden features, in order" || not_ok "image files: $bad"
else
    not_ok "image files: exit status $?: $(cat "$T/err")"
fi

# --- texts interleaved with an image ---------------------------------------------------
if embed --text "a house by the lake" --image "$GOLDEN/images/$1" --text "a photo of a cat" > "$T/mixed.jsonl" 2> "$T/err"; then
    bad=""
    vector_of "$T/mixed.jsonl" 1 > "$T/got"; golden_row "$GOLDEN/text_features.f32" 0 > "$T/want"
    why=$(close "$T/got" "$T/want" 1e-5) || bad="$bad text 1: $why;"
    vector_of "$T/mixed.jsonl" 3 > "$T/got"; golden_row "$GOLDEN/text_features.f32" 1 > "$T/want"
    why=$(close "$T/got" "$T/want" 1e-5) || bad="$bad text 2: $why;"
    vector_of "$T/mixed.jsonl" 2 > "$T/got"; vector_of "$T/images.jsonl" 1 > "$T/want"
    # a batch of one against a batch of three: equal up to summation order
    why=$(close "$T/got" "$T/want" 1e-6) || bad="$bad image line differs from the image-only run: $why;"
    order=$(sed 's/^{"kind":"\([a-z]*\)","input":"\([^"]*\)".*/\1:\2/' "$T/mixed.jsonl" | tr '\n' '|')
    case "$order" in
    "text:a house by the lake|image:$GOLDEN/images/$1|text:a photo of a cat|") ;;
    *) bad="$bad order/inputs: $order" ;;
    esac
    [ -z "$bad" ] && ok "texts and images interleaved: golden, in the order given" || not_ok "interleaved: $bad"
else
    not_ok "interleaved: exit status $?: $(cat "$T/err")"
fi

# --- JSON escaping of the input ------------------------------------------------------------
if embed --text 'say "hi" \ now' > "$T/quote.jsonl" 2> "$T/err" &&
    grep -q '^{"kind":"text","input":"say \\"hi\\" \\\\ now","embedding":\[' "$T/quote.jsonl"; then
    ok "inputs are JSON-escaped"
else
    not_ok "inputs are JSON-escaped: $(head -c 200 "$T/quote.jsonl") $(cat "$T/err")"
fi

# --- --normalize -----------------------------------------------------------------------
if embed --normalize --image "$GOLDEN/images/$1" > "$T/norm.jsonl" 2> "$T/err"; then
    vector_of "$T/norm.jsonl" 1 > "$T/unit"
    vector_of "$T/images.jsonl" 1 > "$T/raw"
    why=$(paste "$T/unit" "$T/raw" | awk '{ s += $2 * $2; u += $1 * $1; a[NR] = $1; b[NR] = $2 }
        END { n = sqrt(s); for (i = 1; i <= NR; i++) { d = a[i] - b[i] / n; if (d < 0) d = -d; if (d > md) md = d }
              if (u < 0.999999 || u > 1.000001 || md > 1e-7) { printf "|v|^2=%.9f max|d|=%g", u, md; exit 1 } }') &&
        ok "--normalize: unit length, the raw vector divided by its norm" || not_ok "--normalize: $why"
else
    not_ok "--normalize: exit status $?: $(cat "$T/err")"
fi

# --- --format npy ------------------------------------------------------------------------
if embed --format npy --image "$GOLDEN/images/$1" --text "a house by the lake" > "$T/out.npy" 2> "$T/err"; then
    bad=""
    size=$(wc -c < "$T/out.npy" | tr -d ' ')
    [ "$size" = $((128 + 2 * DIM * 4)) ] || bad="$bad size $size;"
    head -c 128 "$T/out.npy" | grep -q "{'descr': '<f4', 'fortran_order': False, 'shape': (2, $DIM), }" || bad="$bad header;"
    [ "$(head -c 6 "$T/out.npy" | od -An -tx1 | tr -d ' ')" = 934e554d5059 ] || bad="$bad magic;"
    od -An -v -f -j 128 -N $((DIM * 4)) "$T/out.npy" | tr -s ' \t' '\n\n' | sed '/^$/d' > "$T/got"
    vector_of "$T/images.jsonl" 1 > "$T/want"
    why=$(close "$T/got" "$T/want" 1e-6) || bad="$bad image row: $why;"
    od -An -v -f -j $((128 + DIM * 4)) -N $((DIM * 4)) "$T/out.npy" | tr -s ' \t' '\n\n' | sed '/^$/d' > "$T/got"
    golden_row "$GOLDEN/text_features.f32" 0 > "$T/want"
    why=$(close "$T/got" "$T/want" 1e-5) || bad="$bad text row: $why;"
    [ -z "$bad" ] && ok "--format npy: header, shape and rows" || not_ok "--format npy:$bad"
else
    not_ok "--format npy: exit status $?: $(cat "$T/err")"
fi

# --- --batch: batches of 2 give the vectors of one batch of 5 ----------------------------
set -- "$GOLDEN"/images/*.png
imgs=""
for f in "$@"; do imgs="$imgs --image $f"; done
if embed $imgs > "$T/b32.jsonl" 2> "$T/err" && embed --batch 2 $imgs > "$T/b2.jsonl" 2>> "$T/err"; then
    n=$(wc -l < "$T/b32.jsonl" | tr -d ' ') bad=""
    [ "$n" = "$#" ] || bad="$bad $n lines for $# images;"
    i=1
    while [ "$i" -le "$n" ]; do
        vector_of "$T/b2.jsonl" $i > "$T/got"; vector_of "$T/b32.jsonl" $i > "$T/want"
        why=$(close "$T/got" "$T/want" 1e-6) || bad="$bad line $i: $why;"
        i=$((i + 1))
    done
    [ -z "$bad" ] && ok "--batch 2 equals one batch ($n images)" || not_ok "--batch:$bad"
else
    not_ok "--batch: $(cat "$T/err")"
fi

# --- image URLs (loopback server) ----------------------------------------------------------
"$B/tools/fileserver" --root "$GOLDEN/images" --port 0 --port-file "$T/port" 2>/dev/null &
SERVER_PID=$!
i=0
# wait for the port (up to 60 s: a loaded machine is slow, never a reason to skip)
while [ ! -s "$T/port" ] && [ $i -lt 1200 ] && kill -0 "$SERVER_PID" 2>/dev/null; do sleep 0.05; i=$((i + 1)); done
PORT=$(cat "$T/port" 2>/dev/null)
if [ -z "$PORT" ]; then
    not_ok "image URL: the loopback file server did not start"
else
    url="http://127.0.0.1:$PORT/landscape_640x480.jpg"
    if embed --image "$url" > "$T/url.jsonl" 2> "$T/err"; then
        vector_of "$T/url.jsonl" 1 > "$T/got"; vector_of "$T/images.jsonl" 1 > "$T/want"
        # the file's vector came from a batch of three: equal up to summation order
        if why=$(close "$T/got" "$T/want" 1e-6) && grep -q "\"input\":\"$url\"" "$T/url.jsonl"; then
            ok "image URL: the vector of the same file"
        else
            not_ok "image URL: differs from the file's vector: $why"
        fi
    else
        not_ok "image URL: exit status $?: $(cat "$T/err")"
    fi
    missing="http://127.0.0.1:$PORT/no-such-image.jpg"
    embed --image "$missing" > "$T/out" 2> "$T/err"
    rc=$?
    if [ $rc = 1 ] && grep -q "^vdx: $missing: HTTP 404" "$T/err" && [ ! -s "$T/out" ]; then
        ok "image URL: 404 is an error naming the URL"
    else
        not_ok "image URL 404: status $rc, stderr: $(cat "$T/err")"
    fi
fi

# --- truncation warning ------------------------------------------------------------------
long=$(awk 'BEGIN { for (i = 0; i < 100; i++) printf "dog "; }')
if embed --text "$long" > "$T/long.jsonl" 2> "$T/err" && grep -q "^vdx embed: warning: text 1 (\"dog dog .*truncated" "$T/err" &&
    [ "$(wc -l < "$T/long.jsonl" | tr -d ' ')" = 1 ]; then
    ok "a text over 77 tokens is embedded with a warning"
else
    not_ok "truncation warning: $(cat "$T/err")"
fi
if embed --text "a photo of a cat" > /dev/null 2> "$T/err" && [ ! -s "$T/err" ]; then
    ok "a short text gives no warning"
else
    not_ok "a short text printed: $(cat "$T/err")"
fi

# --- patch 16, 336 px, exact GELU: embed, ingest and search against its goldens -----------
# (the fixture README: nothing about 224, patch 32 or QuickGELU may be hard-coded)
P16="$SHARED/fixtures/clip-tiny-p16-336-gelu"
P16G="$SHARED/fixtures/golden/clip-tiny-p16-336-gelu"
if [ ! -d "$P16" ] || [ ! -d "$P16G" ]; then
    not_ok "p16/336/gelu: $P16 or $P16G missing"
else
    # image rows 0 and 3, text row 0 of the p16 goldens
    if "$VDX" embed --model "$P16" --image "$P16G/images/landscape_640x480.jpg" \
        --image "$P16G/images/odd_225x301.jpg" --text "a house by the lake" > "$T/p16.jsonl" 2> "$T/err"; then
        bad=""
        vector_of "$T/p16.jsonl" 1 > "$T/got"; golden_row "$P16G/image_features.f32" 0 > "$T/want"
        why=$(close "$T/got" "$T/want" 1e-5) || bad="$bad image row 0: $why;"
        vector_of "$T/p16.jsonl" 2 > "$T/got"; golden_row "$P16G/image_features.f32" 3 > "$T/want"
        why=$(close "$T/got" "$T/want" 1e-5) || bad="$bad image row 3: $why;"
        vector_of "$T/p16.jsonl" 3 > "$T/got"; golden_row "$P16G/text_features.f32" 0 > "$T/want"
        why=$(close "$T/got" "$T/want" 1e-5) || bad="$bad text row 0: $why;"
        [ -z "$bad" ] && ok "p16/336/gelu: vdx embed gives the golden image and text features" || not_ok "p16/336/gelu embed: $bad"
    else
        not_ok "p16/336/gelu embed: exit status $?: $(cat "$T/err")"
    fi
    # ingest the 20 golden images, then search by the prompt: hits and distances in the order
    # of 1 - cosine between the golden text row 0 and the golden image rows. Ingest's default
    # precision is auto (int8 on most CPUs, docs/clip-engine.md) and it may decode large JPEGs reduced:
    # the exact path is asked for, as a user keeping Hugging Face's vectors would
    "$VDX" ingest folder "$P16G/images" --data "$T/p16data" --collection p16 --model "$P16" \
        --precision fp32 --exact-decode > "$T/p16-ingest.out" 2> "$T/p16-ingest.err"
    rc=$?
    "$VDX" search --data "$T/p16data" --collection p16 --model "$P16" -k 20 --json \
        "a house by the lake" > "$T/p16-search.jsonl" 2> "$T/p16-search.err"
    src=$?
    # NAME ROW pairs of the manifest
    # NAME ROW pairs of the manifest, without gray16_200x150.png: Pillow clips 16-bit grey
    # to white where vdx keeps the high byte (README, "Exactness"; test_golden_image.c), so its golden differs
    awk -F'"' '/"name":/ { n = $4 } /"row":/ { gsub(/[^0-9]/, "", $3); print n, $3 }' "$P16G/manifest.json" |
        grep -v '^gray16_' > "$T/p16-rows"
    golden_row "$P16G/text_features.f32" 0 > "$T/p16-text"
    : > "$T/p16-want"
    while read -r name row; do
        golden_row "$P16G/image_features.f32" "$row" | paste - "$T/p16-text" |
            awk -v n="$name" '{ d += $1 * $2; a += $1 * $1; b += $2 * $2 } END { printf "%s %.9f\n", n, 1 - d / sqrt(a * b) }' >> "$T/p16-want"
    done < "$T/p16-rows"
    sort -k2,2g "$T/p16-want" > "$T/p16-want-sorted"
    sed 's/^{"id":"\([^"]*\)".*"dist":\([-0-9.e+]*\).*/\1 \2/' "$T/p16-search.jsonl" | grep -v '^gray16_' > "$T/p16-got"
    # same ids in the same order (ties within 1e-6 may swap), distances within 1e-5
    cmp=$(paste -d' ' "$T/p16-got" "$T/p16-want-sorted" | awk '
        { n++; d = $2 - $4; if (d < 0) d = -d; if (d > 1e-5) { print "hit " n ": " $0; exit }
          if ($1 != $3) { e = $4 - prev; if (e < 0) e = -e; if (e > 1e-6) { print "hit " n " is " $1 ", golden order " $3; exit } }
          prev = $4 }
        END { if (n != 19) print n " hits of 19" }')
    if [ $rc -eq 0 ] && [ $src -eq 0 ] && grep -q "^done: 20 ingested, 0 failed" "$T/p16-ingest.out" && [ -z "$cmp" ]; then
        ok "p16/336/gelu: ingest of the 20 golden images, search ranks them as the golden features do"
    else
        not_ok "p16/336/gelu ingest/search: exit $rc/$src, $cmp: $(head -c 300 "$T/p16-ingest.out" "$T/p16-ingest.err" "$T/p16-search.err")"
    fi
    # search by an image: the same image first, at distance ~0
    "$VDX" search --data "$T/p16data" --collection p16 --model "$P16" -k 1 --json \
        --image "$P16G/images/odd_225x301.jpg" > "$T/p16-img.jsonl" 2> "$T/err"
    if sed -n 's/^{"id":"odd_225x301.jpg".*"dist":\([-0-9.e+]*\).*/\1/p' "$T/p16-img.jsonl" |
        awk '{ d = $1 < 0 ? -$1 : $1; ok = d < 1e-6 } END { exit !(NR == 1 && ok) }'; then
        ok "p16/336/gelu: search by an image finds that image at distance 0"
    else
        not_ok "p16/336/gelu search --image: $(cat "$T/p16-img.jsonl" "$T/err" | head -c 300)"
    fi
fi

# --- errors and usage ----------------------------------------------------------------------
expect() { # expect STATUS STDERR-REGEX WHAT -- ARGS...
    want=$1 pattern=$2 what=$3
    shift 4
    "$VDX" embed "$@" > "$T/out" 2> "$T/err"
    rc=$?
    if [ "$rc" = "$want" ] && grep -q -- "$pattern" "$T/err" && [ ! -s "$T/out" ]; then
        ok "$what"
    else
        not_ok "$what: status $rc (wanted $want), stderr: $(head -c 300 "$T/err")"
    fi
}
expect 4 "^vdx: $T/none.jpg: cannot open" "a missing image file is an error naming it (not found: 4)" -- --model "$MODEL" --image "$T/none.jpg"
printf 'not an image at all' > "$T/fake.jpg"
expect 3 "^vdx: .*$T/fake.jpg" "a file that is not an image is an error naming it (invalid input: 3)" -- --model "$MODEL" --image "$T/fake.jpg"
expect 2 "nothing to embed" "no input is a usage error" -- --model "$MODEL"
expect 2 "^vdx embed: --format is jsonl or npy, not 'csv'" "an unknown --format is a usage error" -- --format csv --text x
expect 2 "^vdx embed: --batch wants an integer from 1 to 4096, not '0'" "--batch 0 is a usage error" -- --batch 0 --text x
expect 2 "^vdx embed: unexpected argument 'cat.jpg'" "a bare argument is a usage error" -- --model "$MODEL" cat.jpg
expect 4 "^vdx: model '$T/nomodel': no such directory" "a missing model directory is an error naming it (exit 4, not found)" -- --model "$T/nomodel" --text x
if "$VDX" embed --help > "$T/out" 2>&1 && grep -q "^usage: vdx embed" "$T/out" && grep -q -- "--format F" "$T/out"; then
    ok "--help"
else
    not_ok "--help: $(head -c 200 "$T/out")"
fi

# vectors of one precision are searched with queries of another: the 20 golden images ingested
# in fp32 and in bf16, each searched with fp32 and int8 prompts, give the same top hit as fp32
# with fp32, at a distance within 0.01 of it
if grep -q 'avx512_bf16\|amx_bf16' /proc/cpuinfo; then
    G="$SHARED/fixtures/golden/clip-tiny/images"
    for p in fp32 bf16; do
        "$VDX" ingest folder "$G" --data "$T/mixed" --collection "$p" --model "$MODEL" \
            --precision "$p" > /dev/null 2> "$T/mixed-$p.err" || not_ok "ingest in $p: $(cat "$T/mixed-$p.err")"
    done
    bad=""
    for prompt in "a photo of a cat" "a house by the lake" "a red square"; do
        want=""
        for c in fp32 bf16; do
            for q in fp32 int8; do
                got=$("$VDX" search --data "$T/mixed" --collection "$c" --model "$MODEL" --precision "$q" \
                    -k 1 "$prompt" 2>> "$T/mixed.err" | sed 's/.*"id":"\([^"]*\)".*"dist":\([-0-9.e]*\).*/\1 \2/')
                [ -z "$want" ] && want=$got
                echo "$want $got" | awk '{ d = $2 - $4; if (d < 0) d = -d; exit !($1 == $3 && NF == 4 && d <= 0.01) }' ||
                    bad="$bad [$prompt: $c vectors, $q prompt: '$got', fp32/fp32: '$want']"
            done
        done
    done
    [ -z "$bad" ] && ok "bf16 and fp32 vectors searched with fp32 and int8 prompts: the same top hit as fp32/fp32 (3 prompts)" ||
        not_ok "mixed precisions:$bad $(head -c 300 "$T/mixed.err")"
else
    echo "skip - mixed precisions: CPU lacks avx512_bf16"
fi

# a model whose output is not finite (a visual projection of 3e38s overflows to
# infinities) is refused with the corrupt-data status, naming the input; a file that is
# no image with the invalid-input status. An image_std of 1e-45, which divided the pixels
# into infinities, is now refused when the model loads (test_image_errors).
cp -r "$MODEL" "$T/nan-model" && chmod -R u+w "$T/nan-model"
python3 -c 'import json, struct, sys
p = sys.argv[1] + "/model.safetensors"; f = open(p, "r+b")
n = struct.unpack("<Q", f.read(8))[0]; t = json.loads(f.read(n))["visual_projection.weight"]
begin, end = t["data_offsets"]; f.seek(8 + n + begin)
f.write(struct.pack("<f", 3e38) * ((end - begin) // 4))' "$T/nan-model"
image="$SHARED/fixtures/golden/clip-tiny/images/exact_224x224.png"
"$VDX" embed --model "$T/nan-model" --image "$image" > "$T/nan.out" 2> "$T/nan.err"
rc=$?
[ $rc -eq 10 ] && [ ! -s "$T/nan.out" ] && grep -q "input 1 (.*exact_224x224.png): the model's vector holds an infinity at element" "$T/nan.err" &&
    ok "a non-finite vector is refused (exit 10), nothing printed" || not_ok "non-finite vector: exit $rc $(cat "$T/nan.out" "$T/nan.err" | head -c 300)"
cp -r "$MODEL" "$T/std-model" && chmod -R u+w "$T/std-model"
python3 -c 'import json, sys
p = sys.argv[1] + "/preprocessor_config.json"; c = json.load(open(p))
c["image_std"] = [1e-45, 1, 1]; json.dump(c, open(p, "w"))' "$T/std-model"
"$VDX" embed --model "$T/std-model" --image "$image" > "$T/std.out" 2> "$T/std.err"
rc=$?
[ $rc -ne 0 ] && [ ! -s "$T/std.out" ] &&
    grep -q 'std-model/preprocessor_config.json: "image_mean"\[0\] 0.481455 and "image_std"\[0\] 1.4013e-45 normalise pixels beyond a float.s range' "$T/std.err" &&
    ok "an image_std that makes infinite pixels is refused when the model loads (exit $rc)" ||
    not_ok "image_std 1e-45: exit $rc $(cat "$T/std.out" "$T/std.err" | head -c 300)"
embed --image /dev/null > /dev/null 2> "$T/null.err"
rc=$?
[ $rc -eq 3 ] && grep -q "/dev/null: not a regular file (a character device)" "$T/null.err" &&
    ok "--image /dev/null: not a regular file (exit 3)" || not_ok "--image /dev/null: exit $rc $(cat "$T/null.err")"

# a failing input after good ones: nothing on stdout (it printed the good ones' lines, so a
# `> vectors.jsonl` kept a partial result beside the error)
embed --text "a cat" --image "$GOLDEN/images/landscape_640x480.jpg" --image "$T/missing.jpg" \
    > "$T/partial.out" 2> "$T/partial.err"
rc=$?
[ $rc -eq 4 ] && [ ! -s "$T/partial.out" ] && grep -q "$T/missing.jpg: cannot open: No such file" "$T/partial.err" &&
    ok "a missing image after good inputs: exit 4, nothing printed" ||
    not_ok "partial output: exit $rc, $(wc -c < "$T/partial.out") bytes out: $(cat "$T/partial.err")"

[ "$failed" = 0 ]
