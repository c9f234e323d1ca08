#!/bin/sh
# Builds every libFuzzer target fuzz/fuzz_*.c with clang (-fsanitize=fuzzer,address,undefined)
# into build/fuzz/, with the library sources its header comment names compiled the same
# way, writes seed corpora from ../shared/fixtures, and optionally runs each target:
#   scripts/build-fuzz.sh [SECONDS]
# Installs Debian's clang when it is missing. See docs/testing.md, section Fuzzing.
set -euf
cd "$(dirname "$0")/.."
if ! command -v clang >/dev/null 2>&1; then
    echo "+ apt-get install -y clang"
    apt-get install -y clang
fi
out=build/fuzz
mkdir -p "$out/obj"
pkgs="openblas libjpeg libpng libwebp libwebpdemux libgif libutf8proc libcjson sqlite3 libcurl
      libmicrohttpd libzip zlib libcrypto"
# shellcheck disable=SC2086
cflags="-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined
        -Iinclude -Isrc $(pkg-config --cflags $pkgs)"
# shellcheck disable=SC2086
libs="$(pkg-config --libs $pkgs) -lm -pthread -fopenmp" # the explore and store modules call omp_*

# A target names the library sources it needs in its header comment (a FUZZ_SOURCES line
# or the clang command it documents): those are compiled with the fuzzing flags, so one
# module that clang cannot build does not stop the other modules' fuzzers.
newest_header=$(set +f; ls -t include/vdx/*.h src/*/*.h | head -n 1)
set +f
targets=$(ls fuzz/fuzz_*.c)
set -f
for target in $targets; do
    name=$(basename "$target" .c)
    sources=$(grep -o 'src/[A-Za-z0-9_/]*\.c' "$target" | sort -u)
    if [ -z "$sources" ]; then
        echo "$target: names no library sources (src/MODULE/FILE.c) in its header comment" >&2
        exit 1
    fi
    objects=
    for src in $sources; do
        obj=$out/obj/$(echo "$src" | tr / _ | sed 's/\.c$/.o/')
        if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ "$newest_header" -nt "$obj" ]; then
            echo "+ clang -c $src"
            # shellcheck disable=SC2086
            clang $cflags -fsanitize=fuzzer-no-link -c "$src" -o "$obj"
        fi
        objects="$objects $obj"
    done
    echo "+ clang -fsanitize=fuzzer $target -> $out/$name"
    # shellcheck disable=SC2086
    clang $cflags -fsanitize=fuzzer "$target" $objects $libs -o "$out/$name"
done

# Seeds for the checkpoint readers: a small valid safetensors file and the clip-tiny pickles.
shared=${VDX_SHARED:-../shared}/fixtures/clip-tiny
mkdir -p "$out/corpus/safetensors" "$out/corpus/pickle"
header='{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F16","shape":[1,2],"data_offsets":[8,12]},"__metadata__":{"format":"pt"}}'
{
    printf "\\$(printf %03o ${#header})\\000\\000\\000\\000\\000\\000\\000"
    printf '%s' "$header"
    printf '\000\000\200\077\000\000\000\100\000\074\000\300'
} > "$out/corpus/safetensors/small.safetensors"
if [ -f "$shared/pytorch_model.bin" ] && command -v unzip >/dev/null 2>&1; then
    unzip -p "$shared/pytorch_model.bin" pytorch_model/data.pkl > "$out/corpus/pickle/data.pkl"
fi
if [ -f "$shared/pytorch_model.legacy.bin" ]; then
    head -c 137 "$shared/pytorch_model.legacy.bin" > "$out/corpus/pickle/legacy-preamble.bin"
    tail -c +138 "$shared/pytorch_model.legacy.bin" | head -c 10308 > "$out/corpus/pickle/legacy-state-dict.pkl"
fi

