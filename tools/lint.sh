#!/usr/bin/env bash
# lint: the C, C++ and CUDA sources against .clang-format, and cppcheck's static analysis; CI runs it (.ci/run).
# Usage: tools/lint.sh [--fix]    --fix: reformat the files in place instead of failing on them (then analyse).
# Installs Debian's clang-format (14 on Debian 12: another version formats differently) and cppcheck when missing.
# cppcheck reads the compile commands of a configure-only build in build-lint/ (no compilation).
#
# cppcheck checks: its errors (always on: leaks, null and out-of-bounds accesses, use after free, ...), plus
# `warning` (suspicious code that is likely a bug) and `portability` (64-bit and type issues). `style` and
# `performance` are left out: they are matters of taste here and would need many suppressions. Suppressed:
#   invalidPointerCast          byte offsets into untyped allocations (the arena, scratch areas) are cast back to
#                               float *; the memory holds floats, so nothing is reinterpreted
#   nullPointer:core/unet.c     run_flat's NULL inputs belong to FILL, which has no input slots (cppcheck cannot
#                               see that pn_op_num_inputs(FILL) is 0)
#   memleakOnRealloc:tests/test_ops.c   a test-harness realloc (a failure there ends the test anyway); to fix
#                               in the file
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
case "${1:-}" in
--fix) fix=1 ;;
"") ;;
*)
  echo "usage: tools/lint.sh [--fix]" >&2
  exit 2
  ;;
esac

missing=()
command -v clang-format >/dev/null || missing+=(clang-format)
command -v cppcheck >/dev/null || missing+=(cppcheck)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "lint: installing ${missing[*]}"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q "${missing[@]}"
fi

# The project's own sources (.def files are X-macro lists, left as written).
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files '*.c' '*.h' '*.cc' '*.cu' '*.cuh')
else
  mapfile -t files < <(find core data backends tools tests bench -type f \
    \( -name '*.c' -o -name '*.h' -o -name '*.cc' -o -name '*.cu' -o -name '*.cuh' \) | sort)
fi

status=0
echo "== format: $(clang-format --version | head -1), ${#files[@]} files =="
if [ $fix -eq 1 ]; then
  clang-format -i "${files[@]}"
elif ! clang-format --dry-run --Werror "${files[@]}"; then
  echo "lint: the files above differ from .clang-format; tools/lint.sh --fix reformats them" >&2
  status=1
fi

echo "== static analysis: $(cppcheck --version) =="
mkdir -p build-lint
cmake -S . -B build-lint -DPN_CUDA=OFF -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >build-lint/configure.log 2>&1 ||
  { cat build-lint/configure.log >&2; exit 1; }
if ! cppcheck --project=build-lint/compile_commands.json --enable=warning,portability --inline-suppr \
  --error-exitcode=1 --quiet -j "$(nproc)" --suppress='*:/usr/*' --suppress=invalidPointerCast \
  --suppress=nullPointer:core/unet.c --suppress=memleakOnRealloc:tests/test_ops.c \
  --template='{file}:{line}: {severity} ({id}): {message}'; then
  echo "lint: cppcheck found the problems above" >&2
  status=1
fi
[ $status -eq 0 ] && echo "lint: clean"
exit $status
