#!/usr/bin/env bash
# compute-sanitizer over the GPU tests on the GPU machine: memcheck over every CudaAttentionGpuTest case
# (random shapes and plans, every dtype, head dim and geometry), racecheck and synccheck over the
# device-tensor test; memcheck over the decode tests, racecheck over the split-KV decode tests (CUDA-core and
# tensor-core kernels), over Quest's device choice, over prepared steps (dense, Quest, top-k) replayed by CUDA graphs and over the merge inside the
# decode kernel (memcheck too); memcheck and racecheck over the estimator kernels (MeanPoolBlockTopK
# on the device) through their repeated-call test; memcheck over the head-packed token gather (racecheck and synccheck
# over its packed-versus-unpacked cases, which run the gather-pipelined kernel's stages through several turns) and over
# the three device estimates reached through the facade (block mean-pool, vertical-slash, top-k per query block),
# racecheck over the latter; memcheck over every case of the exact top-k per query estimate, racecheck over its
# repeated-call test; memcheck and racecheck over the Hopper kernel's TMA copies (CudaTmaGpuTest: TMA against
# cp.async, every dtype and layout; skipped off Hopper).
# Prints each tool's summary line; exits non-zero if any tool reports an error.
# Usage: sanitize.sh [all|decode]   (decode: only the decode kernel's checks; runners.sh: how Java starts)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/runners.sh"
which=${1:-all}
rc=0
run() { # run TOOL CLASS [METHOD]: the GPU tests of CLASS (those whose name starts with METHOD) under TOOL
  local tool=$1 class=$2 method=${3:-}
  echo "== compute-sanitizer --tool $tool on $class $method"
  compute-sanitizer --tool "$tool" --target-processes all --error-exitcode 9 --print-limit 20 \
    bash -c '. "$0/runners.sh"; gpu_tests "$1" "$2"' "$here" "$class" "$method" 2>&1 |
    grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|tests (successful|failed|aborted)|Invalid|Race|========= [A-Z]' | head -30
  local r=${PIPESTATUS[0]}
  echo "exit $r"
  [ "$r" -eq 0 ] || rc=1
}
echo "== canary: memcheck must see a planted out-of-bounds write in this JVM's kernels"
compute-sanitizer --tool memcheck --target-processes all --print-limit 2 \
  bash -c '. "$0/runners.sh"; java_main dev.sparsa.bench.gpu.SanitizerCanary' "$here" 2>&1 |
  grep -E 'Invalid __global__ write|ERROR SUMMARY|canary:' | head -4
if [ "$which" = all ]; then
  run memcheck CudaAttentionGpuTest
  run memcheck CudaGatherGpuTest
  run racecheck CudaGatherGpuTest packedAndUnpacked
  run synccheck CudaGatherGpuTest packedAndUnpacked
  run memcheck CudaFacadeEstimateGpuTest
  run racecheck CudaFacadeEstimateGpuTest everyDevice
  run memcheck CudaTopKQueryEstimateGpuTest
  run racecheck CudaTopKQueryEstimateGpuTest repeatedCalls
  run racecheck CudaAttentionGpuTest deviceTensors
  run synccheck CudaAttentionGpuTest deviceTensors
  run memcheck CudaTmaGpuTest
  run racecheck CudaTmaGpuTest tmaCopies
fi
run memcheck CudaDecodeGpuTest denseDecode
run memcheck CudaDecodeGpuTest questOnTheDevice
run memcheck CudaDecodeGpuTest chunkedPrefill
run racecheck CudaDecodeGpuTest splitKv
run memcheck CudaDecodeGpuTest tensorCore
run racecheck CudaDecodeGpuTest tensorCore
run racecheck CudaDecodeGpuTest questOnTheDevice
run memcheck CudaDecodeGpuTest aNanInQ
run memcheck CudaDecodeStepGpuTest
run racecheck CudaDecodeStepGpuTest oneGraph
run racecheck CudaDecodeStepGpuTest questAndTopK
run memcheck CudaDecodeGpuTest theMergeInTheDecode
run racecheck CudaDecodeGpuTest theMergeInTheDecode
run memcheck CudaEstimateGpuTest repeatedCalls
run racecheck CudaEstimateGpuTest repeatedCalls
exit $rc
