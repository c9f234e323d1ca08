#!/usr/bin/python3
"""A CLIP ViT-B/32 vision tower in plain PyTorch, for bench/vs_peers.sh.

Written from the public architecture (docs/clip-model.md; transformers' CLIPVisionModel +
visual_projection): patch conv, class token, position embeddings, pre-LayerNorm, 12 pre-LN
encoder layers with QuickGELU MLPs, post-LayerNorm of the class token, projection. It reads
the model directory's model.safetensors with NumPy (no safetensors/transformers needed).
    vs_peers.py pixels DIR OUT.f32 N       write N random preprocessed images (raw float32)
    vs_peers.py check DIR PIXELS VDX.f32   min cosine of PyTorch fp32 vs vdx fp32 (exit 1 < 0.99999)
    vs_peers.py time DIR [--rounds N] [--onnx FILE.onnx]
                                           images/s (batch 32), single-image ms, wall and CPU s
                                           for fp32 and bf16 autocast; --onnx exports the model
Prints figures; the timing mode never fails.
"""
import json, os, struct, sys, time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import warnings
warnings.filterwarnings("ignore")
import numpy as np
import torch

F = torch.nn.functional


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32" or not (
                name.startswith("vision_model.") or name == "visual_projection.weight"):
            continue
        a, b = t["data_offsets"]
        out[name] = torch.from_numpy(np.array(np.frombuffer(data[a:b], dtype=np.float32)).reshape(t["shape"]))
    return out


class VisionTower(torch.nn.Module):
    def __init__(self, w, heads=12, eps=1e-5):
        super().__init__()
        self.w, self.heads, self.eps = w, heads, eps
        self.patch = w["vision_model.embeddings.patch_embedding.weight"].shape[-1]
        self.width = w["vision_model.pre_layrnorm.weight"].shape[0]
        self.layers = sum(1 for k in w if k.endswith(".layer_norm1.weight"))
        for i, (k, v) in enumerate(w.items()):
            self.register_buffer(f"t{i}", v, persistent=False)

    def ln(self, x, p):
        return F.layer_norm(x, (self.width,), self.w[p + ".weight"], self.w[p + ".bias"], self.eps)

    def lin(self, x, p):
        return F.linear(x, self.w[p + ".weight"], self.w[p + ".bias"])

    def forward(self, pixels):
        w, v = self.w, "vision_model."
        x = F.conv2d(pixels, w[v + "embeddings.patch_embedding.weight"], stride=self.patch)
        b, h = x.shape[0], x.shape[1]
        x = x.flatten(2).transpose(1, 2)
        cls = w[v + "embeddings.class_embedding"].expand(b, 1, h).to(x.dtype)
        x = torch.cat([cls, x], 1) + w[v + "embeddings.position_embedding.weight"]
        x = self.ln(x, v + "pre_layrnorm")
        n, d = x.shape[1], h // self.heads
        for i in range(self.layers):
            p = f"{v}encoder.layers.{i}."
            y = self.ln(x, p + "layer_norm1")
            q, k, val = (self.lin(y, p + "self_attn." + s).view(b, n, self.heads, d).transpose(1, 2)
                         for s in ("q_proj", "k_proj", "v_proj"))
            a = torch.softmax((q * d ** -0.5) @ k.transpose(-1, -2), -1) @ val
            x = x + self.lin(a.transpose(1, 2).reshape(b, n, h), p + "self_attn.out_proj")
            y = self.lin(self.ln(x, p + "layer_norm2"), p + "mlp.fc1")
            x = x + self.lin(y * torch.sigmoid(1.702 * y), p + "mlp.fc2")
        return F.linear(self.ln(x[:, 0], v + "post_layernorm"), w["visual_projection.weight"])


def model_of(d):
    return VisionTower(load_safetensors(os.path.join(d, "model.safetensors"))).eval()


def timed(fn, rounds, batch, pixels):
    fn(pixels[:1]); fn(pixels)  # warm-up at both shapes
    best = (1e30, 0.0)
    for _ in range(rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(pixels)
        s, c = time.perf_counter() - t0, time.process_time() - c0
        best = min(best, (s, c))
    singles = []
    c0 = time.process_time()
    for _ in range(5 * rounds):
        t0 = time.perf_counter()
        fn(pixels[:1])
        singles.append(time.perf_counter() - t0)
    single_cpu = (time.process_time() - c0) / len(singles)
    return best[0], best[1], sorted(singles)[len(singles) // 2], single_cpu


def report(name, batch, r):
    s, c, single, single_cpu = r
    print(f"RESULT {name} {batch / s:.2f} {batch / c:.2f} {s:.3f} {c:.3f} {single * 1e3:.1f} {single_cpu * 1e3:.1f}")
    print(f"  {name}: batch {batch}: {batch / s:.2f} images/s ({s:.3f} s wall, {c:.3f} CPU s = "
          f"{batch / c:.2f} images per CPU s); single image {single * 1e3:.1f} ms median "
          f"({single_cpu * 1e3:.1f} CPU ms)", flush=True)


def main():
    mode, d = sys.argv[1], sys.argv[2]
    torch.set_num_threads(int(os.environ.get("VS_THREADS", "2")))
    if mode == "pixels":
        g = np.random.default_rng(7)
        n = int(sys.argv[4])
        (g.standard_normal((n, 3, 224, 224), dtype=np.float32) * 0.9).clip(-1.8, 2.2).tofile(sys.argv[3])
        return 0
    model = model_of(d)
    if mode == "check":
        px = torch.from_numpy(np.fromfile(sys.argv[3], dtype=np.float32).reshape(-1, 3, 224, 224))
        ours = np.fromfile(sys.argv[4], dtype=np.float32).reshape(px.shape[0], -1)
        with torch.no_grad():
            theirs = model(px).double().numpy()
        ours = ours.astype(np.float64)
        cos = (ours * theirs).sum(1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
        print(f"same model: cosine vdx fp32 vs PyTorch fp32 over {len(cos)} images: min "
              f"{cos.min():.9f}, max |difference| {np.abs(ours - theirs).max():.3g} "
              f"(feature norm {np.linalg.norm(theirs, axis=1).mean():.3g})")
        if cos.min() < 0.99999:
            print("vs_peers: FAILED: PyTorch and vdx do not compute the same model (cosine < 0.99999)")
            return 1
        return 0
    rounds = 3
    onnx = None
    args = sys.argv[3:]
    while args:
        if args[0] == "--rounds":
            rounds = int(args[1])
        elif args[0] == "--onnx":
            onnx = args[1]
        args = args[2:]
    batch = 32
    g = np.random.default_rng(7)
    px = torch.from_numpy(g.standard_normal((batch, 3, 224, 224), dtype=np.float32))
    print(f"pytorch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"{torch.backends.cpu.get_cpu_capability() if hasattr(torch.backends, 'cpu') else ''}")
    with torch.no_grad():
        report("pytorch-fp32", batch, timed(model, rounds, batch, px))

        def bf16(x):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model(x)
        report("pytorch-bf16", batch, timed(bf16, rounds, batch, px))
        if onnx:
            torch.onnx.export(model, px[:1], onnx, input_names=["pixels"], output_names=["features"],
                              dynamic_axes={"pixels": {0: "n"}, "features": {0: "n"}}, opset_version=14)
            px.numpy().tofile(onnx + ".pixels")
            print(f"exported {onnx}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
