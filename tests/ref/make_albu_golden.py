#!/usr/bin/python3
"""Writes tests/golden/albu_*.npy from albumentations' own functional code (version 1.3.1).

albumentations is not packaged by Debian. What worked here: a venv on Debian's python with the
system packages (numpy, cv2, scipy, skimage) and albumentations without its pinned dependencies:
    /usr/bin/python3 -m venv --system-site-packages VENV
    VENV/bin/pip install --no-deps albumentations==1.3.1 qudida
    VENV/bin/python tests/ref/make_albu_golden.py        (from the repository root)
Cases: ShiftScaleRotate and Rotate (matrix convention), GridDistortion (maps and remap),
ElasticTransform (its random draws replayed and stored), and the uint8 lookup tables of
RandomContrast, RandomBrightness and RandomGamma.
"""
import os

import albumentations
import albumentations.augmentations.functional as FF
import albumentations.augmentations.geometric.functional as FG
import cv2
import numpy as np

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden")
inp = np.load(os.path.join(root, "augment_input.npy"))  # written by make_augment_golden.py
img, mask = inp[0].astype(np.uint8), inp[1].astype(np.uint8)
H, W = img.shape
BORDERS = [cv2.BORDER_CONSTANT, cv2.BORDER_REFLECT_101]

# ShiftScaleRotate / Rotate: (kind 0 = ssr, 1 = rotate, angle, scale, dx, dy, border)
geo = np.array([(0, 17.0, 1.05, 0.03, -0.05, 0), (0, -33.0, 0.9, -0.0625, 0.0, 1), (1, 8.5, 1, 0, 0, 0),
                (1, -10.0, 1, 0, 0, 1)], np.float32)
geo_out = np.zeros((len(geo), 2, H, W), np.float32)
for i, (kind, angle, scale, dx, dy, b) in enumerate(geo.astype(np.float64)):
    bm = BORDERS[int(b)]
    if kind == 0:
        geo_out[i, 0] = FG.shift_scale_rotate(img, angle, scale, dx, dy, cv2.INTER_LINEAR, bm, 0)
        geo_out[i, 1] = FG.shift_scale_rotate(mask, angle, scale, dx, dy, cv2.INTER_NEAREST, bm, 0)
    else:
        geo_out[i, 0] = FG.rotate(img, angle, cv2.INTER_LINEAR, bm, 0)
        geo_out[i, 1] = FG.rotate(mask, angle, cv2.INTER_NEAREST, bm, 0)

# GridDistortion: steps, then steps+1 x factors and steps+1 y factors (padded to 8), border
rng = np.random.default_rng(5)
grid_cases = []
grid_out = []
for steps, b in [(5, 0), (3, 1), (7, 0)]:
    xs = 1 + rng.uniform(-0.3, 0.3, steps + 1)
    ys = 1 + rng.uniform(-0.3, 0.3, steps + 1)
    xs, ys = xs.astype(np.float32).astype(np.float64), ys.astype(np.float32).astype(np.float64)
    row = np.zeros(18, np.float32)
    row[0], row[1] = steps, b
    row[2:2 + steps + 1], row[10:10 + steps + 1] = xs, ys
    grid_cases.append(row)
    bm = BORDERS[b]
    out_img = FG.grid_distortion(img, steps, tuple(xs), tuple(ys), cv2.INTER_LINEAR, bm, 0)
    out_mask = FG.grid_distortion(mask, steps, tuple(xs), tuple(ys), cv2.INTER_NEAREST, bm, 0)
    grid_out.append(np.stack([out_img, out_mask]).astype(np.float32))

# LUTs: contrast alpha, brightness beta, gamma (as fractions)
# float32-representable values, since the C test reads them back as float32
alphas = np.array([0.8, 0.93, 1.0, 1.17, 1.2], np.float32).astype(np.float64)
betas = np.array([-0.2, -0.05, 0.0, 0.11, 0.2], np.float32).astype(np.float64)
gammas = np.array([0.8, 0.95, 1.0, 1.13, 1.2], np.float32).astype(np.float64)
ramp = np.arange(256, dtype=np.uint8).reshape(16, 16)
luts = np.zeros((15, 256), np.float32)
for i, a in enumerate(alphas):
    luts[i] = FF.brightness_contrast_adjust(ramp, alpha=a, beta=0, beta_by_max=False).ravel()
for i, b in enumerate(betas):
    luts[5 + i] = FF.brightness_contrast_adjust(ramp, alpha=1, beta=b, beta_by_max=True).ravel()
for i, g in enumerate(gammas):
    luts[10 + i] = FF.gamma_transform(ramp, g).ravel()

# ElasticTransform(approximate=False) with a seeded RandomState; its draws (the 3x2 affine offsets,
# then rand(h, w) for dx and for dy) are replayed from the same seed and stored as the C test's inputs.
ela_cases = np.array([(120.0, 6.0, 3.6, 11, 0), (40.0, 4.0, 2.0, 12, 1)], np.float32)  # alpha, sigma, affine, seed, border
ela_rand = []
ela_out = []
for alpha, sigma, aa, seed, b in ela_cases.astype(np.float64):
    bm = BORDERS[int(b)]
    rs = np.random.RandomState(int(seed))
    offsets = rs.uniform(-aa, aa, size=(3, 2)).astype(np.float32)
    rx, ry = rs.rand(H, W), rs.rand(H, W)
    ela_rand.append(np.concatenate([np.pad(offsets.ravel(), (0, H * W - 6)), rx.ravel(), ry.ravel()]).astype(np.float32))
    o_img = FG.elastic_transform(img, alpha, sigma, aa, cv2.INTER_LINEAR, bm, 0, np.random.RandomState(int(seed)), False)
    o_mask = FG.elastic_transform(mask, alpha, sigma, aa, cv2.INTER_NEAREST, bm, 0, np.random.RandomState(int(seed)), False)
    ela_out.append(np.stack([o_img, o_mask]).astype(np.float32))
np.save(os.path.join(root, "albu_elastic_cases.npy"), ela_cases)
np.save(os.path.join(root, "albu_elastic_rand.npy"), np.stack(ela_rand))
np.save(os.path.join(root, "albu_elastic.npy"), np.stack(ela_out))

np.save(os.path.join(root, "albu_geo_cases.npy"), geo)
np.save(os.path.join(root, "albu_geo.npy"), geo_out)
np.save(os.path.join(root, "albu_grid_cases.npy"), np.stack(grid_cases))
np.save(os.path.join(root, "albu_grid.npy"), np.stack(grid_out))
np.save(os.path.join(root, "albu_lut_params.npy"), np.stack([alphas, betas, gammas]).astype(np.float32))
np.save(os.path.join(root, "albu_lut.npy"), luts)
print("albumentations", albumentations.__version__, "cv2", cv2.__version__)
