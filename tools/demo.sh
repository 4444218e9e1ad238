#!/usr/bin/env bash
# demo: the main job on built-in data. Until the training issue lands it builds pneumoseg, writes
# initialised U-Net weights, runs inference on a synthetic 1x3x512x512 tensor and times it.
# Usage: tools/demo.sh [OUT_DIR]   (default: demo)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-demo}
bash tools/setup.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)"
bin=build/tools/pneumoseg
mkdir -p "$out"

echo "== init: smp-style weights for Unet(resnet34) =="
$bin init --encoder resnet34 --seed 0 --out "$out/unet_resnet34_init.safetensors" --force

echo "== a synthetic input: a blank 512x512 image as a (1, 3, 512, 512) float32 .npy =="
python_free_npy() { # writes a .npy (format 1.0, <f4, C order) of zeros, with no Python
  local path=$1 h=512 w=512
  local header="{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, $h, $w), }"
  local pad=$(( 64 - (10 + ${#header} + 1) % 64 ))
  { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $(( (${#header} + pad + 1) % 256 )))\\x$(printf %02x $(( (${#header} + pad + 1) / 256 )))";
    printf '%s' "$header"; printf '%*s' "$pad" ''; printf '\n';
    head -c $(( 3 * h * w * 4 )) /dev/zero; } > "$path"
}
python_free_npy "$out/input.npy"

echo "== infer =="
$bin infer --weights "$out/unet_resnet34_init.safetensors" --input "$out/input.npy" \
  --save-logits "$out/logits.npy" --save-probs "$out/probs.npy"

echo "== bench: 1x3x512x512 inference =="
$bin bench infer --size 512 --batch 1 --runs 3 --warmup 1
echo "demo: outputs in $out/"
