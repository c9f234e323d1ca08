#!/usr/bin/python3
"""vdx's CLIP vision tower against PyTorch and ONNX Runtime, same weights, same machine, one run.

A CLIP ViT vision tower written here in plain PyTorch from the public architecture (pre-LN
ViT: patch convolution without bias, class token, positions, pre-LayerNorm, encoder layers
of LayerNorm -> multi-head attention -> residual, LayerNorm -> fc1 -> QuickGELU -> fc2 ->
residual, post-LayerNorm of the class token, projection without bias), reading
bench_clip's random full-size ViT-B/32 checkpoint (model.safetensors) with NumPy.

1. Proves it is the same model: 8 random images of pixel values through vdx
   (`bench_clip --embed-raw`, fp32) and through this tower: the worst cosine must be
   >= 0.99999, else the script stops (a benchmark of two different models is worthless).
2. Exports the tower with torch.onnx.export and checks ONNX Runtime's features the same way.
3. Times batches of 32 (best of --rounds): PyTorch fp32, PyTorch bf16 autocast, ONNX Runtime
   fp32 (npm onnxruntime-node, run by node), and takes vdx's fp32/bf16/int8 figures from
   `bench_clip` in the same run. Every peer on the same thread count. Prints images/s, CPU
   seconds and the ratios vdx / peer. Never pass/fail.
    bench/vs_peers.py DIR --bench build/release/bench/bench_clip [--ort NODE_MODULES_DIR]
                      [--threads 2] [--rounds 3] [--avx2]
--avx2 holds both sides to AVX2 on a CPU that has more, to stand for an AVX2-only machine:
vdx's oneDNN through ONEDNN_MAX_CPU_ISA=AVX2 (its own small kernels still pick AVX-512:
a few per cent of the time), PyTorch's ATen kernels and OpenBLAS through
ATEN_CPU_CAPABILITY=avx2 and OPENBLAS_CORETYPE=Haswell, which vs_peers.sh sets before
Python starts (its patch convolution, under 1 % of the work, still runs PyTorch's own
oneDNN unrestricted: restricting that one fails in PyTorch 1.13). bf16 has no AVX2 kernel
and ONNX Runtime no such switch: both are left out.
Needs Debian's python3-torch and python3-numpy; ONNX Runtime is skipped when --ort is not given.
"""
import argparse, json, os, re, resource, subprocess, sys, tempfile, time
import warnings
warnings.filterwarnings("ignore")
import numpy as np
import torch
import torch.nn.functional as F

from safetensors_torch import load_f32


class Vision(torch.nn.Module):
    """CLIPVisionModel + visual_projection, from the architecture, QuickGELU, eps 1e-5."""

    def __init__(self, w, heads=12, layers=12):
        super().__init__()
        self.w = torch.nn.ParameterDict({k.replace(".", "__"): torch.nn.Parameter(v, requires_grad=False)
                                         for k, v in w.items()})
        self.heads, self.layers = heads, layers

    def p(self, name):
        return self.w[name.replace(".", "__")]

    def forward(self, pixels):
        p = self.p
        patch = p("vision_model.embeddings.patch_embedding.weight")
        d = int(patch.shape[0])  # a constant, not a traced size: ONNX's LayerNorm needs one
        x = F.conv2d(pixels, patch, stride=int(patch.shape[-1]))
        x = x.flatten(2).transpose(1, 2)  # [n, 49, 768]
        cls = p("vision_model.embeddings.class_embedding").expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + p("vision_model.embeddings.position_embedding.weight")
        ln = lambda t, pre: F.layer_norm(t, (d,), p(pre + ".weight"), p(pre + ".bias"), 1e-5)
        lin = lambda t, pre: F.linear(t, p(pre + ".weight"), p(pre + ".bias"))
        x = ln(x, "vision_model.pre_layrnorm")
        hd = d // self.heads
        split = lambda t: t.reshape(t.shape[0], -1, self.heads, hd).transpose(1, 2)
        for i in range(self.layers):
            pre = f"vision_model.encoder.layers.{i}"
            h = ln(x, pre + ".layer_norm1")
            q = split(lin(h, pre + ".self_attn.q_proj"))
            k = split(lin(h, pre + ".self_attn.k_proj"))
            v = split(lin(h, pre + ".self_attn.v_proj"))
            a = torch.softmax(q @ k.transpose(-1, -2) * hd ** -0.5, dim=-1) @ v
            x = x + lin(a.transpose(1, 2).reshape(x.shape[0], -1, d), pre + ".self_attn.out_proj")
            h = lin(ln(x, pre + ".layer_norm2"), pre + ".mlp.fc1")
            x = x + lin(h * torch.sigmoid(1.702 * h), pre + ".mlp.fc2")
        pooled = ln(x[:, 0], "vision_model.post_layernorm")
        return F.linear(pooled, p("visual_projection.weight"))


