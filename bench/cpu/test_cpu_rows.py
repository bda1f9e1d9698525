"""Tests of cpu_rows.py and of torch_cpu_sdpa.py's pure parts and flag checks; torch is not needed.
Run: python3 -m unittest discover -s bench/cpu -p 'test_*.py'
(The Java build checks the FLOP count against Sparsa's own plan: CpuDenseVsPeakTest.)"""
import importlib.util
import os
import subprocess
import sys
import unittest

import cpu_rows
import torch_cpu_sdpa

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "torch_cpu_sdpa.py")


def brute_force_visited(n, causal, tile_rows, block_cols):
    """Pair by pair: key j is visited for row i when j's block starts at or before the last row of i's tile."""
    count = 0
    for i in range(n):
        tile_last = min(n - 1, (i // tile_rows) * tile_rows + tile_rows - 1)
        for j in range(n):
            if not causal or (j // block_cols) * block_cols <= tile_last:
                count += 1
    return count


class VisitedPairsTest(unittest.TestCase):
    def test_against_pair_by_pair_count(self):
        for n in (1, 7, 63, 64, 65, 130, 200):
            for rows, cols in ((64, 64), (16, 32), (32, 16), (8, 8)):
                for causal in (True, False):
                    self.assertEqual(cpu_rows.visited_pairs(n, causal, rows, cols),
                                     brute_force_visited(n, causal, rows, cols), (n, rows, cols, causal))

    def test_one_by_one_tiles_visit_exactly_the_causal_pairs(self):
        for n in (1, 5, 4096):
            self.assertEqual(cpu_rows.visited_pairs(n, True, 1, 1), n * (n + 1) // 2)

    def test_multiple_of_the_tile_is_n_times_n_plus_tile_over_two(self):
        for n in (64, 640, 4096):
            self.assertEqual(cpu_rows.visited_pairs(n, True), n * (n + 64) // 2)

    def test_rejects_empty(self):
        with self.assertRaises(ValueError):
            cpu_rows.visited_pairs(0, False)

    def test_gflop_is_four_pairs_dim_per_slice(self):
        self.assertAlmostEqual(cpu_rows.gflop_per_call(2, 3, 100, 64, False), 4 * 2 * 3 * 100 * 100 * 64 * 1e-9)
        self.assertAlmostEqual(cpu_rows.gflop_per_call(1, 8, 130, 128, True),
                               4 * 8 * brute_force_visited(130, True, 64, 64) * 128 * 1e-9)


class RowsTest(unittest.TestCase):
    def test_line_parses_back(self):
        text = "\n".join(["# a comment", cpu_rows.HEADER, "",
                          cpu_rows.row_line("peakfma", 2, None, None, None, None, None, 140.5, 100.0),
                          cpu_rows.row_line("sparsa", 2, True, 300.25, 350.5, 400.75, 34.89660928, 99.5, 70.8),
                          cpu_rows.row_line("torch", 16, False, 10.0, 11.0, 12.0, 68.719476736, 6247.2)])
        rows = cpu_rows.parse_rows(text)
        self.assertEqual(len(rows), 3)
        self.assertEqual(rows[0], {"impl": "peakfma", "threads": 2, "causal": None, "min_ms": None, "median_ms": None,
                                   "max_ms": None, "gflop_per_call": None, "gflops": 140.5, "pct_peakfma": 100.0})
        self.assertEqual(rows[1]["causal"], True)
        self.assertEqual(rows[1]["median_ms"], 350.5)
        self.assertAlmostEqual(rows[1]["gflop_per_call"], 34.896609, places=6)
        self.assertEqual(rows[2]["causal"], False)
        self.assertIsNone(rows[2]["pct_peakfma"])
        self.assertEqual(cpu_rows.HEADER.split()[1:], list(cpu_rows.COLUMNS))

    def test_bad_lines_name_their_number(self):
        for bad in ("sparsa 2 true 1 2 3", "sparsa two true 1 2 3 4 5 6", "sparsa 2 maybe 1 2 3 4 5 6"):
            with self.assertRaisesRegex(ValueError, "line 2"):
                cpu_rows.parse_rows("# header\n" + bad)


class CompareTest(unittest.TestCase):
    def rows(self):
        sparsa = [{"impl": "peakfma", "threads": 2, "causal": None, "gflops": 200.0, "gflop_per_call": None,
                   "pct_peakfma": 100.0},
                  {"impl": "sparsa", "threads": 2, "causal": True, "gflops": 150.0, "gflop_per_call": 34.9,
                   "pct_peakfma": 75.0},
                  {"impl": "sparsa", "threads": 2, "causal": False, "gflops": 140.0, "gflop_per_call": 68.7,
                   "pct_peakfma": 70.0}]
        torch = [{"impl": "torch", "threads": 2, "causal": True, "gflops": 100.0, "gflop_per_call": 34.9}]
        return sparsa, torch

    def test_ratio_and_missing_row(self):
        sparsa, torch = self.rows()
        lines = cpu_rows.compare(sparsa, torch)
        self.assertEqual(len(lines), 3)
        self.assertEqual(lines[1].split(), ["2", "true", "150.00", "100.00", "1.500", "75.0", "200.00"])
        self.assertEqual(lines[2].split(), ["2", "false", "140.00", "-", "-", "70.0", "200.00"])

    def test_different_problems_are_refused(self):
        sparsa, torch = self.rows()
        torch[0]["gflop_per_call"] = 35.0
        with self.assertRaisesRegex(ValueError, "not the same problem"):
            cpu_rows.compare(sparsa, torch)


class TimeCallsTest(unittest.TestCase):
    def test_warms_up_for_the_given_time_then_times_each_call(self):
        durations = [0.3, 0.3, 0.3, 0.3, 0.05, 0.01, 0.04, 0.02, 0.03]
        now = [0.0]
        calls = []

        def fn():
            now[0] += durations[len(calls)]
            calls.append(now[0])

        lo, med, hi = torch_cpu_sdpa.time_calls(fn, 1.0, 5, lambda: now[0])
        # warm-up: one call, then calls while the clock reads < 1.0 (0.3, 0.6, 0.9): four; then five timed calls
        self.assertEqual(len(calls), 9)
        self.assertAlmostEqual(lo, 10.0)
        self.assertAlmostEqual(med, 30.0)
        self.assertAlmostEqual(hi, 50.0)

    def test_zero_warm_up_still_calls_once(self):
        calls = []
        torch_cpu_sdpa.time_calls(lambda: calls.append(1), 0.0, 5)
        self.assertEqual(len(calls), 6)


class FlagTest(unittest.TestCase):
    """A bad flag: one line on stderr, exit status 2, before torch is imported."""

    def run_script(self, *args):
        return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, timeout=60)

    def test_bad_flags(self):
        for args, mentions in ((["--bogus"], "--bogus"), (["--threads", "0"], "--threads"),
                               (["--threads", "2,2"], "--threads"), (["--threads", "a"], "--threads"),
                               (["--n", "0"], "--n"), (["--iters", "4"], "--iters"), (["--warmup-s", "-1"], "--warmup-s"),
                               (["--warmup-s", "x"], "--warmup-s"), (["--threads"], "--threads")):
            r = self.run_script(*args)
            self.assertEqual(r.returncode, 2, (args, r.stderr))
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn(mentions, lines[0])
            self.assertEqual(r.stdout, "")

    def test_defaults(self):
        a = torch_cpu_sdpa.parse_args([])
        self.assertEqual((a.threads, a.n, a.warmup_s, a.iters), ([2, 16], 4096, 1.0, 5))

    def test_gflop_per_call_needs_no_torch(self):
        r = self.run_script("--gflop-per-call", "--n", "130")
        self.assertEqual(r.returncode, 0, r.stderr)
        got = {line.split()[1]: float(line.split()[3]) for line in r.stdout.splitlines()}
        self.assertEqual(got, {"true": cpu_rows.gflop_per_call(1, 8, 130, 128, True),
                               "false": cpu_rows.gflop_per_call(1, 8, 130, 128, False)})

    @unittest.skipIf(importlib.util.find_spec("torch") is not None, "torch is installed here")
    def test_without_torch_one_line_and_status_3(self):
        r = self.run_script("--threads", "1")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertIn("cannot import torch", r.stderr)
        self.assertEqual(r.stdout, "")


if __name__ == "__main__":
    unittest.main()
