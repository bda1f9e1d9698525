#!/usr/bin/env python3
"""PyTorch's CPU SDPA on the shape of Sparsa's DenseAttention benchmark: torch.nn.functional.scaled_dot_product_attention
on the CPU, f32, q/k/v of [1, 8, N, 128] (N 4096 by default), causal and not, at each thread count
(torch.set_num_threads). Per row: a warm-up of at least --warmup-s seconds (and one call), then --iters calls, each
timed alone with time.perf_counter; min/median/max over them (bench_stats.summary). GFLOP/s use Sparsa's count
(cpu_rows.gflop_per_call: 4 * pairs * D on the pairs Sparsa's dense plan visits), so the two halves' GFLOP/s divide
into a ratio of speeds.

Standard output: the rows of cpu_rows.py's format (impl 'torch'); progress and the PyTorch build on stderr.
    python3 bench/cpu/torch_cpu_sdpa.py [--threads 2,16] [--n 4096] [--warmup-s 1] [--iters 5] [--seed 0]
    python3 bench/cpu/torch_cpu_sdpa.py --gflop-per-call [--n N]   # the FLOP count alone, without torch
A bad flag prints one line on stderr and exits with status 2 before torch is imported; no importable torch: one line,
status 3."""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "kernels-cuda", "bench"))

import bench_stats  # noqa: E402  (statistics and one-line flag errors, shared with the GPU harnesses)
import cpu_rows  # noqa: E402

BATCH, HEADS, DIM = 1, 8, 128


def thread_list(s):
    out = [bench_stats.positive_int(1)(x) for x in s.split(",")]
    if len(set(out)) != len(out):
        raise bench_stats.argparse.ArgumentTypeError(f"a thread count is given twice in '{s}'")
    return out


def seconds(s):
    try:
        v = float(s)
    except ValueError:
        raise bench_stats.argparse.ArgumentTypeError(f"wants a number of seconds, got '{s}'")
    if not (0 <= v < float("inf")):
        raise bench_stats.argparse.ArgumentTypeError(f"must be a finite number >= 0, got '{s}'")
    return v


def parse_args(argv):
    p = bench_stats.OneLineParser(prog="torch_cpu_sdpa.py")
    p.add_argument("--threads", type=thread_list, default=[2, 16])
    p.add_argument("--n", type=bench_stats.positive_int(1), default=4096)
    p.add_argument("--warmup-s", dest="warmup_s", type=seconds, default=1.0)
    p.add_argument("--iters", type=bench_stats.positive_int(5), default=5)
    p.add_argument("--seed", type=bench_stats.positive_int(0), default=0)
    p.add_argument("--gflop-per-call", dest="gflop_only", action="store_true")
    return p.parse_args(argv)


def time_calls(fn, warmup_s, iters, clock=time.perf_counter):
    """Calls fn until at least warmup_s seconds have passed (at least once), then iters more times, each timed
    alone; returns (min, median, max) in ms."""
    until = clock() + warmup_s
    fn()
    while clock() < until:
        fn()
    ts = []
    for _ in range(iters):
        t0 = clock()
        fn()
        ts.append((clock() - t0) * 1e3)
    return bench_stats.summary(ts)


def main(argv):
    a = parse_args(argv)
    if a.gflop_only:
        for causal in (True, False):
            print("causal %s gflop_per_call %r" % ("true" if causal else "false",
                                                   cpu_rows.gflop_per_call(BATCH, HEADS, a.n, DIM, causal)))
        return 0
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install
        sys.stderr.write(f"torch_cpu_sdpa.py: cannot import torch ({type(e).__name__}: {e}); nothing measured\n")
        return 3
    import torch.nn.functional as F

    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: "unknown")()
    sys.stderr.write(f"torch {torch.__version__}, CPU capability {capability}, "
                     f"intra-op threads by default {torch.get_num_threads()}\n")
    sys.stderr.write(torch.__config__.parallel_info())
    g = torch.Generator().manual_seed(a.seed)
    q, k, v = (torch.randn(BATCH, HEADS, a.n, DIM, generator=g, dtype=torch.float32) for _ in range(3))
    print(f"# torch_cpu_sdpa.py: f32, B={BATCH}, H={HEADS}, N={a.n}, D={DIM}; torch {torch.__version__}; warm-up >= "
          f"{a.warmup_s:g} s per row, then {a.iters} calls timed alone; GFLOP/s of the median call")
    print(cpu_rows.HEADER)
    sys.stdout.flush()
    with torch.inference_mode():
        for t in a.threads:
            torch.set_num_threads(t)
            for causal in (True, False):
                sys.stderr.write(f"torch_cpu_sdpa.py: SDPA causal={causal} on {torch.get_num_threads()} thread(s)\n")
                lo, med, hi = time_calls(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal),
                                         a.warmup_s, a.iters)
                gflop = cpu_rows.gflop_per_call(BATCH, HEADS, a.n, DIM, causal)
                print(cpu_rows.row_line("torch", t, causal, lo, med, hi, gflop, gflop / (med * 1e-3)))
                sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
