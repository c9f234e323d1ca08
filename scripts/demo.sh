#!/bin/sh
# `make demo`: from a fresh machine to the explorer at http://127.0.0.1:8080.
# Builds vdx, gets the CLIP model (Hugging Face cache, else `vdx model pull`), gets the
# Unsplash Lite dataset (download with resume, read straight from the zip), starts the
# server at once and ingests in the background, so search works on whatever is already
# embedded and grows as ingest proceeds. Re-running resumes; nothing is fetched twice.
#
# Environment (all optional):
#   VDX_MODEL        model directory or repo id   (default openai/clip-vit-base-patch32)
#   VDX_TEXT_MODEL   a text model for prompts in any language, e.g.
#                    M-CLIP/XLM-Roberta-Large-Vit-B-32 (fetched like the model; vdx serve
#                    reads the variable)
#   VDX_DATASET      Unsplash Lite directory or .zip already on disk
#   VDX_UNSPLASH_URL where to download the dataset zip from
#   VDX_UNSPLASH_BASE image CDN base URL (default https://images.unsplash.com/)
#   VDX_LIMIT        ingest only the first N photos
#   VDX_HOME         data directory (default ~/.local/share/vdx)
#   VDX_HOST, VDX_PORT  where to serve (default 127.0.0.1:8080)
#   VDX_TOKEN        the server's access token (default: a random one each run)
# The demo serves on loopback with an access token, as `vdx serve` does by default: open
# the address it prints (http://127.0.0.1:8080/?token=...); the page keeps the token in a
# cookie, so later visits to http://127.0.0.1:8080/ in that browser need nothing more.
#   HF_ENDPOINT, HF_HOME, HF_HUB_CACHE  as for huggingface_hub
set -eu
cd "$(dirname "$0")/.."
say() { printf 'demo: %s\n' "$*"; }
fail() { printf 'demo: error: %s\n' "$*" >&2; exit 1; }

jobs=$(nproc 2>/dev/null || echo 2)
say "building vdx (make -j$jobs)"
make -s -j"$jobs" build/release/vdx
vdx=build/release/vdx

model=${VDX_MODEL:-openai/clip-vit-base-patch32}
if [ -d "$model" ]; then
    say "model: using the directory $model"
elif model_dir=$($vdx model path "$model" 2>/dev/null); then
    say "model: $model found in the Hugging Face cache at $model_dir"
else
    say "model: $model is not in the Hugging Face cache; downloading it (vdx model pull $model)"
    $vdx model pull "$model" || fail "could not download the model $model from ${HF_ENDPOINT:-https://huggingface.co}.
  Without network, point vdx at a local copy: VDX_MODEL=/path/to/model-dir make demo
  (a directory with config.json, model.safetensors or pytorch_model.bin, vocab.json, merges.txt)."
fi
text_model=${VDX_TEXT_MODEL:-}
if [ -n "$text_model" ] && [ ! -d "$text_model" ] && ! $vdx model path "$text_model" > /dev/null 2>&1; then
    say "text model: $text_model is not in the Hugging Face cache; downloading it (vdx model pull $text_model)"
    $vdx model pull "$text_model" || fail "could not download the text model $text_model.
  Without network, point vdx at a local copy: VDX_TEXT_MODEL=/path/to/model-dir make demo"
fi
[ -z "$text_model" ] || say "text model: $text_model (prompts in any language)"

home=${VDX_HOME:-${HOME:-/root}/.local/share/vdx}
export VDX_HOME="$home"
mkdir -p "$home/downloads"
if [ -n "${VDX_DATASET:-}" ]; then
    [ -e "$VDX_DATASET" ] || fail "VDX_DATASET=$VDX_DATASET does not exist"
    dataset=$VDX_DATASET
    say "dataset: using $dataset"
else
    url=${VDX_UNSPLASH_URL:-https://unsplash-datasets.s3.amazonaws.com/lite/latest/unsplash-research-dataset-lite-latest.zip}
    dataset="$home/downloads/unsplash-research-dataset-lite-latest.zip"
    if [ -s "$dataset" ]; then
        say "dataset: already downloaded ($dataset)"
    else
        say "dataset: downloading $url"
        progress="--progress-bar"; [ -t 2 ] || progress="--no-progress-meter"
        curl -fL $progress --retry 3 --connect-timeout 15 -C - -o "$dataset.part" "$url" || fail "could not download the Unsplash Lite dataset from $url.
  Without network, give a local copy: VDX_DATASET=/path/to/unsplash-dir-or-zip make demo,
  or explore your own pictures: build/release/vdx ingest folder ~/Pictures"
        mv "$dataset.part" "$dataset"
    fi
fi

host=${VDX_HOST:-127.0.0.1}
port=${VDX_PORT:-8080}
if curl -s -o /dev/null --max-time 2 "http://$host:$port/"; [ $? -ne 7 ]; then
    fail "something already answers at http://$host:$port/ (another vdx serve?): stop it, or choose another port: VDX_PORT=8081 make demo"
fi

limit=""
[ -z "${VDX_LIMIT:-}" ] || limit="--limit $VDX_LIMIT"
base=""
[ -z "${VDX_UNSPLASH_BASE:-}" ] || base="--base-url $VDX_UNSPLASH_BASE"
log="$home/ingest.log"
say "ingesting in the background (log: $log)"
# The map (vdx map build) follows the ingest: the page's Map view shows it; items
# ingested later are placed among their neighbours until the next build.
# A stop (the trap below) reaches the ingest or the map build, whichever runs.
(
    # shellcheck disable=SC2086
    $vdx ingest unsplash "$dataset" --model "$model" $limit $base &
    child=$!
    trap 'kill $child 2>/dev/null; exit 143' TERM
    wait $child && exec $vdx map build --model "$model"
) > "$log" 2>&1 &
ingest_pid=$!
# Ctrl-C reaches the ingest, the server and this script at once; the traps must not fail
# (set -e), or a clean stop would end with "make: *** Error 1"
trap 'kill $ingest_pid 2>/dev/null || :; wait $ingest_pid 2>/dev/null || :' EXIT
trap ':' INT TERM
# The server needs the collection to exist: ingest creates it once the model is loaded.
i=0
until $vdx info > /dev/null 2>&1; do
    kill -0 $ingest_pid 2>/dev/null || { cat "$log" >&2; fail "ingest stopped before creating the collection (log above)"; }
    i=$((i + 1)); [ $i -lt 600 ] || fail "the collection was not created within 60 s (see $log)"
    sleep 0.1
done
say "starting the explorer on $host:$port: open the address printed below, it carries the access token (Ctrl-C stops; ingest resumes on the next run)"
status=0
$vdx serve --model "$model" --host "$host" --port "$port" || status=$?
case $status in
    0|130|143) say "stopped; run 'make demo' again to resume"; exit 0 ;;
    *) exit $status ;;
esac
