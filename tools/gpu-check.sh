#!/usr/bin/env bash
# gpu-check: the CUDA backend on a machine with an NVIDIA GPU, in one go: a build that needs only a C compiler
# and the CUDA toolkit (no oneDNN, OpenBLAS, DCMTK or libpng), test_ops and test_parity on -b cuda, a 512x512
# batch-16 training step timed in fp32 and bf16, NCCL's all-reduce of the gradient size as a 1-rank communicator,
# and the same step in PyTorch (smp Unet-resnet34, AMP bf16, channels_last) where python3 has torch with CUDA and
# smp, with the ratio. Everything goes into one report.
# Usage: tools/gpu-check.sh [REPORT]   (default BUILD/gpu-check-report.txt)
# Environment: PN_CUDA_ARCHS (default 90), PN_GPU_BUILD (build folder, default build-gpu), PYTHON (python3).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${PN_GPU_BUILD:-build-gpu}
archs=${PN_CUDA_ARCHS:-90}
py=${PYTHON:-python3}
mkdir -p "$dir"
report=${1:-$dir/gpu-check-report.txt}
: >"$report"
failures=0
log() { echo "$*" | tee -a "$report"; }
# run NAME LIMIT_S CMD...: runs CMD with a time limit, its output in $dir/NAME.log; logs status and seconds
run() {
  local name=$1 limit=$2
  shift 2
  local t0=$SECONDS
  timeout "$limit" "$@" >"$dir/$name.log" 2>&1
  local rc=$?
  log "== $name: exit $rc in $((SECONDS - t0)) s"
  [ "$rc" -eq 0 ] || failures=$((failures + 1))
  return "$rc"
}

log "gpu-check $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if command -v nvidia-smi >/dev/null; then
  log "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
else
  log "gpu: no nvidia-smi on this machine"
fi
log "nvcc: $(nvcc --version 2>&1 | tail -1)"

run configure 120 cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DPN_CUDA=ON -DPN_CUDA_ARCHS="$archs" \
  -DPN_ONEDNN=OFF -DPN_OPENBLAS=OFF -DPN_DCMTK=OFF -DPN_PNG=OFF
grep -E "^--   [A-Za-z]" "$dir/configure.log" | tee -a "$report"
if ! run build 300 cmake --build "$dir" -j "$(nproc)" --target pneumoseg pneumoseg-cuda test_ops test_parity; then
  tail -30 "$dir/build.log" | tee -a "$report"
  log "gpu-check: the build failed; nothing else ran"
  exit 1
fi
export PN_BACKEND_PATH=$root/$dir/tools
"$dir/tools/pneumoseg" version | tee -a "$report"

# Every op, forward and backward, against the ref backend; then the U-Net against the PyTorch golden.
in_tests() { cd "$root/tests" && exec "$@"; } # the tests read their goldens relative to tests/
export -f in_tests
export root
run test_ops_cuda 120 bash -c 'in_tests "$@"' _ "$root/$dir/tests/test_ops" -b cuda
grep -E "FAIL|SKIP|^test_ops|^backend" "$dir/test_ops_cuda.log" | head -40 | tee -a "$report"
# a SKIP of the whole backend means the module did not load: that is a failure here
if grep -q "^SKIP all-ops cuda" "$dir/test_ops_cuda.log"; then
  log "gpu-check: the cuda backend did not load (see the SKIP line above)"
  failures=$((failures + 1))
fi
run test_parity_cuda 180 bash -c 'in_tests "$@"' _ "$root/$dir/tests/test_parity" -b cuda
grep -E "FAIL|SKIP|^test_parity|  cuda" "$dir/test_parity_cuda.log" | head -40 | tee -a "$report"

# Training step, 512x512, batch 16: pneumoseg fp32 and bf16, then PyTorch.
declare -A median
for prec in fp32 bf16; do
  run "bench_$prec" 180 "$dir/tools/pneumoseg" bench train --backend cuda --size 512 --batch 16 --runs 10 --warmup 3 \
    --precision "$prec"
  grep -E "^bench|^median|^arena|cuda:|^pneumoseg" "$dir/bench_$prec.log" | tee -a "$report"
  median[$prec]=$(awk '/^median/ {print $2}' "$dir/bench_$prec.log")
done
# NCCL, the device all-reduce of data-parallel training, as a 1-rank communicator on resnet34's gradient size
run nccl_1rank 60 "$dir/tools/pneumoseg" bench dist --backend cuda --allreduce-only 24436369 --runs 10
grep -E "all-reduce|NCCL|pneumoseg" "$dir/nccl_1rank.log" | tee -a "$report"
if command -v "$py" >/dev/null; then
  run torch_bf16 240 "$py" bench/train_step_torch_cuda.py --size 512 --batch 16 --runs 10 --warmup 3 --precision bf16
  tee -a "$report" <"$dir/torch_bf16.log" | tail -5
  torch=$(awk '/^torch_step_median_s/ {print $2}' "$dir/torch_bf16.log")
  if [ -n "$torch" ] && [ -n "${median[bf16]:-}" ]; then
    log "ratio pneumoseg bf16 / PyTorch bf16 step time: $(awk -v a="${median[bf16]}" -v b="$torch" 'BEGIN {printf "%.2f", a / b}') (below 1 = pneumoseg faster)"
  fi
else
  log "SKIP PyTorch side: no $py"
fi
log "gpu-check: $failures step(s) failed; logs in $dir/*.log; report $report"
[ "$failures" -eq 0 ]
