#!/usr/bin/env bash
# Variants of the decode kernels timed side by side on the GPU machine: for each folder VARIANT of ROOT (in name
# order), CudaDecodeBench with -Dsparsa.cuda.fatbin=VARIANT (its sparsa_decode_quest.fatbin from
# dev-fatbin.sh decode; a folder without one runs the committed images), the JVM flags of VARIANT/jvm and the
# benchmark arguments of VARIANT/args (each one line, may be absent) after the common ARGS; the variants take
# turns, --rounds times (default 2); then PyTorch's SDPA decode (torch_decode_bench.py) once on the same shapes.
# Usage: kernels-cuda/bench/decode-variants.sh ROOT [--rounds R] [--batch 1,16] [--n 8192,32768,131072] [ARGS...]
#        (ARGS go to CudaDecodeBench; --batch, --n, --iters, --repeats, --warmup, --warmup-s and --l2-flush also
#        to PyTorch)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/runners.sh"
root=${1:?usage: decode-variants.sh ROOT [--rounds R] [ARGS...]}
shift
rounds=2
if [ "${1:-}" = --rounds ]; then rounds=$2; shift 2; fi
torch_args=()
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case ${args[i]} in
    --batch | --n | --iters | --repeats | --l2-flush | --warmup | --warmup-s) torch_args+=("${args[i]}" "${args[i + 1]}") ;;
  esac
done
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,power.draw --format=csv,noheader
for ((r = 1; r <= rounds; r++)); do
  for v in "$root"/*/; do
    v=${v%/}
    name=$(basename "$v")
    jvm=()
    extra=()
    [ -f "$v/jvm" ] && read -r -a jvm < "$v/jvm"
    [ -f "$v/args" ] && read -r -a extra < "$v/args"
    echo "== variant $name, round $r: ${jvm[*]} ${extra[*]}"
    java_main -Dsparsa.cuda.fatbin="$v" "${jvm[@]}" dev.sparsa.cuda.CudaDecodeBench "$@" "${extra[@]}" \
      || echo "CudaDecodeBench exited $? for $name"
  done
done
echo "== PyTorch $(python3 -c 'import torch; print(torch.__version__)') SDPA decode"
PYTHONUNBUFFERED=1 python3 "$here/torch_decode_bench.py" --kernels sdpa "${torch_args[@]}"
