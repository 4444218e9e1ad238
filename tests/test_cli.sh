#!/usr/bin/env bash
# test_cli: the pneumoseg command line: help texts, exit codes, one-line errors, init and infer end to end; and at
# the default size the trust checks (test_cli_trust.sh): every usage error exits 2, --threads is capped with a note,
# no output goes over an input or an existing file without --force, hostile files (deep DICOM nesting, huge claimed
# dimensions, a terabyte .npy) fail in one line under 100 MB. With --settings instead (test_cli_settings.sh): a
# 64-px model's settings travel with its weights (eval and predict run at 64 without --size and say so; eval's
# printed triplet pasted into predict gives eval's own masks).
# Usage: test_cli.sh PNEUMOSEG_BINARY WORK_DIR [--size S | --settings]   (S: infer image side, default 64;
#        --settings: the settings-travel checks, which train a model, instead of the trust checks)
# Environment (set by ctest): PN_TEST_HOSTILE (tests/hostile_files), PN_TEST_PEAK_RSS (tests/peak_rss).
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
work=$2
size=64
[ "${3:-}" = "--size" ] && size=$4
rm -rf "$work"
mkdir -p "$work"



if [ "${3:-}" = "--settings" ]; then
  expect 0 "$bin" init --seed 3 --out "$work/w.safetensors" # a file with no training settings
  source "$(dirname "$0")/test_cli_settings.sh"
  echo "test_cli --settings: $passed passed, $failed failed"
  [ "$failed" -eq 0 ]
  exit
fi

expect 0 "$bin" --help
grep -q "infer" "$work/out" && ok || bad "--help lists no infer"
for cmd in init infer bench version; do expect 0 "$bin" "$cmd" --help; grep -q "usage:" "$work/out" && ok || bad "$cmd --help has no usage"; done
expect 2 "$bin" frobnicate
expect 2 "$bin"
expect 2 "$bin" infer --weights
expect 2 "$bin" infer --input x.npy
one_line_error "missing required option --weights"
expect 2 "$bin" init --out "$work/w.safetensors" --seed notanumber
one_line_error "expects an integer"

expect 0 "$bin" init --encoder resnet34 --seed 3 --out "$work/w.safetensors" --force
expect 1 "$bin" init --seed 3 --out "$work/w.safetensors"
one_line_error "exists"
expect 2 "$bin" init --encoder vgg99 --out "$work/v.safetensors"
one_line_error "vgg99"
expect 2 "$bin" init --encoder resnet50 --decoder albunet --out "$work/v.safetensors"
one_line_error "AlbuNet is defined on the resnet34 encoder"
[ -e "$work/v.safetensors" ] && bad "a refused init wrote its file" || ok

# Architectures: the list, and weights that say (or show) which model they are.
expect 0 "$bin" models --size 512
grep -E "^se_resnext50_32x4d +unet +34523969 " "$work/out" >/dev/null && ok || bad "models lacks se_resnext50_32x4d with smp's parameter count: $(cat "$work/out")"
grep -q "AlbuNet(num_classes=1" "$work/out" && ok || bad "models lacks AlbuNet"
expect 2 "$bin" models --size 100

n=$((3 * size * size))
write_npy "$work/x.npy" "1, 3, $size, $size" "$n"
expect 0 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --backend ref \
  --save-logits "$work/y.npy" --save-probs "$work/p.npy"
