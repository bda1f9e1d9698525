#!/usr/bin/env python3
"""Turns the JSON of a JMH run of benchmarks.jar (-rf json) into the CPU table of docs/PERFORMANCE.md
and checks the issue's targets. Usage: bench/summarize-jmh.py result.json"""
import json
import sys


def main(path):
    rows = json.load(open(path))
    peak = {}
    res = []
    for r in rows:
        name = r["benchmark"].rsplit(".", 2)
        cls, method = name[-2], name[-1]
        gflops = r["secondaryMetrics"].get("gflops", {}).get("score")
        if cls == "PeakFma":
            peak[method] = gflops
            continue
        p = r.get("params", {})
        ms = 1000.0 / r["primaryMetric"]["score"]
        err = r["primaryMetric"]["scoreError"]
        rel = err / r["primaryMetric"]["score"] if err == err else float("nan")
        res.append(dict(cls=cls, dtype=p.get("dtype"), causal=p.get("causal", "false"),
                        density=p.get("density", "1.0 (dense)"), ms=ms, rel=rel, gflops=gflops))
    two = peak.get("twoThreads")
    print("PeakFma: 1 thread %.1f GFLOP/s, 2 threads %.1f GFLOP/s" % (peak.get("oneThread", float("nan")), two or float("nan")))
    print()
    print("| benchmark | dtype | causal | block density | ms/call (±rel. err.) | GFLOP/s (visited) | % of PeakFma (2 thr) |")
    print("|---|---|---|---|---|---|---|")
    for x in res:
        print("| %s | %s | %s | %s | %.1f (±%.0f%%) | %.1f | %.0f %% |" % (x["cls"], x["dtype"], x["causal"], x["density"], x["ms"],
              100 * x["rel"], x["gflops"], 100 * x["gflops"] / two if two else float("nan")))

    def find(cls, dtype, causal="false", density=None):
        for x in res:
            if x["cls"] == cls and x["dtype"] == dtype and x["causal"] == causal and (density is None or x["density"] == density):
                return x
        return None

    print()
    d32c = find("DenseAttention", "f32", "true")
    if d32c and two:
        print("target dense f32 causal >= 50%% of PeakFma: %.0f %% -> %s" % (100 * d32c["gflops"] / two,
              "met" if d32c["gflops"] >= 0.5 * two else "NOT met"))
    d32 = find("DenseAttention", "f32", "false")
    s10 = find("BlockSparseAttention", "f32", "false", "0.10")
    if d32 and s10:
        ratio = s10["ms"] / (0.10 * d32["ms"])
        print("target block-sparse 10%% <= 1.25 x 0.10 x dense: %.2f x -> %s" % (ratio, "met" if ratio <= 1.25 else "NOT met"))
    for causal in ("true", "false"):
        f = find("DenseAttention", "f32", causal)
        b = find("DenseAttention", "bf16", causal)
        if f and b:
            ratio = b["ms"] / f["ms"]
            print("target bf16 within 15%% of f32 (causal=%s): %.2f x -> %s" % (causal, ratio, "met" if ratio <= 1.15 else "NOT met"))


if __name__ == "__main__":
    main(sys.argv[1])
