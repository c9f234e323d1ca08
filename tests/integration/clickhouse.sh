#!/bin/sh
# The ClickHouse store backend against a real server: starts Debian's clickhouse-server
# (18.16) on loopback ports with a temporary data directory, runs the conformance suite
# (the same data in the embedded store and in ClickHouse: same ids in the same order,
# distances within 1e-6; injection-shaped ids and filter values; 5,000-id exclusions;
# lost inserts retried without duplicates; connection/auth/database errors), the store
# suite (tests/test_store.c) with VDX_TEST_STORE_URL, the CLI, `vdx serve` and the web
# explorer's browser flows with the store on ClickHouse, and stops the server.
set -u
cd "$(dirname "$0")/../.."
build=${VDX_BUILD:-build/release}
shared=${VDX_SHARED:-../shared}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-clickhouse-XXXXXX")
fs_pid="" serve_pid=""
cleanup() {
    [ -z "$serve_pid" ] || kill "$serve_pid" 2>/dev/null
    [ -z "$fs_pid" ] || kill "$fs_pid" 2>/dev/null
    sh scripts/clickhouse-test-server.sh stop "$tmp/server"
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }
skip() { echo "skip - $1"; }

url=$(sh scripts/clickhouse-test-server.sh start "$tmp/server" 2> "$tmp/start.err")
status=$?
if [ $status -eq 3 ]; then
    if [ "${CI:-}" = true ]; then not_ok "clickhouse-server is not installed (CI=true)"; exit 1; fi
    skip "clickhouse: $(cat "$tmp/start.err")"; exit 0
fi
[ $status -eq 0 ] || { not_ok "clickhouse-server did not start: $(cat "$tmp/start.err")"; exit 1; }
ok "clickhouse-server started at $url"

# The store interface against the embedded store.
tool="$build/tools/clickhouse_conformance"
if [ -x "$tool" ]; then
    mkdir -p "$tmp/conformance"
    "$tool" "$url" "$tmp/conformance" > "$tmp/conformance.log" 2>&1
    status=$?
    grep '^\(ok\|not ok\|skip\) - ' "$tmp/conformance.log" | sed 's/^\(ok\|not ok\|skip\) - /&store conformance: /'
    grep -v '^\(ok\|skip\) - ' "$tmp/conformance.log" | grep -v '^not ok - ' | head -40
    [ $status -eq 0 ] || failures=$((failures + 1))
else
    not_ok "$tool is not built"
fi

# The store engineer's store suite, parameterised by backend, when it is on this branch.
if [ -x "$build/tests/test_store" ]; then
    VDX_TEST_STORE_URL="$url" "$build/tests/test_store" > "$tmp/test_store.log" 2>&1
    status=$?
    grep '^\(ok\|not ok\|skip\) - ' "$tmp/test_store.log" | sed 's/^\(ok\|not ok\|skip\) - /&test_store on ClickHouse: /'
    [ $status -eq 0 ] || failures=$((failures + 1))
else
    not_ok "test_store on ClickHouse: $build/tests/test_store is not built (run make)"
fi

# The CLI and the HTTP API, with VDX_STORE selecting ClickHouse.
vdx="$build/vdx"
model="$shared/fixtures/clip-tiny"
sample="$shared/data/unsplash-sample"
if [ ! -x "$vdx" ] || ! "$vdx" ingest --help > /dev/null 2>&1; then
    not_ok "CLI on ClickHouse: $vdx (with ingest) is not built (run make)"
elif [ ! -d "$model" ] || [ ! -d "$sample" ]; then
    if [ "${CI:-}" = true ]; then not_ok "CLI on ClickHouse: $shared fixtures missing (CI=true)"
    else skip "CLI on ClickHouse: $shared fixtures not found"; fi
