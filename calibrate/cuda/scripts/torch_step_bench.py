#!/usr/bin/env python3
"""Whole training steps on one GPU, to check trainsim's single-GPU prediction against a real
PyTorch step (no communication: what is left is kernels, the framework's own work between
them, and memory).

Each config trains a decoder for a few steps and prints one JSON line: the median step time
over the timed steps (CUDA events around each step), tokens/s, the allocator's peak
(torch.cuda.max_memory_allocated) and the mean SM clock and board power that NVML read while the
timed steps ran. The training is what an FSDP/Composer 'amp_bf16' job does on each GPU: fp32
parameters, torch.autocast(bfloat16) for the forward, fp32 cross-entropy (autocast runs it in
fp32), fused AdamW with fp32 states.

Models:
  gpt   MPT-style (llm-foundry): LayerNorm without bias run in bf16 (MPT's
        low_precision_layernorm), fused Wqkv, multi-head SDPA (causal), GELU MLP, no biases,
        no positional embedding (ALiBi off), LM head tied to the embedding.
  llama Llama-style: RMSNorm, fused QKV with GQA, RoPE, SDPA (causal, enable_gqa), SwiGLU, untied
        LM head.

  python3 torch_step_bench.py --configs all --out results.jsonl [--trace-config NAME --trace FILE]

The matching trainsim scenarios are the rows of scenarios/gpu_steps.jsonl (one per config).
"""
import argparse
import json
import statistics
import sys
import threading
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from torch_common import LlamaBlock, RMSNorm, rope_tables

MPT_VOCAB = 50368
MODELS = {
    # name: (arch, hidden, heads, kv_heads, ffn, vocab)
    "mpt-1b": ("gpt", 2048, 16, 16, 8192, MPT_VOCAB),
    "mpt-7b": ("gpt", 4096, 32, 32, 16384, MPT_VOCAB),
    "llama3-8b": ("llama", 4096, 32, 8, 14336, 128256),
}
# name: (model, layers, seq, micro_batch, mode, sdpa)
CONFIGS = {
    "mpt1b_l24_s2k_mb8_eager_flash": ("mpt-1b", 24, 2048, 8, "eager", "flash"),
    "mpt1b_l24_s2k_mb12_eager_flash": ("mpt-1b", 24, 2048, 12, "eager", "flash"),
    "mpt1b_l24_s2k_mb8_compile_flash": ("mpt-1b", 24, 2048, 8, "compile", "flash"),
    "mpt7b_l4_s2k_mb6_eager_flash": ("mpt-7b", 4, 2048, 6, "eager", "flash"),
    "mpt7b_l4_s2k_mb6_compile_flash": ("mpt-7b", 4, 2048, 6, "compile", "flash"),
    "mpt7b_l4_s8k_mb1_eager_flash": ("mpt-7b", 4, 8192, 1, "eager", "flash"),
    "llama8b_l4_s8k_mb1_eager_flash": ("llama3-8b", 4, 8192, 1, "eager", "flash"),
    "llama8b_l4_s8k_mb1_eager_cudnn": ("llama3-8b", 4, 8192, 1, "eager", "cudnn"),
    "llama8b_l4_s8k_mb1_compile_flash": ("llama3-8b", 4, 8192, 1, "compile", "flash"),
    # Run after the attention ramp was fitted (2026-11-24), as checks it was not fitted to:
    "mpt1b_l24_s4k_mb4_compile_flash": ("mpt-1b", 24, 4096, 4, "compile", "flash"),
    "mpt7b_l4_s32k_mb1_compile_flash": ("mpt-7b", 4, 32768, 1, "compile", "flash"),
    "mpt7b_l4_s32k_mb1_compile_cudnn": ("mpt-7b", 4, 32768, 1, "compile", "cudnn"),
    "llama8b_l4_s2k_mb4_compile_flash": ("llama3-8b", 4, 2048, 4, "compile", "flash"),
    "llama8b_l4_s2k_mb4_compile_cudnn": ("llama3-8b", 4, 2048, 4, "compile", "cudnn"),
    # cuDNN's attention inside eager steps (where sdpa_kernel takes effect), traced: its in-step rate
    "mpt1b_l24_s2k_mb8_eager_cudnn": ("mpt-1b", 24, 2048, 8, "eager", "cudnn"),
    "mpt7b_l4_s32k_mb1_eager_cudnn": ("mpt-7b", 4, 32768, 1, "eager", "cudnn"),
}


