#!/usr/bin/env bash
# test_install: `cmake --install` gives a binary that runs from its prefix and finds a backend module in the
# installed module folder (lib/pneumoseg, relative to the binary): the test module stands in for the cuda one.
# Usage: test_install.sh BUILD_DIR FAKE_MODULE WORK_DIR
set -uo pipefail
build=$1 fake=$2 work=$3
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
rm -rf "$work"
cmake --install "$build" --prefix "$work" >/dev/null || { echo "FAIL cmake --install"; exit 1; }
[ -x "$work/bin/pneumoseg" ] && ok || bad "no bin/pneumoseg under the prefix"
out=$(env -u PN_BACKEND_PATH "$work/bin/pneumoseg" version 2>&1)
echo "$out" | grep -q "^pneumoseg " && ok || bad "the installed binary does not run: $out"
if [ -e "$work/lib/pneumoseg/libpneumoseg-cuda.so" ]; then # a build with the cuda module installs it there
  echo "$out" | grep -q "was not found" && bad "the installed cuda module was not found: $out" || ok
else # without a module, the message names the folder an installed module goes to
  echo "$out" | grep -qF "lib/pneumoseg" && ok || bad "version does not name the installed module folder: $out"
fi
# A module in that folder is found and loaded (the fake module under the cuda module's name).
mkdir -p "$work/lib/pneumoseg"
cp "$fake" "$work/lib/pneumoseg/libpneumoseg-cuda.so"
out=$(env -u PN_BACKEND_PATH "$work/bin/pneumoseg" version 2>&1)
echo "$out" | grep -q "cuda module: usable" && ok || bad "the module in lib/pneumoseg was not found: $out"
rm -rf "$work"
echo "test_install: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
