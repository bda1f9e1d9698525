"""PyTorch side of kernels-cuda/bench/decode-bench.sh: one decode step (one query row) on the shapes CudaDecodeBench
times (bf16, 32 query / 8 KV heads, D=128, batch --batch, cache length --n), through
scaled_dot_product_attention (enable_gqa, PyTorch's choice of kernel) and compiled flex_attention, on contiguous
[B, 8, N, 128] K/V caches of random values. Timing as CudaDecodeBench's (bench_stats.Timer, the twin of
LaunchTiming): warm-up of >= --warmup calls and >= --warmup-s seconds, --iters calls each between its own CUDA
events, a 256 MiB memset before every call unless --l2-flush off; the whole measurement --repeats times. GB/s
counts the bytes of K and V at the median, as CudaDecodeBench does. Prints CudaDecodeBench's columns, one line per
(repeat, batch, n, kernel):
  rep batch kv_len row min_ms median_ms max_ms GB/s of_copy      (of_copy is '-')
then per (batch, n, kernel) 'spread batch kv_len row median1/median2 S%', then a JSON line. Lines starting with
'#' are comments. --page, --split and --quest are Sparsa's and accepted (ignored) so that one command line serves
both sides. --kernels sdpa,flex picks which of the two run (default both). A bad flag: one line, exit 2.
"""
import json

from bench_stats import OneLineParser, add_timing_flags, ints, positive_int, settings_comment, spread_line, Timer

p = OneLineParser(prog="torch_decode_bench.py")
p.add_argument("--batch", type=ints(1), default=[1, 16])
p.add_argument("--n", type=ints(1), default=[8192, 32768, 131072])
add_timing_flags(p, iters=50)
p.add_argument("--page", type=positive_int(1), default=16)
p.add_argument("--split", default="rule")
p.add_argument("--quest", type=ints(1), default=[16])
p.add_argument("--kernels", type=lambda s: s.split(","), default=["sdpa", "flex"],
               help="which of sdpa,flex to time (default both)")
a = p.parse_args()
if not a.kernels or any(x not in ("sdpa", "flex") for x in a.kernels):
    p.error(f"--kernels: expected a list of sdpa,flex, got {','.join(a.kernels)}")

import torch  # noqa: E402  (after the flags, so that a bad flag fails fast, without CUDA)
import torch.nn.functional as F  # noqa: E402
from torch.nn.attention.flex_attention import flex_attention  # noqa: E402

HQ, HK, D = 32, 8, 128
flex = torch.compile(flex_attention, dynamic=False)
timer = Timer(torch, a)
rows, medians = [], {}
print(settings_comment(a, "call"))
print(f"# {'rep':<3s} {'batch':<6s} {'kv_len':<8s} {'row':<28s} {'min_ms':>10s} {'median_ms':>10s} {'max_ms':>10s} "
      f"{'GB/s':>8s} {'of_copy':>8s}")
for rep in range(1, a.repeats + 1):
    for b in a.batch:
        for n in a.n:
            q = torch.rand(b, HQ, 1, D, device="cuda", dtype=torch.bfloat16) * 2 - 1
            k = torch.rand(b, HK, n, D, device="cuda", dtype=torch.bfloat16) * 2 - 1
            v = torch.rand(b, HK, n, D, device="cuda", dtype=torch.bfloat16) * 2 - 1
            kv_bytes = 2 * b * HK * n * D * 2
            for name, fn in (("torch:sdpa", lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)),
                             ("torch:flex", lambda: flex(q, k, v, enable_gqa=True))):
                if name.split(":")[1] not in a.kernels:
                    continue
                try:
                    lo, med, hi = timer.time(fn)
                    gbps = kv_bytes / (med * 1e6)
                    print(f"{rep:<5d} {b:<6d} {n:<8d} {name:<28s} {lo:10.4f} {med:10.4f} {hi:10.4f} {gbps:8.0f} {'-':>8s}",
                          flush=True)
                    rows.append({"rep": rep, "batch": b, "n": n, "kernel": name, "min_ms": lo, "ms": med, "max_ms": hi,
                                 "gbps": gbps})
                    medians.setdefault(f"{b:<6d} {n:<8d} {name:<28s}", {})[rep] = med
                except Exception as e:  # a kernel PyTorch cannot run here is reported, not fatal
                    print(f"# {rep} {b} {n} {name} failed: {type(e).__name__}: {str(e)[:200]}", flush=True)
            del q, k, v
            torch.cuda.empty_cache()
print("# spread batch kv_len row median_ms(per repeat) |max-min|/min of the medians")
for key, per in medians.items():
    print(spread_line(key, [per[r] for r in sorted(per)], "%.4f"))
print(json.dumps({"torch": torch.__version__, "rows": rows}))