# .npy seeds: a float32 [2, 4] and a float16 [3] array.
mkdir -p "$out/corpus/npy"
npy_seed() { # FILE DICT DATA-BYTES (octal escapes)
    dict="$2"; len=$(( ${#dict} + 1 )); pad=$(( (64 - (10 + len) % 64) % 64 ))
    { printf '\223NUMPY\001\000'; printf "\\$(printf %03o $((len + pad)))\\000"
      printf '%s' "$dict"; printf "%${pad}s" ''; printf '\n'; printf "$3"; } > "$1"
}
npy_seed "$out/corpus/npy/f32.npy" "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }" \
    '\000\000\200\077\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\200\077\000\000\000\000\000\000\000\000'
npy_seed "$out/corpus/npy/f16.npy" "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }" \
    '\000\074\000\000\000\300'

# Image seeds: the small fixture images, one or more per format.
mkdir -p "$out/corpus/image"
for f in odd_225x301.jpg gray_500x375.jpg exif_orient6_600x400.jpg small_100x80.png \
         palette_320x240.png gray16_200x150.png gif_256x200.gif tall_300x1500.webp; do
    if [ -f "$shared/../golden/clip-tiny/images/$f" ]; then
        cp "$shared/../golden/clip-tiny/images/$f" "$out/corpus/image/"
    fi
done

# SentencePiece seeds: the mclip-tiny model, and a few multilingual texts for the encoder
# (first byte = max_len - 2).
mkdir -p "$out/corpus/spm_model" "$out/corpus/spm_encode"
if [ -f "$shared/../mclip-tiny/sentencepiece.bpe.model" ]; then
    cp "$shared/../mclip-tiny/sentencepiece.bpe.model" "$out/corpus/spm_model/"
fi
printf '\376一只猫在沙发上睡觉' > "$out/corpus/spm_encode/zh"
printf '\010  ＡＢＣ１２３\t x  <mask> ｶﾞ' > "$out/corpus/spm_encode/forms"
printf '\376قطة نائمة على الأريكة 🎉🎉' > "$out/corpus/spm_encode/ar"

# CLIP tokenizer seeds (fuzz_tokenizer.c: first byte = max_len - 2): a prompt cut at 77,
# one cut short (max_len 5), contractions, numbers and punctuation, accents and emoji,
# and bytes that are not UTF-8.
mkdir -p "$out/corpus/tokenizer"
printf 'Ka photo of a dog on a beach' > "$out/corpus/tokenizer/prompt"
printf '\003a house by the lake at sunset, in winter' > "$out/corpus/tokenizer/short"
printf "K don't  I'll we've 1234567 -- ?!... (a)[b]{c}" > "$out/corpus/tokenizer/marks"
printf 'K Café naïve ÉCOLE 🎉🐕 一只猫' > "$out/corpus/tokenizer/unicode"
printf 'K a\377\376b \300\200 c' > "$out/corpus/tokenizer/bad_utf8"

# Request-policy seeds: Host headers (first byte even; port 8080 = 1 + 0x1f8f) and JSON
# bodies (first byte odd) with and without a \u0000 in a string.
mkdir -p "$out/corpus/http_policy"
printf '\000\037\217\000localhost:8080' > "$out/corpus/http_policy/host-ok"
printf '\000\037\217\010127.0.0.2:8080' > "$out/corpus/http_policy/host-bound"
printf '\000\037\217\000127.0.0.1.attacker.example:8080' > "$out/corpus/http_policy/host-rebind"
printf '\000\000\000\002[::1]' > "$out/corpus/http_policy/host-default-port"
printf '\001{"name":"a\\u0000b","examples":["x"]}' > "$out/corpus/http_policy/json-nul"
printf '\001{"like":"a\\\\u0000b"}' > "$out/corpus/http_policy/json-escaped"

# URL-list seeds: every kind of line, file: URLs of RFC 8089's forms included.
mkdir -p "$out/corpus/urls"
printf '%s\n' '# photos' 'https://images.example/a.jpg' 'file:///tmp/b.jpg' \
    'file://localhost/tmp/c%20d.jpg' 'file:/tmp/e.jpg' 'file://evil.example/etc/passwd' \
    'relative/f.png' 'ftp://x/y.jpg' 'https://images.example/a.jpg' > "$out/corpus/urls/list.txt"

# Filter seeds: valid filters of every construct (tests/test_filter.c) over the schema of
# fuzz_filter.c, and two refusals.
mkdir -p "$out/corpus/filter"
n=0
while IFS= read -r line; do
    n=$((n + 1))
    printf '%s' "$line" > "$out/corpus/filter/f$n"
done <<'FILTERS'
photo_featured = 't' AND (width >= 4000 OR lower(url) LIKE 'a%')
width > 10 AND photo_width >= 2.5
"odd name" <> 'x' OR NOT id IN ('a','b')
photo_width BETWEEN -1 AND 1e3
lower(id) LIKE 'a%' AND width IS NOT NULL
ID == 'a' or Width != 3 and not photo_description is null
photo_width NOT IN (1, 2) AND id NOT LIKE '%x' AND width NOT BETWEEN 1 AND 2
  (  ( "café" = '日本' ) )
length(UPPER(photo_description)) > 3 AND "we`ird" IS NULL AND "q""uote" = 'O''Brien'
id = 'a1\'' OR 1=1 --' OR (1 = 1 AND .5 < height)
id = 'a' /**/
load_extension('x') = 1
FILTERS

# Unsplash seeds: the sample dataset's photos.tsv000, and a small file with the quoting
# cases, a bad URL and a duplicate id, then (after "\f\f", see fuzz_unsplash.c) keywords.
mkdir -p "$out/corpus/unsplash"
sample=${VDX_SHARED:-../shared}/data/unsplash-sample
if [ -f "$sample/photos.tsv000" ]; then
    cp "$sample/photos.tsv000" "$out/corpus/unsplash/sample.tsv"
fi
printf '%b\n' '\0357\0273\0277photo_id\tphoto_image_url\tphoto_width\tphoto_height\tkeywords\r' \
    'a1\thttps://h.example/a1\t3840\t2562\t"tab\there, ""quoted"""' \
    'a2\thttps://h.example/a2\t\t\t"two\nlines"' 'a1\tftp://h.example/x\t1\t1\tdup' \
    '\f\fphoto_id\tkeyword' 'a1\tdog' 'a1\tbeach' > "$out/corpus/unsplash/keywords.tsv"

# Model-directory JSON seeds: a trimmed clip-tiny config.json, the older *_dict keys with a
# 336 px gelu tower, and refusals (sizes past the limits of vdx/clip.h, an unknown
# activation with a non-ASCII name, not an object, a byte order mark).
mkdir -p "$out/corpus/clip_config"
printf '%s' '{"projection_dim":32,"text_config":{"hidden_size":64,"intermediate_size":256,"num_attention_heads":2,"num_hidden_layers":2,"max_position_embeddings":77,"vocab_size":49408,"hidden_act":"quick_gelu","layer_norm_eps":1e-05},"vision_config":{"hidden_size":128,"intermediate_size":512,"num_attention_heads":2,"num_hidden_layers":2,"image_size":224,"patch_size":32,"num_channels":3,"hidden_act":"quick_gelu","layer_norm_eps":1e-05}}' \
    > "$out/corpus/clip_config/tiny.json"
printf '%s' '{"vision_config_dict":{"image_size":336,"patch_size":14,"hidden_act":"gelu"},"text_config_dict":{"hidden_size":768,"num_attention_heads":12}}' \
    > "$out/corpus/clip_config/dict.json"
printf '%s' '{"vision_config":{"image_size":65536,"patch_size":1,"intermediate_size":1048576,"num_hidden_layers":4096,"num_channels":64}}' \
    > "$out/corpus/clip_config/huge.json"
printf '%s' '{"text_config":{"hidden_size":1e9,"num_hidden_layers":1000000,"max_position_embeddings":1}}' \
    > "$out/corpus/clip_config/absurd.json"
printf '{"text_config":{"hidden_act":"gelu_new\303\251"}}' > "$out/corpus/clip_config/act.json"
printf '\357\273\277[]' > "$out/corpus/clip_config/bom-array.json"

# M-CLIP config.json seeds: the mclip-tiny config trimmed (the keys the reader reads), the
# hub's form (no modelBaseConfig: heads from modelBase), and refusals (sizes past the
# limits of vdx/clip.h, a width the heads do not divide, a long non-ASCII model_type and
# modelBase, modelBaseConfig not an object, a string layer_norm_eps, text cut short).
mkdir -p "$out/corpus/mclip_config"
mclip=${VDX_SHARED:-../shared}/fixtures/mclip-tiny/config.json
if [ -f "$mclip" ]; then
    grep -v -e _name_or_path -e torch_dtype -e '"MultilingualCLIP"' -e architectures \
        -e '^  \],' -e type_vocab_size -e _token_id "$mclip" | tr -d ' \n' \
        > "$out/corpus/mclip_config/tiny.json"
fi
printf '%s' '{"model_type":"M-CLIP","modelBase":"xlm-roberta-large","transformerDimensions":1024,"numDims":640}' \
    > "$out/corpus/mclip_config/hub.json"
printf '%s' '{"model_type":"M-CLIP","modelBase":"x","transformerDimensions":1e9,"numDims":-1,"modelBaseConfig":{"num_attention_heads":3,"hidden_size":100,"num_hidden_layers":5000,"vocab_size":16777217,"max_position_embeddings":2,"intermediate_size":1048576}}' \
    > "$out/corpus/mclip_config/huge.json"
printf '{"model_type":"M-CLIP\303\251\303\251","modelBase":"%s","modelBaseConfig":{"num_attention_heads":2,"hidden_act":"gelu_new\303\251"}}' \
    "$(printf '\303\251%.0s' $(seq 100))" > "$out/corpus/mclip_config/names.json"
printf '%s' '{"model_type":"M-CLIP","modelBase":"xlm-roberta-base","modelBaseConfig":"xlm-roberta","transformerDimensions":768}' \
    > "$out/corpus/mclip_config/base-string.json"
printf '%s' '{"model_type":"M-CLIP","modelBaseConfig":{"num_attention_heads":2,"layer_norm_eps":"1e-5","position_embedding_type":"relative_key"}}' \
    > "$out/corpus/mclip_config/eps-string.json"
printf '%s' '{"model_type":"M-CLIP","numDims":32,,' > "$out/corpus/mclip_config/cut.json"

# preprocessor_config.json seeds: clip-tiny's (old integer form), the new dict forms, and
# refusals (a zero std, a mean no float holds, resample 2).
mkdir -p "$out/corpus/preprocess_config"
printf '%s' '{"crop_size":224,"do_center_crop":true,"do_normalize":true,"do_resize":true,"image_mean":[0.48145466,0.4578275,0.40821073],"image_std":[0.26862954,0.26130258,0.27577711],"resample":3,"size":224}' \
    > "$out/corpus/preprocess_config/tiny.json"
printf '%s' '{"size":{"shortest_edge":336},"crop_size":{"height":336,"width":336},"do_rescale":true,"rescale_factor":0.00392156862745098,"image_mean":0.5,"image_std":[0.5,0.5,0.5]}' \
    > "$out/corpus/preprocess_config/dict.json"
printf '%s' '{"size":{"height":32,"width":48},"crop_size":{"height":32,"width":48},"do_center_crop":false,"do_normalize":false}' \
    > "$out/corpus/preprocess_config/fixed.json"
printf '%s' '{"image_std":[0,1,1],"image_mean":[1e300,0,0],"rescale_factor":1e308,"resample":2}' \
    > "$out/corpus/preprocess_config/hostile.json"

# Tokenizer-loader seeds (see fuzz_tokenizer_load.c: '+' puts the 512 byte symbols and the
# special tokens in front; "\f\f" starts merges.txt): a few merges of a tiny vocabulary, and
# refusals (a merge of an unknown symbol, a repeated merge, ids that are not integers, no
# #version header, a missing byte symbol).
mkdir -p "$out/corpus/tokenizer_load"
printf '+, "ca": 600, "cat</w>": 601, "ph": 602, "pho": 603, "to</w>": 604, "photo</w>": 605}\f\f#version: 0.2\nc a\nca t</w>\np h\nph o\nt o</w>\npho to</w>\n' \
    > "$out/corpus/tokenizer_load/merges.txt"
printf '+, "ab": 600}\f\f#version: 0.2\na b\na b\n' > "$out/corpus/tokenizer_load/repeat"
printf '+, "ab": 1.5, "cd": -1}\f\fa b\n' > "$out/corpus/tokenizer_load/bad-ids"
printf '+}\f\f#version: 0.2\nq zz\n' > "$out/corpus/tokenizer_load/unknown"
printf '{"a": 0, "<|startoftext|>": 49406, "<|endoftext|>": 49407}' > "$out/corpus/tokenizer_load/no-bytes"

# Classifier seeds (the model fuzz_classifier_import.c opens: "fuzz-model", fingerprint
# "ab" x 32, 4 dims): one with a trained, calibrated anchored round, one without rounds,
# and refusals (another model, a long non-ASCII format, a NUL escape).
mkdir -p "$out/corpus/classifier_import"
fp=abababababababababababababababababababababababababababababababab
printf '{"format":"vdx-classifier","version":1,"name":"cats","prompt":"a cat","created":"2026-12-06T00:00:00Z","model":{"name":"fuzz-model","fingerprint":"%s","dims":4},"weight":[0.5,-0.25,0.125,1],"initial_weight":[0.5,0.5,0.5,0.5],"threshold":0.1,"trainer":"auto","history":[{"time":"2026-12-06T00:00:01Z","labels_added":3,"positive":2,"negative":1,"iters":100,"lr":0.5,"losses":[0.69,0.3],"training_accuracy":1,"weight":[0.5,-0.25,0.125,1],"calibration":{"a":1.5,"b":-0.2},"trainer":"anchored","bias":0.3}]}' \
    "$fp" > "$out/corpus/classifier_import/round.json"
printf '{"format":"vdx-classifier","version":1,"name":"chat noir","prompt":null,"model":{"name":"fuzz-model","fingerprint":"%s","dims":4},"weight":[1e-3,0,0,-2],"initial_weight":[1e-3,0,0,-2],"threshold":-3,"history":[]}' \
    "$fp" > "$out/corpus/classifier_import/no-rounds.json"
printf '{"format":"vdx-classifier","version":1,"name":"x","model":{"name":"other","fingerprint":"cdcd","dims":4},"weight":[1,0,0,0],"initial_weight":[1,0,0,0],"threshold":0,"history":[]}' \
    > "$out/corpus/classifier_import/other-model.json"
printf '{"format":"%s","version":1}' "$(printf '\303\251%.0s' $(seq 600))" \
    > "$out/corpus/classifier_import/long-format.json"
printf '{"name":"a\\u0000b"}' > "$out/corpus/classifier_import/nul.json"

if [ $# -ge 1 ]; then
    export VDX_TOKENIZER_DIR="${VDX_TOKENIZER_DIR:-$shared}"
    export VDX_SPM_MODEL="${VDX_SPM_MODEL:-$shared/../mclip-tiny/sentencepiece.bpe.model}"
    for target in $targets; do
        name=$(basename "$target" .c)
        corpus=$out/corpus/${name#fuzz_}
        mkdir -p "$corpus"
        echo "+ $out/$name -max_total_time=$1 $corpus"
        "$out/$name" -max_total_time="$1" -max_len=65536 -rss_limit_mb=2048 \
            -print_final_stats=1 "$corpus" 2>&1 | tail -15
    done
fi
