#!/usr/bin/env python3
"""A real training step to compare with trainsim (`trainsim compare-trace`): a Llama-style
decoder (RMSNorm, fused QKV with GQA, RoPE, causal scaled_dot_product_attention, SwiGLU MLP,
LM head, cross-entropy) in bf16 on one GPU, AdamW (fused), profiled with torch.profiler and
exported as a Chrome trace. Dimensions default to Llama 3 8B's; --layers cuts the depth.

  python3 torch_llama_trace.py --layers 2 --seq 8192 --out trace.json [--sdpa cudnn|flash|default]

The matching scenario: scenarios/quickstart.json with --set model.layers=2 --set cluster.gpus=1
--set parallel.dp=1 --set parallel.zero=0 --set parallel.recompute=none
--set training.global_batch=1 --set training.micro_batch=1.
"""
import argparse
import json
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel


from torch_common import LlamaBlock, RMSNorm, rope_tables


class Model(nn.Module):
    def __init__(self, layers, hidden, heads, kv_heads, ffn, vocab):
        super().__init__()
        self.emb = nn.Embedding(vocab, hidden)
        self.blocks = nn.ModuleList(LlamaBlock(hidden, heads, kv_heads, ffn) for _ in range(layers))
        self.norm = RMSNorm(hidden)
        self.head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, tok, cos, sin):
        x = self.emb(tok)
        for blk in self.blocks:
            x = blk(x, cos, sin)
        return self.head(self.norm(x))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--ffn", type=int, default=14336)
    ap.add_argument("--vocab", type=int, default=128256)
    ap.add_argument("--seq", type=int, default=8192)
    ap.add_argument("--sdpa", default="default", choices=["default", "cudnn", "flash"])
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.manual_seed(0)
    dev = "cuda"
    model = Model(a.layers, a.hidden, a.heads, a.kv_heads, a.ffn, a.vocab).to(dev, torch.bfloat16)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    cos, sin = rope_tables(a.seq, a.hidden // a.heads, dev)
    tok = torch.randint(0, a.vocab, (1, a.seq), device=dev)
    tgt = torch.randint(0, a.vocab, (1, a.seq), device=dev)
    backends = {"cudnn": [SDPBackend.CUDNN_ATTENTION], "flash": [SDPBackend.FLASH_ATTENTION],
                "default": [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION,
                            SDPBackend.MATH]}[a.sdpa]

    def step():
        with sdpa_kernel(backends, set_priority=a.sdpa == "default"):
            logits = model(tok, cos, sin)
            loss = F.cross_entropy(logits.view(-1, a.vocab).float(), tgt.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(5):
        step()
    torch.cuda.synchronize()
    wall = (time.perf_counter() - t0) / 5
    # The trace is written when the active steps end (the profiler clears its events after
    # each cycle, so exporting after the context would write an empty trace).
    sched = torch.profiler.schedule(wait=0, warmup=1, active=2, repeat=1)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA],
                                schedule=sched, record_shapes=True,
                                on_trace_ready=lambda p: p.export_chrome_trace(a.out)) as prof:
        for _ in range(4):
            step()
            prof.step()
    torch.cuda.synchronize()
    print(json.dumps({"layers": a.layers, "seq": a.seq, "sdpa": a.sdpa, "wall_step_ms_unprofiled": round(wall * 1e3, 3),
                      "max_mem_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 2), "torch": torch.__version__}))


if __name__ == "__main__":
    sys.exit(main())
