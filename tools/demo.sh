#!/usr/bin/env bash
# demo: the main job on built-in synthetic data, on the CPU: builds pneumoseg, writes a SIIM-shaped data set
# (DICOM + train-rle.csv), prepares PNGs, splits folds, trains Unet-resnet34 from scratch on fold 0's
# complement, evaluates on fold 0, predicts the test DICOMs into a Kaggle submission, and scores that
# submission against the synthetic test truth (which SIIM does not give). Sized for about 15 minutes on 2 cores.
# Usage: tools/demo.sh [OUT_DIR]   (default: demo)   Environment: DEMO_EPOCHS, DEMO_STEPS, DEMO_N override the size;
# DEMO_ENCODER picks another encoder (default resnet34; `pneumoseg models` lists them).
# DEMO_ENCODER_WEIGHTS=FILE starts the encoder from a pretrained checkpoint (e.g. torchvision's resnet34 .pth).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-demo}
epochs=${DEMO_EPOCHS:-30}
steps=${DEMO_STEPS:-10}
n=${DEMO_N:-200}
encoder=${DEMO_ENCODER:-resnet34}
t0=$(date +%s)
stamp() { echo "[demo $(( $(date +%s) - t0 )) s] $*"; }
bash tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
bin=build/tools/pneumoseg
mkdir -p "$out"

# The findings are drawn twice as dark and twice as deep as synth's SIIM-like default: from random weights
# (nothing is downloaded) on 2 cores, 15 minutes of training cannot find the default's 2-4 pixel slivers
# at 128 (bench/README.md, "train": the default look stays at the all-empty baseline).
stamp "synth: $n train images + test images, 1024x1024 DICOMs"
$bin synth --out "$out/syn" --n "$n" --seed 0 --finding-contrast 2 --finding-depth 2 --force
stamp "prepare: PNGs at 128"
$bin prepare --train-dicom "$out/syn/dicom-images-train" --rle "$out/syn/train-rle.csv" --out "$out/data128" --size 128 --force
stamp "folds: 5 stratified folds"
$bin folds --rle "$out/syn/train-rle.csv" --out "$out/folds.csv" --k 5 --force
stamp "train: $epochs epochs of up to $steps steps (an epoch is what the 0.6 positive-share sampler draws: every positive and 2/3 as many negatives), batch 8 at 128, Unet-$encoder, cpu backend"
init=()
if [ -n "${DEMO_ENCODER_WEIGHTS:-}" ]; then
  stamp "init: the encoder from $DEMO_ENCODER_WEIGHTS, the decoder seeded"
  $bin init --encoder "$encoder" --encoder-weights "$DEMO_ENCODER_WEIGHTS" --out "$out/init.safetensors" --force
  init=(--init "$out/init.safetensors")
fi
$bin train --data "$out/data128" --folds "$out/folds.csv" --fold 0 --out "$out/run" --force "${init[@]}" \
  --epochs "$epochs" --steps-per-epoch "$steps" --batch 8 --size 128 --lr 1e-3 --milestones 20,26 --gamma 0.5 \
  --pos-share 0.6 --aug blog --top-k 2 --areas 0,250,1000 --backend cpu --encoder "$encoder"
stamp "eval: fold 0 with hflip TTA"
$bin eval --weights "$out/run/best.safetensors" --data "$out/data128" --folds "$out/folds.csv" --fold 0 --size 128 \
  --tta hflip --areas 0,250,1000 --backend cpu | tee "$out/eval.txt"
triplet=$(awk '$1=="best_triplet"{print $2}' "$out/eval.txt") # min_area in 1024-pixels, as predict takes it
stamp "predict: test DICOMs straight to a submission (triplet $triplet, hflip TTA, last + best averaged)"
$bin predict --weights "$out/run/best.safetensors" "$out/run/last.safetensors" --dicom "$out/syn/dicom-images-test" \
  --sample-submission "$out/syn/sample_submission.csv" --size 128 --tta hflip --triplet "$triplet" \
  --overlays "$out/overlays" --overlays-n 6 --out "$out/submission.csv" --force --backend cpu
stamp "score: the submission against the synthetic test truth (held out: never trained or validated on)"
$bin eval --submission "$out/submission.csv" --truth "$out/syn/test-rle.csv" | tee "$out/test_score.txt"
stamp "done. submission $out/submission.csv, metrics $out/run/metrics.csv, curves $out/run/curves.png, overlays $out/overlays/"
