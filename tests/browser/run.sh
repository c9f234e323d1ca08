#!/bin/sh
# Browser tests of the web explorer: ingests the sample collection (and an empty one,
# and one whose ingest is still running), starts `vdx serve` for each on a free port
# (through tests/browser/serve.sh, with an access token; the sample once more with
# --read-only), runs the Playwright flows of
# flows.mjs in Debian's chromium (playwright-core from npm; no browser is downloaded)
# and stops everything. One "ok - ..." / "not ok - ..." line per flow; screenshots of
# every step in build/artifacts/screenshots/.
set -u
cd "$(dirname "$0")/../.."
root=$(pwd)
build=${VDX_BUILD:-build/release}
shared=${VDX_SHARED:-../shared}
missing=""
[ -d "$shared/fixtures/clip-tiny" ] && [ -d "$shared/data/unsplash-sample" ] || missing="$shared fixtures"
command -v node > /dev/null && command -v npm > /dev/null || missing="$missing node/npm"
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing="$missing chromium"
if [ -n "$missing" ]; then
    if [ "${CI:-}" = true ]; then echo "not ok - browser: missing$missing (CI=true)"; exit 1; fi
    echo "skip - browser: missing $missing"; exit 0
fi
shared=$(cd "$shared" && pwd)
# the multilingual flow types a Chinese prompt: without a CJK font its screenshots show boxes
if ! fc-list :lang=zh 2>/dev/null | grep -q .; then
    if [ "${CI:-}" = true ]; then echo "not ok - browser: no Chinese font (sh scripts/deps.sh --test installs fonts-wqy-zenhei)"; exit 1; fi
    echo "# no Chinese font: the multilingual screenshots show boxes (sh scripts/deps.sh --test)"
fi

# node_modules from the committed lock file, refreshed when the lock file changes
lock=tests/browser/package-lock.json
stamp=tests/browser/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
    echo "# npm ci (tests/browser)"
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) || { echo "not ok - browser: npm ci failed"; exit 1; }
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-browser-XXXXXX")
pids=""
cleanup() {
    for pid in $pids; do kill "$pid" 2>/dev/null; done
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
trap "exit 130" INT TERM

. tests/browser/serve.sh

# The collections, built by `vdx ingest` from a loopback stand-in for the image CDN:
# "sample" (the Unsplash sample), "empty" (no items), and "growing", whose ingest is
# slowed down and still running while the page watches it.
images="$shared/data/unsplash-sample/images"
"$build/tools/fileserver" --root "$images" --port-file "$tmp/cdn.port" 2> "$tmp/cdn.err" &
pids="$pids $!"
"$build/tools/fileserver" --root "$images" --port-file "$tmp/slow.port" --delay-ms 300 2> "$tmp/slow.err" &
pids="$pids $!"
for _ in $(seq 600); do [ -s "$tmp/cdn.port" ] && [ -s "$tmp/slow.port" ] && break; sleep 0.1; done
ingest() { # ingest COLLECTION SOURCE... (options follow)
    collection=$1; shift
    "$build/vdx" ingest "$@" --data "$tmp/data" --collection "$collection" --model "$shared/fixtures/clip-tiny"
}
: > "$tmp/no-urls.txt"
ingest sample unsplash "$shared/data/unsplash-sample" --base-url "http://127.0.0.1:$(cat "$tmp/cdn.port")/" > "$tmp/ingest.log" 2>&1 &&
ingest empty urls "$tmp/no-urls.txt" >> "$tmp/ingest.log" 2>&1 ||
    { echo "not ok - browser: vdx ingest failed: $(cat "$tmp/ingest.log")"; exit 1; }
# the sample's map, for the map flows (web/map.js)
"$build/vdx" map build --data "$tmp/data" --collection sample --clusters 4 > "$tmp/map.log" 2>&1 ||
    { echo "not ok - browser: vdx map build failed: $(cat "$tmp/map.log")"; exit 1; }
# the read-only server starts before the growing ingest
serve readonly sample --read-only
# The sample is also served with the multilingual mclip-tiny text tower (same 32-d space
# as clip-tiny by construction; an unknown pairing, hence --force-text-model): the CLI's
# answer to a Chinese prompt, for the page to match.
zh_prompt="一只猫在沙发上睡觉"
"$build/vdx" search --data "$tmp/data" --collection sample --text-model "$shared/fixtures/mclip-tiny" \
    --force-text-model -k 9 "$zh_prompt" > "$tmp/zh.jsonl" 2> "$tmp/zh.err"
export VDX_ZH_PROMPT="$zh_prompt" VDX_ZH_EXPECTED="$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$tmp/zh.jsonl" | paste -sd, -)"
# held after its first commit until the ingest-progress flow removes $tmp/hold: still running
# whenever the browser gets there (VDX_TEST_HOLD_FILE, docs/testing.md)
touch "$tmp/hold"
VDX_TEST_HOLD_FILE="$tmp/hold" ingest growing unsplash "$shared/data/unsplash-sample" \
    --base-url "http://127.0.0.1:$(cat "$tmp/slow.port")/" \
    --parallel 1 --batch 1 --threads 1 --no-cache > "$tmp/growing.log" 2>&1 &
pids="$pids $!"
for _ in $(seq 600); do grep -q '"stored":[1-9]' "$tmp/data/collections/growing/progress.json" 2>/dev/null && break; sleep 0.1; done
serve sample sample
serve empty empty
serve growing growing
serve sample-mclip sample --text-model "$shared/fixtures/mclip-tiny"
url=$(url_of sample)
empty_url=$(url_of empty)
growing_url=$(url_of growing)
readonly_url=$(url_of readonly)
mclip_url=$(url_of sample-mclip)
if [ -z "$url" ] || [ -z "$empty_url" ] || [ -z "$growing_url" ] || [ -z "$readonly_url" ] || [ -z "$mclip_url" ]; then
    echo "not ok - browser: vdx serve did not start: $(cat "$tmp"/*.out "$tmp"/*.err)"; exit 1
fi
shots="$root/build/artifacts/screenshots"
mkdir -p "$shots"
rm -f "$shots"/*.png
(cd tests/browser && node flows.mjs "$url" "$empty_url" "$growing_url" "$images" "$shots" "$tmp/hold" "$readonly_url" "$mclip_url")
status=$?
echo "# screenshots: $shots"
exit $status
