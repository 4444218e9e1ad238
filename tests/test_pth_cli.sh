#!/usr/bin/env bash
# test_pth_cli: the checkpoint commands end to end on full-size resnet34 files written here (write_pth: legacy
# .pth; the format is checked against torch.save in test_pth): import of a torchvision-named encoder and of a whole
# wrapped model, init --encoder-weights (encoder from the file bit for bit, the rest from the seed), .pth for
# --weights (same logits as the safetensors), errors in one line (encoder-only file as --weights, a shape mismatch
# naming the key and both shapes, a wrong --from, a hostile pickle that runs nothing), train --init from an
# imported encoder with its normalisation in run.json, --freeze-encoder 2 (encoder parameters bit-identical through
# epoch 2, all changed in epoch 3; resumed after epoch 2 equals uninterrupted), --encoder-lr-scale 0.
# Without a mode only the quick checks on the small fixtures run (every build, sanitizers included); --import
# (about 30 s of CPU: full-size files) and --train (minutes: resnet18 to halve the checkpoint traffic) are ctest's
# test_pth_import and test_pth_train, labelled slow.
# Usage: test_pth_cli.sh PNEUMOSEG WRITE_PTH ST_COMPARE FIXTURE_DIR WORK_DIR [--import | --train]
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
write_pth=$2
st_compare=$3
fixtures=$4
work=$5
mode=${6:-}
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
# compare A B PREFIX WANT [--params]: st_compare's line must be WANT
compare() {
  local got
  got=$("$st_compare" "$1" "$2" "$3" ${5:-})
  [ "$got" = "$4" ] && ok || bad "$1 vs $2 ($3): $got, wanted $4"
}
backend=ref
"$bin" version | grep -q 'cpu' && backend=cpu

# --- quick, small files only (every build): hostile pickles refused in one line and run nothing; a checkpoint
# whose names fit no known naming asks for --from
# a build without libzip refuses zip checkpoints with one line saying so (and reads the legacy ones)
"$bin" import "$fixtures/dtypes.zip.pth" --out bad.safetensors >out 2>err
zip_line="refused global"
grep -q "no libzip" err && zip_line="this build has no libzip" && echo "this build has no libzip: zip checkpoints are refused"
for h in os_system builtins_eval.legacy subprocess_popen; do
  expect 1 "$bin" import "$fixtures/hostile/$h.pth" --out bad.safetensors
  case $h in *legacy) one_line_error_text "refused global" ;; *) one_line_error_text "$zip_line" ;; esac
done
ls pn_pwned_* >/dev/null 2>&1 && bad "a hostile pickle ran a command" || ok
expect 1 "$bin" import "$fixtures/hostile/whole_module.pth" --out bad.safetensors
[ "$zip_line" = "refused global" ] && one_line_error_text "save model.state_dict() instead" || one_line_error_text "$zip_line"

expect 1 "$bin" import "$fixtures/dtypes.legacy.pth" --out bad.safetensors
one_line_error_text "pass --from"
expect 1 "$bin" import "$fixtures/wrapped.legacy.pth" --out bad.safetensors --encoder resnet34
one_line_error_text "wrapped.legacy.pth: cannot tell whose names these are (6 tensors under state_dict, e.g. 'conv.weight'"
[ -e bad.safetensors ] && bad "a failed import left its output" || ok

if [ "$mode" = "--import" ]; then

# --- files: a seeded model, its encoder as torchvision names (+ fc), the whole model wrapped as a Kaggle script saves it
expect 0 "$bin" init --encoder resnet34 --seed 7 --out ref.safetensors
expect 0 "$write_pth" ref.safetensors tv.pth --torchvision
expect 0 "$write_pth" ref.safetensors whole.pth --wrap state_dict --module
expect 0 "$write_pth" ref.safetensors bad_shape.pth --torchvision --flat conv1.weight
echo "torchvision-style encoder: $(stat -c %s tv.pth) bytes; whole model: $(stat -c %s whole.pth) bytes"

