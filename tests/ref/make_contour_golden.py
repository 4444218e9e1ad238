#!/usr/bin/python3
"""make_contour_golden: OpenCV's contour areas of the regions of random binary masks.

The winner's remove_smallest (TripletSubmit.py) keeps the contours of cv2.findContours(mask, RETR_TREE,
CHAIN_APPROX_SIMPLE) whose cv2.contourArea is above the minimum. Each region's area here is
cv2.contourArea of its outer border: cv2.findContours(mask, RETR_CCOMP, CHAIN_APPROX_NONE) lists the
outer border of every 8-connected region at the top level (also a region inside another's hole), and a
border starts at its region's first pixel in raster order. CHAIN_APPROX_SIMPLE only drops collinear
points, which leaves the area as it is (checked here too).
Writes contour_golden.txt, one mask per line:
  W H | r0 r1 r2 ... | x y area x y area ...
where the mask is row-major runs alternating background / foreground starting with background, and the
regions are listed by their first pixel (y, then x).
Run: /usr/bin/python3 tests/ref/make_contour_golden.py
"""
import os

import cv2
import numpy as np


def runs(mask):
    flat = mask.reshape(-1)
    out, cur, n = [], 0, 0
    for v in flat:
        if v != cur:
            out.append(n)
            cur, n = v, 0
        n += 1
    out.append(n)
    return out


def regions(mask):
    contours, hier = cv2.findContours(mask.copy(), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_NONE)
    simple, _ = cv2.findContours(mask.copy(), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for i, c in enumerate(contours):
        if hier[0][i][3] != -1:
            continue  # a hole
        area = cv2.contourArea(c)
        assert area == cv2.contourArea(simple[i])
        x, y = int(c[0][0][0]), int(c[0][0][1])
        assert mask[y, x] and (x == 0 or not mask[y, x - 1])
        out.append((y, x, area))
    out.sort()
    return out


def random_mask(rng):
    w, h = int(rng.integers(1, 64)), int(rng.integers(1, 64))
    m = np.zeros((h, w), np.uint8)
    kind = rng.integers(0, 4)
    if kind == 0:  # noise of some density: single pixels, diagonal chains, small blobs
        m[:] = rng.uniform(size=(h, w)) < rng.uniform(0.05, 0.6)
    else:  # blobs: ellipses and rectangles, some with holes, plus a little noise
        for _ in range(int(rng.integers(1, 8))):
            cx, cy = int(rng.integers(0, w)), int(rng.integers(0, h))
            ax, ay = int(rng.integers(1, 16)), int(rng.integers(1, 16))
            if rng.uniform() < 0.5:
                cv2.ellipse(m, (cx, cy), (ax, ay), float(rng.uniform(0, 180)), 0, 360, 1, -1)
            else:
                cv2.rectangle(m, (cx, cy), (cx + ax, cy + ay), 1, -1)
            if rng.uniform() < 0.4:
                cv2.circle(m, (cx, cy), int(rng.integers(1, 5)), 0, -1)
        m[rng.uniform(size=(h, w)) < rng.uniform(0, 0.05)] = 1
        m[rng.uniform(size=(h, w)) < rng.uniform(0, 0.05)] = 0
    return m


def main():
    rng = np.random.default_rng(5)
    masks = [np.ones((1, 1), np.uint8), np.ones((3, 5), np.uint8), np.eye(6, dtype=np.uint8),
             np.pad(np.ones((4, 4), np.uint8), 2)]
    ring = np.zeros((9, 9), np.uint8)
    cv2.rectangle(ring, (1, 1), (7, 7), 1, -1)
    ring[3:6, 3:6] = 0
    ring[4, 4] = 1  # an island in the hole
    masks.append(ring)
    masks += [random_mask(rng) for _ in range(120)]
    lines = []
    for m in masks:
        h, w = m.shape
        regs = regions(m)
        lines.append(f"{w} {h} | " + " ".join(map(str, runs(m))) + " | " +
                     " ".join(f"{x} {y} {a!r}" for y, x, a in regs))
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "contour_golden.txt")
    with open(out, "w") as f:
        f.write(f"# cv2 {cv2.__version__} findContours + contourArea; see the docstring of make_contour_golden.py\n")
        f.write("\n".join(lines) + "\n")
    print(f"{out}: {len(lines)} masks, {sum(len(l.split('|')[2].split()) // 3 for l in lines)} regions")


if __name__ == "__main__":
    main()
