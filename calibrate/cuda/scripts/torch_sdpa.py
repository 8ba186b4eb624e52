#!/usr/bin/env python3
"""Measure the attention jobs of a trainsim job list (calibrate/FORMAT.md section 1) through
PyTorch's scaled_dot_product_attention, once per available backend (cuDNN, FlashAttention),
and write measurement lines (section 2) with source "torch sdpa <backend> (torch X)".

A cross-check of trainsim_calibrator's attention numbers on a machine that has PyTorch; the
calibrator itself does not depend on it. Timing as the calibrator does it: warm-up, then the
median of CUDA-event-timed runs on random inputs (never zeros).

  python3 torch_sdpa.py JOBS.json [--out FILE.jsonl] [--warmup N] [--runs N]
"""
import argparse
import json
import statistics
import sys

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from torch_common import device_info

BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}


def time_fn(fn, warmup, runs):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    ev = [torch.cuda.Event(enable_timing=True) for _ in range(runs + 1)]
    times = []
    for i in range(runs):
        ev[i].record()
        fn()
        ev[i + 1].record()
    torch.cuda.synchronize()
    for i in range(runs):
        times.append(ev[i].elapsed_time(ev[i + 1]) * 1000.0)
    return statistics.median(times), min(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jobs")
    ap.add_argument("--out", default="-")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--runs", type=int, default=None)
    a = ap.parse_args()
    jobs = json.load(open(a.jobs))
    warmup = a.warmup if a.warmup is not None else jobs.get("warmup", 10)
    runs = a.runs if a.runs is not None else jobs.get("runs", 50)
    out = sys.stdout if a.out == "-" else open(a.out, "w")
    dev = device_info()
    dt = {"bf16": torch.bfloat16, "fp16": torch.float16}
    seen = set()
    for idx, j in enumerate(jobs.get("ops", [])):
        if j.get("class") != "attention":
            continue
        key = json.dumps(j, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        b, h, hk, sq, skv, d = j["batch"], j["heads"], j["kv_heads"], j["seq_q"], j["seq_kv"], j["head_dim"]
        q = torch.randn(b, h, sq, d, device="cuda", dtype=dt[j["dtype"]], requires_grad=True)
        k = torch.randn(b, hk, skv, d, device="cuda", dtype=dt[j["dtype"]], requires_grad=True)
        v = torch.randn(b, hk, skv, d, device="cuda", dtype=dt[j["dtype"]], requires_grad=True)
        for bname, backend in BACKENDS.items():
            try:
                with sdpa_kernel(backend):
                    def fwd():
                        return F.scaled_dot_product_attention(q, k, v, is_causal=j["causal"], enable_gqa=(h != hk))
                    if not j["backward"]:
                        with torch.no_grad():
                            med, mn = time_fn(fwd, warmup, runs)
                    else:
                        o = fwd()
                        do = torch.randn_like(o)
                        def bwd():
                            torch.autograd.grad(o, (q, k, v), do, retain_graph=True)
                        med, mn = time_fn(bwd, warmup, runs)
                        del o, do
            except Exception as e:  # a backend that refuses the shape: say so, go on
                print(f"skip: /ops/{idx} {bname}: {str(e).splitlines()[0][:200]}", file=sys.stderr)
                continue
            line = {"kind": "op", "device": dev, "op": {k2: j[k2] for k2 in
                    ("class", "dtype", "batch", "heads", "kv_heads", "seq_q", "seq_kv", "head_dim", "causal", "backward")},
                    "time_us": round(med, 3), "min_us": round(mn, 3), "runs": runs,
                    "source": f"torch sdpa {bname} (torch {torch.__version__})"}
            out.write(json.dumps(line) + "\n")
            out.flush()
        del q, k, v
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
