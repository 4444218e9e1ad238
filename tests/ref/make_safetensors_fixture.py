"""make_safetensors_fixture: writes safetensors fixtures with the real Python `safetensors` package.

The package is not in Debian; install it into a venv that still sees Debian's torch and numpy
($VENV is any scratch directory outside the repository):

    /usr/bin/python3 -m venv --system-site-packages "$VENV"
    "$VENV"/bin/pip install safetensors==0.4.5
    "$VENV"/bin/python tests/ref/make_safetensors_fixture.py

(checked with safetensors 0.4.5, Debian's torch 1.13 and numpy 1.24). Run from the repository root.

Outputs (tests/test_safetensors.c checks every value from the same formulas):

golden/st_python.safetensors, written by safetensors.torch.save_file (torch is needed for BF16):
  "enc.weight"  F32  [2,3]  arange(6) * 0.5 - 1          -> -1, -0.5, 0, 0.5, 1, 1.5
  "half"        F16  [12]   0, -0, 1, -2.5, 65504, 2^-14, 2^-24, 3*2^-24, 1023*2^-24, inf, -inf, nan
  "brain"       BF16 [2,4]  1, -3, 2^-126, 2^-133, (2 - 2^-7) * 2^127, inf, -inf, nan
  "step"        I64  []     -(2^40) - 7
  "pair"        I64  [2]    2^62, -5
  "idx32"       I32  [3]    -2^31, 0, 2^31 - 1
  "dbl"         F64  [2,2]  arange(4) / 3
  "empty"       F32  [0,3]  (no elements)
  metadata: {"format": "pt", "note": "pneumoseg fixture \\u00e9\\u2713"}  (the note ends in "é✓", raw UTF-8;
  the package keeps metadata in a hash map, so a rerun may order the two keys differently; the test does
  not depend on that order)

golden/st_python_small.safetensors, the same way, to compare byte for byte with our writer:
  "a" I64 [2] = [7, -1];  "w" F32 [2,3] = arange(6) * 0.25;  metadata {"format": "pt"}
  (the package orders tensors by dtype size, then name; "a" then "w" is that order.)
"""
import os

import torch
from safetensors.torch import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "golden")


def main():
    os.makedirs(OUT, exist_ok=True)
    inf, nan = float("inf"), float("nan")
    half = [0.0, -0.0, 1.0, -2.5, 65504.0, 2.0**-14, 2.0**-24, 3 * 2.0**-24, 1023 * 2.0**-24, inf, -inf, nan]
    brain = [1.0, -3.0, 2.0**-126, 2.0**-133, (2 - 2.0**-7) * 2.0**127, inf, -inf, nan]
    tensors = {
        "enc.weight": (torch.arange(6, dtype=torch.float32) * 0.5 - 1).reshape(2, 3),
        "half": torch.tensor(half, dtype=torch.float16),
        "brain": torch.tensor(brain, dtype=torch.bfloat16).reshape(2, 4),
        "step": torch.tensor(-(2**40) - 7, dtype=torch.int64),
        "pair": torch.tensor([2**62, -5], dtype=torch.int64),
        "idx32": torch.tensor([-(2**31), 0, 2**31 - 1], dtype=torch.int32),
        "dbl": (torch.arange(4, dtype=torch.float64) / 3).reshape(2, 2),
        "empty": torch.zeros(0, 3, dtype=torch.float32),
    }
    # the formulas must give exactly the values listed (no rounding in the conversion)
    assert torch.tensor(half, dtype=torch.float16).double().tolist()[:9] == half[:9]
    assert torch.tensor(brain, dtype=torch.bfloat16).double().tolist()[:5] == brain[:5]
    meta = {"format": "pt", "note": "pneumoseg fixture \u00e9\u2713"}
    save_file(tensors, os.path.join(OUT, "st_python.safetensors"), metadata=meta)

    small = {"a": torch.tensor([7, -1], dtype=torch.int64), "w": (torch.arange(6, dtype=torch.float32) * 0.25).reshape(2, 3)}
    save_file(small, os.path.join(OUT, "st_python_small.safetensors"), metadata={"format": "pt"})


if __name__ == "__main__":
    main()
