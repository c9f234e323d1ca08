#!/bin/sh
# vdx's CLIP vision tower against PyTorch (fp32, bf16 autocast) and ONNX Runtime (fp32) on
# the same random full-size ViT-B/32 weights, in one run (bench/vs_peers.py says how):
#   sh bench/vs_peers.sh [--threads N] [--rounds N] [--avx2]
# --avx2 holds vdx and PyTorch to AVX2 (to stand for an AVX2-only CPU; vs_peers.py says how).
# Needs Debian's python3-torch and python3-numpy (skipped with a message otherwise). ONNX
# Runtime comes from npm (onnxruntime-node, installed once with --ignore-scripts into
# ~/.cache/vdx-bench/ort: its CPU library ships inside the package, and its install script
# would try to download GPU binaries); without npm it is skipped. Prints; never fails a test.
set -eu
cd "$(dirname "$0")/.."
make -s build/release/bench/bench_clip
if ! /usr/bin/python3 -c 'import torch, numpy' 2> /dev/null; then
    echo "vs_peers: skipped: needs python3-torch and python3-numpy (apt-get install python3-torch python3-numpy)"
    exit 0
fi
cache=${XDG_CACHE_HOME:-$HOME/.cache}/vdx-bench/ort
ort=""
if command -v npm > /dev/null && command -v node > /dev/null; then
    if [ ! -d "$cache/node_modules/onnxruntime-node" ]; then
        echo "# npm install --ignore-scripts onnxruntime-node (into $cache)"
        mkdir -p "$cache"
        (cd "$cache" && npm init -y > /dev/null && npm install --ignore-scripts --no-audit --no-fund \
            --loglevel=error onnxruntime-node) || echo "# ONNX Runtime: npm install failed: skipped"
    fi
    [ -d "$cache/node_modules/onnxruntime-node" ] && ort="--ort $cache/node_modules"
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/vdx-vs-peers-model.XXXXXX")
trap 'rm -rf "$dir"' EXIT
case " $* " in *" --avx2 "*) export ATEN_CPU_CAPABILITY=avx2 OPENBLAS_CORETYPE=Haswell ;; esac
# shellcheck disable=SC2086
/usr/bin/python3 bench/vs_peers.py "$dir" --bench build/release/bench/bench_clip $ort "$@"
