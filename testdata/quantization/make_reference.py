"""Writes the Q8_0 and Q4_0 quantization references of WeightFormatTest.

input.f32: 8 rows x 128 columns of little-endian float32 (seeded normals, scaled per row, and one
row of hand-picked values: ties at .5 that banker's rounding would send the other way, an all-zero
block, a block whose max is negative). expected.q8_0 and expected.q4_0: the same rows quantized by
llama.cpp's own Python quantizer (gguf-py, `gguf.quants.quantize`, "bit-exact same results as
reference implementation in ggml-quants.c"), 4 blocks of 34 (Q8_0) or 18 (Q4_0) bytes per row.

Run with llama.cpp's gguf-py on PYTHONPATH (commit c392e509) and Debian's python3-numpy:
    PYTHONPATH=LLAMA_CPP/gguf-py python3 make_reference.py
"""
import numpy as np
from gguf.constants import GGMLQuantizationType
from gguf.quants import quantize

rng = np.random.default_rng(20261203)
rows = rng.standard_normal((8, 128)).astype(np.float32)
rows *= np.array([1, 0.02, 3e-4, 50, 1e-6, 7, 1, 1], dtype=np.float32)[:, None]
special = np.zeros(128, dtype=np.float32)
special[0:8] = [127, 62.5, -62.5, 0.5, -0.5, 1.5, 2.5, -3.5]  # d = 1: the ties round away from zero
special[64:68] = [-12.7, 6.35, 3.175, -0.0]  # max |x| on a negative value
rows[7] = special  # block 32..63 stays all zeros, d = 0
rows.astype("<f4").tofile("input.f32")
quantize(rows, GGMLQuantizationType.Q8_0).tofile("expected.q8_0")
quantize(rows, GGMLQuantizationType.Q4_0).tofile("expected.q4_0")
