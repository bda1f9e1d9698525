"""PyTorch side of kernels-cuda/bench/gpu-bench.sh: times scaled_dot_product_attention (flash and
cuDNN back-ends) and flex_attention with an equal BlockMask on the shapes CudaBench times
(bf16, B=1, H=32, D=128; dense, causal, causal window 1024, random block-sparse 10 % read from the
block lists CudaBench wrote). CUDA events around each call after warm-up, median of --iters.
TFLOP/s = 4 * D * H * admitted pairs / time (the same convention as CudaBench's 'adm' column)."""
import argparse, os, statistics, struct, sys
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.attention.flex_attention import flex_attention, create_block_mask, BlockMask

p = argparse.ArgumentParser()
p.add_argument("--n", default="8192,32768")
p.add_argument("--iters", type=int, default=30)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--masks", default=None)
a = p.parse_args()
H, D, B, BS = 32, 128, 1, 128
flex = torch.compile(flex_attention, dynamic=False)


def timed(fn):
    for _ in range(a.warmup):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(a.iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); fn(); e.record(); e.synchronize()
        ts.append(s.elapsed_time(e))
    return statistics.median(ts)


def row(n, name, ms, pairs):
    print(f"{n:<8d} {name:<22s} {ms:10.3f} {pairs / (n * n):12.4f} {4.0 * D * H * pairs / (ms * 1e-3) / 1e12:14.1f} {'-':>14s}", flush=True)


def read_blocks(path):
    raw = open(path, "rb").read()
    nt, nb = struct.unpack_from("<ii", raw, 0)
    vals = torch.frombuffer(bytearray(raw[8:]), dtype=torch.int32).view(nt, 1 + nb)
    return vals[:, 0].contiguous(), vals[:, 1:].contiguous()


print(f"torch {torch.__version__}, {torch.cuda.get_device_name()}", file=sys.stderr)
for n in [int(x) for x in a.n.split(",")]:
    g = torch.Generator(device="cuda").manual_seed(n)
    q, k, v = (torch.rand(B, H, n, D, device="cuda", dtype=torch.bfloat16, generator=g) * 2 - 1 for _ in range(3))
    dense_pairs, causal_pairs = n * n, n * (n + 1) // 2
    win_pairs = sum(min(i + 1, 1024) for i in range(n))
    for name, be in (("flash", SDPBackend.FLASH_ATTENTION), ("cudnn", SDPBackend.CUDNN_ATTENTION)):
        for causal in (False, True):
            try:
                with sdpa_kernel([be]):
                    ms = timed(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal))
                row(n, f"sdpa-{name} {'causal' if causal else 'dense'}", ms, causal_pairs if causal else dense_pairs)
            except Exception as e:  # a back-end that refuses the shape says so
                print(f"{n:<8d} sdpa-{name} {'causal' if causal else 'dense'}: unavailable ({type(e).__name__}: {str(e)[:80]})", flush=True)
    ms = timed(lambda: flex(q, k, v))
    row(n, "flex dense", ms, dense_pairs)
    bm = create_block_mask(lambda b, h, qi, ki: qi >= ki, 1, 1, n, n, device="cuda", BLOCK_SIZE=BS, _compile=True)
    row(n, "flex causal", timed(lambda: flex(q, k, v, block_mask=bm)), causal_pairs)
    bm = create_block_mask(lambda b, h, qi, ki: (qi >= ki) & (qi - ki < 1024), 1, 1, n, n, device="cuda", BLOCK_SIZE=BS, _compile=True)
    row(n, "flex window-1024", timed(lambda: flex(q, k, v, block_mask=bm)), win_pairs)
    if a.masks and os.path.exists(os.path.join(a.masks, f"blocks-{n}.bin")):
        cnt, idx = read_blocks(os.path.join(a.masks, f"blocks-{n}.bin"))
        idx = torch.where(idx < 0, torch.zeros_like(idx), idx)
        bm = BlockMask.from_kv_blocks(cnt.view(1, 1, -1).cuda(), idx.view(1, 1, idx.shape[0], idx.shape[1]).cuda(), BLOCK_SIZE=BS)
        pairs = int(cnt.sum()) * BS * BS
        row(n, "flex block-sparse-10%", timed(lambda: flex(q, k, v, block_mask=bm)), pairs)
    del q, k, v
    torch.cuda.empty_cache()
