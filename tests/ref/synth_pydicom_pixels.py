#!/usr/bin/python3
"""Decodes DICOM files with pydicom and writes each one's pixels as a binary PGM (used by test_synth).

Usage: synth_pydicom_pixels.py IN1.dcm OUT1.pgm [IN2.dcm OUT2.pgm ...]. Exit 77 when pydicom (or a
JPEG handler such as Pillow) is missing, so the C test reports SKIP. Needs python3-pydicom and
python3-pil (Debian).
"""
import sys

try:
    import numpy as np
    import pydicom
except ImportError as e:
    print("pydicom missing:", e)
    sys.exit(77)

args = sys.argv[1:]
for src, dst in zip(args[0::2], args[1::2]):
    ds = pydicom.dcmread(src)
    try:
        px = ds.pixel_array
    except Exception as e:  # no handler for the transfer syntax
        print("pydicom cannot decode:", e)
        sys.exit(77)
    px = np.asarray(px, dtype=np.uint8)
    h, w = px.shape
    with open(dst, "wb") as f:
        f.write(b"P5 %d %d 255\n" % (w, h))
        f.write(px.tobytes())
    print(ds.SOPInstanceUID, ds.file_meta.TransferSyntaxUID, ds.PhotometricInterpretation, w, h)
