#!/usr/bin/env python3
"""Writes the tensor-file test fixtures with NumPy (np.save) and, for .safetensors, with the
format's own layout (8-byte little-endian header length, JSON header, data) through struct and json.
Run from this folder: python3 make_fixtures.py. Every value is exactly representable in its type, so
the Java tests compare with ==. Made with NumPy 2.4.6."""
import json
import struct

import numpy as np


def values(n):
    # k * 0.25 - 10: exact in f32, f16 (|x| < 2048, quarter steps) and bf16 (8 significant bits)
    return (np.arange(n, dtype=np.float32) % 64) * 0.25 - 10.0


def bf16_bits(a):
    return (np.ascontiguousarray(a, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


np.save("numpy_f32_2x3x4x8.npy", values(192).reshape(2, 3, 4, 8))
np.save("numpy_f16_3x5.npy", values(15).reshape(3, 5).astype(np.float16))
np.save("numpy_bf16_as_u16_4x8.npy", bf16_bits(values(32)).reshape(4, 8))
np.save("numpy_f32_rank1.npy", values(7))
np.save("numpy_f32_scalar.npy", np.float32(2.5))
np.save("numpy_fortran_3x4.npy", np.asfortranarray(values(12).reshape(3, 4)))
np.save("numpy_f64_2x2.npy", values(4).astype(np.float64).reshape(2, 2))
np.save("numpy_bigendian_2x2.npy", values(4).astype(">f4").reshape(2, 2))
np.save("numpy_int32_2x2.npy", np.arange(4, dtype=np.int32).reshape(2, 2))

tensors = {
    "q": ("F32", [1, 2, 4, 8], values(64).tobytes()),
    "k": ("F16", [1, 2, 4, 8], values(64).astype(np.float16).tobytes()),
    "v": ("BF16", [1, 2, 4, 8], bf16_bits(values(64)).tobytes()),
}
header, data, offset = {"__metadata__": {"made_by": "numpy"}}, b"", 0
for name, (dtype, shape, raw) in tensors.items():
    header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
    data += raw
    offset += len(raw)
text = json.dumps(header).encode("utf-8")
text += b" " * ((8 - len(text) % 8) % 8)
with open("spec_qkv.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)) + text + data)
