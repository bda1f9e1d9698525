#!/usr/bin/env bash
# Sparsa's CPU backend next to PyTorch's CPU SDPA on this machine, in one call: f32, B=1, H=8, N=4096, D=128,
# causal and not, at each thread count (default 2,16).
#   Java half:    dev.sparsa.bench.CpuDenseVsPeak (PeakFma and DenseAttention through the JMH API, one JVM)
#   PyTorch half: bench/cpu/torch_cpu_sdpa.py (skipped, with one line, when python3 cannot import torch)
# then the comparison (bench/cpu/cpu_rows.py): per (threads, causal) Sparsa's and PyTorch's GFLOP/s, their
# ratio (> 1: Sparsa faster) and Sparsa's % of PeakFma at the same thread count. Machine facts come first.
#
# usage: bench/cpu-vs-pytorch.sh [--threads 2,16] [--n 4096] [--out DIR] [--quick]
#   --out DIR  where the rows, JSON and logs are written (default: cpu-vs-pytorch-<UTC time>)
#   --quick    short warm-up and measurement (a smoke test of the command, not figures)
# Java is started with $SPARSA_JAVA followed by the main class and its arguments (default: ./sparsa run,
# which builds the benchmarks jar if needed). Nothing is pinned; to pin both halves to some cores, run the
# script under taskset, e.g. taskset -c 0-15 bench/cpu-vs-pytorch.sh (both halves inherit the mask).
set -euo pipefail
cd "$(dirname "$0")/.."
me=cpu-vs-pytorch.sh
usage="usage: bench/$me [--threads 2,16] [--n 4096] [--out DIR] [--quick]"
threads=2,16
n=4096
out=
quick=0
while [ $# -gt 0 ]; do
  case "$1" in
    --threads|--n|--out)
      [ $# -ge 2 ] || { echo "$me: $1 needs a value; $usage" >&2; exit 2; }
      case "$1" in
        --threads) threads=$2 ;;
        --n) n=$2 ;;
        --out) out=$2 ;;
      esac
      shift 2 ;;
    --quick) quick=1; shift ;;
    -h|--help) echo "$usage"; exit 0 ;;
    *) echo "$me: unknown argument $1; $usage" >&2; exit 2 ;;
  esac
done
[[ $threads =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || { echo "$me: --threads wants positive integers separated by commas, got '$threads'; $usage" >&2; exit 2; }
[[ $n =~ ^[1-9][0-9]*$ ]] || { echo "$me: --n wants a positive integer, got '$n'; $usage" >&2; exit 2; }
out=${out:-cpu-vs-pytorch-$(date -u +%Y%m%d-%H%M%S)}
mkdir -p "$out" || { echo "$me: cannot create --out $out" >&2; exit 2; }
read -r -a java <<< "${SPARSA_JAVA:-./sparsa run}"
java_args=(--threads "$threads" --n "$n" --json "$out/sparsa.json")
torch_args=(--threads "$threads" --n "$n")
if [ "$quick" = 1 ]; then
  java_args+=(--warmup-iterations 1 --warmup-s 0.2 --iterations 2 --iteration-s 0.2)
  torch_args+=(--warmup-s 0.2)
fi

{
  echo "# $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
  model=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -1 || true)
  echo "# CPU: ${model:-$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)}"
  lscpu 2>/dev/null | grep -E '^(CPU\(s\)|Thread\(s\) per core|Core\(s\) per socket|Socket\(s\)|NUMA node\(s\)|L2 cache|L3 cache):' | sed 's/  */ /; s/^/# /' || true
  flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2 || true) "
  have=""
  for f in avx2 fma avx512f avx512_bf16 amx_tile amx_bf16; do
    if [[ $flags == *" $f "* ]]; then have+=" $f yes,"; else have+=" $f no,"; fi
  done
  echo "# flags:${have%,}"
  echo "# nproc: $(nproc)"
} | tee "$out/machine.txt"

echo "## Sparsa (CpuDenseVsPeak ${java_args[*]})"
echo "$me: Java half (${java[*]} dev.sparsa.bench.CpuDenseVsPeak), log in $out/sparsa.log" >&2
"${java[@]}" dev.sparsa.bench.CpuDenseVsPeak "${java_args[@]}" 2> "$out/sparsa.log" | tee "$out/sparsa.txt" ||
  { echo "$me: the Java half failed; the end of $out/sparsa.log:" >&2; tail -5 "$out/sparsa.log" >&2; exit 1; }
grep -m1 '^# VM version' "$out/sparsa.log" || true

echo "## PyTorch (torch_cpu_sdpa.py ${torch_args[*]})"
if ! command -v python3 > /dev/null; then
  echo "# PyTorch half skipped: no python3 on the PATH"
  exit 0
fi
if ! python3 -c 'import torch' 2> /dev/null; then
  echo "# PyTorch half skipped: python3 cannot import torch"
  exit 0
fi
echo "$me: PyTorch half, log in $out/torch.log" >&2
python3 bench/cpu/torch_cpu_sdpa.py "${torch_args[@]}" 2> "$out/torch.log" | tee "$out/torch.txt" ||
  { echo "$me: the PyTorch half failed; the end of $out/torch.log:" >&2; tail -5 "$out/torch.log" >&2; exit 1; }

echo "## Comparison (sparsa_vs_torch > 1: Sparsa faster; GFLOP/s of the median, Sparsa's FLOP count for both)"
python3 bench/cpu/cpu_rows.py "$out/sparsa.txt" "$out/torch.txt" | tee "$out/comparison.txt"
