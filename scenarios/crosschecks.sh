#!/usr/bin/env bash
# The README's cross-checks outside the shared rows (section "Accuracy"): published H100 runs of
# torchtitan (benchmarks/llama3_h100_202412_torchtitan.md, Tables 1 and 3-6) and NVIDIA's
# Megatron-Bridge (docs/performance-summary-archive.md, DGX-H100 rows of the 25.09, 25.11 and 26.02
# containers), each as `trainsim run` of the
# quickstart with --set values, in fast mode. Prints published and predicted tokens/s per GPU
# and the error, so the README's figures can be taken again after a change.
#
# Usage: scenarios/crosschecks.sh [TRAINSIM]   (default: build/trainsim; run from the source root)
# Extra --set values for every run: CROSSCHECK_SET="--set parallel.grad_reduce_dtype=bf16" ...
set -euo pipefail
bin=${1:-build/trainsim}
extra=${CROSSCHECK_SET:-}
base=scenarios/quickstart.json

# torchtitan Tables 1 and 3 (Llama 3.1 8B, FSDP, local batch 2, 8K tokens, selective
# recomputation: torchtitan's op-level policy, recompute_modules ["op"], in bf16; with Float8,
# which "op" does not model, Megatron's default; the quickstart's other settings) and 4-6: H100
# SXM 96 GB at 500 W, fp8 Float8 linears (current scaling),
# torch.compile, FSDP2, full activation recomputation.
tt="--set cluster.gpu=H100-SXM-96GB-500W --set training.precision=fp8 --set parallel.sequence_parallel=true
    --set parallel.zero=3 --set parallel.recompute=full"
t5="$tt --set model.name=llama3-405b --set cluster.gpus=512 --set parallel.tp=8 --set parallel.pp=8
    --set parallel.dp=8 --set training.global_batch=256 --set training.micro_batch=1"
t6="$tt --set model.name=llama3-405b --set cluster.gpus=512 --set parallel.tp=8 --set parallel.pp=8
    --set training.micro_batch=1"
# Megatron-Bridge, DGX-H100, fp8 current scaling, Transformer Engine (cuDNN attention), the
# distributed optimizer, gradients reduced in bf16 (the performance scripts set
# grad_reduce_in_fp32 False: scripts/performance/configs/*/*_llm_pretrain.py).
mb8="--set training.global_batch=128 --set training.precision=fp8 --set parallel.recompute=full
     --set parallel.recompute_layers=5 --set parallel.grad_reduce_dtype=bf16"
mb70="--set model.name=llama3-70b --set cluster.gpus=64 --set training.global_batch=128
      --set training.precision=fp8 --set parallel.tp=4 --set parallel.pp=8 --set parallel.vp=5
      --set parallel.dp=2 --set parallel.sequence_parallel=true --set parallel.zero=1
      --set parallel.recompute=none --set parallel.grad_reduce_dtype=bf16"
# Llama 3.1 405B on 1,024 H100s: TP 8, PP 8, VP 8, CP 2 (p2p ring), no recomputation, TE's TP
# overlap on (userbuffers_fp8_h100_h16384_tp8_cp2_mbs1_seqlen8192).
mb405="--set model.name=llama3-405b --set cluster.gpus=1024 --set training.precision=fp8
       --set training.attention_kernel=cudnn --set parallel.tp=8 --set parallel.pp=8 --set parallel.vp=8
       --set parallel.cp=2 --set parallel.dp=8 --set parallel.sequence_parallel=true --set parallel.zero=1
       --set parallel.recompute=none --set parallel.grad_reduce_dtype=bf16"
# Qwen3-235B-A22B on 256 H100s, 4K tokens: TP 2, PP 8, VP 4, EP 32 (expert TP 1), alltoall
# dispatcher, grouped GEMM, dropless with forced load balance (moe.routing balanced).
mbq="--set model.name=qwen3-235b-a22b --set cluster.gpus=256 --set training.seq_len=4096
     --set training.precision=fp8 --set training.attention_kernel=cudnn --set parallel.tp=2
     --set parallel.pp=8 --set parallel.vp=4 --set parallel.ep=32 --set parallel.dp=16
     --set parallel.sequence_parallel=true --set parallel.zero=1 --set parallel.recompute=none
     --set moe.routing=balanced --set parallel.grad_reduce_dtype=bf16"
