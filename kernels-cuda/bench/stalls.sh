#!/usr/bin/env bash
# Warp-stall breakdown and tensor-pipe use of one launch of a kernel (ncu metrics), for NOTES.md.
# Usage: kernels-cuda/bench/stalls.sh [kernel] [N] [pattern]   (runners.sh: how Java starts)
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/runners.sh"
kernel=${1:-sparsa_tc_bf16_d128_r128}
n=${2:-4096}
pattern=${3:-dense}
m=smsp__average_warps_issue_stalled
metrics=$(echo ${m}_{barrier,long_scoreboard,short_scoreboard,math_pipe_throttle,mio_throttle,wait,not_selected,selected,dispatch_stall,lg_throttle,no_instruction,branch_resolving,tex_throttle}_per_issue_active.ratio | tr ' ' ',')
metrics=$metrics,smsp__issue_active.avg.pct_of_peak_sustained_active,sm__pipe_tensor_op_hmma_cycles_active.avg.pct_of_peak_sustained_active,sm__warps_active.avg.pct_of_peak_sustained_active,l1tex__t_bytes_pipe_lsu_mem_local_op_ld.sum,l1tex__t_bytes_pipe_lsu_mem_local_op_st.sum,gpu__time_duration.sum
ncu --clock-control none --target-processes all -k "regex:$kernel" --launch-skip 1 --launch-count 1 --metrics "$metrics" \
  bash -c '. "$0/runners.sh"; shift; java_main dev.sparsa.bench.gpu.CudaBench "$@"' "$here" -- --n "$n" --iters 2 --warmup 1 --patterns "$pattern" 2>&1 |
  grep -E 'smsp__|sm__|l1tex__|gpu__time' 
