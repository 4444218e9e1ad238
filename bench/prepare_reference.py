#!/usr/bin/python3
"""prepare_reference: the reference utils/prepare_png.py (sneddy/pneumothorax-segmentation) as the prepare
benchmark's baseline: pydicom decode, the reference rle2mask/get_mask, skimage resize, cv2.imwrite, a
multiprocessing pool. anti_aliasing=False keeps the output what the reference's older skimage wrote.

usage: prepare_reference.py --train DIR --rle CSV --out DIR [--size 512] [--procs 2]
"""
import argparse
import glob
import os
import time
from functools import partial
from multiprocessing import Pool

import cv2
import numpy as np
import pandas as pd
import pydicom
from skimage.transform import resize


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


def get_mask(encode, width, height):
    if encode == [] or encode == [" -1"] or encode == ["-1"]:
        return np.zeros((height, width))
    mask = rle2mask(encode[0], width, height)
    for e in encode[1:]:
        mask += rle2mask(e, width, height)
    return mask.T


def save_train_file(f, encode_df, out_path, img_size):
    img = pydicom.read_file(f).pixel_array
    name = f.split("/")[-1][:-4]
    encode = list(encode_df.loc[encode_df["ImageId"] == name, " EncodedPixels"].values)
    encode = get_mask(encode, img.shape[1], img.shape[0])
    encode = resize(encode, (img_size, img_size), anti_aliasing=False)
    img = resize(img, (img_size, img_size), anti_aliasing=False)
    cv2.imwrite("{}/train/{}.png".format(out_path, name), img * 255)
    cv2.imwrite("{}/mask/{}.png".format(out_path, name), encode)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--train", required=True)
    ap.add_argument("--rle", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--procs", type=int, default=2)
    a = ap.parse_args()
    for sub in ("train", "mask"):
        os.makedirs(os.path.join(a.out, sub), exist_ok=True)
    files = sorted(glob.glob(os.path.join(a.train, "*/*/*.dcm")))
    df = pd.read_csv(a.rle)
    t0 = time.time()
    with Pool(a.procs) as pool:
        pool.map(partial(save_train_file, encode_df=df, out_path=a.out, img_size=a.size), files)
    dt = time.time() - t0
    print("reference prepare: %d images in %.2f s (%.2f images/s) with %d processes" % (len(files), dt, len(files) / dt, a.procs))


if __name__ == "__main__":
    main()
