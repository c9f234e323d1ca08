#!/bin/sh
# Builds the libFuzzer targets fuzz/fuzz_*.c with clang (-fsanitize=fuzzer,address,undefined)
# into build/fuzz/, with seed corpora made from ../shared/fixtures, and optionally runs
# them:  scripts/build-fuzz.sh [SECONDS]   (runs each target that long when given)
# Installs Debian's clang when it is missing. See docs/testing.md, section Fuzzing.
set -eu
cd "$(dirname "$0")/.."
if ! command -v clang >/dev/null 2>&1; then
    echo "+ apt-get install -y clang"
    apt-get install -y clang
fi
out=build/fuzz
mkdir -p "$out"
pkgs="libcjson libzip libcrypto"
lib_src="src/common/common.c src/clip/weights.c src/clip/safetensors.c src/clip/pickle.c
         src/clip/torch_zip.c src/clip/torch_legacy.c"
for target in fuzz/fuzz_*.c; do
    name=$(basename "$target" .c)
    echo "+ clang $target -> $out/$name"
    # shellcheck disable=SC2046,SC2086
    clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
        -fno-sanitize-recover=undefined -Iinclude -Isrc $(pkg-config --cflags $pkgs) \
        "$target" $lib_src -o "$out/$name" $(pkg-config --libs $pkgs) -lm -pthread
done

# Seeds: a small valid safetensors file and the clip-tiny pickles.
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

if [ $# -ge 1 ]; then
    for target in fuzz/fuzz_*.c; do
        name=$(basename "$target" .c)
        corpus=$out/corpus/${name#fuzz_}
        echo "+ $out/$name -max_total_time=$1 $corpus"
        "$out/$name" -max_total_time="$1" -max_len=65536 -rss_limit_mb=1024 \
            -print_final_stats=1 "$corpus" 2>&1 | tail -15
    done
fi
