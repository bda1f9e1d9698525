#!/usr/bin/env bash
# Profiles one tensor-core kernel on the GPU machine: SASS instruction histogram (cuobjdump) and an
# Nsight Compute report (speed of light, occupancy, warp stalls) of one launch of CudaBench.
# Usage: kernels-cuda/bench/profile.sh [kernel] [N] [pattern]   (runners.sh: how Java starts)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/runners.sh"
kernel=${1:-sparsa_tc_bf16_d128_r128}
n=${2:-4096}
pattern=${3:-dense}
out=${OUT:-/tmp}
# the kernel is in one of the images (KernelTable.java says which); the others add nothing
for fat in "$(images_dir)"/*.fatbin; do
  cuobjdump -sass -fun "$kernel" -arch sm_90a "$fat" 2>/dev/null
done > "$out/$kernel.sass"
echo "== SASS histogram of $kernel (sm_90)"
grep -oE '^\s+/\*[0-9a-f]{4}\*/\s+[A-Z0-9_.]+' "$out/$kernel.sass" | awk '{print $2}' | cut -d. -f1 | sort | uniq -c | sort -rn | head -24
echo "== ncu: $kernel, N=$n, $pattern"
ncu --clock-control none --target-processes all -k "regex:$kernel" --launch-skip 1 --launch-count 1 \
  --section SpeedOfLight --section Occupancy --section WarpStateStats --section LaunchStats --section SchedulerStats \
  bash -c '. "$0/runners.sh"; shift; java_main dev.sparsa.bench.gpu.CudaBench "$@"' "$here" -- --n "$n" --iters 2 --warmup 1 --patterns "$pattern" 2>&1 | \
  grep -vE '^==PROF==|^\s*$' | tail -80
