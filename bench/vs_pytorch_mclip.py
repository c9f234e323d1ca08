#!/usr/bin/python3
"""vdx's M-CLIP text tower against PyTorch on the same machine, in the same run.

An XLM-R encoder + mean pooling + LinearTransformation written here in plain PyTorch from
the public architecture (transformers' XLMRobertaModel, MultilingualCLIP.forward), reading
the model directory's model.safetensors with NumPy (no transformers needed). It first
proves it computes what vdx computes (cosine of the features of a few prompts, tokenised
by `vdx tokenize`, embedded by `vdx embed`), then times one prompt of --tokens ids at 1
and 2 threads (OMP_WAIT_POLICY=PASSIVE, as spinning threads only fight a busy neighbour)
against bench_mclip's vdx figure of the same model.
    bench/vs_pytorch_mclip.py MODEL_DIR [--vdx build/release/vdx] [--tokens 16] [--rounds 5]
Needs Debian's python3-torch (and python3-numpy). Prints figures; never pass/fail.
"""
import argparse, json, math, os, re, subprocess, sys, time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import warnings
warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
import torch

from safetensors_torch import load_f32

class XLMR:
    def __init__(self, w, heads, eps=1e-5):
        self.w, self.heads, self.eps = w, heads, eps
        self.layers = 1 + max(int(m.group(1)) for k in w
                              for m in [re.match(r"transformer\.encoder\.layer\.(\d+)\.", k)] if m)

    def ln(self, x, p):
        return torch.nn.functional.layer_norm(x, x.shape[-1:], self.w[p + ".weight"], self.w[p + ".bias"], self.eps)

    def lin(self, x, p):
        return torch.nn.functional.linear(x, self.w[p + ".weight"], self.w[p + ".bias"])

    @torch.no_grad()
    def __call__(self, ids):
        w, e = self.w, "transformer.embeddings."
        ids = torch.tensor(ids)
        pos = torch.cumsum((ids != 1).long(), 0) * (ids != 1).long() + 1
        x = w[e + "word_embeddings.weight"][ids] + w[e + "token_type_embeddings.weight"][0]
        x = self.ln(x + w[e + "position_embeddings.weight"][pos], e + "LayerNorm")
        n, h = x.shape
        d = h // self.heads
        for i in range(self.layers):
            p = f"transformer.encoder.layer.{i}."
            q, k, v = (self.lin(x, p + "attention.self." + s).view(n, self.heads, d).transpose(0, 1)
                       for s in ("query", "key", "value"))
            a = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(d), -1) @ v
            y = self.ln(self.lin(a.transpose(0, 1).reshape(n, h), p + "attention.output.dense") + x,
                        p + "attention.output.LayerNorm")
            m = torch.nn.functional.gelu(self.lin(y, p + "intermediate.dense"))
            x = self.ln(self.lin(m, p + "output.dense") + y, p + "output.LayerNorm")
        return self.lin(x.mean(0), "LinearTransformation")

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--vdx", default="build/release/vdx")
    ap.add_argument("--tokens", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    cfg = json.load(open(os.path.join(a.model, "config.json")))
    heads = (cfg.get("modelBaseConfig") or {}).get("num_attention_heads") or \
        {"xlm-roberta-large": 16, "xlm-roberta-base": 12}[cfg["modelBase"]]
    t0 = time.time()
    model = XLMR(load_f32(os.path.join(a.model, "model.safetensors")), heads)
    print(f"pytorch {torch.__version__}: loaded in {time.time() - t0:.1f} s, {model.layers} layers, {heads} heads")
    prompts = ["a photo of a cat", "一只猫在沙发上睡觉", "قطة نائمة على الأريكة", "Ein Hund am Strand"]
    worst = 1.0
    for text in prompts:
        tok = json.loads(subprocess.run([a.vdx, "tokenize", "--json", "--model", a.model, text],
                                        capture_output=True, text=True, check=True).stdout)
        emb = json.loads(subprocess.run([a.vdx, "embed", "--model", a.model, "--text", text],
                                        capture_output=True, text=True, check=True).stdout)
        ours, theirs = model(tok["ids"]).double(), torch.tensor(emb["embedding"]).double()
        cos = float(ours @ theirs / ours.norm() / theirs.norm())
        worst = min(worst, cos)
    print(f"same function: worst cosine between vdx and this PyTorch XLM-R over {len(prompts)} prompts = {worst:.9f}")
    ids = [0] + [5 + (i * 7919) % 8000 for i in range(1, a.tokens - 1)] + [2]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        model(ids)
        wall, cpu = [], []
        for _ in range(a.rounds):
            w0, c0 = time.perf_counter(), time.process_time()
            model(ids)
            wall.append(time.perf_counter() - w0)
            cpu.append(time.process_time() - c0)
        wall.sort()
        print(f"pytorch fp32, {a.tokens}-token prompt, {threads} thread(s): {wall[len(wall) // 2] * 1e3:.1f} ms median "
              f"(min {wall[0] * 1e3:.1f}), {sum(cpu) / len(cpu) * 1e3:.1f} CPU ms")

if __name__ == "__main__":
    sys.exit(main())