class LowPrecisionLayerNorm(nn.Module):
    """MPT's low_precision_layernorm: the layer norm runs in the activations' dtype (bf16)
    with autocast off, instead of autocast's fp32 layer_norm."""

    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.w = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        with torch.autocast("cuda", enabled=False):
            return F.layer_norm(x, (x.shape[-1],), self.w.to(x.dtype), None, self.eps)


class GptBlock(nn.Module):
    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.h, self.d = heads, hidden // heads
        self.n1, self.n2 = LowPrecisionLayerNorm(hidden), LowPrecisionLayerNorm(hidden)
        self.wqkv = nn.Linear(hidden, 3 * hidden, bias=False)
        self.proj = nn.Linear(hidden, hidden, bias=False)
        self.up = nn.Linear(hidden, ffn, bias=False)
        self.down = nn.Linear(ffn, hidden, bias=False)

    def forward(self, x, cos, sin):
        b, s, hd = x.shape
        q, k, v = self.wqkv(self.n1(x)).view(b, s, 3, self.h, self.d).unbind(2)
        a = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + self.proj(a.transpose(1, 2).reshape(b, s, hd))
        return x + self.down(F.gelu(self.up(self.n2(x))))


class Model(nn.Module):
    def __init__(self, arch, layers, hidden, heads, kv_heads, ffn, vocab):
        super().__init__()
        self.arch = arch
        self.emb = nn.Embedding(vocab, hidden)
        if arch == "gpt":
            self.blocks = nn.ModuleList(GptBlock(hidden, heads, ffn) for _ in range(layers))
            self.norm = LowPrecisionLayerNorm(hidden)
            self.head = None  # tied: logits = x @ emb.weight^T
        else:
            self.blocks = nn.ModuleList(LlamaBlock(hidden, heads, kv_heads, ffn) for _ in range(layers))
            self.norm = RMSNorm(hidden)
            self.head = nn.Linear(hidden, vocab, bias=False)

    def forward(self, tok, cos, sin):
        x = self.emb(tok)
        if torch.is_autocast_enabled():
            x = x.to(torch.bfloat16)
        for blk in self.blocks:
            x = blk(x, cos, sin)
        x = self.norm(x)
        return F.linear(x, self.emb.weight) if self.head is None else self.head(x)


class Sampler:
    """NVML readings (SM clock, board power) every 20 ms while the timed steps run."""

    def __init__(self):
        self.clocks, self.watts, self._stop = [], [], threading.Event()
        try:
            import pynvml
            pynvml.nvmlInit()
            self.nv, self.h = pynvml, pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
        except Exception:  # noqa: BLE001 - readings are optional
            self.nv = None

    def __enter__(self):
        if self.nv:
            self.t = threading.Thread(target=self._run, daemon=True)
            self.t.start()
        return self

    def _run(self):
        while not self._stop.is_set():
            self.clocks.append(self.nv.nvmlDeviceGetClockInfo(self.h, self.nv.NVML_CLOCK_SM))
            self.watts.append(self.nv.nvmlDeviceGetPowerUsage(self.h) / 1000.0)
            time.sleep(0.02)

    def __exit__(self, *exc):
        self._stop.set()
        if self.nv:
            self.t.join()

    def summary(self):
        if not self.clocks:
            return {}
        return {"sm_clock_mhz_mean": round(statistics.mean(self.clocks)), "power_w_mean": round(statistics.mean(self.watts), 1),
                "power_w_max": round(max(self.watts), 1), "samples": len(self.clocks)}