# DeepSeek-V3 on 1,024 H100s (25.09, dropless): TP 2, PP 8, VP 4, EP 64, DeepEP (moe.dispatch
# dedup), forced balance, recompute_modules mla_up_proj and mlp, the EP all-to-all overlap with
# delayed weight gradients.
mbd="--set model.name=deepseek-v3 --set cluster.gpus=1024 --set training.seq_len=4096
     --set training.global_batch=8192 --set training.precision=fp8 --set training.attention_kernel=cudnn
     --set parallel.tp=2 --set parallel.pp=8 --set parallel.vp=4 --set parallel.ep=64 --set parallel.dp=64
     --set parallel.sequence_parallel=true --set parallel.zero=1 --set parallel.recompute=selective
     --set parallel.recompute_modules=[\"mla_up_proj\",\"mlp\"] --set moe.routing=balanced
     --set moe.dispatch=dedup --set parallel.grad_reduce_dtype=bf16"

# One line each (the loop reads a case up to its newline).
tt=$(echo $tt) t5=$(echo $t5) t6=$(echo $t6) mb8=$(echo $mb8) mb70=$(echo $mb70)
mb405=$(echo $mb405) mbq=$(echo $mbq) mbd=$(echo $mbd)

# name | published tokens/s per GPU | --set values
t1="--set cluster.gpu=H100-SXM-96GB-500W --set training.micro_batch=2"
cases=(
  "torchtitan T1 8B 8 GPUs FSDP bf16 (compiled)|6667|$t1 --set training.global_batch=16 --set parallel.recompute_modules=[\"op\"]"
  "torchtitan T1 8B 8 GPUs FSDP fp8 (compiled)|8532|$t1 --set training.global_batch=16 --set training.precision=fp8"
  "torchtitan T3 8B 128 GPUs FSDP bf16 (compiled)|6514|$t1 --set cluster.gpus=128 --set parallel.dp=128 --set training.global_batch=256 --set parallel.recompute_modules=[\"op\"]"
  "torchtitan T3 8B 128 GPUs FSDP fp8 (compiled)|8380|$t1 --set cluster.gpus=128 --set parallel.dp=128 --set training.global_batch=256 --set training.precision=fp8"
  "torchtitan T4 70B 256 GPUs FSDP32 TP8|829|$tt --set model.name=llama3-70b --set cluster.gpus=256 --set parallel.tp=8 --set parallel.dp=32 --set training.global_batch=512 --set training.micro_batch=16"
  "torchtitan T5 405B 512 GPUs 1F1B|100|$t5 --set parallel.schedule=1f1b"
  "torchtitan T5 405B 512 GPUs interleaved vp2|128|$t5 --set parallel.schedule=interleaved --set parallel.vp=2"
  "torchtitan T5 1F1B, zero3_reshard false|100|$t5 --set parallel.schedule=1f1b --set parallel.zero3_reshard=false"
  "torchtitan T5 interleaved, zero3_reshard false|128|$t5 --set parallel.schedule=interleaved --set parallel.vp=2 --set parallel.zero3_reshard=false"
  "torchtitan T6 405B cp1 32K|76|$t6 --set parallel.cp=1 --set parallel.dp=8 --set training.seq_len=32768 --set training.global_batch=64"
  "torchtitan T6 405B cp2 64K|47|$t6 --set parallel.cp=2 --set parallel.dp=4 --set training.seq_len=65536 --set training.global_batch=32"
  "torchtitan T6 405B cp4 128K|31|$t6 --set parallel.cp=4 --set parallel.dp=2 --set training.seq_len=131072 --set training.global_batch=16"
  "torchtitan T6 405B cp8 256K|16|$t6 --set parallel.cp=8 --set parallel.dp=1 --set training.seq_len=262144 --set training.global_batch=8"
  "Megatron-Bridge 8B 8 GPUs cudnn|14451|$mb8 --set training.attention_kernel=cudnn"
  "Megatron-Bridge 8B 8 GPUs flash|14451|$mb8"
  "Megatron-Bridge 70B 64 GPUs cudnn|1602|$mb70 --set training.attention_kernel=cudnn"
  "Megatron-Bridge 70B 64 GPUs flash|1602|$mb70"
  "Megatron-Bridge 70B cudnn, tp_overlap|1602|$mb70 --set training.attention_kernel=cudnn --set parallel.tp_overlap=true"
  "Megatron-Bridge 405B 1024 GPUs CP2 tp_overlap|292|$mb405 --set training.global_batch=512 --set parallel.tp_overlap=true"
  "Megatron-Bridge 405B, without tp_overlap|292|$mb405 --set training.global_batch=512"
  "Megatron-Bridge 405B GBS 1536 tp_overlap|311|$mb405 --set training.global_batch=1536 --set parallel.tp_overlap=true"
  "Megatron-Bridge Qwen3-235B 256 GPUs tp_overlap|1575|$mbq --set training.global_batch=2048 --set parallel.tp_overlap=true"
  "Megatron-Bridge Qwen3-235B GBS 8192 ep_overlap|1633|$mbq --set training.global_batch=8192 --set parallel.ep_overlap=true --set parallel.delay_wgrad=true"
  "Megatron-Bridge Qwen3-235B GBS 8192, without|1633|$mbq --set training.global_batch=8192"
  "Megatron-Bridge DeepSeek-V3 1024 GPUs ep_overlap|1297|$mbd --set parallel.ep_overlap=true --set parallel.delay_wgrad=true"
  "Megatron-Bridge DeepSeek-V3, without ep_overlap|1297|$mbd"
)

json=$(mktemp)
trap 'rm -f "$json"' EXIT
printf '%-48s %10s %10s %8s\n' "run" "published" "predicted" "error"
for c in "${cases[@]}"; do
  IFS='|' read -r name pub sets <<<"$c"
  # shellcheck disable=SC2086
  "$bin" run "$base" --fast $sets $extra --json "$json" >/dev/null
  pred=$(grep -o '"tokens_per_s_per_gpu": *[0-9.e+-]*' "$json" | head -1 | sed 's/.*: *//')
  awk -v n="$name" -v p="$pred" -v m="$pub" \
    'BEGIN { printf "%-48s %10d %10.1f %+7.1f%%\n", n, m, p, (p / m - 1) * 100 }'
done
