#!/usr/bin/env bash
# One command on the GPU machine: Sparsa's CUDA kernels through Java (dev.sparsa.bench.gpu.CudaBench)
# and, in the same run, PyTorch's SDPA (flash, cuDNN) and flex_attention on equal masks (torch_bench.py).
# Both sides time alike (LaunchTiming / bench_stats.py): >= 0.5 s warm-up per row, min / median / max of
# --iters launches, an L2-evicting memset before each launch (--l2-flush off to drop it), the whole
# measurement --repeats times (default 2) with a 'spread' line per row; the columns are the same.
# Usage: kernels-cuda/bench/gpu-bench.sh [--n 8192,32768] [--iters 30] [--warmup-s 0.5] [--repeats 2]
#        [--l2-flush on|off] [--patterns ...]   (runners.sh: how Java starts)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/runners.sh"
masks=$(mktemp -d)
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv,noheader
echo "== Sparsa CUDA (Java, CUDA events)"
java_main dev.sparsa.bench.gpu.CudaBench --masks "$masks" "$@" || { rc=$?; echo "CudaBench exited $rc" >&2; exit $rc; }
echo "== PyTorch $(python3 -c 'import torch; print(torch.__version__)') (CUDA events)"
PYTHONUNBUFFERED=1 python3 "$here/torch_bench.py" --masks "$masks" "$@"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv,noheader