def run_config(name, warmup, steps, trace_path=None):
    model_name, layers, seq, mb, mode, sdpa = CONFIGS[name]
    arch, hidden, heads, kv_heads, ffn, vocab = MODELS[model_name]
    torch.manual_seed(0)
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    dev = "cuda"
    model = Model(arch, layers, hidden, heads, kv_heads, ffn, vocab).to(dev)  # fp32 parameters
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    cos, sin = rope_tables(seq, hidden // heads, dev)
    tok = torch.randint(0, vocab, (mb, seq), device=dev)
    tgt = torch.randint(0, vocab, (mb, seq), device=dev)
    backends = {"cudnn": [SDPBackend.CUDNN_ATTENTION], "flash": [SDPBackend.FLASH_ATTENTION]}[sdpa]
    if mode == "compile":
        for blk in model.blocks:
            blk.compile()

    def step():
        with sdpa_kernel(backends), torch.autocast("cuda", dtype=torch.bfloat16):
            logits = model(tok, cos, sin)
            loss = F.cross_entropy(logits.view(-1, vocab), tgt.view(-1))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    n_params = sum(p.numel() for p in model.parameters())
    t_compile = time.perf_counter()
    for _ in range(warmup):
        loss = step()
    torch.cuda.synchronize()
    warm_s = time.perf_counter() - t_compile
    if not torch.isfinite(loss):
        raise RuntimeError(f"{name}: loss is {loss.item()}")
    ev = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(steps)]
    with Sampler() as smp:
        for a, b in ev:
            a.record()
            step()
            b.record()
        torch.cuda.synchronize()
    ms = [a.elapsed_time(b) for a, b in ev]
    med = statistics.median(ms)
    row = {"id": name, "model": model_name, "arch": arch, "layers": layers, "hidden": hidden, "heads": heads,
           "kv_heads": kv_heads, "ffn": ffn, "vocab": vocab, "seq": seq, "micro_batch": mb, "mode": mode, "sdpa": sdpa,
           "params": n_params, "steps": steps, "step_ms_median": round(med, 3), "step_ms_min": round(min(ms), 3),
           "step_ms_max": round(max(ms), 3), "tokens_per_s": round(mb * seq / (med / 1e3), 1),
           "max_mem_allocated_GiB": round(torch.cuda.max_memory_allocated() / 2**30, 3),
           "max_mem_reserved_GiB": round(torch.cuda.max_memory_reserved() / 2**30, 3),
           "warmup_s": round(warm_s, 1), "loss": round(loss.item(), 4)}
    row.update(smp.summary())
    row.update({"torch": torch.__version__, "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version(),
                "gpu": torch.cuda.get_device_name(), "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    if trace_path:
        sched = torch.profiler.schedule(wait=0, warmup=1, active=1, repeat=1)
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA],
                                    schedule=sched, on_trace_ready=lambda p: p.export_chrome_trace(trace_path)) as prof:
            for _ in range(3):
                step()
                prof.step()
        torch.cuda.synchronize()
    del model, opt
    return row


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--configs", default="all", help="comma-separated config names, or all")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--out", required=True)
    ap.add_argument("--trace-config", default="", help="comma-separated configs to trace")
    ap.add_argument("--trace", default="", help="trace file (one traced config) or folder (several: NAME.trace.json)")
    a = ap.parse_args()
    names = list(CONFIGS) if a.configs == "all" else a.configs.split(",")
    for n in names:
        if n not in CONFIGS:
            print(f"unknown config {n}; known: {', '.join(CONFIGS)}", file=sys.stderr)
            return 2
    with open(a.out, "a") as f:
        for n in names:
            try:
                traced = a.trace_config.split(",") if a.trace_config else []
                tpath = None
                if n in traced:
                    tpath = a.trace if len(traced) == 1 else f"{a.trace}/{n}.trace.json"
                row = run_config(n, a.warmup, a.steps, tpath)
            except torch.OutOfMemoryError as e:  # the row says so; the next config still runs
                row = {"id": n, "error": "out of memory", "detail": str(e).splitlines()[0]}
            torch._dynamo.reset()
            print(json.dumps(row), flush=True)
            f.write(json.dumps(row) + "\n")
            f.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