def worst_cosine(a, b):
    a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    return float((a * b).sum(axis=1).min())


def cpu_s():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def time_batches(fn, rounds):
    """Best wall seconds of `rounds` calls, and the CPU seconds of that best one."""
    best, best_cpu = float("inf"), 0.0
    for _ in range(rounds):
        c0, t0 = cpu_s(), time.perf_counter()
        fn()
        t, c = time.perf_counter() - t0, cpu_s() - c0
        if t < best:
            best, best_cpu = t, c
    return best, best_cpu


ORT_SCRIPT = r"""
const ort = require('onnxruntime-node');
const fs = require('fs');
const [model, pixelsPath, outPath, n, rounds, threads] = process.argv.slice(2);
(async () => {
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: Number(threads),
    interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' });
  const buf = fs.readFileSync(pixelsPath);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const feeds = { pixels: new ort.Tensor('float32', data, [Number(n), 3, 224, 224]) };
  let out = await session.run(feeds); // warm-up, and the features
  fs.writeFileSync(outPath, Buffer.from(out.features.data.buffer));
  let best = Infinity, bestCpu = 0;
  for (let r = 0; r < Number(rounds); r++) {
    const c0 = process.cpuUsage(), t0 = process.hrtime.bigint();
    out = await session.run(feeds);
    const t = Number(process.hrtime.bigint() - t0) / 1e9, c = process.cpuUsage(c0);
    if (t < best) { best = t; bestCpu = (c.user + c.system) / 1e6; }
  }
  console.log(JSON.stringify({ seconds: best, cpu: bestCpu }));
})().catch((e) => { console.error(String(e)); process.exit(1); });
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--bench", default="build/release/bench/bench_clip")
    ap.add_argument("--ort", help="a node_modules directory holding onnxruntime-node")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--avx2", action="store_true", help="hold both sides to AVX2 (see above)")
    a = ap.parse_args()
    bench_env = dict(os.environ, ONEDNN_MAX_CPU_ISA="AVX2") if a.avx2 else None
    if a.avx2 and (os.environ.get("ATEN_CPU_CAPABILITY") != "avx2" or os.environ.get("OPENBLAS_CORETYPE") != "Haswell"):
        sys.exit("vs_peers: --avx2 needs ATEN_CPU_CAPABILITY=avx2 and OPENBLAS_CORETYPE=Haswell set before "
                 "Python starts (bench/vs_peers.sh --avx2 sets them)")
    torch.set_num_threads(a.threads)
    tmp = tempfile.mkdtemp(prefix="vdx-vs-peers-")
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "")
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16") if f" {f}" in flags]
    print(f"vs_peers: CPU {cpu} ({', '.join(isa)}), {a.threads} thread(s) for every side; "
          f"PyTorch {torch.__version__}{'; both held to AVX2' if a.avx2 else ''}")

    rng = np.random.default_rng(7)
    small = rng.standard_normal((8, 3, 224, 224), dtype=np.float32)
    pixels = rng.standard_normal((32, 3, 224, 224), dtype=np.float32)
    small.tofile(os.path.join(tmp, "small.f32"))
    pixels.tofile(os.path.join(tmp, "pixels.f32"))

    # 1. the same model (bench_clip writes the random checkpoint into DIR when it is missing)
    r = subprocess.run([a.bench, "--keep", a.dir, "--threads", str(a.threads), "--embed-raw",
                        os.path.join(tmp, "small.f32"), os.path.join(tmp, "vdx.f32"), "8"],
                       capture_output=True, text=True, env=bench_env)
    if r.returncode != 0:
        sys.exit(f"vs_peers: bench_clip --embed-raw failed: {r.stderr.strip()}")
    vdx_small = np.fromfile(os.path.join(tmp, "vdx.f32"), dtype=np.float32).reshape(8, -1)
    model = Vision(load_f32(os.path.join(a.dir, "model.safetensors"), ("vision_model.", "visual_projection."))).eval()
    with torch.no_grad():
        torch_small = model(torch.from_numpy(small)).numpy()
    cos = worst_cosine(vdx_small, torch_small)
    print(f"same model: worst cosine between vdx fp32 and this PyTorch tower over 8 images = {cos:.7f}")
    if cos < 0.99999:
        sys.exit("vs_peers: the two sides do not compute the same function (cosine < 0.99999): no timings")

    rows = []  # (name, images/s, cpu s per batch)
    with torch.no_grad():
        x = torch.from_numpy(pixels)
        model(x)  # warm-up
        t, c = time_batches(lambda: model(x), a.rounds)
        rows.append(("PyTorch fp32", 32 / t, c))
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        if not a.avx2:
            bf = model(torch.from_numpy(small)).float().numpy()
            model(x)
            t, c = time_batches(lambda: model(x), a.rounds)
            rows.append(("PyTorch bf16 autocast", 32 / t, c))
            print(f"PyTorch bf16 autocast: worst cosine to fp32 = {worst_cosine(bf, torch_small):.6f}")

    # 2. ONNX Runtime
    if a.avx2:
        print("ONNX Runtime: left out (it has no switch to hold it to AVX2)")
    elif a.ort and os.path.isdir(os.path.join(a.ort, "onnxruntime-node")):
        onnx_path = os.path.join(tmp, "vision.onnx")
        try:
            torch.onnx.export(model, torch.from_numpy(small), onnx_path, input_names=["pixels"],
                              output_names=["features"], dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}},
                              opset_version=14)
        except Exception as e:  # noqa: BLE001 - say why and go on without this peer
            print(f"ONNX Runtime: skipped, torch.onnx.export failed: {e}")
            onnx_path = None
        if onnx_path:
            script = os.path.join(tmp, "ort.js")
            open(script, "w").write(ORT_SCRIPT)
            env = dict(os.environ, NODE_PATH=a.ort)
            ok = True
            for name, n in (("small", 8), ("pixels", 32)):
                r = subprocess.run(["node", script, onnx_path, os.path.join(tmp, name + ".f32"),
                                    os.path.join(tmp, "ort-" + name + ".f32"), str(n), str(a.rounds),
                                    str(a.threads)], capture_output=True, text=True, env=env)
                if r.returncode != 0:
                    print(f"ONNX Runtime: skipped: {r.stderr.strip()[:300]}")
                    ok = False
                    break
                result = json.loads(r.stdout.strip().splitlines()[-1])
            if ok:
                ort_small = np.fromfile(os.path.join(tmp, "ort-small.f32"), dtype=np.float32).reshape(8, -1)
                print(f"ONNX Runtime: worst cosine to this PyTorch tower = {worst_cosine(ort_small, torch_small):.7f}")
                rows.append(("ONNX Runtime fp32", 32 / result["seconds"], result["cpu"]))
    else:
        print("ONNX Runtime: skipped (no --ort DIR with onnxruntime-node; bench/vs_peers.sh installs it)")

    # 3. vdx, same run
    r = subprocess.run([a.bench, "--keep", a.dir, "--threads", str(a.threads), "--rounds", str(a.rounds)],
                       capture_output=True, text=True, env=bench_env)
    if r.returncode != 0:
        sys.exit(f"vs_peers: bench_clip failed: {r.stderr.strip()}")
    precision = None
    vdx = {}
    for line in r.stdout.splitlines():
        m = re.match(r"== (\w+): matmuls on (\S+)", line)
        if m:
            precision = (m.group(1), m.group(2))
        m = re.search(r"batch of 32: ([\d.]+) s \(([\d.]+) images/s\), ([\d.]+) CPU s", line)
        if m and precision:
            rate, cpu_b = float(m.group(2)), float(m.group(3))
            if rate > vdx.get(precision, (0, 0))[0]:
                vdx[precision] = (rate, cpu_b)
    print()
    print(f"{'':28s} {'images/s':>9s} {'CPU s/batch':>12s}")
    for (p, kernel), (rate, c) in vdx.items():
        print(f"{'vdx ' + p + ' (' + kernel + ')':28s} {rate:9.1f} {c:12.2f}")
    for name, rate, c in rows:
        print(f"{name:28s} {rate:9.1f} {c:12.2f}")
    print()
    by = {p: v for (p, _), v in vdx.items()}
    for name, rate, c in rows:
        same = "bf16" if "bf16" in name else "fp32"
        if same in by:
            print(f"vdx {same} / {name}: {by[same][0] / rate:.2f}x images/s, "
                  f"{c / by[same][1]:.2f}x by CPU seconds")
    for p in ("bf16", "int8"):
        if p in by and "fp32" in by:
            print(f"vdx {p} / vdx fp32: {by[p][0] / by['fp32'][0]:.2f}x")


if __name__ == "__main__":
    main()
