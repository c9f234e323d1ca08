#!/bin/sh
# Browser tests of the web explorer: builds a sample collection (and an empty one),
# starts `vdx serve` for each on a free loopback port, runs the Playwright flows of
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

# serve COLLECTION: starts vdx serve on a free port, prints its URL
serve() {
    "$build/vdx" serve --data "$tmp/data" --collection "$1" --model "$shared/fixtures/clip-tiny" --port 0 \
        > "$tmp/$1.out" 2> "$tmp/$1.err" &
    pids="$pids $!"
    for _ in $(seq 100); do grep -q 'serving' "$tmp/$1.out" 2>/dev/null && break; sleep 0.1; done
    sed -n 's/.* at \(http:[^ ]*\)$/\1/p' "$tmp/$1.out"
}

"$build/tools/server_fixture" --data "$tmp/data" --collection sample --model "$shared/fixtures/clip-tiny" \
    --tsv "$shared/data/unsplash-sample/photos.tsv000" --images "$shared/data/unsplash-sample/images" > "$tmp/fixture.log" 2>&1 &&
"$build/tools/server_fixture" --data "$tmp/data" --collection empty --model "$shared/fixtures/clip-tiny" --empty >> "$tmp/fixture.log" 2>&1 ||
    { echo "not ok - browser: building the collections failed: $(cat "$tmp/fixture.log")"; exit 1; }
url=$(serve sample)
empty_url=$(serve empty)
if [ -z "$url" ] || [ -z "$empty_url" ]; then
    echo "not ok - browser: vdx serve did not start: $(cat "$tmp"/*.out "$tmp"/*.err)"; exit 1
fi
shots="$root/build/artifacts/screenshots"
mkdir -p "$shots"
rm -f "$shots"/*.png
(cd tests/browser && node flows.mjs "$url" "$empty_url" "$shots")
status=$?
echo "# screenshots: $shots"
exit $status
