#!/usr/bin/env python3
"""A bf16 matrix product (M=N=K, random data) run back to back for several seconds, timed in
windows of CUDA events, with the SM clock and board power read through NVML each window: how the
rate of a short burst (what a calibration run sees) compares with the rate the power limit lets
the GPU hold. Prints one JSON line per window and a summary line.

  python3 torch_sustained_gemm.py [--n 8192] [--seconds 6] [--window-ms 100]
"""
import argparse
import json
import statistics
import sys
import time

import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=8192)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--window-ms", type=float, default=100.0)
    ap.add_argument("--out", default="")
    a = ap.parse_args()
    import pynvml
    pynvml.nvmlInit()
    h = pynvml.nvmlDeviceGetHandleByIndex(0)
    n = a.n
    x = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    y = torch.randn(n, n, device="cuda", dtype=torch.bfloat16)
    z = torch.empty(n, n, device="cuda", dtype=torch.bfloat16)
    flops = 2.0 * n * n * n
    torch.matmul(x, y, out=z)
    torch.cuda.synchronize()
    s0 = torch.cuda.Event(enable_timing=True)
    s1 = torch.cuda.Event(enable_timing=True)
    s0.record()
    torch.matmul(x, y, out=z)
    s1.record()
    torch.cuda.synchronize()
    per_call_ms = s0.elapsed_time(s1)
    calls = max(1, int(a.window_ms / per_call_ms))
    time.sleep(2.0)  # let the clocks settle at idle before the burst
    rows, t_end = [], time.perf_counter() + a.seconds
    t0 = time.perf_counter()
    while time.perf_counter() < t_end:
        e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        e0.record()
        for _ in range(calls):
            torch.matmul(x, y, out=z)
        e1.record()
        torch.cuda.synchronize()
        ms = e0.elapsed_time(e1)
        rows.append({"t_s": round(time.perf_counter() - t0, 3), "tflops": round(flops * calls / (ms / 1e3) / 1e12, 1),
                     "sm_clock_mhz": pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM),
                     "power_w": round(pynvml.nvmlDeviceGetPowerUsage(h) / 1000.0, 1)})
    out = open(a.out, "w") if a.out else None
    for r in rows:
        if out:
            out.write(json.dumps(r) + "\n")
    first = rows[0]
    tail = rows[len(rows) // 2:]
    summary = {"n": n, "calls_per_window": calls, "windows": len(rows), "first_window_tflops": first["tflops"],
               "first_window_clock_mhz": first["sm_clock_mhz"],
               "second_half_tflops_median": statistics.median(r["tflops"] for r in tail),
               "second_half_clock_mhz_median": statistics.median(r["sm_clock_mhz"] for r in tail),
               "second_half_power_w_median": statistics.median(r["power_w"] for r in tail),
               "power_limit_w": pynvml.nvmlDeviceGetEnforcedPowerLimit(h) / 1000.0,
               "gpu": torch.cuda.get_device_name(), "torch": torch.__version__}
    print(json.dumps(summary))
    if out:
        out.write(json.dumps({"summary": summary}) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
