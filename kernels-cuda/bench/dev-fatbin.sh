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
#
# kernels-cuda/bench/dev-fatbin.sh decode DIR: the decode unit alone (sparsa_decode_quest) into
# DIR/sparsa_decode_quest.fatbin, with EXTRA's flags, e.g. the tensor-core decode kernel's shape
#   EXTRA='-DSPARSA_DECODE_WARPS=6 -DSPARSA_DECODE_CTAS=2'
# (run Java with -Dsparsa.cuda.fatbin=DIR -Dsparsa.cuda.decodeWarps=6, and -Dsparsa.cuda.decodeStages=S
# for -DSPARSA_DECODE_STAGES=S; kernels-cuda/bench/decode-variants.sh times such folders side by side).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=$here/target/dev
if [ "${1:-}" = decode ]; then
  [ -n "${2:-}" ] || { echo "usage: dev-fatbin.sh decode DIR" >&2; exit 2; }
  out=$2
fi
mkdir -p "$out"
dev() { # unit, then extra flags
  local u=$1
  shift
  # shellcheck disable=SC2086
  ${NVCC:-nvcc} -fatbin -O3 -std=c++17 "$@" -gencode=arch=compute_90a,code=sm_90a -Xptxas -v ${EXTRA:-} \
    -o "$out/$u.fatbin" "$here/src/main/cuda/$u.cu" > "$out/ptxas-$u.txt" 2>&1
}
if [ "${1:-}" = decode ]; then
  dev sparsa_decode_quest || { cat "$out/ptxas-sparsa_decode_quest.txt" >&2; exit 1; }
  grep -A2 -E 'Compiling entry function .sparsa_decode_(bf16|f16)_d(64|128)_mma' "$out/ptxas-sparsa_decode_quest.txt" \
    | grep -E 'Compiling|Used|spill'
  exit 0
fi
dev sparsa_prefill_mma_bf16 -DSPARSA_DEV_BF16_D128 &
mma=$!
dev sparsa_prefill_wgmma &
wg=$!
status=0
wait "$mma" || status=1
wait "$wg" || status=1
cat "$out"/ptxas-sparsa_prefill_mma_bf16.txt "$out"/ptxas-sparsa_prefill_wgmma.txt | grep -E 'Compiling|Used|spill|error' | grep -v '^--'
exit $status
