#!/usr/bin/env python3
"""Writes small .npy files with NumPy itself (Debian's python3-numpy) for tests/test_npy.c.

Every array holds arange(n) in its dtype, so the C test knows the values without storing them.
Run: /usr/bin/python3 tests/ref/make_npy_fixtures.py
"""
import os

import numpy as np

out = os.path.join(os.path.dirname(__file__), "golden", "npy")
os.makedirs(out, exist_ok=True)
a = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
np.save(os.path.join(out, "c_f4.npy"), a)
with open(os.path.join(out, "c_f4_v2.npy"), "wb") as f:
    np.lib.format.write_array(f, a, version=(2, 0))
np.save(os.path.join(out, "fortran_f4.npy"), np.asfortranarray(a))
np.save(os.path.join(out, "c_f8.npy"), a.astype(np.float64))
np.save(os.path.join(out, "c_be_f4.npy"), a.astype(">f4"))
np.save(os.path.join(out, "rank3_f4.npy"), a[0])
print("wrote", sorted(os.listdir(out)))
