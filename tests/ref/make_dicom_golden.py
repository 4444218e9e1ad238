#!/usr/bin/python3
"""make_dicom_golden: per-file summaries of pydicom's pixels for the DICOMs pydicom ships (Debian's
python3-pydicom, package folder data/test_files), rendered with the rule data/dicom.h documents:

  first frame; colour -> grey 0.299 R + 0.587 G + 0.114 B; modality rescale; the first VOI window if
  the file has one (DICOM linear function); else unsigned <= 8 stored bits without rescale: the stored
  range 0..2^bits-1 onto the output range (8 bits: unchanged); else min..max of the image mapped
  linearly; MONOCHROME1 inverted; the result truncated to an integer (as dcmtk does).

Writes dicom_golden.txt (and dicom_seeds_golden.txt for tests/ref/dcm), one line per file with pixel data (sub-folders included, names relative) (files are not copied into the repo):
  name status syntax lossy W H bits8:(min max mean s0..s15) bits16:(min max mean s0..s15)
status is "ok" or "nopydicom" (pydicom cannot decode it here: then only "decodes or fails cleanly" is
checked). s0..s15 are pixels at (x, y) = ((2i+1) W / 8, (2j+1) H / 8) for i, j in 0..3, row-major.
Run: /usr/bin/python3 tests/ref/make_dicom_golden.py   (pydicom 2.3.1, numpy, Pillow from Debian)
"""
import os
import warnings

import numpy as np
import pydicom
import pydicom.data
from pydicom.pixel_data_handlers.util import apply_color_lut, apply_modality_lut, convert_color_space

warnings.filterwarnings("ignore")
LOSSY = {"1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.81", "1.2.840.10008.1.2.4.91"}


def first_frame(ds, arr):
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return arr[0] if frames > 1 else arr


def to_grey(ds, arr):
    pi = str(ds.PhotometricInterpretation).strip()
    if pi == "PALETTE COLOR":
        arr = apply_color_lut(arr, ds)
        if arr.dtype != np.uint8:
            arr = arr / 257.0
    elif pi.startswith("YBR"):  # pydicom keeps YBR (even from JPEG, where it stops Pillow converting)
        arr = convert_color_space(arr, pi, "RGB")
    if arr.ndim == 3:
        arr = 0.299 * arr[..., 0] + 0.587 * arr[..., 1] + 0.114 * arr[..., 2]
    return arr.astype(np.float64)


def window(x, c, w, ymax):
    if w < 1:
        return None
    lo, hi = c - 0.5 - (w - 1) / 2, c - 0.5 + (w - 1) / 2
    y = ((x - (c - 0.5)) / max(w - 1, 1e-9) + 0.5) * ymax
    return np.where(x <= lo, 0, np.where(x > hi, ymax, y))


def render(ds, x, ymax):
    pi = str(ds.PhotometricInterpretation).strip()
    slope = float(getattr(ds, "RescaleSlope", 1) or 1)
    icpt = float(getattr(ds, "RescaleIntercept", 0) or 0)
    if pi.startswith("MONOCHROME"):
        x = apply_modality_lut(x, ds).astype(np.float64)
    y = None
    if "WindowCenter" in ds and "WindowWidth" in ds and pi.startswith("MONOCHROME"):
        c, w = ds.WindowCenter, ds.WindowWidth
        c = float(c[0] if isinstance(c, pydicom.multival.MultiValue) else c)
        w = float(w[0] if isinstance(w, pydicom.multival.MultiValue) else w)
        y = window(x, c, w, ymax)
    if y is None:
        bits = int(ds.BitsStored)
        if bits <= 8 and int(ds.PixelRepresentation) == 0 and slope == 1 and icpt == 0:
            y = x * (ymax / (2.0 ** bits - 1))
        else:
            lo, hi = x.min(), x.max()
            y = (x - lo) / (hi - lo) * ymax if hi > lo else np.zeros_like(x)
    if pi == "MONOCHROME1":
        y = ymax - y
    return np.clip(np.floor(y + 1e-7), 0, ymax)  # dcmtk truncates


def summary(y, W, H):
    pts = [y[(2 * j + 1) * H // 8, (2 * i + 1) * W // 8] for j in range(4) for i in range(4)]
    return "%d %d %.4f %s" % (y.min(), y.max(), y.mean(), " ".join("%d" % v for v in pts))


def write_golden(folder, out_name):
    lines = ["# pydicom %s pixels rendered by the rule in the docstring of make_dicom_golden.py" % pydicom.__version__]
    names = sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)
    for name in names:
        path = os.path.join(folder, name)
        if " " in name:
            continue
        try:
            ds = pydicom.dcmread(path, force=True)
            if "PixelData" not in ds:
                continue
            syntax = str(ds.file_meta.TransferSyntaxUID) if "TransferSyntaxUID" in ds.file_meta else "?"
        except Exception:
            continue
        lossy = int(syntax in LOSSY)
        try:
            arr = first_frame(ds, ds.pixel_array)
            grey = to_grey(ds, arr)
            H, W = grey.shape
            y8, y16 = render(ds, grey, 255), render(ds, grey, 65535)
            lines.append("%s ok %s %d %d %d %s %s" % (name, syntax, lossy, W, H, summary(y8, W, H), summary(y16, W, H)))
        except Exception as e:  # pydicom has no decoder here, or the file is broken
            lines.append("%s nopydicom %s %d # %s" % (name, syntax, lossy, str(e).replace("\n", " ")[:80]))
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), out_name)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("wrote %d files to %s" % (len(lines) - 1, path))


def main():
    write_golden(os.path.join(os.path.dirname(pydicom.data.__file__), "test_files"), "dicom_golden.txt")
    # The SIIM-like seeds of make_dicom_seeds.py (8-bit grey JPEG baseline, RLE, MONOCHROME1, windowed CT).
    write_golden(os.path.join(os.path.dirname(os.path.abspath(__file__)), "dcm"), "dicom_seeds_golden.txt")


if __name__ == "__main__":
    main()