grep -q "peak RSS" "$work/err" && ok || bad "infer did not report peak RSS"
grep -q "activation arena" "$work/err" && ok || bad "infer did not report the arena"
[ "$(stat -c %s "$work/y.npy")" -eq $((128 + size * size * 4)) ] && ok || bad "logits file has the wrong size"
[ "$(stat -c %s "$work/p.npy")" -eq $((128 + size * size * 4)) ] && ok || bad "probs file has the wrong size"
ls "$work"/*.tmp.* >/dev/null 2>&1 && bad "a temporary file was left behind" || ok

write_npy "$work/bad_f8.npy" "1, 3, 64, 64" $((2 * 3 * 64 * 64)) "<f8"
expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/bad_f8.npy"
one_line_error "float32"
write_npy "$work/bad_fortran.npy" "1, 3, 64, 64" $((3 * 64 * 64)) "<f4" True
expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/bad_fortran.npy"
one_line_error "Fortran"
write_npy "$work/bad_rank.npy" "3, 64, 64" $((3 * 64 * 64))
expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/bad_rank.npy"
one_line_error "4-d"
write_npy "$work/bad_size.npy" "1, 3, 70, 64" $((3 * 70 * 64))
expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/bad_size.npy" --backend ref
one_line_error "multiples of 32"
head -c 1000 "$work/w.safetensors" >"$work/cut.safetensors"
expect 1 "$bin" infer --weights "$work/cut.safetensors" --input "$work/x.npy"
one_line_error "cut.safetensors"
expect 2 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --backend nosuch
one_line_error "unknown backend"
expect 2 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --threads -2
one_line_error "threads"

# Another architecture: taken from the file's metadata; a contradicting flag or a file of no known model is one line.
expect 0 "$bin" init --encoder se_resnext50_32x4d --seed 5 --out "$work/se.safetensors" --force
expect 0 "$bin" infer --weights "$work/se.safetensors" --input "$work/x.npy" --backend ref --save-logits "$work/y_se.npy"
grep -q "model: se_resnext50_32x4d unet (from the weights file)" "$work/err" && ok || bad "infer did not take the model from the file: $(cat "$work/err")"
# the cpu backend of the installed binary runs the SE ops too (optional ops are linked by weak reference: a link
# that loses them would make this a one-line refusal)
expect 0 "$bin" infer --weights "$work/se.safetensors" --input "$work/x.npy" --backend cpu --save-logits "$work/y_se_cpu.npy"
expect 1 "$bin" infer --weights "$work/se.safetensors" --input "$work/x.npy" --encoder resnet34
one_line_error "holds a se_resnext50_32x4d unet model"
expect 1 "$bin" infer --weights "$(dirname "$0")/ref/golden/st_python.safetensors" --input "$work/x.npy"
one_line_error "none of the architectures pneumoseg builds"
expect 0 "$bin" init --decoder albunet --seed 5 --out "$work/albu.safetensors" --force
write_npy "$work/x64.npy" "1, 3, 64, 64" $((3 * 64 * 64))
expect 0 "$bin" infer --weights "$work/albu.safetensors" --input "$work/x64.npy" --backend ref --save-logits "$work/y_albu.npy"
grep -q "model: resnet34 albunet" "$work/err" && ok || bad "infer did not run AlbuNet: $(cat "$work/err")"
write_npy "$work/x96.npy" "1, 3, 96, 96" $((3 * 96 * 96))
expect 1 "$bin" infer --weights "$work/albu.safetensors" --input "$work/x96.npy" --backend ref
one_line_error "multiples of 64"

# Backend modules: the auto fallback line, and a module found through PN_BACKEND_PATH.
expect 0 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --backend auto
grep -q "using the CPU" "$work/err" && ok || bad "--backend auto did not say why it fell back: $(cat "$work/err")"
if [ -n "${PN_TEST_MODULE_DIR:-}" ] && [ -f "$PN_TEST_MODULE_DIR/libpneumoseg-fake.so" ]; then
  PN_BACKEND_PATH=$PN_TEST_MODULE_DIR expect 0 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --backend fake --save-logits "$work/y_fake.npy"
  grep -q "backend: fake" "$work/err" && ok || bad "the fake module was not used: $(cat "$work/err")"
  cmp -s "$work/y.npy" "$work/y_fake.npy" && ok || bad "the module's logits differ from ref's"
  PN_BACKEND_PATH=$PN_TEST_MODULE_DIR PN_FAKE_SCORE=0 expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --backend fake
  one_line_error "no fake device"
  PN_BACKEND_PATH=$PN_TEST_MODULE_DIR PN_FAKE_API=99 expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --backend fake
  one_line_error "API 99"
else
  echo "SKIP backend module checks: PN_TEST_MODULE_DIR has no libpneumoseg-fake.so (run through ctest)"
fi

# The real cuda module, when it was built (PN_TEST_CUDA_MODULE names it): without a usable GPU, --backend auto
# says why in one line and runs on the CPU, --backend cuda fails with that line. With a GPU both run on it.
if [ -n "${PN_TEST_CUDA_MODULE:-}" ] && [ -f "$PN_TEST_CUDA_MODULE" ]; then
  cuda_dir=$(dirname "$PN_TEST_CUDA_MODULE")
  PN_BACKEND_PATH=$cuda_dir "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --backend cuda \
    --save-logits "$work/y_cuda.npy" >"$work/out" 2>"$work/err"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    grep -q "backend: cuda" "$work/err" && ok || bad "--backend cuda ran but not on cuda: $(cat "$work/err")"
    echo "cuda module: a GPU is present; the fallback checks do not apply"
  else
    [ "$rc" -eq 1 ] && ok || bad "--backend cuda without a GPU: exit $rc (wanted 1)"
    one_line_error "cuda backend unavailable: "
    reason=$(grep '^pneumoseg' "$work/err" | sed 's/.*cuda backend unavailable: //')
    echo "cuda module without a GPU: $reason"
    [ -n "$reason" ] && ok || bad "--backend cuda gave no reason"
    PN_BACKEND_PATH=$cuda_dir expect 0 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --backend auto --save-logits "$work/y_auto.npy"
    [ "$(grep -c 'using the CPU' "$work/err")" -eq 1 ] && grep -qF "$reason" "$work/err" && ok || bad "--backend auto did not name the reason in one line: $(cat "$work/err")"
    grep -q "backend: cpu" "$work/err" && ok || bad "--backend auto did not fall back to cpu: $(cat "$work/err")"
    PN_BACKEND_PATH=$cuda_dir "$bin" version >"$work/out" 2>&1
    grep -qF "cuda module: unavailable: $reason" "$work/out" && ok || bad "version did not give the reason: $(cat "$work/out")"
    PN_BACKEND_PATH=$cuda_dir expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --backend auto --precision bf16
    grep -q "precision bf16" "$work/err" && ok || bad "--precision bf16 on the fallback did not say why: $(cat "$work/err")"
  fi
else
  echo "SKIP cuda module checks: no libpneumoseg-cuda.so was built (no nvcc/cuDNN, or PN_CUDA=OFF)"
fi
expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --backend ref --precision fp16
one_line_error "float32 only"
expect 2 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --backend ref --precision fp8
one_line_error "fp32, bf16 or fp16"

if [ "$size" = 64 ]; then
  source "$(dirname "$0")/test_cli_trust.sh"
else
  echo "SKIP trust checks at --size $size: they run once, in test_cli at the default size"
fi

echo "test_cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
