#!/usr/bin/env bash
# test: from a fresh clone, installs what the build needs, builds with -Werror and runs every test.
# Usage: tools/test.sh [--asan | --no-onednn]   (--asan: an AddressSanitizer + UndefinedBehaviorSanitizer build
# instead; --no-onednn: a build without oneDNN, where the cpu backend convolves by im2col + OpenBLAS sgemm, and
# without MPI, where train under mpirun must say how to get it).
# The cuda module is compiled in the plain release build only (wherever nvcc and cuDNN are found); the other two
# builds leave it out (PN_CUDA=OFF) to keep CI time down. PN_CUDA_ARCHS=... narrows its GPU architectures. The release
# build also compiles the standalone experiments of bench/ (PN_BUILD_BENCH=ON), so that they keep compiling.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
jobs=$(nproc)
# Every library tools/setup.sh installs is required (ON), so a lost one fails the configure step instead of quietly
# turning tests into SKIPs.
deps=(-DPN_OPENMP=ON -DPN_OPENBLAS=ON -DPN_ONEDNN=ON -DPN_DCMTK=ON -DPN_PNG=ON)
if [ "${1:-}" = "--asan" ]; then
  dir=build-asan
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPN_SANITIZE=ON -DPN_WERROR=ON -DPN_CUDA=OFF "${deps[@]}"
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  skip=(-LE slow) # tests labelled slow (minutes of plain compute) run in the release build only
elif [ "${1:-}" = "--no-onednn" ]; then
  dir=build-noonednn
  skip=(-LE slow)
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DPN_WERROR=ON -DPN_CUDA=OFF "${deps[@]}" -DPN_ONEDNN=OFF -DPN_MPI=OFF
else
  dir=build
  skip=()
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release -DPN_WERROR=ON -DPN_BUILD_BENCH=ON "${deps[@]}" \
    ${PN_CUDA_ARCHS:+-DPN_CUDA_ARCHS=$PN_CUDA_ARCHS}
fi
cmake --build "$dir" -j "$jobs"
ctest --test-dir "$dir" --output-on-failure -j "$jobs" "${skip[@]}"
