#!/usr/bin/env bash
# Nsight Compute side by side on the GPU machine: the kernel PyTorch's SDPA runs for a decode step and Sparsa's
# decode kernels (the prepared step of CudaDecodeBench) on the same shapes (bf16, 32 query / 8 KV heads, D 128, one
# query row): speed of light, memory workload, occupancy, launch and warp-state sections, one report per (side,
# shape) in $OUT (or /tmp), then a digest of the lines that compare (duration, DRAM and L2 throughput, SM active
# cycles, grid, block, occupancy).
# Usage: kernels-cuda/bench/decode-ncu.sh [B:N ...]   (default 1:8192 1:131072 16:131072; runners.sh: how Java starts)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/runners.sh"
out=${OUT:-/tmp}
shapes=("$@")
[ ${#shapes[@]} -gt 0 ] || shapes=(1:8192 1:131072 16:131072)
sec=(--section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats
  --section WarpStateStats)
for shape in "${shapes[@]}"; do
  b=${shape%%:*}
  n=${shape##*:}
  ncu --clock-control none --target-processes all -k 'regex:flash|fmha|combine|attn|sdpa|cudnn' --launch-skip 2 \
    --launch-count 4 "${sec[@]}" python3 "$here/torch_sdpa_once.py" "$b" "$n" > "$out/ncu-sdpa-$b-$n.txt" 2>&1
  echo "sdpa $b $n: ncu exited $?"
  ncu --clock-control none --target-processes all -k 'regex:sparsa_decode' --launch-skip 4 --launch-count 2 "${sec[@]}" \
    bash -c '. "$0/runners.sh"; shift; java_main dev.sparsa.cuda.CudaDecodeBench "$@"' "$here" -- --batch "$b" --n "$n" \
    --iters 3 --warmup 1 --warmup-s 0 --repeats 1 --rows step --l2-flush off > "$out/ncu-sparsa-$b-$n.txt" 2>&1
  echo "sparsa $b $n: ncu exited $?"
done
for f in "$out"/ncu-sdpa-*.txt "$out"/ncu-sparsa-*.txt; do
  echo "=== $(basename "$f")"
  grep -E '^  [a-zA-Z_].*\(|Duration|Elapsed Cycles|SM Active Cycles|DRAM Throughput|L2 Cache Throughput|L2 Hit Rate|Grid Size|Block Size|Registers Per|Achieved Active Warps|Dynamic Shared' "$f"
done
