"""Tests of bench_stats.py and of the PyTorch harnesses' flag checks; no GPU and no torch needed.
Run: python3 -m unittest discover -s kernels-cuda/bench -p 'test_*.py'"""
import os
import subprocess
import sys
import unittest

import bench_stats

HERE = os.path.dirname(os.path.abspath(__file__))


class SummaryTest(unittest.TestCase):
    def test_odd_count(self):
        self.assertEqual(bench_stats.summary([3.0, 1.0, 2.0]), (1.0, 2.0, 3.0))

    def test_even_count_takes_the_mean_of_the_middle_two(self):
        self.assertEqual(bench_stats.summary([4.0, 1.0, 2.0, 3.0]), (1.0, 2.5, 4.0))

    def test_one_sample(self):
        self.assertEqual(bench_stats.summary([0.75]), (0.75, 0.75, 0.75))

    def test_outlier_moves_max_not_median(self):
        self.assertEqual(bench_stats.summary([1.0, 1.0, 1.0, 1.0, 90.0]), (1.0, 1.0, 90.0))

    def test_rejects_empty_and_non_finite(self):
        for bad in ([], [1.0, float("nan")], [float("inf")]):
            with self.assertRaises(ValueError):
                bench_stats.summary(bad)


class SpreadTest(unittest.TestCase):
    def test_two_repeats(self):
        self.assertAlmostEqual(bench_stats.spread_percent([1.0, 1.03]), 3.0)
        self.assertAlmostEqual(bench_stats.spread_percent([1.03, 1.0]), 3.0)

    def test_three_repeats_use_max_and_min(self):
        self.assertAlmostEqual(bench_stats.spread_percent([2.0, 2.5, 2.1]), 25.0)

    def test_equal_medians(self):
        self.assertEqual(bench_stats.spread_percent([1.5, 1.5]), 0.0)

    def test_rejects_empty_zero_negative(self):
        for bad in ([], [0.0, 1.0], [-1.0, 1.0], [float("nan")]):
            with self.assertRaises(ValueError):
                bench_stats.spread_percent(bad)

    def test_line(self):
        self.assertEqual(bench_stats.spread_line("8192 sparsa:dense", [1.0, 1.02], "%.3f"),
                         "spread 8192 sparsa:dense 1.000/1.020 2.00%")


class FlagTest(unittest.TestCase):
    """A bad flag: one line on stderr, exit status 2, before torch is imported."""

    def run_script(self, script, *args):
        return subprocess.run([sys.executable, os.path.join(HERE, script), *args], capture_output=True, text=True,
                              timeout=60)

    def assert_one_line_error(self, script, *args, mentions):
        r = self.run_script(script, *args)
        self.assertEqual(r.returncode, 2, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        self.assertIn(mentions, lines[0])
        self.assertEqual(r.stdout, "")

    def test_prefill_flags(self):
        self.assert_one_line_error("torch_bench.py", "--bogus", mentions="--bogus")
        self.assert_one_line_error("torch_bench.py", "--iters", "0", mentions="--iters")
        self.assert_one_line_error("torch_bench.py", "--iters", "x", mentions="--iters")
        self.assert_one_line_error("torch_bench.py", "--d", "96", mentions="--d")
        self.assert_one_line_error("torch_bench.py", "--repeats", "0", mentions="--repeats")
        self.assert_one_line_error("torch_bench.py", "--warmup-s", "-1", mentions="--warmup-s")
        self.assert_one_line_error("torch_bench.py", "--l2-flush", "maybe", mentions="--l2-flush")
        self.assert_one_line_error("torch_bench.py", "--n", "1000", mentions="--n")
        self.assert_one_line_error("torch_bench.py", "--patterns", "dense,nope", mentions="--patterns")
        self.assert_one_line_error("torch_bench.py", "--iters", mentions="--iters")

    def test_decode_flags(self):
        self.assert_one_line_error("torch_decode_bench.py", "--bogus", mentions="--bogus")
        self.assert_one_line_error("torch_decode_bench.py", "--batch", "1,0", mentions="--batch")
        self.assert_one_line_error("torch_decode_bench.py", "--repeats", "-2", mentions="--repeats")
        self.assert_one_line_error("torch_decode_bench.py", "--l2-flush", "1", mentions="--l2-flush")


if __name__ == "__main__":
    unittest.main()
