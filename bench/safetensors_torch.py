"""The float32 tensors of a .safetensors file as PyTorch tensors over a memory map (no copy),
for the bench scripts that run vdx's checkpoints through PyTorch (vs_peers.py,
vs_pytorch_mclip.py). Other dtypes (an int64 position_ids buffer, say) are skipped.
"""
import json
import struct
import warnings

import numpy as np
import torch


def load_f32(path, prefixes=None):
    """{name: tensor} of every F32 tensor, or of those whose name starts with one of prefixes."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + n)
    out = {}
    for name, t in header.items():
        if name == "__metadata__" or t["dtype"] != "F32":
            continue
        if prefixes and not name.startswith(tuple(prefixes)):
            continue
        a, b = t["data_offsets"]
        with warnings.catch_warnings():  # read-only by design: the map is never written
            warnings.simplefilter("ignore")
            out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype=np.float32).reshape(t["shape"]))
    return out
