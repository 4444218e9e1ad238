#!/usr/bin/python3
"""Writes tests/golden/augment_*.npy: OpenCV warpAffine outputs for Rotate / ShiftScaleRotate.

The matrix is albumentations' (>= 1.0): cv2.getRotationMatrix2D(((w-1)/2, (h-1)/2), angle, scale)
plus (dx*w, dy*h) on the translation; images INTER_LINEAR, masks INTER_NEAREST, border constant 0
or BORDER_REFLECT_101. Needs numpy and cv2 (Debian: python3-numpy python3-opencv).
Run from the repository root: /usr/bin/python3 tests/ref/make_augment_golden.py
"""
import os
import cv2
import numpy as np

H, W = 47, 61
rng = np.random.default_rng(1234)
yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
img = 40 + 120 * xx / W + 60 * np.sin(yy / 5.0) + rng.normal(0, 8, (H, W))
img[(xx - 20) ** 2 + (yy - 15) ** 2 < 64] = 250  # a bright disc with a sharp edge
img = np.clip(img, 0, 255).astype(np.uint8)
mask = np.zeros((H, W), np.uint8)
mask[((xx - 38) / 12) ** 2 + ((yy - 28) / 9) ** 2 < 1] = 255
mask[5:12, 45:55] = 255

# angle (deg), scale, dx, dy (fractions of w, h), border (0 constant, 1 reflect-101)
cases = [
    (10.0, 1.0, 0.0, 0.0, 0),
    (-7.3, 1.0, 0.0, 0.0, 0),
    (37.0, 1.0, 0.0, 0.0, 1),
    (90.0, 1.0, 0.0, 0.0, 0),
    (-44.0, 0.91, 0.05, -0.03, 0),
    (23.5, 1.08, -0.0625, 0.0625, 0),
    (12.0, 1.1, 0.02, 0.01, 1),
    (-3.0, 0.95, 0.0, 0.0, 1),
]
borders = [cv2.BORDER_CONSTANT, cv2.BORDER_REFLECT_101]
cases = np.array(cases, np.float32)  # the C test reads these float32 values: use exactly them here
out = np.zeros((len(cases), 2, H, W), np.float32)
for i, (angle, scale, dx, dy, b) in enumerate(cases.astype(np.float64)):
    b = int(b)
    m = cv2.getRotationMatrix2D(((W - 1) * 0.5, (H - 1) * 0.5), angle, scale)
    m[0, 2] += dx * W
    m[1, 2] += dy * H
    out[i, 0] = cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=borders[b], borderValue=0)
    out[i, 1] = cv2.warpAffine(mask, m, (W, H), flags=cv2.INTER_NEAREST, borderMode=borders[b], borderValue=0)

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden")
os.makedirs(root, exist_ok=True)
np.save(os.path.join(root, "augment_input.npy"), np.stack([img, mask]).astype(np.float32))
np.save(os.path.join(root, "augment_cases.npy"), cases)
np.save(os.path.join(root, "augment_warp.npy"), out)
print("cv2", cv2.__version__, "wrote", len(cases), "cases of", W, "x", H)

# OpticalDistortion: albumentations' map (cv2.initUndistortRectifyMap) and cv2.remap of image and mask.
# k, dx, dy, border
optical = np.array([(0.5, 0.0, 0.0, 0), (-0.8, 1.0, -1.0, 1), (1.7, 0.0, 1.0, 0)], np.float32)
oout = np.zeros((len(optical), 4, H, W), np.float32)  # map_x, map_y, image, mask
for i, (k, dx, dy, b) in enumerate(optical.astype(np.float64)):
    cam = np.array([[W, 0, W * 0.5 + dx], [0, H, H * 0.5 + dy], [0, 0, 1]], dtype=np.float32)
    dist = np.array([k, k, 0, 0, 0], dtype=np.float32)
    mx, my = cv2.initUndistortRectifyMap(cam, dist, None, None, (W, H), cv2.CV_32FC1)
    oout[i, 0], oout[i, 1] = mx, my
    oout[i, 2] = cv2.remap(img, mx, my, cv2.INTER_LINEAR, borderMode=borders[int(b)], borderValue=0)
    oout[i, 3] = cv2.remap(mask, mx, my, cv2.INTER_NEAREST, borderMode=borders[int(b)], borderValue=0)
np.save(os.path.join(root, "augment_optical_cases.npy"), optical)
np.save(os.path.join(root, "augment_optical.npy"), oout)
print("optical:", len(optical), "cases")
