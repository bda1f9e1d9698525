#!/usr/bin/env python3
"""Turns the JSON of a JMH run of benchmarks.jar (-rf json) into the CPU table of docs/PERFORMANCE.md
and checks the issue's targets. Usage: bench/summarize-jmh.py result.json"""
import json
import sys


def main(path):
    rows = json.load(open(path))
    peak = {}
    res = []
    parts = []
    for r in rows:
        name = r["benchmark"].rsplit(".", 2)
        cls, method = name[-2], name[-1]
        g = r["secondaryMetrics"].get("gflops", {})
        gflops = g.get("score")
        # best iteration: on a shared machine the fastest iteration is the one least disturbed
        gbest = max(x for fork in g.get("rawData", [[gflops]]) for x in fork)
        if cls == "PeakFma":
            peak[method] = (gflops, gbest)
            continue
        if cls == "TileMathParts":
            best_ops = max(x for fork in r["primaryMetric"]["rawData"] for x in fork)
            parts.append((r.get("params", {}).get("flavour"), method, 1e9 / r["primaryMetric"]["score"], 1e9 / best_ops,
                          gflops, gbest if g else None))
            continue
        p = r.get("params", {})
        ms = 1000.0 / r["primaryMetric"]["score"]
        msbest = 1000.0 / max(x for fork in r["primaryMetric"]["rawData"] for x in fork)
        err = r["primaryMetric"]["scoreError"]
        rel = err / r["primaryMetric"]["score"] if err == err else float("nan")
        res.append(dict(cls=cls, dtype=p.get("dtype"), causal=p.get("causal", "false"),
                        density=p.get("density", "1.0 (dense)"), ms=ms, rel=rel, gflops=gflops, msbest=msbest,
                        gbest=gbest))
    nan = (float("nan"), float("nan"))
    one, two2 = peak.get("oneThread", nan), peak.get("twoThreads", nan)
    print("PeakFma GFLOP/s (mean / best iteration): 1 thread %.1f / %.1f, 2 threads %.1f / %.1f" % (one + two2))
    two, twobest = two2
    print()
    print("| benchmark | dtype | causal | block density | ms/call mean (±99.9% err.) | ms/call best | GFLOP/s mean | GFLOP/s best | best as % of best PeakFma (2 thr) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for x in res:
        print("| %s | %s | %s | %s | %.1f (±%.0f%%) | %.1f | %.1f | %.1f | %.0f %% |" % (x["cls"], x["dtype"], x["causal"],
              x["density"], x["ms"], 100 * x["rel"], x["msbest"], x["gflops"], x["gbest"], 100 * x["gbest"] / twobest))
    if parts:
        print()
        print("| TileMathParts (1 thread, 64x64 block, D=128) | flavour | ns/call mean | ns/call best | GFLOP/s mean | GFLOP/s best |")
        print("|---|---|---|---|---|---|")
        for flavour, method, ns, nsbest, g, gb in parts:
            gs = "%.1f | %.1f" % (g, gb) if g is not None else "- | -"
            print("| %s | %s | %.0f | %.0f | %s |" % (method, flavour, ns, nsbest, gs))

    def find(cls, dtype, causal="false", density=None):
        for x in res:
            if x["cls"] == cls and x["dtype"] == dtype and x["causal"] == causal and (density is None or x["density"] == density):
                return x
        return None

    print()
    for label, key, gkey, peakv in (("mean", "ms", "gflops", two), ("best iteration", "msbest", "gbest", twobest)):
        print("targets on the %s:" % label)
        d32c = find("DenseAttention", "f32", "true")
        if d32c:
            print("  dense f32 causal >= 50%% of PeakFma (2 threads): %.0f %% -> %s" % (100 * d32c[gkey] / peakv,
                  "met" if d32c[gkey] >= 0.5 * peakv else "NOT met"))
        d32 = find("DenseAttention", "f32", "false")
        s10 = find("BlockSparseAttention", "f32", "false", "0.10")
        if d32 and s10:
            ratio = s10[key] / (0.10 * d32[key])
            print("  block-sparse 10%% time <= 1.25 x 0.10 x dense time: %.2f x -> %s" % (ratio, "met" if ratio <= 1.25 else "NOT met"))
        for causal in ("true", "false"):
            f = find("DenseAttention", "f32", causal)
            b = find("DenseAttention", "bf16", causal)
            if f and b:
                ratio = b[key] / f[key]
                print("  bf16 time within 15%% of f32 (causal=%s): %.2f x -> %s" % (causal, ratio, "met" if ratio <= 1.15 else "NOT met"))


if __name__ == "__main__":
    main(sys.argv[1])
