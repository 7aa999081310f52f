#!/usr/bin/env python3
"""Writes NumPy-generated .npy fixtures for medsgm's NPY reader tests (tests/npy.rs).

Each file holds v[i] = value(i) for the flat C-order index i of a (2, 3, 4) array, with
value(i) = i - 7 (integers: i for uint8, 2000 i + 7 for uint16), plus 0.5 for floats and imaginary part -2i for complex,
stored in C or Fortran order and little- or big-endian. The Rust test recomputes the expected
values from this formula, so the fixtures check the reader against NumPy's own writer.

Usage: python3 data-scripts/make_npy_fixtures.py tests/fixtures/npy
(needs numpy; e.g. python3 -m venv /tmp/np && /tmp/np/bin/pip install numpy)
"""
import sys
from pathlib import Path

import numpy as np

out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
i = np.arange(24).reshape(2, 3, 4)
values = {
    "u1": i.astype(np.uint8),
    "i2": (i - 7).astype(np.int16),
    "u2": (2000 * i + 7).astype(np.uint16),
    "f4": (i - 7 + 0.5).astype(np.float32),
    "f8": (i - 7 + 0.5).astype(np.float64),
    "c8": ((i - 7 + 0.5) - 2j * i).astype(np.complex64),
}
for code, arr in values.items():
    for endian in "<>":
        for order in "CF":
            a = arr.astype(arr.dtype.newbyteorder(endian))
            a = np.asfortranarray(a) if order == "F" else np.ascontiguousarray(a)
            tag = "le" if endian == "<" else "be"
            np.save(out / f"{code}_{tag}_{order}.npy", a)
# A 0-d array and an empty array.
np.save(out / "f4_scalar.npy", np.array(3.25, dtype="<f4"))
np.save(out / "f4_empty.npy", np.zeros((0, 5), dtype="<f4"))
print(f"wrote fixtures to {out}")
