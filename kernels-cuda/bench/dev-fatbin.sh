#!/usr/bin/env bash
# Experiments only: compiles just the benchmark's prefill kernels for sm_90a (seconds instead of minutes):
# the bf16, D = 128 kernels of the mma.sync unit (the 64- and 128-row CTAs and the gather-pipelined 64-row
# kernel) into target/dev/sparsa_prefill_mma_bf16.fatbin and the wgmma unit into
# target/dev/sparsa_prefill_wgmma.fatbin, both at once. Load them in place of the committed images with
#   java -Dsparsa.cuda.fatbin=kernels-cuda/target/dev ...   (CudaRuntime reads the property; the other images
#                                                           stay the committed ones)
# EXTRA adds nvcc flags, e.g. EXTRA=-DSPARSA_TCG_STAGES=6 (the gather kernel's stage count; run Java with
# -Dsparsa.cuda.gatherStages=6 so that it launches with the matching shared memory).
# To rebuild one unit of the committed images instead: kernels-cuda/build-fatbin.sh <unit>.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/target/dev
mkdir -p "$out"
dev() { # unit, then extra flags
  local u=$1
  shift
  # shellcheck disable=SC2086
  ${NVCC:-nvcc} -fatbin -O3 -std=c++17 "$@" -gencode=arch=compute_90a,code=sm_90a -Xptxas -v ${EXTRA:-} \
    -o "$out/$u.fatbin" "$here/src/main/cuda/$u.cu" > "$out/ptxas-$u.txt" 2>&1
}
dev sparsa_prefill_mma_bf16 -DSPARSA_DEV_BF16_D128 &
mma=$!
dev sparsa_prefill_wgmma &
wg=$!
status=0
wait "$mma" || status=1
wait "$wg" || status=1
cat "$out"/ptxas-sparsa_prefill_mma_bf16.txt "$out"/ptxas-sparsa_prefill_wgmma.txt | grep -E 'Compiling|Used|spill|error' | grep -v '^--'
exit $status
