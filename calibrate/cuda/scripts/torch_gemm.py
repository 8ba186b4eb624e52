#!/usr/bin/env python3
"""Measure the GEMM jobs of a trainsim job list (calibrate/FORMAT.md section 1) through PyTorch:
bf16/fp16 with torch.matmul, fp8 (e4m3 inputs, bf16 output, per-tensor scales 1.0) with
torch._scaled_mm, both on cuBLASLt. Writes measurement lines (section 2) with source
"torch matmul|_scaled_mm (torch X)". A cross-check of trainsim_calibrator's GEMM lines.

  python3 torch_gemm.py JOBS.json [--dtype fp8] [--out FILE.jsonl] [--warmup N] [--runs N]
"""
import argparse
import json
import statistics
import sys

import torch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from torch_sdpa import device_info  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("jobs")
    ap.add_argument("--dtype", action="append", help="only these dtypes (repeatable)")
    ap.add_argument("--out", default="-")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--runs", type=int, default=None)
    a = ap.parse_args()
    jobs = json.load(open(a.jobs))
    warmup = a.warmup if a.warmup is not None else jobs.get("warmup", 10)
    runs = a.runs if a.runs is not None else jobs.get("runs", 50)
    out = sys.stdout if a.out == "-" else open(a.out, "w")
    dev = device_info()
    one = torch.ones((), device="cuda", dtype=torch.float32)
    for idx, j in enumerate(jobs.get("ops", [])):
        if j.get("class") != "gemm" or (a.dtype and j["dtype"] not in a.dtype):
            continue
        m, n, k, b = j["m"], j["n"], j["k"], j.get("batch", 1)
        try:
            if j["dtype"] == "fp8":
                if b != 1:
                    raise RuntimeError("batched fp8 not measured here")
                A = torch.randn(m, k, device="cuda").to(torch.float8_e4m3fn)
                B = torch.randn(n, k, device="cuda").to(torch.float8_e4m3fn).t()  # column-major (TN)
                fn = lambda: torch._scaled_mm(A, B, one, one, out_dtype=torch.bfloat16)  # noqa: E731
                what = "_scaled_mm"
            else:
                dt = torch.bfloat16 if j["dtype"] == "bf16" else torch.float16
                A = torch.randn(b, m, k, device="cuda", dtype=dt)
                B = torch.randn(b, n, k, device="cuda", dtype=dt).transpose(1, 2)
                fn = lambda: torch.matmul(A, B)  # noqa: E731
                what = "matmul"
            for _ in range(warmup):
                fn()
            torch.cuda.synchronize()
            ev = [torch.cuda.Event(enable_timing=True) for _ in range(runs + 1)]
            for i in range(runs):
                ev[i].record()
                fn()
                ev[i + 1].record()
            torch.cuda.synchronize()
            t = [ev[i].elapsed_time(ev[i + 1]) * 1000.0 for i in range(runs)]
        except Exception as e:
            print(f"skip: /ops/{idx}: {str(e).splitlines()[0][:200]}", file=sys.stderr)
            continue
        line = {"kind": "op", "device": dev,
                "op": {"class": "gemm", "dtype": j["dtype"], "m": m, "n": n, "k": k, "batch": b},
                "time_us": round(statistics.median(t), 3), "min_us": round(min(t), 3), "runs": runs,
                "source": f"torch {what} (torch {torch.__version__})"}
        out.write(json.dumps(line) + "\n")
        out.flush()
        del A, B


if __name__ == "__main__":
    main()
