#!/usr/bin/python3
"""make_png_golden: small PNGs written by Pillow (not by us) for tests/test_png.c to read.

Pixels follow formulas that the test repeats (W=13, H=9):
  grey8:  (x*7 + y*13) % 256                 rgb8: channel c = (x*7 + y*13 + c*50) % 256
  grey16: (x*1031 + y*4099) % 65536          palette: rgb8 of the 4-colour index (x+y)%4 below
  greya:  grey8 with alpha (x*20)%256 (alpha is dropped on reading)
Run: /usr/bin/python3 tests/ref/make_png_golden.py   (writes tests/ref/png/*.png)
"""
import os

import numpy as np
from PIL import Image

W, H = 13, 9
PALETTE = [(0, 0, 0), (255, 0, 0), (10, 200, 30), (250, 250, 250)]


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "png")
    os.makedirs(out, exist_ok=True)
    y, x = np.mgrid[0:H, 0:W]
    grey8 = ((x * 7 + y * 13) % 256).astype(np.uint8)
    Image.fromarray(grey8, "L").save(os.path.join(out, "grey8.png"))
    rgb = np.stack([(x * 7 + y * 13 + c * 50) % 256 for c in range(3)], axis=2).astype(np.uint8)
    Image.fromarray(rgb, "RGB").save(os.path.join(out, "rgb8.png"))
    grey16 = ((x * 1031 + y * 4099) % 65536).astype(np.uint16)
    Image.fromarray(grey16.astype(np.int32), "I").convert("I;16").save(os.path.join(out, "grey16.png"))
    pal = Image.fromarray(((x + y) % 4).astype(np.uint8), "P")
    pal.putpalette([v for c in PALETTE for v in c])
    pal.save(os.path.join(out, "palette.png"))
    la = np.stack([grey8, ((x * 20) % 256).astype(np.uint8)], axis=2)
    Image.fromarray(la, "LA").save(os.path.join(out, "greya.png"))
    # Check Pillow reads the 16-bit file back as written (the test trusts this file).
    back = np.array(Image.open(os.path.join(out, "grey16.png")))
    assert (back.astype(np.int64) == grey16).all(), "Pillow 16-bit round trip failed"
    print("wrote", sorted(os.listdir(out)))


if __name__ == "__main__":
    main()
