#!/bin/sh
# vdx's CLIP ViT-B/32 image tower against its peers on this machine, in one run, 2 threads
# each: PyTorch (Debian's python3-torch; bench/vs_peers.py writes the tower from the public
# architecture) fp32 and bf16 autocast, and ONNX Runtime fp32 when npm's onnxruntime-node
# is at $ORT_DIR (install: npm install --prefix "$ORT_DIR" --ignore-scripts onnxruntime-node,
# outside the repository). One random full-size checkpoint (bench_clip --keep) is shared
# by every side. First it proves PyTorch and vdx compute the same model (minimum cosine of
# the fp32 features of the same 8 images >= 0.99999; it stops loudly if not), then it times
# vdx fp32/bf16/int8 (bench_clip) and the peers, and prints the ratios vdx/peer.
# A missing peer is reported and skipped. Benchmarks print numbers; never pass/fail.
#   sh bench/vs_peers.sh [--rounds N]      (env: BUILD=build/release, ORT_DIR, PEERS_DIR)
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build/release}
rounds=3
[ "${1:-}" = "--rounds" ] && rounds=$2
py=/usr/bin/python3
dir=${PEERS_DIR:-${TMPDIR:-/tmp}/vdx-vs-peers}
ORT_DIR=${ORT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vdx-onnxruntime}
export OMP_NUM_THREADS=2 VS_THREADS=2 OMP_WAIT_POLICY=PASSIVE
mkdir -p "$dir"
make -s -j2 BUILD="$BUILD" "$BUILD/bench/bench_clip" || { echo "vs_peers: build failed"; exit 0; }
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p'); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "flags: $(grep -m1 -o -w -e avx512f -e avx512_bf16 -e avx512_vnni -e amx_tile /proc/cpuinfo | sort -u | tr '\n' ' ')"
if ! $py -c 'import torch, numpy' 2>/dev/null; then
    echo "PyTorch: missing (apt-get install python3-torch); skipping every peer"
    "$BUILD/bench/bench_clip" --threads 2 --rounds "$rounds"
    exit 0
fi
$py bench/vs_peers.py pixels "$dir" "$dir/pixels.f32" 8 &&
"$BUILD/bench/bench_clip" --threads 2 --keep "$dir" --embed "$dir/pixels.f32" "$dir/vdx.f32" &&
$py bench/vs_peers.py check "$dir" "$dir/pixels.f32" "$dir/vdx.f32" || {
    echo "vs_peers: FAILED: the equivalence check did not pass; no timings"; exit 1; }

"$BUILD/bench/bench_clip" --threads 2 --rounds "$rounds" --keep "$dir" | tee "$dir/vdx.log"
onnx_arg=""
if [ -d "$ORT_DIR/node_modules/onnxruntime-node" ] && command -v node >/dev/null; then
    onnx_arg="--onnx $dir/clip-vision.onnx"
fi
echo
$py bench/vs_peers.py time "$dir" --rounds "$rounds" $onnx_arg | tee "$dir/peers.log"
if [ -n "$onnx_arg" ] && [ -f "$dir/clip-vision.onnx" ]; then
    NODE_PATH="$ORT_DIR/node_modules" node bench/vs_peers_ort.js "$dir/clip-vision.onnx" "$rounds" | tee -a "$dir/peers.log"
else
    echo "ONNX Runtime: missing (npm install --prefix $ORT_DIR --ignore-scripts onnxruntime-node); skipped"
fi

echo
echo "== summary (batch 32, images/s wall | images per CPU s; single image ms), 2 threads"
awk '
/^== (fp32|bf16|int8): matmuls on/ { p = $2; sub(":", "", p); isa[p] = $5 }
/^vision batch 32:/ { v[p] = $4 }
/^  batch of 32:/ { s = $4 + 0; c = $8 + 0; if (!(p in best) || s < best[p]) { best[p] = s; cpu[p] = 32 / c } }
/^vision single image:/ { single[p] = $4 }
END { for (k in v) printf "vdx-%s %.2f %.2f %s %s\n", k, v[k], cpu[k], single[k], isa[k] }
' "$dir/vdx.log" > "$dir/vdx.sum"
sed -n 's/^RESULT //p' "$dir/peers.log" | awk '{ print $1, $2, $3, $6 }' > "$dir/peers.sum"
awk '
NR == FNR { r[$1] = $2; c[$1] = $3; m[$1] = $4; isa[$1] = $5; next }
{ r[$1] = $2; c[$1] = $3; m[$1] = $4 }
END {
    n = split("vdx-fp32 vdx-bf16 vdx-int8 pytorch-fp32 pytorch-bf16 onnxruntime-fp32", all, " ")
    for (i = 1; i <= n; i++)
        if (all[i] in r)
            printf "  %-17s %7.2f images/s | %6.2f per CPU s | single %7.1f ms %s\n", all[i], r[all[i]], c[all[i]], m[all[i]], isa[all[i]]
        else
            printf "  %-17s not measured\n", all[i]
    split("vdx-fp32:pytorch-fp32 vdx-bf16:pytorch-bf16 vdx-fp32:onnxruntime-fp32 vdx-int8:pytorch-fp32 vdx-bf16:pytorch-fp32", pairs, " ")
    for (i = 1; i in pairs; i++) {
        split(pairs[i], ab, ":")
        if ((ab[1] in r) && (ab[2] in r))
            printf "  %s / %s: %.2fx wall, %.2fx per CPU s\n", ab[1], ab[2], r[ab[1]] / r[ab[2]], c[ab[1]] / c[ab[2]]
    }
}' "$dir/vdx.sum" "$dir/peers.sum"
exit 0
