#!/usr/bin/env python3
"""The table of docs/PERFORMANCE.md's ONNX Runtime comparison from the JSON files that
bench/compare-onnxruntime.sh writes (one JMH run per pass, N and mask). For each (N, mask): each
pass's mean and best iteration (ms per call) of ONNX Runtime and of Sparsa, and the speed-up
ONNX Runtime time / Sparsa time from the means and from the best iterations (on a shared machine the
fastest iteration is the one least disturbed). Usage: bench/summarize-onnxruntime.py DIR"""
import glob
import json
import os
import sys


def main(folder):
    runs = {}
    for path in sorted(glob.glob(os.path.join(folder, "p*-n*-*.json"))):
        p = os.path.basename(path)[1:].split("-")[0]
        text = open(path).read()
        if not text.strip():
            continue  # a run still going, or one that failed
        for r in json.loads(text):
            impl = r["benchmark"].rsplit(".", 1)[1]
            n = int(r["params"]["n"])
            mask = r["params"]["mask"]
            raw = [x for fork in r["primaryMetric"]["rawData"] for x in fork]
            runs.setdefault((n, mask), {}).setdefault(p, {})[impl] = (r["primaryMetric"]["score"], min(raw))
    print("| N | mask | pass | ONNX Runtime ms (mean / best) | Sparsa ms (mean / best) | speed-up (means) | speed-up (best) |")
    print("|---|---|---|---|---|---|---|")
    order = {"dense": 0, "causal": 1, "window": 2}
    for (n, mask) in sorted(runs, key=lambda k: (k[0], order.get(k[1], 9))):
        for p in sorted(runs[(n, mask)]):
            r = runs[(n, mask)][p]
            if "onnxRuntime" not in r or "sparsa" not in r:
                continue
            (om, ob), (sm, sb) = r["onnxRuntime"], r["sparsa"]
            print(f"| {n} | {mask} | {p} | {om:.1f} / {ob:.1f} | {sm:.1f} / {sb:.1f} | {om / sm:.2f}× | {ob / sb:.2f}× |")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "onnxruntime-runs")
