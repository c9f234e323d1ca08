#!/bin/sh
# `make demo` end to end, non-interactively, against loopback stand-ins for the model hub
# (serving ../shared/fixtures/clip-tiny as openai/clip-vit-base-patch32) and the dataset
# host (a zip of ../shared/data/unsplash-sample plus its images): search answers while
# and after the background ingest runs, a second run downloads nothing, and without
# network the failure says what could not be fetched and how to supply it locally.
set -u
cd "$(dirname "$0")/../.."
build=${VDX_BUILD:-build/release}
shared=${VDX_SHARED:-../shared}
if [ ! -d "$shared/fixtures/clip-tiny" ] || [ ! -d "$shared/data/unsplash-sample" ]; then
    if [ "${CI:-}" = true ]; then echo "not ok - demo: $shared fixtures missing (CI=true)"; exit 1; fi
    echo "skip - demo: $shared not found"; exit 0
fi
shared=$(cd "$shared" && pwd)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vdx-demo-XXXXXX")
server_pid="" demo_pgid=""
cleanup() {
    [ -z "$demo_pgid" ] || kill -TERM "-$demo_pgid" 2>/dev/null
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$tmp"
}
trap cleanup EXIT
failures=0
ok() { echo "ok - $1"; }
not_ok() { echo "not ok - $1"; failures=$((failures + 1)); }

free_port() { sh scripts/free-port.sh; }
# make demo serves with an access token: $VDX_TOKEN here, a random one by default
export VDX_TOKEN=demo-test-token-0123456789
api() { curl -s --max-time 10 -H "Authorization: Bearer $VDX_TOKEN" "http://127.0.0.1:$port/api/$1"; }
search() { curl -s --max-time 10 -H "Authorization: Bearer $VDX_TOKEN" -H 'Content-Type: application/json' -d '{"text":"a photo","k":9}' "http://127.0.0.1:$port/api/search"; }
hits() { grep -o '"id":' | wc -l; }
json_field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n 1; }

