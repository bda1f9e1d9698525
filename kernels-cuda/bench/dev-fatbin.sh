#!/usr/bin/env bash
# Experiments only: compiles just the benchmark's kernels (bf16, D=128: the wgmma kernel, the mma.sync 64- and 128-row CTAs
# and the gather-pipelined 64-row kernel) for sm_90a into target/dev.fatbin (seconds instead of minutes). Load it with
#   java -Dsparsa.cuda.fatbin=<path> ...   (CudaRuntime reads the property)
# EXTRA adds nvcc flags, e.g. EXTRA=-DSPARSA_TCG_STAGES=6 (the gather kernel's stage count; run Java with
# -Dsparsa.cuda.gatherStages=6 so that it launches with the matching shared memory).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$here/target"
${NVCC:-nvcc} -fatbin -O3 -std=c++17 -DSPARSA_DEV_BF16_D128 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v \
  ${EXTRA:-} -o "$here/target/dev.fatbin" "$here/src/main/cuda/sparsa_attention.cu" 2>&1 | grep -E 'Compiling|Used|spill' | grep -B1 -A1 'sm_90' | grep -v '^--' 
