#!/usr/bin/env bash
# Decode on the GPU machine in one run: Sparsa's CUDA decode (Java CudaDecodeBench: dense on contiguous and paged
# caches, Quest, a device-to-device copy as the bandwidth ceiling) and PyTorch's SDPA and flex_attention decode on
# caches of the same shapes (torch_decode_bench.py). Both sides time alike (LaunchTiming / bench_stats.py): >= 0.5 s
# warm-up per row, min / median / max of --iters calls, an L2-evicting memset before each call (--l2-flush off to
# drop it), the whole measurement --repeats times (default 2) with a 'spread' line per row; the columns are the same.
# Usage: kernels-cuda/bench/decode-bench.sh [--batch 1,16] [--n 8192,32768,131072] [--iters 50] [--repeats 2]
#        [--l2-flush on|off] [--cache bf16|e4m3]   (runners.sh: how Java starts; --cache and --rows are Sparsa's only)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/runners.sh"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv,noheader
echo "== Sparsa CUDA decode (Java, CUDA events)"
java_main dev.sparsa.cuda.CudaDecodeBench "$@" || { rc=$?; echo "CudaDecodeBench exited $rc" >&2; exit $rc; }
# PyTorch decodes bf16 caches: the flags only Sparsa's side takes (--cache, --rows) stay there
torch_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --cache | --rows) i=$((i + 1)) ;;
    *) torch_args+=("${args[i]}") ;;
  esac
done
echo "== PyTorch $(python3 -c 'import torch; print(torch.__version__)') decode (CUDA events)"
PYTHONUNBUFFERED=1 python3 "$here/torch_decode_bench.py" "${torch_args[@]}"
