#!/usr/bin/env bash
# One command on the GPU machine: Sparsa's CUDA kernels through Java (CudaBench) and, in the same run,
# PyTorch's SDPA (flash, cuDNN) and flex_attention on equal masks (torch_bench.py).
# Run from the project root after staging:  bash <stage>/gpu-bench.sh [--n 8192,32768] [--iters 30]
# where <stage> holds java.sh (from tools/gpu-stage) and a copy of this folder's files.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
masks=$(mktemp -d)
echo "== Sparsa CUDA (Java, CUDA events, median)"
bash "$here/java.sh" dev.sparsa.cuda.CudaBench --masks "$masks" "$@"
echo "== PyTorch $(python3 -c 'import torch; print(torch.__version__)') (CUDA events, median)"
PYTHONUNBUFFERED=1 python3 "$here/torch_bench.py" --masks "$masks" "$@"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv,noheader
