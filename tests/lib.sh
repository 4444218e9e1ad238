# lib.sh: what the shell tests share (sourced, not run): pass/fail counters, running a command for its exit code
# and its one error line, and a float32 .npy written without Python. The sourcing script sets $work (an absolute
# folder that holds `out` and `err` of the last command) before calling expect or one_line_error.
passed=0
failed=0
ok() { passed=$((passed + 1)); }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

# expect CODE CMD...: runs CMD, checks its exit code; stdout and stderr are kept in $work/out and $work/err
expect() {
  local code=$1
  shift
  "$@" >"$work/out" 2>"$work/err"
  local got=$?
  if [ "$got" -eq "$code" ]; then ok; else bad "exit $got (wanted $code): $* :: $(head -c 400 "$work/err")"; fi
}

# one_line_error TEXT: the last command printed exactly one error line ("pneumoseg ..."), naming TEXT
one_line_error() {
  local lines
  lines=$(grep -c '^pneumoseg' "$work/err")
  if [ "$lines" -eq 1 ] && grep '^pneumoseg' "$work/err" | grep -q -- "$1"; then ok; else bad "wanted one error line with '$1', got: $(cat "$work/err")"; fi
}

# write_npy PATH SHAPE COUNT [DESCR [FORTRAN]]: an (N, C, H, W) .npy of COUNT zeros (float32 unless DESCR says)
write_npy() {
  local path=$1 shape=$2 count=$3 descr=${4:-<f4} order=${5:-False}
  local header="{'descr': '$descr', 'fortran_order': $order, 'shape': ($shape), }"
  local pad=$(( 64 - (10 + ${#header} + 1) % 64 ))
  local hlen=$(( ${#header} + pad + 1 ))
  { printf '\x93NUMPY\x01\x00'; printf "\\x$(printf %02x $((hlen % 256)))\\x$(printf %02x $((hlen / 256)))"
    printf '%s' "$header"; printf '%*s' "$pad" ''; printf '\n'; head -c $((count * 4)) /dev/zero; } >"$path"
}

# one_line_error_text TEXT: the same, TEXT a fixed string rather than a pattern
one_line_error_text() {
  if [ "$(grep -c '^pneumoseg' "$work/err")" -eq 1 ] && grep '^pneumoseg' "$work/err" | grep -qF -- "$1"; then ok; else bad "wanted one error line with '$1', got: $(cat "$work/err")"; fi
}
