#!/usr/bin/env bash
# Builds trainsim_executor (and trainsim_calibrator) from calibrate/cuda in /tmp and runs the
# executor on exported plans (calibrate/FORMAT.md section 4), one GPU, writing to $OUT:
#   $OUT/build.log, $OUT/version.txt,
#   per plan NAME (file name without .json/.json.gz): NAME.selftest.txt, NAME.exec.json
#   (the executor's output), NAME.exec.log (its stderr: per-step times, notes, skips).
# Usage (from the repository root):
#   calibrate/cuda/scripts/verify_on_gpu.sh [-a "EXECUTOR ARGS"] [-c] PLAN.json[.gz] [PLAN2 ...]
#     -a ARGS  extra trainsim_executor arguments for every plan (default: "--drop-comm --warmup 2 --steps 5")
#     -c       also run trainsim_calibrator --check-attention (cuDNN SDPA vs own kernels)
# Environment: OUT (default ./out-verify), BUILD (default /tmp/ts-exec-build), CMAKE_ARGS (extra
# configure arguments, e.g. -DTRAINSIM_CUDNN_DIR=...), CUDA_ARCH (default 90).
set -u
ARGS="--drop-comm --warmup 2 --steps 5"
CHECK_ATTN=0
while getopts "a:c" opt; do
  case $opt in
    a) ARGS=$OPTARG ;;
    c) CHECK_ATTN=1 ;;
    *) echo "usage: $0 [-a ARGS] [-c] PLAN..." >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-a ARGS] [-c] PLAN.json[.gz]..." >&2; exit 2; }
OUT=${OUT:-./out-verify}
BUILD=${BUILD:-/tmp/ts-exec-build}
CUDA_ARCH=${CUDA_ARCH:-90}
mkdir -p "$OUT"
SRC=$(cd "$(dirname "$0")/.." && pwd)   # calibrate/cuda

{
  nvidia-smi || true
  command -v nvcc || ls /usr/local/cuda*/bin/nvcc
} > "$OUT/machine.txt" 2>&1
if ! command -v nvcc > /dev/null; then
  for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do [ -x "$d/nvcc" ] && export PATH="$d:$PATH" && break; done
fi
echo "== configure + build ($BUILD)" | tee "$OUT/build.log"
if ! { cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" ${CMAKE_ARGS:-} &&
       cmake --build "$BUILD" -j"$(nproc)" --target trainsim_executor trainsim_calibrator; } >> "$OUT/build.log" 2>&1; then
  echo "build failed; see $OUT/build.log" >&2
  tail -30 "$OUT/build.log" >&2
  exit 1
fi
EXE=$BUILD/trainsim_executor
{ "$EXE" --version; "$BUILD/trainsim_calibrator" --version; } > "$OUT/version.txt" 2>&1
cat "$OUT/version.txt"
if [ "$CHECK_ATTN" = 1 ]; then
  "$BUILD/trainsim_calibrator" --check-attention > "$OUT/check_attention.txt" 2>&1
  echo "check-attention: exit $? (see $OUT/check_attention.txt)"
fi

status=0
for plan in "$@"; do
  name=$(basename "$plan"); name=${name%.gz}; name=${name%.json}
  file=$plan
  if [ "${plan%.gz}" != "$plan" ]; then
    file=/tmp/ts-plan-$name.json
    gunzip -c "$plan" > "$file" || { echo "$plan: cannot gunzip" >&2; status=1; continue; }
  fi
  echo "== $name"
  # shellcheck disable=SC2086
  "$EXE" --self-test --plan "$file" $ARGS > "$OUT/$name.selftest.txt" 2>&1
  cat "$OUT/$name.selftest.txt"
  start=$(date +%s)
  # shellcheck disable=SC2086
  "$EXE" --plan "$file" $ARGS --out "$OUT/$name.exec.json" 2> "$OUT/$name.exec.log"
  rc=$?
  echo "exit $rc after $(( $(date +%s) - start )) s"
  tail -5 "$OUT/$name.exec.log"
  [ $rc -eq 0 ] || status=1
done
exit $status
