"""Copy bandwidths through PyTorch on the GPU machine, for the CUDA backend's targets measured in the same run.

Prints one JSON object: pinned and pageable host-to-device and device-to-host GB/s on the byte counts the
drop-in call moves (--in bytes up, --out bytes down), and the device-to-device copy bandwidth counting
bytes read plus bytes written. CUDA events around each copy, median of --iters after a warm-up.
Usage: python3 torch_copy_bench.py [--in 805306368] [--out 268435456] [--iters 10]
"""
import argparse
import json
import statistics

import torch


def timed(fn, iters):
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(iters):
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        ms.append(start.elapsed_time(stop))
    return statistics.median(ms)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="bytes_in", type=int, default=3 * 32 * 32768 * 128 * 2)
    ap.add_argument("--out", dest="bytes_out", type=int, default=32 * 32768 * 128 * 2)
    ap.add_argument("--iters", type=int, default=10)
    a = ap.parse_args()
    dev = torch.device("cuda")
    res = {"torch": torch.__version__, "device": torch.cuda.get_device_name(0)}
    for kind, pin in (("Pinned", True), ("Pageable", False)):
        h_in = torch.empty(a.bytes_in, dtype=torch.uint8, pin_memory=pin)
        h_in.random_(0, 255)
        h_out = torch.empty(a.bytes_out, dtype=torch.uint8, pin_memory=pin)
        d = torch.empty(a.bytes_in, dtype=torch.uint8, device=dev)
        up = timed(lambda: d.copy_(h_in, non_blocking=pin), a.iters)
        down = timed(lambda: h_out.copy_(d[: a.bytes_out], non_blocking=pin), a.iters)
        res["h2d" + kind + "GBps"] = a.bytes_in / (up * 1e6)
        res["d2h" + kind + "GBps"] = a.bytes_out / (down * 1e6)
        del h_in, h_out, d
    src = torch.randint(0, 255, (4 << 30,), dtype=torch.uint8, device=dev)
    dst = torch.empty_like(src)
    ms = timed(lambda: dst.copy_(src), a.iters)
    res["d2dGBps"] = 2 * src.numel() / (ms * 1e6)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
