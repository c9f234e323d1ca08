#!/bin/sh
# The libFuzzer targets stay buildable and pass their seeds: scripts/build-fuzz.sh builds
# every fuzz/fuzz_*.c with clang (-fsanitize=fuzzer,address,undefined) and writes the seed
# corpora, then each target runs once over every seed (-runs=0: no fuzzing, so the result
# is the same on every run). A target that no longer compiles against the library (one did
# for three sessions: nothing built it) or that aborts, leaks or trips a sanitizer on a
# seed fails here. Fuzzing itself is `make fuzz` / `sh scripts/build-fuzz.sh SECONDS`
# (docs/testing.md, "Fuzzing").
set -u
cd "$(dirname "$0")/../.."
shared=${VDX_SHARED:-../shared}
if [ ! -d "$shared/fixtures/clip-tiny" ] || [ ! -d "$shared/data/unsplash-sample" ]; then
    if [ "${CI:-}" = true ]; then echo "not ok - fuzz_seeds: $shared fixtures missing (CI=true)"; exit 1; fi
    echo "skip - fuzz_seeds: $shared not found"; exit 0
fi
if ! command -v clang >/dev/null 2>&1 && [ "${CI:-}" != true ]; then
    echo "skip - fuzz_seeds: clang is not installed (sh scripts/deps.sh --test installs it)"; exit 0
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-fuzz-seeds-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
failures=0
if sh scripts/build-fuzz.sh > "$tmp/build.log" 2>&1; then
    echo "ok - scripts/build-fuzz.sh builds every fuzz target and writes the seeds"
else
    echo "not ok - scripts/build-fuzz.sh: $(tail -5 "$tmp/build.log")"; exit 1
fi
shared_abs=$(cd "$shared" && pwd)
root=$(pwd)
export VDX_TOKENIZER_DIR="${VDX_TOKENIZER_DIR:-$shared_abs/fixtures/clip-tiny}"
export VDX_SPM_MODEL="${VDX_SPM_MODEL:-$shared_abs/fixtures/mclip-tiny/sentencepiece.bpe.model}"
for target in fuzz/fuzz_*.c; do
    name=$(basename "$target" .c)
    corpus=build/fuzz/corpus/${name#fuzz_}
    mkdir -p "$corpus"
    seeds=$(find "$corpus" -type f | wc -l)
    if [ "$seeds" -eq 0 ]; then # a replay of nothing proves nothing
        echo "not ok - $name has no seeds: scripts/build-fuzz.sh writes none to $corpus"
        failures=$((failures + 1))
        continue
    fi
    # from a directory of its own, so that a crash file lands in tmp
    if (cd "$tmp" && "$root/build/fuzz/$name" -runs=0 -rss_limit_mb=2048 "$root/$corpus") \
        > "$tmp/$name.log" 2>&1; then
        echo "ok - $name replays its $seeds seeds"
    else
        echo "not ok - $name on its seeds: $(grep -m3 -E 'ERROR|SUMMARY|==[0-9]+==' "$tmp/$name.log")"
        failures=$((failures + 1))
    fi
done
[ "$failures" -eq 0 ]
