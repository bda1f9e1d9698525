#!/usr/bin/env bash
# Decode on the GPU machine in one run: Sparsa's CUDA decode (Java CudaDecodeBench: dense on contiguous and paged
# caches, Quest, a device-to-device copy as the bandwidth ceiling) and PyTorch's SDPA and flex_attention decode on
# caches of the same shapes (torch_decode_bench.py).
# Usage: kernels-cuda/bench/decode-bench.sh [--batch 1,16] [--n 8192,32768,131072]   (runners.sh: how Java starts)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/runners.sh"
echo "== Sparsa CUDA decode (Java, CUDA events, median)"
java_main dev.sparsa.cuda.CudaDecodeBench "$@"
echo "== PyTorch $(python3 -c 'import torch; print(torch.__version__)') decode (CUDA events, median)"
PYTHONUNBUFFERED=1 python3 "$here/torch_decode_bench.py" "$@"
