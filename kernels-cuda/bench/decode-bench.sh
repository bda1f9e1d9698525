#!/usr/bin/env bash
# Decode on the GPU machine in one run: Sparsa's CUDA decode (Java CudaDecodeBench: dense on contiguous and paged
# caches, Quest, a device-to-device copy as the bandwidth ceiling) and PyTorch's SDPA and flex_attention decode on
# caches of the same shapes (torch_decode_bench.py). Run from the project root after staging:
#   bash <stage>/decode-bench.sh [--batch 1,16] [--n 8192,32768,131072]
# where <stage> holds java.sh (made by the staging script that packs a JDK runtime and the classes) and a copy of this folder's files.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
echo "== Sparsa CUDA decode (Java, CUDA events, median)"
bash "$here/java.sh" dev.sparsa.cuda.CudaDecodeBench "$@"
echo "== PyTorch $(python3 -c 'import torch; print(torch.__version__)') decode (CUDA events, median)"
PYTHONUNBUFFERED=1 python3 "$here/torch_decode_bench.py" "$@"
