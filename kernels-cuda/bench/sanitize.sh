#!/usr/bin/env bash
# compute-sanitizer over the GPU tests on the GPU machine: memcheck over every CudaAttentionGpuTest case
# (random shapes and plans, every dtype, head dim and geometry), racecheck and synccheck over the
# device-tensor test. Prints each tool's summary line; exits non-zero if any tool reports an error.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/runners.sh"
rc=0
run() {
  local tool=$1; shift
  echo "== compute-sanitizer --tool $tool"
  compute-sanitizer --tool "$tool" --target-processes all --error-exitcode 9 --print-limit 20 \
    bash -c '. "$0/runners.sh"; gpu_tests CudaAttentionGpuTest "$1"' "$here" "${1:-}" 2>&1 |
    grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|tests (successful|failed|aborted)|Invalid|Race|========= [A-Z]' | head -30
  local r=${PIPESTATUS[0]}
  echo "exit $r"
  [ "$r" -eq 0 ] || rc=1
}
echo "== canary: memcheck must see a planted out-of-bounds write in this JVM's kernels"
compute-sanitizer --tool memcheck --target-processes all --print-limit 2 \
  bash -c '. "$0/runners.sh"; java_main dev.sparsa.bench.gpu.SanitizerCanary' "$here" 2>&1 |
  grep -E 'Invalid __global__ write|ERROR SUMMARY|canary:' | head -4
run memcheck
run racecheck deviceTensors
run synccheck deviceTensors
exit $rc
