"""Pieces the PyTorch scripts of this folder share (they run from any directory: Python puts the
script's folder on sys.path, so `import torch_common` finds this file).

- device_info(): the "device" object of a measurement line (calibrate/FORMAT.md section 2).
- RMSNorm, rope, LlamaBlock: a Llama-style decoder block (RMSNorm, fused QKV with GQA, RoPE in
  eager ops, causal SDPA with enable_gqa, SwiGLU MLP), as torch_llama_trace.py and
  torch_step_bench.py train it.
"""
import datetime
import socket

import torch
import torch.nn as nn
import torch.nn.functional as F

def device_info():
    p = torch.cuda.get_device_properties(0)
    nccl = ".".join(str(x) for x in torch.cuda.nccl.version()) if hasattr(torch.cuda, "nccl") else ""
    cudnn = torch.backends.cudnn.version() or 0
    return {"name": p.name, "driver": "", "cuda": torch.version.cuda or "", "nccl": nccl,
            "cudnn": f"{cudnn // 10000}.{(cudnn % 10000) // 100}.{cudnn % 100}",
            "host": socket.gethostname(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "gpus": torch.cuda.device_count()}


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return F.rms_norm(x, (x.shape[-1],), self.w, self.eps)


def rope(x, cos, sin):  # x [b, h, s, d]
    x1, x2 = x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]
    return x * cos + torch.cat((-x2, x1), dim=-1) * sin


def rope_tables(seq, head_dim, device, theta=500000.0):
    """cos and sin for rope(), bf16, [seq, head_dim]."""
    pos = torch.arange(seq, device=device, dtype=torch.float32)
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    ang = torch.outer(pos, inv)
    cos = torch.cat((ang.cos(), ang.cos()), -1).to(torch.bfloat16)
    sin = torch.cat((ang.sin(), ang.sin()), -1).to(torch.bfloat16)
    return cos, sin


class LlamaBlock(nn.Module):
    def __init__(self, hidden, heads, kv_heads, ffn):
        super().__init__()
        self.h, self.kv, self.d = heads, kv_heads, hidden // heads
        self.n1, self.n2 = RMSNorm(hidden), RMSNorm(hidden)
        self.qkv = nn.Linear(hidden, (heads + 2 * kv_heads) * self.d, bias=False)
        self.proj = nn.Linear(hidden, hidden, bias=False)
        self.fc1 = nn.Linear(hidden, 2 * ffn, bias=False)
        self.fc2 = nn.Linear(ffn, hidden, bias=False)

    def forward(self, x, cos, sin):
        b, s, _ = x.shape
        q, k, v = self.qkv(self.n1(x)).split([self.h * self.d, self.kv * self.d, self.kv * self.d], dim=-1)
        q = rope(q.view(b, s, self.h, self.d).transpose(1, 2), cos, sin)
        k = rope(k.view(b, s, self.kv, self.d).transpose(1, 2), cos, sin)
        v = v.view(b, s, self.kv, self.d).transpose(1, 2)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, s, -1))
        g, u = self.fc1(self.n2(x)).chunk(2, dim=-1)
        return x + self.fc2(F.silu(g) * u)
