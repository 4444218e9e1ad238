#!/usr/bin/env bash
# test_quantize: `pneumoseg quantize` end to end: it refuses a calibration folder without images, writes an int8
# model from a few prepared synthetic images, infer runs that model on the cpu backend, and a backend without int8
# convolutions (ref) says so in one line instead of running it; a --keep-fp32 name that is no convolution is a usage
# error before calibrating, and --out never goes over --weights.
# Usage: test_quantize.sh PNEUMOSEG_BINARY WORK_DIR
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
export PN_CACHE_DIR=none

expect 0 "$bin" quantize --help
grep -q "usage:" "$work/out" && ok || bad "quantize --help has no usage"
grep -q "quantize" <("$bin" --help) && ok || bad "pneumoseg --help does not list quantize"
expect 2 "$bin" quantize --weights w.safetensors
expect 0 "$bin" init --encoder resnet18 --seed 3 --out "$work/w.safetensors"

# no images: refused, nothing written
mkdir -p "$work/empty"
expect 1 "$bin" quantize --weights "$work/w.safetensors" --calib "$work/empty" --out "$work/wq.safetensors"
one_line_error "no images"
[ ! -e "$work/wq.safetensors" ] && ok || bad "a failed quantize left $work/wq.safetensors"
expect 1 "$bin" quantize --weights "$work/w.safetensors" --calib "$work/missing" --out "$work/wq.safetensors"
one_line_error "missing"

# a few prepared images
expect 0 "$bin" synth --out "$work/syn" --n 4 --n-test 0 --size 128 --seed 1
expect 0 "$bin" prepare --train-dicom "$work/syn/dicom-images-train" --rle "$work/syn/train-rle.csv" --out "$work/d64" --size 64
# a usage error (exit 2, as every usage error)
expect 2 "$bin" quantize --weights "$work/w.safetensors" --calib "$work/d64/train" --out "$work/wq.safetensors" --n 2 \
  --size 64 --encoder resnet18 --percentile 40
one_line_error "percentile"
"$bin" quantize --weights "$work/w.safetensors" --calib "$work/d64/train" --out "$work/wq.safetensors" --n 3 \
  --size 64 --encoder resnet18 --threads 2 >"$work/out" 2>"$work/err"
if grep -q "has no oneDNN" "$work/err"; then # a build without oneDNN: refused in one line, nothing to run
  one_line_error "no oneDNN"
  echo "SKIP int8 model: this build has no oneDNN (no int8 convolutions); quantize refuses it in one line"
  echo "test_quantize: $passed passed, $failed failed, 1 skipped"
  [ "$failed" -eq 0 ]
  exit
fi
[ -s "$work/wq.safetensors" ] && ok || bad "quantize failed: $(cat "$work/err")"
grep -q "in int8" "$work/err" && ok || bad "quantize did not report its int8 convolutions: $(cat "$work/err")"
[ -s "$work/wq.safetensors" ] && ok || bad "no int8 model written"
expect 1 "$bin" quantize --weights "$work/w.safetensors" --calib "$work/d64/train" --out "$work/wq.safetensors" --n 3 \
  --size 64 --encoder resnet18
one_line_error "exists"
# a --keep-fp32 name that is no convolution of the model: a usage error before calibrating, nothing written
expect 2 "$bin" quantize --weights "$work/w.safetensors" --calib "$work/d64/train" --out "$work/wq2.safetensors" --n 3 \
  --size 64 --keep-fp32 encoder.conv1,decoder.blocks.0.conv9
one_line_error "'decoder.blocks.0.conv9' is not a convolution of this resnet18 unet model"
grep -q "calibrating" "$work/err" && bad "quantize calibrated before refusing --keep-fp32" || ok
[ ! -e "$work/wq2.safetensors" ] && ok || bad "a refused quantize wrote its output"
# --out over --weights, even with --force
cp "$work/w.safetensors" "$work/w_copy.safetensors"
expect 1 "$bin" quantize --weights "$work/w.safetensors" --calib "$work/d64/train" --out "$work/w.safetensors" --force
one_line_error "also the input --weights"
cmp -s "$work/w.safetensors" "$work/w_copy.safetensors" && ok || bad "quantize wrote over its --weights"

# the int8 model runs on cpu; ref says it has no int8 convolutions
write_npy "$work/x.npy" "1, 3, 64, 64" $((3 * 64 * 64))
expect 0 "$bin" infer --weights "$work/wq.safetensors" --encoder resnet18 --input "$work/x.npy" --backend cpu \
  --threads 2 --save-logits "$work/y8.npy"
grep -q "int8 model" "$work/err" && ok || bad "infer did not say it runs an int8 model: $(cat "$work/err")"
[ "$(stat -c %s "$work/y8.npy" 2>/dev/null)" = $((128 + 64 * 64 * 4)) ] && ok || bad "int8 logits missing or wrong size"
expect 1 "$bin" infer --weights "$work/wq.safetensors" --encoder resnet18 --input "$work/x.npy" --backend ref \
  --save-logits "$work/y_ref.npy"
one_line_error "no int8 convolutions"
[ ! -e "$work/y_ref.npy" ] && ok || bad "a refused int8 run wrote its output"

echo "test_quantize: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
