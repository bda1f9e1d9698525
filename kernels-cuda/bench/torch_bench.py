"""PyTorch side of kernels-cuda/bench/gpu-bench.sh: times scaled_dot_product_attention (flash and
cuDNN back-ends) and flex_attention with an equal BlockMask on the shapes CudaBench times
(bf16, B=1, H=32, D=--d (128 unless given); dense, causal, causal window 1024, random block-sparse 10 % read from the
block lists CudaBench wrote). Timing as CudaBench's (bench_stats.Timer, the twin of LaunchTiming):
warm-up of >= --warmup calls and >= --warmup-s seconds, --iters calls each between its own CUDA events,
a 256 MiB memset before every call unless --l2-flush off; the whole measurement --repeats times.
Prints the columns CudaBench prints, one line per (repeat, N, row):
  rep N row min_ms median_ms max_ms density TFLOP/s_adm TFLOP/s_vis
(TFLOP/s = 4 * D * H * admitted pairs / median time; TFLOP/s_vis is '-'), then per (N, row)
'spread N row median1/median2 S%'. Lines starting with '#' are comments. A bad flag: one line, exit 2."""
import os
import struct
import sys

from bench_stats import OneLineParser, add_timing_flags, ints, settings_comment, spread_line, Timer

PATTERNS = ("dense", "causal", "window-1024", "block-sparse-10%")


def patterns(s):
    ps = s.split(",")
    for x in ps:
        if x not in PATTERNS:
            raise ValueError(x)
    return ps


p = OneLineParser(prog="torch_bench.py")
p.add_argument("--n", type=ints(128), default=[8192, 32768])
p.add_argument("--d", type=int, choices=(64, 128, 256), default=128)
add_timing_flags(p, iters=30)
p.add_argument("--masks", default=None)
p.add_argument("--patterns", type=patterns, default=list(PATTERNS))
a = p.parse_args()
for n in a.n:
    if n % 128:
        p.error(f"--n: {n} is not a multiple of 128 (the tile)")

import torch  # noqa: E402  (after the flags, so that a bad flag fails fast, without CUDA)
from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402
from torch.nn.attention.flex_attention import flex_attention, create_block_mask, BlockMask  # noqa: E402

H, D, B, BS = 32, a.d, 1, 128
flex = torch.compile(flex_attention, dynamic=False)
timer = Timer(torch, a)
medians = {}


def row(rep, n, name, stats, pairs):
    lo, med, hi = stats
    tflops = 4.0 * D * H * pairs / (med * 1e-3) / 1e12
    print(f"{rep:<5d} {n:<8d} {name:<24s} {lo:10.3f} {med:10.3f} {hi:10.3f} {pairs / (n * n):10.4f} {tflops:12.1f} {'-':>12s}",
          flush=True)
    medians.setdefault(f"{n:<8d} {name:<24s}", {})[rep] = med


def timed_row(rep, n, name, fn, pairs):
    """Times fn into a row; a back-end that refuses the shape (flex_attention's kernels at some head dims) says so."""
    try:
        row(rep, n, name, timer.time(fn), pairs)
    except Exception as e:
        print(f"# {rep} {n} {name} unavailable ({type(e).__name__}: {str(e)[:80]})", flush=True)


def read_blocks(path):
    raw = open(path, "rb").read()
    nt, nb = struct.unpack_from("<ii", raw, 0)
    vals = torch.frombuffer(bytearray(raw[8:]), dtype=torch.int32).view(nt, 1 + nb)
    return vals[:, 0].contiguous(), vals[:, 1:].contiguous()


print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}", file=sys.stderr)
print(settings_comment(a, "call"))
print(f"# {'rep':<3s} {'N':<8s} {'row':<24s} {'min_ms':>10s} {'median_ms':>10s} {'max_ms':>10s} {'density':>10s} "
      f"{'TFLOP/s_adm':>12s} {'TFLOP/s_vis':>12s}")
for rep in range(1, a.repeats + 1):
    for n in a.n:
        g = torch.Generator(device="cuda").manual_seed(n)
        q, k, v = (torch.rand(B, H, n, D, device="cuda", dtype=torch.bfloat16, generator=g) * 2 - 1 for _ in range(3))
        dense_pairs, causal_pairs = n * n, n * (n + 1) // 2
        win_pairs = sum(min(i + 1, 1024) for i in range(n))
        for name, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
            for causal in (False, True):
                pat = "causal" if causal else "dense"
                if pat not in a.patterns:
                    continue
                try:
                    with sdpa_kernel([be]):
                        st = timer.time(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal))
                    row(rep, n, f"sdpa-{name}:{pat}", st, causal_pairs if causal else dense_pairs)
                except Exception as e:  # a back-end that refuses the shape says so
                    print(f"# {rep} {n} sdpa-{name}:{pat} unavailable ({type(e).__name__}: {str(e)[:80]})", flush=True)
        if "dense" in a.patterns:
            timed_row(rep, n, "flex:dense", lambda: flex(q, k, v), dense_pairs)
        if "causal" in a.patterns:
            bm = create_block_mask(lambda b, h, qi, ki: qi >= ki, 1, 1, n, n, device="cuda", BLOCK_SIZE=BS, _compile=True)
            timed_row(rep, n, "flex:causal", lambda: flex(q, k, v, block_mask=bm), causal_pairs)
        if "window-1024" in a.patterns:
            bm = create_block_mask(lambda b, h, qi, ki: (qi >= ki) & (qi - ki < 1024), 1, 1, n, n, device="cuda",
                                   BLOCK_SIZE=BS, _compile=True)
            timed_row(rep, n, "flex:window-1024", lambda: flex(q, k, v, block_mask=bm), win_pairs)
        if "block-sparse-10%" in a.patterns and a.masks and os.path.exists(os.path.join(a.masks, f"blocks-{n}.bin")):
            cnt, idx = read_blocks(os.path.join(a.masks, f"blocks-{n}.bin"))
            idx = torch.where(idx < 0, torch.zeros_like(idx), idx)
            bm = BlockMask.from_kv_blocks(cnt.view(1, 1, -1).cuda(), idx.view(1, 1, idx.shape[0], idx.shape[1]).cuda(),
                                          BLOCK_SIZE=BS)
            pairs = int(cnt.sum()) * BS * BS
            timed_row(rep, n, "flex:block-sparse-10%", lambda: flex(q, k, v, block_mask=bm), pairs)
        del q, k, v
        torch.cuda.empty_cache()
print("# spread N row median_ms(per repeat) |max-min|/min of the medians")
for key, per in medians.items():
    print(spread_line(key, [per[r] for r in sorted(per)], "%.3f"))