# --- import an encoder: torchvision names detected, the classifier dropped, the encoder bit for bit, normalisation recorded
expect 0 "$bin" import tv.pth --out enc.safetensors
grep -q "torchvision names (detected)" err && grep -q "fc.weight, fc.bias (classifier)" err && ok || bad "import did not say what it found and dropped: $(cat err)"
compare ref.safetensors enc.safetensors encoder. "same 216 differ 0 missing 0"
compare ref.safetensors enc.safetensors decoder. "same 0 differ 0 missing 60"
grep -aq '"pneumoseg.normalize":"imagenet"' enc.safetensors && grep -aq '"pneumoseg.encoder":"resnet34"' enc.safetensors && ok ||
  bad "the imported encoder lacks its card: $(head -c 300 enc.safetensors | tr -d '\0')"
expect 1 "$bin" import tv.pth --out enc.safetensors
one_line_error_text "exists"

# --- import a whole model from {'state_dict': {'module.…'}}: equal to the original, loads as --weights
expect 0 "$bin" import --in whole.pth --out whole.safetensors
grep -q "smp names (detected) under state_dict" err && ok || bad "whole import: $(cat err)"
compare ref.safetensors whole.safetensors "" "same 278 differ 0 missing 0"

# --- init --encoder-weights: the encoder from the file (a .pth or the imported safetensors), decoder and head from --seed
expect 0 "$bin" init --encoder resnet34 --encoder-weights tv.pth --seed 9 --out w9.safetensors
expect 0 "$bin" init --encoder resnet34 --seed 9 --out seed9.safetensors
compare w9.safetensors ref.safetensors encoder. "same 216 differ 0 missing 0"
compare w9.safetensors seed9.safetensors decoder. "same 60 differ 0 missing 0"
compare w9.safetensors seed9.safetensors segmentation_head. "same 2 differ 0 missing 0"
expect 0 "$bin" init --encoder resnet34 --encoder-weights enc.safetensors --seed 9 --out w9b.safetensors
cmp -s w9.safetensors w9b.safetensors && ok || bad "init from the .pth and from its import differ"

