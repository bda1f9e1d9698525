#!/usr/bin/env bash
# compute-sanitizer over the GPU tests on the GPU machine: memcheck over every CudaAttentionGpuTest case
# (random shapes and plans, every dtype, head dim and geometry), racecheck and synccheck over the
# device-tensor test; memcheck over the decode tests and racecheck over the split-KV decode test.
# Prints each tool's summary line; exits non-zero if any tool reports an error.
# Usage: sanitize.sh [all|decode]   (decode: only the decode kernel's checks)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
which=${1:-all}
rc=0
run() {
  local tool=$1 class=$2; shift 2
  echo "== compute-sanitizer --tool $tool on $class $*"
  compute-sanitizer --tool "$tool" --target-processes all --error-exitcode 9 --print-limit 20 \
    bash "$here/test.sh" --include-tag gpu --include-classname ".*$class" --details=none "$@" 2>&1 |
    grep -E 'ERROR SUMMARY|RACECHECK SUMMARY|tests (successful|failed|aborted)|Invalid|Race|========= [A-Z]' | head -30
  local r=${PIPESTATUS[0]}
  echo "exit $r"
  [ "$r" -eq 0 ] || rc=1
}
echo "== canary: memcheck must see a planted out-of-bounds write in this JVM's kernels"
compute-sanitizer --tool memcheck --target-processes all --print-limit 2 bash "$here/java.sh" dev.sparsa.cuda.SanitizerCanary 2>&1 |
  grep -E 'Invalid __global__ write|ERROR SUMMARY|canary:' | head -4
if [ "$which" = all ]; then
  run memcheck CudaAttentionGpuTest
  run racecheck CudaAttentionGpuTest --include-methodname '.*deviceTensors.*'
  run synccheck CudaAttentionGpuTest --include-methodname '.*deviceTensors.*'
fi
run memcheck CudaDecodeGpuTest --include-methodname '.*(denseDecode|questOnTheDevice|chunkedPrefill).*'
run racecheck CudaDecodeGpuTest --include-methodname '.*splitKv.*'
exit $rc
