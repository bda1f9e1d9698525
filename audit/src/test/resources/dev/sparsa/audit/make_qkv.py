#!/usr/bin/env python3
"""Writes q.npy, k.npy, v.npy ([1, 2, 128, 16] float32, BHSD) with NumPy for the audit's tests.
Head 0 is local: each query matches the keys of its own neighbourhood (positions encoded by smooth
features), so a window keeps its mass. Head 1 retrieves: each query matches the key half the
sequence away, so a window loses it. Run from this folder: python3 make_qkv.py (NumPy 2.4.6)."""
import numpy as np

rng = np.random.default_rng(7)
n, d = 128, 16
pos = np.arange(n)[:, None]
freq = np.arange(1, d // 2 + 1)[None, :] * (np.pi / 96)
smooth = np.concatenate([np.cos(pos * freq), np.sin(pos * freq)], axis=1)  # nearby rows are similar
k0 = smooth * 3.0
q0 = smooth * 3.0 + 0.05 * rng.standard_normal((n, d))
k1 = rng.standard_normal((n, d))
q1 = 4.0 * np.roll(k1, -n // 2, axis=0) + 0.1 * rng.standard_normal((n, d))
q = np.stack([q0, q1])[None].astype(np.float32)
k = np.stack([k0, k1])[None].astype(np.float32)
v = rng.standard_normal((1, 2, n, d)).astype(np.float32)
np.save("q.npy", q)
np.save("k.npy", k)
np.save("v.npy", v)
