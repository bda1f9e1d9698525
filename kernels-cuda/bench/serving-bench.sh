#!/usr/bin/env bash
# The drop-in and resident-facade costs of the CUDA backend next to PyTorch's copy bandwidths, in one run on
# the GPU machine: torch_copy_bench.py first (pinned host<->device GB/s on the bytes the call moves), then the
# Java CudaServingBench with those bandwidths as its model.
# Usage: kernels-cuda/bench/serving-bench.sh [CudaServingBench arguments]   (runners.sh: how Java starts)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/runners.sh"
echo "== PyTorch $(python3 -c 'import torch; print(torch.__version__)') copies (CUDA events, median)"
copies=$(PYTHONUNBUFFERED=1 python3 "$here/torch_copy_bench.py")
echo "$copies"
h2d=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["h2dPinnedGBps"])' "$copies")
d2h=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["d2hPinnedGBps"])' "$copies")
echo "== Sparsa CUDA serving paths (Java)"
java_main -Xmx24g dev.sparsa.cuda.CudaServingBench --h2d "$h2d" --d2h "$d2h" "$@"