# The dataset host: the sample as a zip (the real archive's layout) plus its images,
# each answered after a delay so that the ingest is still running while we search.
mkdir -p "$tmp/www" "$tmp/hf" "$tmp/home"
cp "$shared"/data/unsplash-sample/images/* "$tmp/www/"
(cd "$shared/data/unsplash-sample" && zip -q -X "$tmp/www/unsplash-lite.zip" photos.tsv000 keywords.tsv000)
"$build/tools/fileserver" --root "$tmp/www" --hub "openai/clip-vit-base-patch32=$shared/fixtures/clip-tiny" \
    --port-file "$tmp/fs.port" --log "$tmp/fs.log" --delay-ms 1200 2> "$tmp/fs.err" &
server_pid=$!
for _ in $(seq 600); do [ -s "$tmp/fs.port" ] && break; sleep 0.1; done
fs="http://127.0.0.1:$(cat "$tmp/fs.port")"

run_demo() { # run_demo LOG [VDX_HOME]: starts `make demo` in its own process group
    port=$(free_port)
    setsid env HF_ENDPOINT="$fs" HF_HOME="$tmp/hf" HF_HUB_CACHE= VDX_HOME="${2:-$tmp/home}" \
        VDX_UNSPLASH_URL="$fs/unsplash-lite.zip" VDX_UNSPLASH_BASE="$fs/" VDX_LIMIT=40 \
        VDX_PORT="$port" VDX_MODEL= VDX_DATASET= make -s demo > "$1" 2>&1 < /dev/null &
    demo_pgid=$!
    for _ in $(seq 600); do
        api info > /dev/null 2>&1 && return 0
        kill -0 "$demo_pgid" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}
stop_demo() { # stop_demo [SIGNAL]: TERM by default; INT is what Ctrl-C sends the group
    kill -"${1:-TERM}" "-$demo_pgid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$demo_pgid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "-$demo_pgid" 2>/dev/null
    wait "$demo_pgid" 2>/dev/null
    demo_status=$?
    demo_pgid=""
}
wait_ingest_done() {
    for _ in $(seq 900); do
        state=$(api progress | json_field state)
        case "$state" in done|stopped|failed) return 0 ;; esac
        sleep 0.2
    done
    return 1
}

# First run: everything is downloaded; the page answers while ingest runs.
if run_demo "$tmp/demo1.log"; then
    ok "make demo serves the explorer (first run)"
    grep -q "at http://127.0.0.1:$port/?token=$VDX_TOKEN$" "$tmp/demo1.log" &&
        ok "make demo prints the address with the access token" || not_ok "no tokened URL: $(cat "$tmp/demo1.log")"
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/api/info")" = 401 ] &&
        ok "the demo's API refuses requests without the token" || not_ok "the demo's API answers without the token"
else
    not_ok "make demo did not start serving: $(tail -n 20 "$tmp/demo1.log")"
    exit 1
fi
seen_partial=0 seen_results=0
for _ in $(seq 900); do
    progress=$(api progress)
    state=$(echo "$progress" | json_field state)
    n=$(search | hits)
    [ "$n" -gt 0 ] && seen_results=1
    [ "$n" -gt 0 ] && [ "$state" = running ] && seen_partial=1
    case "$state" in done|stopped|failed) break ;; esac
    sleep 0.1
done
[ $seen_partial -eq 1 ] && ok "search answers while the ingest is still running" \
    || not_ok "search never answered during the ingest (last progress: $progress)"
wait_ingest_done && [ "$(api progress | json_field state)" = done ] \
    && ok "background ingest finishes" || not_ok "ingest did not finish: $(api progress)"
# The server picks up appended rows within a second or so: wait until it shows them all.
stored=$(api progress | json_field stored)
for _ in $(seq 50); do
    count=$(api info | json_field count)
    [ "$count" = "$stored" ] && break
    sleep 0.2
done
[ "${count:-0}" -ge 30 ] && ok "collection holds $count photos after the first run" \
    || not_ok "collection holds ${count:-?} photos, expected at least 30 of the first 40 rows"
[ "$(search | hits)" -eq 9 ] && ok "search returns 9 results after the ingest" \
    || not_ok "search after ingest: $(search | head -c 300)"
grep -q 'unsplash-lite.zip' "$tmp/fs.log" && grep -q 'resolve/main/config.json' "$tmp/fs.log" \
    && ok "first run downloaded the model and the dataset" || not_ok "fileserver log lacks the downloads"
out=$(HF_ENDPOINT="$fs" HF_HOME="$tmp/hf" HF_HUB_CACHE= VDX_HOME="$tmp/home" VDX_PORT="$port" \
      VDX_MODEL= VDX_DATASET= timeout 120 make -s demo 2>&1 < /dev/null)
status=$?
if [ $status -ne 0 ] && echo "$out" | grep -q "already answers at http://127.0.0.1:$port/" && echo "$out" | grep -q "VDX_PORT="; then
    ok "a second make demo on a busy port says how to choose another"
else
    not_ok "busy port (exit $status): $out"
fi
stop_demo

# Second run: nothing is downloaded or embedded twice.
: > "$tmp/fs.log"
if run_demo "$tmp/demo2.log"; then
    wait_ingest_done
    for _ in $(seq 50); do
        count2=$(api info | json_field count)
        [ "$count2" = "$count" ] && break
        sleep 0.2
    done
    [ "$count2" = "$count" ] && ok "second run resumes with the same $count photos" \
        || not_ok "second run has ${count2:-?} photos, first had $count"
    if grep -q '^GET' "$tmp/fs.log"; then
        not_ok "second run downloaded again: $(head -n 5 "$tmp/fs.log")"
    else
        ok "second run downloads nothing"
    fi
    stop_demo INT
    if [ "$demo_status" -eq 0 ] && grep -q "^demo: stopped" "$tmp/demo2.log" && ! grep -q 'make: \*\*\*' "$tmp/demo2.log"; then
        ok "Ctrl-C stops make demo cleanly (exit 0, no make error)"
    else
        not_ok "Ctrl-C: make demo exit $demo_status: $(tail -n 3 "$tmp/demo2.log")"
    fi
else
    not_ok "second make demo did not start: $(tail -n 20 "$tmp/demo2.log")"
fi

# A run interrupted during the dataset download left a partial file: the next run resumes it
# with a Range request (nothing fetched twice), and the demo comes up with the same photos.
zip="$tmp/home3/downloads/unsplash-research-dataset-lite-latest.zip"
mkdir -p "$tmp/home3/downloads"
size=$(wc -c < "$tmp/www/unsplash-lite.zip")
half=$((size / 2))
head -c "$half" "$tmp/www/unsplash-lite.zip" > "$zip.part"
: > "$tmp/fs.log"
if run_demo "$tmp/demo3.log" "$tmp/home3"; then
    wait_ingest_done
    for _ in $(seq 50); do
        count3=$(api info | json_field count)
        [ "$count3" = "$count" ] && break
        sleep 0.2
    done
    if grep -q "^GET /unsplash-lite.zip 206 $((size - half))$" "$tmp/fs.log" &&
        ! grep -q "^GET /unsplash-lite.zip 200" "$tmp/fs.log" && cmp -s "$zip" "$tmp/www/unsplash-lite.zip" &&
        [ ! -e "$zip.part" ] && [ "$count3" = "$count" ]; then
        ok "a partial dataset download resumes from byte $half; the demo serves the same $count photos"
    else
        not_ok "resume of a partial download: $(grep unsplash-lite "$tmp/fs.log"), count ${count3:-?} of $count, $(tail -n 5 "$tmp/demo3.log")"
    fi
    stop_demo
else
    not_ok "make demo with a partial download did not start: $(tail -n 20 "$tmp/demo3.log")"
fi

# Offline: a clear message naming what could not be fetched and the local alternative.
closed=$(free_port)
out=$(HF_ENDPOINT="http://127.0.0.1:$closed" HF_HOME="$tmp/empty-hf" HF_HUB_CACHE= VDX_HOME="$tmp/offline" \
      VDX_MODEL= VDX_DATASET= timeout 120 make -s demo 2>&1 < /dev/null)
status=$?
if [ $status -ne 0 ] && echo "$out" | grep -q "could not download the model" && echo "$out" | grep -q "VDX_MODEL="; then
    ok "offline: model download failure says how to supply a local model"
else
    not_ok "offline model failure (exit $status): $out"
fi
out=$(HF_ENDPOINT="$fs" HF_HOME="$tmp/hf" HF_HUB_CACHE= VDX_HOME="$tmp/offline" VDX_MODEL= VDX_DATASET= \
      VDX_UNSPLASH_URL="http://127.0.0.1:$closed/lite.zip" timeout 120 make -s demo 2>&1 < /dev/null)
status=$?
if [ $status -ne 0 ] && echo "$out" | grep -q "could not download the Unsplash Lite dataset" && echo "$out" | grep -q "VDX_DATASET="; then
    ok "offline: dataset download failure says how to supply a local copy"
else
    not_ok "offline dataset failure (exit $status): $out"
fi
[ $failures -eq 0 ]
