#!/usr/bin/python3
"""make_dicom_seeds: four small SIIM-like DICOMs written by pydicom (+ Pillow for JPEG), used by
tests/test_prepare.c (a tiny end-to-end data set) and tests/test_fuzz_data.c (mutation seeds).

  jpeg.dcm  64x64 8-bit MONOCHROME2, JPEG baseline (what SIIM ships), PatientID PA, sex F, age 061Y
  raw.dcm   64x64 8-bit MONOCHROME2, explicit VR little endian, PatientID PA
  rle.dcm   64x64 8-bit MONOCHROME1, RLE lossless (pydicom's encoder), PatientID PB
  ct16.dcm  64x64 16-bit signed, rescale -1024, window 40/400, explicit VR little endian, PatientID PC
Pixels: v = (x*3 + y*2 + (x*y) % 7) % 256 (ct16: v*8 - 300 stored). Run: /usr/bin/python3 tests/ref/make_dicom_seeds.py
"""
import io
import os

import numpy as np
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import (CTImageStorage, ExplicitVRLittleEndian, JPEGBaseline8Bit, RLELossless,
                         SecondaryCaptureImageStorage)

N = 64


def base(path, uid, syntax, sop=SecondaryCaptureImageStorage, patient="PA"):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop
    meta.MediaStorageSOPInstanceUID = uid
    meta.TransferSyntaxUID = syntax
    ds = FileDataset(path, {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = sop, uid
    ds.PatientID, ds.PatientSex, ds.PatientAge, ds.Modality = patient, "F", "061Y", "CR"
    ds.Rows = ds.Columns = N
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.is_little_endian, ds.is_implicit_VR = True, False
    return ds


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "dcm")
    os.makedirs(out, exist_ok=True)
    y, x = np.mgrid[0:N, 0:N]
    img = ((x * 3 + y * 2 + (x * y) % 7) % 256).astype(np.uint8)

    p = os.path.join(out, "jpeg.dcm")
    ds = base(p, "1.2.276.0.7230010.3.1.4.1", JPEGBaseline8Bit)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=90)
    ds.PixelData = encapsulate([buf.getvalue()])
    ds["PixelData"].is_undefined_length = True
    ds.save_as(p, write_like_original=False)

    p = os.path.join(out, "raw.dcm")
    ds = base(p, "1.2.276.0.7230010.3.1.4.2", ExplicitVRLittleEndian)
    ds.PixelData = img.tobytes()
    ds.save_as(p, write_like_original=False)

    p = os.path.join(out, "rle.dcm")
    ds = base(p, "1.2.276.0.7230010.3.1.4.3", ExplicitVRLittleEndian, patient="PB")
    ds.PhotometricInterpretation = "MONOCHROME1"
    ds.PixelData = img.tobytes()
    ds.compress(RLELossless, img)
    ds.save_as(p, write_like_original=False)

    p = os.path.join(out, "ct16.dcm")
    ds = base(p, "1.2.276.0.7230010.3.1.4.4", ExplicitVRLittleEndian, sop=CTImageStorage, patient="PC")
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.WindowCenter, ds.WindowWidth = 40, 400
    ds.PixelData = (img.astype(np.int16) * 8 - 300 + 1024).astype("<i2").tobytes()
    ds.save_as(p, write_like_original=False)
    print("wrote", sorted(os.listdir(out)), [os.path.getsize(os.path.join(out, f)) for f in sorted(os.listdir(out))])


if __name__ == "__main__":
    main()
