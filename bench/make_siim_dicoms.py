#!/usr/bin/python3
"""make_siim_dicoms: writes SIIM-shaped DICOMs (1024x1024, 8-bit MONOCHROME2, JPEG baseline via PIL) and a
train-rle.csv with SIIM's header quirks, for the prepare benchmark when `pneumoseg synth` is not at hand.

usage: make_siim_dicoms.py OUT N [SEED]   -> OUT/train/<a>/<b>/<id>.dcm and OUT/train-rle.csv
"""
import io
import os
import sys

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, SecondaryCaptureImageStorage


def chest(rng, n=1024):
    y, x = np.mgrid[0:n, 0:n] / n
    body = np.exp(-(((x - 0.5) / 0.42) ** 8 + ((y - 0.55) / 0.5) ** 8))
    lungs = np.exp(-(((np.abs(x - 0.5) - 0.2) / 0.13) ** 2 + ((y - 0.45) / 0.28) ** 2) * 2)
    ribs = 0.5 + 0.5 * np.sin(y * 60 + np.abs(x - 0.5) * 20)
    img = 40 + 170 * body - 110 * lungs * (0.7 + 0.3 * ribs) + rng.normal(0, 6, (n, n))
    return np.clip(img, 0, 255).astype(np.uint8)


def rle_relative(mask):
    flat = mask.T.reshape(-1) > 0
    runs, last, i, n = [], 0, 0, flat.size
    while i < n:
        if flat[i]:
            j = i
            while j < n and flat[j]:
                j += 1
            runs += [i - last, j - i]
            last = j
            i = j
        else:
            i += 1
    return " ".join(map(str, runs)) if runs else "-1"


def write_dicom(path, uid, img, patient):
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=95)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = uid
    ds.PatientID = patient
    ds.PatientSex = "M"
    ds.PatientAge = "045Y"
    ds.Modality = "CR"
    ds.Rows, ds.Columns = img.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].is_undefined_length = True
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    ds.save_as(path, write_like_original=False)


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    rng = np.random.default_rng(int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    rows = ["ImageId, EncodedPixels"]
    for i in range(n):
        uid = "1.2.276.0.7230010.3.1.4.8323329.%d.1517875%03d.%d" % (1000 + i, i % 1000, 900000 + i)
        img = chest(rng)
        folder = os.path.join(out, "train", uid.replace("4.8323329", "2"), uid.replace("4.8323329", "3"))
        os.makedirs(folder, exist_ok=True)
        write_dicom(os.path.join(folder, uid + ".dcm"), uid, img, "P%05d" % (i // 2))
        if rng.random() < 0.22:
            for _ in range(1 + (rng.random() < 0.3)):
                m = np.zeros((1024, 1024), np.uint8)
                cx, cy, r = rng.integers(150, 870), rng.integers(150, 870), rng.integers(20, 90)
                yy, xx = np.ogrid[:1024, :1024]
                m[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = 255
                rows.append("%s, %s" % (uid, " " + rle_relative(m)))
        else:
            rows.append("%s, -1" % uid)
    with open(os.path.join(out, "train-rle.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
