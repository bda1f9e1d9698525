"""Tests of process_pairs.py on decode JSON written here.
Run: python3 -m unittest discover -s bench/cpu -p 'test_*.py'"""
import json
import os
import tempfile
import unittest

import process_pairs


def decode_json(copy, rows):
    """A decode --json object with machine.copyGBps and rows of (pattern, dtype, GB/s, speedup)."""
    return {"machine": {"copyGBps": copy},
            "rows": [{"backend": "cpu", "pattern": p, "kvLayout": "paged", "dtype": t, "gbPerSec": g, "speedup": s}
                     for p, t, g, s in rows]}


class ProcessPairsTest(unittest.TestCase):
    def write(self, directory, name, obj):
        with open(os.path.join(directory, name), "w") as f:
            json.dump(obj, f)

    def test_medians_ratios_and_wins_over_complete_pairs(self):
        with tempfile.TemporaryDirectory() as d:
            # side B: 2x, 0.5x and 3x side A's GB/s on the dense row in three pairs; pair 4 has no B and is left out
            for i, (a, b) in enumerate([(10.0, 20.0), (10.0, 5.0), (20.0, 60.0)], start=1):
                self.write(d, f"p{i}-A.json", decode_json(50.0 + i, [("dense", "f32", a, 1.0), ("quest", "f32", 5.0, 3.0)]))
                self.write(d, f"p{i}-B.json", decode_json(60.0, [("dense", "f32", b, 1.0), ("quest", "f32", 5.0, 4.0)]))
            self.write(d, "p4-A.json", decode_json(1.0, [("dense", "f32", 1.0, 1.0)]))
            pairs = process_pairs.load(d)
            self.assertEqual([1, 2, 3], sorted(pairs))
            table = dict(process_pairs.rows(pairs))
            self.assertEqual([(10.0, 20.0, 1.0, 1.0), (10.0, 5.0, 1.0, 1.0), (20.0, 60.0, 1.0, 1.0)],
                             table["dense paged f32 cpu"])
            lines = process_pairs.summary(pairs).splitlines()
            self.assertTrue(lines[0].startswith("3 pairs"))
            dense = next(line for line in lines if line.startswith("dense paged f32 cpu"))
            # medians 10 / 20, the median of the ratios 2, 0.5, 3 is 2, B faster in 2 of 3
            self.assertRegex(dense, r"10\.00 /\s+20\.00\s+2\.000\s+2 of 3\s+1\.00 / 1\.00$")
            quest = next(line for line in lines if line.startswith("quest paged f32 cpu"))
            self.assertRegex(quest, r"1\.000\s+0 of 3\s+3\.00 / 4\.00$")
            copy = next(line for line in lines if line.startswith("copy"))
            self.assertRegex(copy, r"52\.00 /\s+60\.00")

    def test_a_folder_without_a_complete_pair_is_refused(self):
        with tempfile.TemporaryDirectory() as d:
            self.write(d, "p1-A.json", decode_json(1.0, []))
            with self.assertRaisesRegex(ValueError, "no complete pair"):
                process_pairs.load(d)
            self.assertEqual(1, process_pairs.main(["process_pairs.py", d]))
            self.assertEqual(2, process_pairs.main(["process_pairs.py"]))


if __name__ == "__main__":
    unittest.main()
