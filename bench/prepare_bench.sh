#!/bin/sh
# prepare_bench: `pneumoseg prepare` side by side with the reference prepare_png.py (bench/prepare_reference.py)
# on the same synthetic SIIM DICOMs at 512, then a pixel-for-pixel comparison of the two outputs.
# usage: bench/prepare_bench.sh BUILD_DIR WORK_DIR [N_IMAGES] [ROUNDS]
set -e
build=$1; work=$2; n=${3:-200}; rounds=${4:-3}
[ -x "$build/tools/pneumoseg" ] || { echo "usage: $0 BUILD_DIR WORK_DIR [N] [ROUNDS]" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
pn=$build/tools/pneumoseg
mkdir -p "$work"
[ -f "$work/syn/train-rle.csv" ] || "$pn" synth --out "$work/syn" --n "$n" --n-test 0 --force
nproc_=$(nproc)
for r in $(seq "$rounds"); do
  rm -rf "$work/ref" "$work/ours"
  /usr/bin/time -f "reference: wall %e s, user %U s, sys %S s" /usr/bin/python3 "$here/prepare_reference.py" \
    --train "$work/syn/dicom-images-train" --rle "$work/syn/train-rle.csv" --out "$work/ref" --size 512 --procs "$nproc_"
  /usr/bin/time -f "pneumoseg: wall %e s, user %U s, sys %S s" "$pn" prepare --train-dicom "$work/syn/dicom-images-train" \
    --rle "$work/syn/train-rle.csv" --out "$work/ours" --size 512 --quiet
  echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
done
/usr/bin/python3 - "$work" <<'PY'
import glob, os, sys
import cv2
w = sys.argv[1]
files = sorted(glob.glob(os.path.join(w, "ref", "train", "*.png")))
bad = 0
for f in files:
    b = os.path.basename(f)
    for sub in ("train", "mask"):
        a = cv2.imread(os.path.join(w, "ref", sub, b), cv2.IMREAD_UNCHANGED)
        o = cv2.imread(os.path.join(w, "ours", sub, b), cv2.IMREAD_UNCHANGED)
        bad += int((a != o).sum()) if o is not None and a.shape == o.shape else a.size
print("compared %d images and masks: %d pixels differ" % (len(files), bad))
PY