else
    mkdir -p "$tmp/www"
    cp "$sample"/images/* "$tmp/www/"
    (cd "$sample" && zip -q -X "$tmp/www/unsplash-lite.zip" photos.tsv000 keywords.tsv000)
    "$build/tools/fileserver" --root "$tmp/www" --port-file "$tmp/fs.port" --log "$tmp/fs.log" \
        2> "$tmp/fs.err" &
    fs_pid=$!
    for _ in $(seq 600); do [ -s "$tmp/fs.port" ] && break; sleep 0.1; done
    fs="http://127.0.0.1:$(cat "$tmp/fs.port")"
    chstore="$url/default?table=cli_photos"
    for backend in embedded clickhouse; do
        store=""; [ $backend = clickhouse ] && store=$chstore
        VDX_HOME="$tmp/home-$backend" VDX_STORE="$store" "$vdx" ingest unsplash \
            "$tmp/www/unsplash-lite.zip" --model "$model" --base-url "$fs/" \
            > "$tmp/ingest-$backend.log" 2>&1 < /dev/null
        echo $? > "$tmp/ingest-$backend.status"
    done
    if [ "$(cat "$tmp/ingest-clickhouse.status")" = 0 ] && [ "$(cat "$tmp/ingest-embedded.status")" = 0 ]; then
        ok "vdx ingest into ClickHouse (VDX_STORE=$chstore)"
    else
        not_ok "vdx ingest: $(tail -n 5 "$tmp/ingest-clickhouse.log" "$tmp/ingest-embedded.log")"
    fi
    # a second ingest resumes: nothing is added twice
    VDX_HOME="$tmp/home-clickhouse" VDX_STORE="$chstore" "$vdx" ingest unsplash \
        "$tmp/www/unsplash-lite.zip" --model "$model" --base-url "$fs/" > "$tmp/ingest2.log" 2>&1 < /dev/null
    rows=$(curl -s "$url/?query=SELECT+count(),uniqExact(id)+FROM+cli_photos")
    set -- $rows
    if [ "${1:-0}" -gt 0 ] && [ "${1:-0}" = "${2:-}" ]; then
        ok "a second ingest adds no duplicate rows ($1 rows, $2 ids)"
    else
        not_ok "rows after a second ingest: '$rows'"
    fi
    ids() { grep -o '"id": *"[^"]*"' | tr -d ' '; }
    VDX_HOME="$tmp/home-embedded" VDX_STORE= "$vdx" search "a photo of a cat" --model "$model" \
        < /dev/null 2> "$tmp/search-e.err" | ids > "$tmp/search-e"
    VDX_HOME="$tmp/home-clickhouse" VDX_STORE= "$vdx" search "a photo of a cat" --store "$chstore" \
        --model "$model" < /dev/null 2> "$tmp/search-c.err" | ids > "$tmp/search-c"
    if [ -s "$tmp/search-c" ] && cmp -s "$tmp/search-e" "$tmp/search-c"; then
        ok "vdx search on ClickHouse returns the embedded store's ids in the same order"
    else
        not_ok "vdx search differs: embedded [$(tr '\n' ' ' < "$tmp/search-e")] clickhouse [$(tr '\n' ' ' < "$tmp/search-c")] $(head -c 300 "$tmp/search-c.err")"
    fi
    # metadata columns named like the search query's own names (q, dist, d were its aliases,
    # and ClickHouse resolves an alias before a column): the same rows on both backends
    "$build/tools/synth_npy" "$tmp/names.npy" "$tmp/names.txt" 300 --synth-dim=32 > /dev/null
    awk 'BEGIN { print "id\tq\tdist\td" }
         { print $1 "\tv" NR % 3 "\t" (NR % 4 ? NR % 4 : "") "\t" NR % 7 }' "$tmp/names.txt" > "$tmp/names.tsv"
    namestore=$(echo "$chstore" | sed 's|table=cli_photos|table=cli_names|')
    for backend in embedded clickhouse; do
        store=""; [ $backend = clickhouse ] && store=$namestore
        VDX_HOME="$tmp/names-$backend" VDX_STORE="$store" "$vdx" ingest vectors "$tmp/names.npy" \
            --ids "$tmp/names.txt" --meta "$tmp/names.tsv" --model "$model" > "$tmp/names-$backend.log" 2>&1 < /dev/null
    done
    same=0
    for where in "q = 'v1'" "dist <> '2'" "d > 3 AND q <> 'v2'" "dist IN ('1', '3')"; do
        for backend in embedded clickhouse; do
            store=""; [ $backend = clickhouse ] && store=$namestore
            VDX_HOME="$tmp/names-$backend" VDX_STORE="$store" "$vdx" search --like "$(head -1 "$tmp/names.txt")" \
                -k 300 --where "$where" < /dev/null 2> "$tmp/names-$backend.err" | ids > "$tmp/hits-$backend"
        done
        if [ -s "$tmp/hits-embedded" ] && cmp -s "$tmp/hits-embedded" "$tmp/hits-clickhouse"; then
            same=$((same + 1))
        else
            echo "# where $where: embedded $(wc -l < "$tmp/hits-embedded") rows, clickhouse $(wc -l < "$tmp/hits-clickhouse") rows $(head -c 200 "$tmp/names-clickhouse.err")"
        fi
    done
    if [ $same = 4 ]; then
        ok "metadata columns named q, dist and d filter the same rows on ClickHouse as embedded"
    else
        not_ok "metadata columns named q, dist, d: $same of 4 filters agree"
    fi
    # a user with a password (scripts/clickhouse-test-server.sh creates vdx_test): the same
    # hits; a wrong password is refused naming the user, never printing the password
    authstore=$(echo "$chstore" | sed 's|^http://|http://vdx_test:s3cret-pw@|')
    VDX_HOME="$tmp/home-clickhouse" VDX_STORE= "$vdx" search "a photo of a cat" --store "$authstore" \
        --model "$model" < /dev/null 2> "$tmp/search-a.err" | ids > "$tmp/search-a"
    if [ -s "$tmp/search-a" ] && cmp -s "$tmp/search-e" "$tmp/search-a"; then
        ok "vdx search on ClickHouse as a user with a password"
    else
        not_ok "search with a password: [$(tr '\n' ' ' < "$tmp/search-a")] $(head -c 300 "$tmp/search-a.err")"
    fi
    out=$(VDX_HOME="$tmp/home-clickhouse" "$vdx" search "cat" --model "$model" \
        --store "$(echo "$authstore" | sed 's|s3cret-pw|wrong-pw|')" 2>&1 < /dev/null)
    if [ $? -ne 0 ] && echo "$out" | grep -q "refused the login of user 'vdx_test'" &&
        ! echo "$out" | grep -q "wrong-pw"; then
        ok "a wrong ClickHouse password: refused, naming the user, password not printed"
    else
        not_ok "a wrong ClickHouse password: $out"
    fi
    out=$(VDX_HOME="$tmp/home-clickhouse" "$vdx" search "cat" --model "$model" \
        --store "clickhouse://vdx:hunter2@127.0.0.1:1/default" 2>&1 < /dev/null)
    if [ $? -ne 0 ] && echo "$out" | grep -q "connection refused — is the server running?" &&
        ! echo "$out" | grep -q hunter2; then
        ok "vdx search --store with no server: an actionable error without the password"
    else
        not_ok "vdx search against a closed port: $out"
    fi
    # vdx serve over ClickHouse: the HTTP API answers like the embedded store's
    VDX_HOME="$tmp/home-clickhouse" VDX_STORE="$chstore" VDX_TOKEN=clickhouse-test-token-0123 "$vdx" serve \
        --model "$model" --host 127.0.0.1 --port 0 > "$tmp/serve.log" 2>&1 < /dev/null &
    serve_pid=$!
    for _ in $(seq 600); do grep -q 'serving' "$tmp/serve.log" 2>/dev/null && break; sleep 0.1; done
    api=$(sed -n 's/.* at \(http:[^ ?]*\)?token=.*$/\1/p' "$tmp/serve.log" | head -n 1)
    answer=$(curl -s --max-time 10 -H 'Content-Type: application/json' -H 'Authorization: Bearer clickhouse-test-token-0123' \
        -d '{"text":"a photo of a cat","k":9}' "${api%/}/api/search")
    echo "$answer" | ids > "$tmp/serve-c"
    if [ -s "$tmp/serve-c" ] && [ "$(head -n 9 "$tmp/search-e")" = "$(cat "$tmp/serve-c")" ]; then
        ok "vdx serve on ClickHouse: /api/search answers the embedded store's 9 nearest"
    else
        not_ok "vdx serve on ClickHouse: $(echo "$answer" | head -c 300) $(tail -n 3 "$tmp/serve.log")"
    fi
    kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null; serve_pid=""
fi

# The web explorer's browser flows (tests/browser) with every collection on ClickHouse.
if [ -f tests/browser/run.sh ]; then
    VDX_STORE="$url/default" VDX_BUILD="$build" sh tests/browser/run.sh > "$tmp/browser.log" 2>&1
    status=$?
    grep '^\(ok\|not ok\|skip\) - ' "$tmp/browser.log" | sed 's/^\(ok\|not ok\|skip\) - /&browser flow on ClickHouse: /'
    if [ $status -ne 0 ]; then
        grep -q '^not ok - ' "$tmp/browser.log" || not_ok "browser flow on ClickHouse exited $status: $(tail -n 5 "$tmp/browser.log")"
        failures=$((failures + 1))
    fi
fi
[ $failures -eq 0 ]
