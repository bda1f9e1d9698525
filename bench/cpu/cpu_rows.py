"""The row format shared by the two halves of bench/cpu-vs-pytorch.sh, the FLOP count both use, and the
comparison table. Importing this module does not import torch (the tests run without it).

A row is one whitespace-separated line:
    impl threads causal min_ms median_ms max_ms gflop_per_call gflops pct_peakfma
as dev.sparsa.bench.CpuDenseVsPeak prints it (impl sparsa or peakfma) and torch_cpu_sdpa.py prints it
(impl torch); '-' marks a column that does not apply. Lines starting with '#' are comments.

Run as a script, it prints the comparison of a Sparsa file and a PyTorch file:
    python3 bench/cpu/cpu_rows.py SPARSA_ROWS TORCH_ROWS"""
import math
import sys

TILE_ROWS = 64
BLOCK_COLS = 64
COLUMNS = ("impl", "threads", "causal", "min_ms", "median_ms", "max_ms", "gflop_per_call", "gflops", "pct_peakfma")
HEADER = "# %-6s %7s %-6s %10s %10s %10s %14s %10s %11s" % COLUMNS


def visited_pairs(n, causal, tile_rows=TILE_ROWS, block_cols=BLOCK_COLS):
    """(query, key) pairs per head that Sparsa's dense plan computes on n queries and n keys: all n*n, or
    under the causal mask every key block up to the one holding the last row of each tile of tile_rows
    queries, whole (the diagonal blocks are computed in full and masked inside), cut at n keys. This is
    SparsePlan.pairsVisited() of Dense.plan at the default 64x64 geometry: n(n+64)/2 when 64 divides n,
    about 1.5 % more than the n(n+1)/2 pairs the mask admits at n = 4096."""
    if n < 1 or tile_rows < 1 or block_cols < 1:
        raise ValueError("n, tile_rows and block_cols must be at least 1")
    if not causal:
        return n * n
    pairs = 0
    for start in range(0, n, tile_rows):
        count = min(tile_rows, n - start)
        last_key = start + count - 1
        keys = min(n, (last_key // block_cols + 1) * block_cols)
        pairs += keys * count
    return pairs


def gflop_per_call(batch, heads, n, dim, causal):
    """GFLOP of one attention call as Sparsa's gflops counter counts it: 2 * pairs * (headDim + valueDim)
    = 4 * pairs * dim over every (batch, head) slice, on the pairs of visited_pairs."""
    return 4.0 * batch * heads * visited_pairs(n, causal) * dim * 1e-9


def _num(v, fmt):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt % v


def row_line(impl, threads, causal, min_ms, median_ms, max_ms, gflop, gflops, pct_peak=None):
    """One row in the shared format (the Java half's Row.line)."""
    c = "-" if causal is None else ("true" if causal else "false")
    return "%-8s %7d %-6s %10s %10s %10s %14s %10.2f %11s" % (
        impl, threads, c, _num(min_ms, "%.2f"), _num(median_ms, "%.2f"), _num(max_ms, "%.2f"),
        _num(gflop, "%.6f"), gflops, _num(pct_peak, "%.1f"))


def parse_rows(text):
    """The rows of a text in the shared format, as dicts keyed by COLUMNS ('-' becomes None; threads an
    int, causal a bool or None, the rest floats). Comment and blank lines are skipped; any other line
    that is not a row raises ValueError naming it."""
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split()
        if len(parts) != len(COLUMNS):
            raise ValueError(f"line {number}: {len(parts)} columns, want {len(COLUMNS)}: {s}")
        row = {}
        try:
            for key, value in zip(COLUMNS, parts):
                if key == "impl":
                    row[key] = value
                elif value == "-":
                    row[key] = None
                elif key == "threads":
                    row[key] = int(value)
                elif key == "causal":
                    if value not in ("true", "false"):
                        raise ValueError(f"causal is '{value}'")
                    row[key] = value == "true"
                else:
                    row[key] = float(value)
        except ValueError as e:
            raise ValueError(f"line {number}: {e}: {s}") from None
        rows.append(row)
    return rows


def compare(sparsa_rows, torch_rows):
    """The comparison table's lines: per (threads, causal) of the Sparsa rows, Sparsa's and PyTorch's GFLOP/s,
    their ratio (> 1: Sparsa is faster; it is also PyTorch's median ms over Sparsa's, the FLOP counts being
    the same), Sparsa's % of PeakFma and PeakFma's GFLOP/s at that thread count. A row PyTorch lacks shows
    '-'; rows whose GFLOP per call differ (another shape or convention) raise ValueError."""
    peak = {r["threads"]: r["gflops"] for r in sparsa_rows if r["impl"] == "peakfma"}
    torch = {(r["threads"], r["causal"]): r for r in torch_rows if r["impl"] == "torch"}
    lines = ["# %7s %-6s %13s %13s %15s %12s %15s" % ("threads", "causal", "sparsa_gflops", "torch_gflops",
                                                      "sparsa_vs_torch", "sparsa_%peak", "peakfma_gflops")]
    for r in sparsa_rows:
        if r["impl"] != "sparsa":
            continue
        t = torch.get((r["threads"], r["causal"]))
        if t is not None and not math.isclose(t["gflop_per_call"], r["gflop_per_call"], rel_tol=1e-5):
            raise ValueError(f"threads {r['threads']} causal {r['causal']}: GFLOP per call {r['gflop_per_call']}"
                             f" (Sparsa) != {t['gflop_per_call']} (PyTorch): not the same problem")
        ratio = "-" if t is None else "%.3f" % (r["gflops"] / t["gflops"])
        tg = "-" if t is None else "%.2f" % t["gflops"]
        p = peak.get(r["threads"])
        lines.append("  %7d %-6s %13.2f %13s %15s %12s %15s" % (
            r["threads"], "true" if r["causal"] else "false", r["gflops"], tg, ratio,
            _num(r["pct_peakfma"], "%.1f"), _num(p, "%.2f")))
    return lines


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("cpu_rows.py: wants two files, Sparsa's rows and PyTorch's rows\n")
        return 2
    try:
        with open(argv[0]) as f:
            sparsa = parse_rows(f.read())
        with open(argv[1]) as f:
            torch = parse_rows(f.read())
        print("\n".join(compare(sparsa, torch)))
    except (OSError, ValueError) as e:
        sys.stderr.write(f"cpu_rows.py: {e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