# --- --weights accepts a whole model's .pth: the same logits as its safetensors
python_free_npy() { # a (1, 3, 64, 64) float32 .npy of a ramp, written without Python
  local header="{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 64, 64), }"
  local pad=$(( 64 - (10 + ${#header} + 1) % 64 ))
  local hlen=$(( ${#header} + pad + 1 ))
  { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $((hlen % 256)))\\x$(printf %02x $((hlen / 256)))"
    printf '%s' "$header"; printf '%*s' "$pad" ''; printf '\n'; head -c $((3 * 64 * 64 * 4)) /dev/urandom | tr '\000-\377' '\000-\077'; } >x.npy
}
python_free_npy
expect 0 "$bin" infer --weights ref.safetensors --input x.npy --save-logits y_ref.npy --backend ref
expect 0 "$bin" infer --weights whole.pth --input x.npy --save-logits y_pth.npy --backend ref
cmp -s y_ref.npy y_pth.npy && ok || bad "--weights whole.pth gives other logits than the safetensors"

# --- errors: one line each, exit 1
expect 1 "$bin" infer --weights tv.pth --input x.npy
one_line_error_text "encoder weights only"
expect 1 "$bin" import bad_shape.pth --out bad.safetensors
one_line_error_text "'conv1.weight' (the model's 'encoder.conv1.weight') has shape [9408], the model expects [64, 3, 7, 7]"
[ -e bad.safetensors ] && bad "a failed import left its output" || ok
expect 1 "$bin" import tv.pth --out bad.safetensors --from cadene
one_line_error_text "'fc.weight' (as 'encoder.fc.weight') is not part of this resnet34 unet model"
expect 1 "$bin" import tv.pth --out bad.safetensors --encoder resnet18
one_line_error_text "is not part of this resnet18 unet model"
expect 2 "$bin" import tv.pth
one_line_error_text "missing required option --out"
expect 2 "$bin" import tv.pth --out bad.safetensors --from keras # a usage error, before the file is read
one_line_error_text "--from must be"
elif [ "$mode" = "--train" ]; then

# --- train --init from an imported torchvision-style encoder (the decoder seeded), its normalisation into run.json
expect 0 "$bin" init --encoder resnet18 --seed 7 --out ref.safetensors
expect 0 "$write_pth" ref.safetensors tv.pth --torchvision
expect 0 "$bin" import tv.pth --out enc.safetensors
expect 0 "$bin" init --encoder resnet18 --encoder-weights enc.safetensors --seed 9 --out w9.safetensors
"$bin" synth --out syn --n 16 --n-test 2 --size 128 --seed 3 --threads 2 >>log.txt 2>&1 || bad "synth"
"$bin" prepare --train-dicom syn/dicom-images-train --rle syn/train-rle.csv --out data --size 64 --quiet >>log.txt 2>&1 || bad "prepare"
"$bin" folds --rle syn/train-rle.csv --out folds.csv --k 4 >>log.txt 2>&1 || bad "folds"
common=(--encoder resnet18 --data data --folds folds.csv --fold 1 --batch 4 --size 64 --steps-per-epoch 2 --backend "$backend" --quiet --loader-threads 1)
expect 0 "$bin" train "${common[@]}" --out run_init --epochs 1 --init tv.pth --top-k 1
grep -q '"norm": "imagenet"' run_init/run.json && grep -q '"init": "tv.pth"' run_init/run.json && ok || bad "run.json: $(cat run_init/run.json)"
grep -q "input normalisation: imagenet (the weights' metadata)" err && ok || bad "train did not say where the normalisation came from: $(cat err)"
grep -aq '"pneumoseg.normalize":"imagenet"' run_init/last.safetensors && ok || bad "the checkpoint does not record its normalisation"
expect 0 "$bin" eval --encoder resnet18 --weights run_init/last.safetensors --data data --folds folds.csv --fold 1 --size 64 --batch 4 --backend "$backend"
grep -q "input normalisation imagenet" out && ok || bad "eval does not say its normalisation: $(cat out)"
expect 0 "$bin" eval --encoder resnet18 --weights run_init/last.safetensors --data data --folds folds.csv --fold 1 --size 64 --batch 4 --backend "$backend" --norm unit
grep -q "warning.*--norm unit overrides the normalisation imagenet" err && ok || bad "--norm against the weights' record gave no warning: $(cat err)"

# --- --freeze-encoder 2: the encoder's parameters do not move in epochs 1-2, all of them move in epoch 3
expect 0 "$bin" train "${common[@]}" --out run_f --epochs 3 --init w9.safetensors --freeze-encoder 2 --top-k 3
compare w9.safetensors run_f/epoch-001.safetensors encoder. "same 60 differ 0 missing 0" --params
compare w9.safetensors run_f/epoch-002.safetensors encoder. "same 60 differ 0 missing 0" --params
compare w9.safetensors run_f/epoch-003.safetensors encoder. "same 0 differ 60 missing 0" --params
compare w9.safetensors run_f/epoch-001.safetensors decoder. "same 0 differ 30 missing 0" --params
grep -q '"freeze_encoder": 2' run_f/run.json && grep -q '"encoder_lr_scale": 1' run_f/run.json && ok || bad "run.json lacks the freeze settings"
# resumed after the frozen epochs: the same as the run that went through
expect 0 "$bin" train "${common[@]}" --out run_g --epochs 2 --init w9.safetensors --freeze-encoder 2 --top-k 3
expect 0 "$bin" train "${common[@]}" --out run_g --epochs 3 --init w9.safetensors --freeze-encoder 2 --top-k 3 --resume
cmp -s run_f/last.safetensors run_g/last.safetensors && ok || bad "resumed after the frozen epochs differs from the whole run"
expect 1 "$bin" train "${common[@]}" --out run_g --epochs 3 --init w9.safetensors --freeze-encoder 1 --top-k 3 --resume
one_line_error_text "--freeze-encoder 2 in the run, 1 now"
# --encoder-lr-scale 0: the encoder keeps its weights while the decoder learns
expect 0 "$bin" train "${common[@]}" --out run_s --epochs 1 --init w9.safetensors --encoder-lr-scale 0 --top-k 1
compare w9.safetensors run_s/last.safetensors encoder. "same 60 differ 0 missing 0" --params
compare w9.safetensors run_s/last.safetensors decoder. "same 0 differ 30 missing 0" --params

fi

echo "test_pth_cli${mode:+ $mode}: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
