"""PyTorch side of kernels-cuda/bench/decode-bench.sh: one decode step (one query row) on the shapes CudaDecodeBench
times (bf16, 32 query / 8 KV heads, D=128, batch --batch, cache length --n), through
scaled_dot_product_attention (enable_gqa, PyTorch's choice of kernel) and compiled flex_attention, on contiguous
[B, 8, N, 128] K/V caches of random values. CUDA events around each call after warm-up, median of --iters; GB/s
counts the bytes of K and V, as CudaDecodeBench does. Prints one line per (batch, n, kernel) and a JSON line.
Usage: python3 torch_decode_bench.py [--batch 1,16] [--n 8192,32768,131072] [--iters 50]
"""
import argparse
import json
import statistics

import torch
import torch.nn.functional as F
from torch.nn.attention.flex_attention import flex_attention

p = argparse.ArgumentParser()
p.add_argument("--batch", default="1,16")
p.add_argument("--n", default="8192,32768,131072")
p.add_argument("--iters", type=int, default=50)
a = p.parse_args()
HQ, HK, D = 32, 8, 128
flex = torch.compile(flex_attention, dynamic=False)


def timed(fn):
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    ts = []
    for _ in range(a.iters):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record()
        fn()
        e.record()
        e.synchronize()
        ts.append(s.elapsed_time(e))
    return statistics.median(ts)


rows = []
for b in map(int, a.batch.split(",")):
    for n in map(int, a.n.split(",")):
        q = torch.rand(b, HQ, 1, D, device="cuda", dtype=torch.bfloat16) * 2 - 1
        k = torch.rand(b, HK, n, D, device="cuda", dtype=torch.bfloat16) * 2 - 1
        v = torch.rand(b, HK, n, D, device="cuda", dtype=torch.bfloat16) * 2 - 1
        kv_bytes = 2 * b * HK * n * D * 2
        for name, fn in (("sdpa", lambda: F.scaled_dot_product_attention(q, k, v, enable_gqa=True)),
                         ("flex", lambda: flex(q, k, v, enable_gqa=True))):
            try:
                ms = timed(fn)
                gbps = kv_bytes / (ms * 1e6)
                print(f"{b:<6d} {n:<8d} torch {name:<16s} {ms:10.4f} ms {gbps:8.0f} GB/s", flush=True)
                rows.append({"batch": b, "n": n, "kernel": name, "ms": ms, "gbps": gbps})
            except Exception as e:  # a kernel PyTorch cannot run here is reported, not fatal
                print(f"{b:<6d} {n:<8d} torch {name:<16s} failed: {type(e).__name__}: {str(e)[:200]}", flush=True)
        del q, k, v
        torch.cuda.empty_cache()
print(json.dumps({"torch": torch.__version__, "rows": rows}))
