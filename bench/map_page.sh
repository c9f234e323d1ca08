#!/bin/sh
# The Map view in headless Chromium at 100,000 items (docs/map.md, "The page"): a synthetic
# clustered collection (tools/synth_npy, 32-d, the tiny fixture model's width) is ingested
# as vectors, mapped (`vdx map build`) and served; bench/map_page.mjs opens the page, times
# the first map paint after the Map button is clicked and the frames while the map is
# dragged, and prints the figures. Numbers only, never pass/fail.
# Usage: sh bench/map_page.sh [--items N] [--rounds R]   (run by `sh bench/run.sh map_page`)
set -u
cd "$(dirname "$0")/.."
B=${BUILD:-build/release}
SHARED=${VDX_SHARED:-../shared}
MODEL="$SHARED/fixtures/clip-tiny"
items=100000 rounds=3
while [ $# -gt 0 ]; do
    case "$1" in
    --items) items=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) shift ;;
    esac
done
[ -e "$MODEL/config.json" ] || { echo "map_page: $MODEL not found"; exit 1; }
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || { echo "map_page: chromium is not installed (sh scripts/deps.sh --test)"; exit 1; }
[ -d tests/browser/node_modules/playwright-core ] ||
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) || exit 1

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-mapbench-XXXXXX")
pid=""
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"' EXIT
trap 'exit 130' INT TERM
"$B/tools/synth_npy" "$tmp/v.npy" "$tmp/ids.txt" "$items" --synth-dim=32 --synth-clusters=40 > /dev/null &&
"$B/vdx" ingest vectors "$tmp/v.npy" --ids "$tmp/ids.txt" --model "$MODEL" --data "$tmp/data" > /dev/null 2>&1 &&
"$B/vdx" map build --data "$tmp/data" > "$tmp/build.out" 2>&1 ||
    { echo "map_page: preparing $items items failed"; tail -3 "$tmp/build.out"; exit 1; }
token=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
"$B/vdx" serve --data "$tmp/data" --model "$MODEL" --port 0 --token "$token" > "$tmp/serve.out" 2>&1 &
pid=$!
url=""
for _ in $(seq 300); do
    url=$(sed -n 's|.*\(http://127.0.0.1:[0-9]*/\).*|\1|p' "$tmp/serve.out" | head -n 1)
    [ -n "$url" ] && break
    sleep 0.1
done
[ -n "$url" ] || { echo "map_page: vdx serve did not start"; cat "$tmp/serve.out"; exit 1; }
echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load $(cut -d' ' -f1-3 /proc/loadavg)"
VDX_TOKEN=$token node bench/map_page.mjs "$url" "$items" "$rounds"
