#!/bin/sh
# Builds the release tree and runs every benchmark program under build/release/bench/,
# printing each one's output under a heading. A program with a wrapper script
# bench/NAME.sh (one that starts a server first, say) is run through the script. Benchmarks print numbers, never pass/fail;
# arguments after `--` are passed to every benchmark (e.g. `sh bench/run.sh -- --threads 1`).
# bench/vs_peers.sh (vdx's image tower against PyTorch and ONNX Runtime, minutes of CPU) runs
# only when named: `sh bench/run.sh vs_peers -- --rounds 3`; so does bench/map_page.sh (the Map
# view in headless Chromium at 100,000 items: `sh bench/run.sh map_page`).
# Usage: sh bench/run.sh [NAME...] [-- ARGS...]   (default: all benchmarks)
set -u
cd "$(dirname "$0")/.."
names=""
while [ $# -gt 0 ]; do
    case "$1" in
    --) shift; break ;;
    *) names="$names $1"; shift ;;
    esac
done
jobs=$(nproc 2>/dev/null || echo 2)
echo "+ make -j$jobs BUILD=build/release"
make -s -j"$jobs" BUILD=build/release all || { echo "bench: build failed"; exit 1; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
for b in build/release/bench/*; do
    [ -x "$b" ] && [ -f "$b" ] || continue
    name=$(basename "$b")
    if [ -n "$names" ]; then
        case " $names " in *" $name "*) ;; *) continue ;; esac
    fi
    echo
    echo "== $name"
    if [ -f "bench/$name.sh" ]; then
        BUILD=build/release sh "bench/$name.sh" "$@"
    else
        "$b" "$@"
    fi || { echo "bench: $name exited with status $?"; status=1; }
done
case " $names " in
*" vs_peers "*)
    echo
    echo "== vs_peers"
    BUILD=build/release sh bench/vs_peers.sh "$@" || { echo "bench: vs_peers exited with status $?"; status=1; } ;;
esac
case " $names " in
*" map_page "*)
    echo
    echo "== map_page"
    BUILD=build/release sh bench/map_page.sh "$@" || { echo "bench: map_page exited with status $?"; status=1; } ;;
esac
exit $status
