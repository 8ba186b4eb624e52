#!/usr/bin/env python3
"""Attention through PyTorch's scaled_dot_product_attention over a grid of shapes (sequence
length, batch, heads, head dim, causal or not, square or rectangular), per backend (FlashAttention-2,
cuDNN), forward and backward, written as measurement lines (calibrate/FORMAT.md section 2) that
`trainsim calibrate import` reads.

Unlike torch_sdpa.py, which times each call between its own pair of CUDA events, this queues
`--calls` calls back to back between two events and divides: the GPU never waits for the Python
launch of the next call, and the clocks stay where a training step keeps them. The median of
`--repeats` such batches is the line's time_us, the fastest batch its min_us.

  python3 torch_attention_sweep.py --out FILE.jsonl [--grid default|small]
"""
import argparse
import json
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from torch_common import device_info

BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION}


def grid(name):
    """(batch, heads, kv_heads, seq_q, seq_kv, head_dim, causal)."""
    g = []
    tokens = 65536 if name == "default" else 16384
    for s in (1024, 2048, 4096, 8192, 16384, 32768):       # causal, 128-dim heads: the ramp with length
        g.append((max(1, tokens // s), 16, 16, s, s, 128, True))
    for s in (2048, 4096):                                  # few CTAs: one sequence
        g.append((1, 16, 16, s, s, 128, True))
    for s in (2048, 8192, 32768):                           # non-causal (ring steps off the diagonal)
        g.append((max(1, tokens // s), 16, 16, s, s, 128, False))
    g.append((max(1, tokens // 16384), 16, 16, 8192, 16384, 128, False))   # rectangular ring block
    for s in (2048, 8192):                                  # 64-dim heads
        g.append((max(1, tokens // s), 32, 32, s, s, 64, True))
    g.append((max(1, tokens // 8192), 32, 8, 8192, 8192, 128, True))       # GQA 4:1
    return g


def time_batched(fn, calls, repeats):
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    per = []
    for _ in range(repeats):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        for _ in range(calls):
            fn()
        b.record()
        torch.cuda.synchronize()
        per.append(a.elapsed_time(b) * 1000.0 / calls)
    return statistics.median(per), min(per)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--grid", default="default", choices=["default", "small"])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--target-ms", type=float, default=40.0, help="each timed batch lasts about this long")
    a = ap.parse_args()
    dev = device_info()
    with open(a.out, "a") as out:
        for (b, h, hk, sq, skv, d, causal) in grid(a.grid):
            q = torch.randn(b, h, sq, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
            k = torch.randn(b, hk, skv, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
            v = torch.randn(b, hk, skv, d, device="cuda", dtype=torch.bfloat16, requires_grad=True)
            for bname, backend in BACKENDS.items():
                for backward in (False, True):
                    try:
                        with sdpa_kernel(backend):
                            def fwd():
                                return F.scaled_dot_product_attention(q, k, v, is_causal=causal, enable_gqa=(h != hk))
                            if not backward:
                                def fn():
                                    with torch.no_grad():
                                        fwd()
                            else:
                                o = fwd()
                                do = torch.randn_like(o)

                                def fn():
                                    torch.autograd.grad(o, (q, k, v), do, retain_graph=True)
                            # one probe call sizes the batch so that it lasts about target-ms
                            probe, _ = time_batched(fn, 1, 1)
                            calls = max(2, min(200, int(a.target_ms * 1000.0 / max(probe, 1.0))))
                            med, mn = time_batched(fn, calls, a.repeats)
                    except Exception as e:  # a backend that refuses the shape: say so, go on
                        print(f"skip: b={b} h={h} s={sq}x{skv} d={d} causal={causal} {bname} "
                              f"{'bwd' if backward else 'fwd'}: {str(e).splitlines()[0][:160]}", file=sys.stderr)
                        continue
                    line = {"kind": "op", "device": dev,
                            "op": {"class": "attention", "dtype": "bf16", "batch": b, "heads": h, "kv_heads": hk,
                                   "seq_q": sq, "seq_kv": skv, "head_dim": d, "causal": causal, "backward": backward},
                            "time_us": round(med, 3), "min_us": round(mn, 3), "runs": a.repeats,
                            "source": f"torch sdpa {bname} batched (torch {torch.__version__})"}
                    out.write(json.dumps(line) + "\n")
                    out.flush()
                    print(json.dumps({"b": b, "h": h, "s": f"{sq}x{skv}", "d": d, "causal": causal, "be": bname,
                                      "bwd": backward, "us": round(med, 1)}), flush=True)
            del q, k, v
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
