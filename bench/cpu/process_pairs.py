"""Summary of paired `sparsa decode --json` processes (decode-process-pairs.sh): for every row (pattern,
layout, dtype) and for the copy, the median GB/s of side A and of side B over the pairs, the median of
the pairs' ratios B/A, the pairs in which B was faster, and the median speedup over dense of each side.

Run: python3 bench/cpu/process_pairs.py DIR   (DIR holds pN-A.json and pN-B.json for N = 1, 2, ...)"""
import json
import os
import re
import statistics
import sys

NAME = re.compile(r"^p(\d+)-([AB])\.json$")


def load(directory):
    """{pair: {side: decode JSON}} for the complete pairs in directory; raises ValueError if none."""
    runs = {}
    for name in os.listdir(directory):
        m = NAME.match(name)
        if m:
            with open(os.path.join(directory, name)) as f:
                runs.setdefault(int(m.group(1)), {})[m.group(2)] = json.load(f)
    pairs = {i: r for i, r in runs.items() if len(r) == 2}
    if not pairs:
        raise ValueError(f"{directory}: no complete pair of pN-A.json and pN-B.json")
    return pairs


def rows(pairs):
    """[(row name, [(A GB/s, B GB/s, A speedup, B speedup) per pair])], the copy first, rows in output order."""
    table = {"copy (machine.copyGBps)": []}
    for i in sorted(pairs):
        a, b = pairs[i]["A"], pairs[i]["B"]
        table["copy (machine.copyGBps)"].append((a["machine"]["copyGBps"], b["machine"]["copyGBps"], None, None))
        b_rows = {(r["pattern"], r["kvLayout"], r["dtype"], r["backend"]): r for r in b["rows"]}
        for r in a["rows"]:
            key = (r["pattern"], r["kvLayout"], r["dtype"], r["backend"])
            if key in b_rows:
                o = b_rows[key]
                table.setdefault(" ".join(key), []).append((r["gbPerSec"], o["gbPerSec"], r["speedup"], o["speedup"]))
    return list(table.items())


def summary(pairs):
    """One line per row: medians, the median ratio B/A, B faster in k of n, and the medians of the speedups."""
    lines = [f"{len(pairs)} pairs; GB/s medians A / B, median ratio B/A, pairs B faster, speedup vs dense A / B"]
    for name, values in rows(pairs):
        a = statistics.median(v[0] for v in values)
        b = statistics.median(v[1] for v in values)
        ratio = statistics.median(v[1] / v[0] for v in values)
        faster = sum(1 for v in values if v[1] > v[0])
        line = f"{name:40s} {a:7.2f} / {b:7.2f}  {ratio:.3f}  {faster} of {len(values)}"
        if values[0][2] is not None:
            line += f"  {statistics.median(v[2] for v in values):.2f} / {statistics.median(v[3] for v in values):.2f}"
        lines.append(line)
    return "\n".join(lines)


def main(argv):
    if len(argv) != 2:
        print("usage: process_pairs.py DIR", file=sys.stderr)
        return 2
    try:
        print(summary(load(argv[1])))
    except (OSError, ValueError, KeyError) as e:
        print(f"process_pairs.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
