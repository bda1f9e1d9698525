#!/usr/bin/env bash
# One command on the GPU machine: Sparsa's CUDA kernels through Java (dev.sparsa.bench.gpu.CudaBench)
# and, in the same run, PyTorch's SDPA (flash, cuDNN) and flex_attention on equal masks (torch_bench.py).
# Usage: kernels-cuda/bench/gpu-bench.sh [--n 8192,32768] [--iters 30]   (runners.sh: how Java starts)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/runners.sh"
masks=$(mktemp -d)
echo "== Sparsa CUDA (Java, CUDA events, median)"
java_main dev.sparsa.bench.gpu.CudaBench --masks "$masks" "$@"
echo "== PyTorch $(python3 -c 'import torch; print(torch.__version__)') (CUDA events, median)"
PYTHONUNBUFFERED=1 python3 "$here/torch_bench.py" --masks "$masks" "$@"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
