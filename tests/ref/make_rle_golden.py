#!/usr/bin/python3
"""make_rle_golden: the reference's rle2mask/mask2rle (SIIM mask_functions.py, transcribed) on random masks.

Writes rle_golden.txt, one case per line:
  W H tail count s1 s2 | ref_rle | fixed_rle | dcount ds1 ds2
where the mask has `count` foreground pixels with column-major index sums s1 = sum(i), s2 = sum(i*i mod
1000003); ref_rle = the reference mask2rle(mask.T) (it drops a run reaching the last pixel); fixed_rle =
the same with that final run written (what docs/REFERENCE.md asks of us); dcount/ds1/ds2 describe the reference
rle2mask(ref_rle).T > 0. `tail` = length of the final run that the reference drops (0 if none).
A few "union" lines: U W H rle_a | rle_b | count s1 s2 of (rle2mask(a) + rle2mask(b)).T > 0.
Run: /usr/bin/python3 tests/ref/make_rle_golden.py
"""
import os

import numpy as np


# ---- transcribed from the reference mask_functions.py ----
def mask2rle(img, width, height):
    rle = []
    lastColor = 0
    currentPixel = 0
    runStart = -1
    runLength = 0
    for x in range(width):
        for y in range(height):
            currentColor = img[x][y]
            if currentColor != lastColor:
                if currentColor == 255:
                    runStart = currentPixel
                    runLength = 1
                else:
                    rle.append(str(runStart))
                    rle.append(str(runLength))
                    runStart = -1
                    runLength = 0
                    currentPixel = 0
            elif runStart > -1:
                runLength += 1
            lastColor = currentColor
            currentPixel += 1
    return " ".join(rle)


def rle2mask(rle, width, height):
    mask = np.zeros(width * height)
    array = np.asarray([int(x) for x in rle.split()])
    starts = array[0::2]
    lengths = array[1::2]
    current_position = 0
    for index, start in enumerate(starts):
        current_position += start
        mask[current_position:current_position + lengths[index]] = 255
        current_position += lengths[index]
    return mask.reshape(width, height)
# ---- end of the transcription ----


def fixed_mask2rle(img, width, height):
    """The reference loop plus the final flush docs/REFERENCE.md asks for; '-1' when empty."""
    flat = img.reshape(-1)  # img is (width, height) = mask.T, so this is column-major
    runs, last, start = [], 0, -1
    for i, v in enumerate(list(flat) + [0]):
        if v == 255 and start < 0:
            start = i
        elif v != 255 and start >= 0:
            runs += [start - last, i - start]
            last, start = i, -1
    return " ".join(map(str, runs)) if runs else "-1"


def sums(mask_hw):
    idx = np.flatnonzero(mask_hw.T.reshape(-1) > 0).astype(np.int64)
    return "%d %d %d" % (idx.size, int(idx.sum()), int((idx * idx % 1000003).sum()))


def random_mask(rng, w, h):
    m = np.zeros((h, w), np.uint8)
    kind = rng.integers(0, 6)
    if kind == 0:
        m[rng.random((h, w)) < rng.uniform(0.02, 0.6)] = 255
    elif kind in (1, 2):
        for _ in range(rng.integers(1, 5)):
            x0, y0 = rng.integers(0, w), rng.integers(0, h)
            m[y0:y0 + rng.integers(1, h + 1), x0:x0 + rng.integers(1, w + 1)] = 255
    elif kind == 3:
        yy, xx = np.ogrid[:h, :w]
        for _ in range(rng.integers(1, 4)):
            cx, cy, r = rng.integers(0, w), rng.integers(0, h), rng.integers(1, max(w, h) + 1)
            m[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = 255
    elif kind == 4:
        m[:, w - 1] = 255 * (rng.random(h) < 0.5)
        m[h - 1, w - 1] = 255  # a run that reaches the last pixel
    else:
        if rng.random() < 0.5:
            m[:] = 255
    if rng.random() < 0.25:
        m[h - 1, w - 1] = 255
    return m


def main():
    rng = np.random.default_rng(20240601)
    lines = ["# reference mask_functions.py rle2mask/mask2rle transcribed; see the docstring of make_rle_golden.py"]
    sizes = [(1, 1), (1, 7), (7, 1), (2, 2), (5, 3), (16, 16), (31, 17), (40, 64), (64, 40)]
    for i in range(240):
        w, h = sizes[i % len(sizes)] if i < 60 else (int(rng.integers(1, 72)), int(rng.integers(1, 72)))
        m = random_mask(rng, w, h)
        t = m.T  # the callers pass the transposed image (column-major walk)
        ref = mask2rle(t, w, h)
        fixed = fixed_mask2rle(t, w, h)
        flat = t.reshape(-1) > 0
        tail = 0
        while tail < flat.size and flat[flat.size - 1 - tail]:
            tail += 1
        dec = rle2mask(ref, w, h).T if ref else np.zeros((h, w))
        lines.append("%d %d %d %s | %s | %s | %s" % (w, h, tail, sums(m), ref, fixed, sums(dec)))
    for w, h in [(1024, 1024), (1024, 1024), (300, 200)]:
        for _ in range(3):
            a, b = random_mask(rng, w, h), random_mask(rng, w, h)
            if a.sum() > 400000 * 255 or b.sum() > 400000 * 255:
                continue
            ra, rb = mask2rle(a.T, w, h), mask2rle(b.T, w, h)
            if len(ra) + len(rb) > 6000:
                continue
            u = (rle2mask(ra, w, h) + rle2mask(rb, w, h)).T
            lines.append("U %d %d %s | %s | %s" % (w, h, ra or "-1", rb or "-1", sums(u)))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "rle_golden.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d lines to %s (%d bytes)" % (len(lines), path, os.path.getsize(path)))


if __name__ == "__main__":
    main()
