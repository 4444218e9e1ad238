#!/usr/bin/env bash
# fuzz: builds the libFuzzer targets of tests/fuzz (one per reader of outside files) with clang under ASan + UBSan
# in build-fuzz, and runs each for a bounded time from its seeds (the test fixtures); the corpus grows in
# build-fuzz/corpus/<target>. An input that crashes a reader is copied into tests/fuzz/regress/<target>/, where every
# build's test_fuzz_<target> runs it from then on, and the run fails. Installs clang and libFuzzer's runtime when
# they are missing (Debian 12, apt-get; as root or with sudo).
# Usage: tools/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default 25 s each, the four checkpoint targets 3/5 of
#        that; every target: about 4.5 minutes)
#        FUZZ_RUNS=N tools/fuzz.sh 0 [TARGET...]              (instead: N inputs per target, for the long local runs)
# Prints, per target, the inputs run, inputs per second, the corpus size and libFuzzer's peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-25}
shift || true
bash tools/setup.sh

# clang with libFuzzer's runtime: the check is that a fuzz target links.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
has_libfuzzer() {
  echo 'int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { (void)d; (void)n; return 0; }' >"$probe/t.c"
  command -v clang >/dev/null && clang -fsanitize=fuzzer,address,undefined "$probe/t.c" -o "$probe/t" 2>/dev/null
}
if ! has_libfuzzer; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "fuzz: installing clang and libFuzzer's runtime (clang, libclang-rt-dev)"
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -q clang libclang-rt-dev
  has_libfuzzer || { echo "fuzz: clang cannot link -fsanitize=fuzzer even after installing"; exit 1; }
fi

dir=build-fuzz
mkdir -p "$dir"
CC=clang CXX=clang++ cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPN_FUZZ=ON -DPN_WERROR=ON -DPN_CUDA=OFF \
  -DPN_ONEDNN=OFF -DPN_OPENBLAS=OFF -DPN_OPENMP=OFF >"$dir/configure.log" 2>&1 || { cat "$dir/configure.log"; exit 1; }
cmake --build "$dir" -j "$(nproc)"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for t in "$dir"/tests/fuzz/fuzz_*; do [ -x "$t" ] && targets+=("${t##*/fuzz_}"); done
fi

# The seeds of each target: the fixtures the unit tests use, and a few hand-written inputs.
pydicom_files=$(/usr/bin/python3 -c "import pydicom.data,os;print(os.path.join(os.path.dirname(pydicom.data.__file__),'test_files'))" 2>/dev/null || true)
deep_dicom() { # FILE DEPTH: sequences nested DEPTH deep, each in an item of the one before
  { head -c 128 /dev/zero; printf 'DICM\x02\x00\x10\x00UI\x14\x001.2.840.10008.1.2.1\x00'
    for ((i = 0; i < $2; i++)); do printf '\x08\x00\x15\x11SQ\x00\x00\xff\xff\xff\xff\xfe\xff\x00\xe0\xff\xff\xff\xff'; done
    for ((i = 0; i < $2; i++)); do printf '\xfe\xff\x0d\xe0\x00\x00\x00\x00\xfe\xff\xdd\xe0\x00\x00\x00\x00'; done
  } >"$1"
}
card_safetensors() { # FILE: a small safetensors file whose metadata holds a model card
  local h='{"__metadata__":{"pneumoseg.encoder":"resnet34","pneumoseg.decoder":"unet","pneumoseg.train_size":"64","pneumoseg.normalize":"imagenet","pneumoseg.triplet":"0.75,2000,0.3","pneumoseg.val_score":"0.8125"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
  { printf "$(printf '\\x%02x' $((${#h} & 255)) $((${#h} >> 8)))\x00\x00\x00\x00\x00\x00"; printf '%s' "$h"; head -c 8 /dev/zero; } >"$1"
}
zip_member() { # ZIP NAME_SUFFIX OUT: the first member whose name ends in NAME_SUFFIX (unzip, else Python's zipfile)
  if command -v unzip >/dev/null; then
    local m
    m=$(unzip -Z1 "$1" 2>/dev/null | grep -m1 -- "$2\$") && unzip -p "$1" "$m" >"$3" 2>/dev/null
  else
    /usr/bin/python3 -c "import sys,zipfile;z=zipfile.ZipFile(sys.argv[1]);n=[x for x in z.namelist() if x.endswith(sys.argv[2])];open(sys.argv[3],'wb').write(z.read(n[0]))" "$1" "$2" "$3" 2>/dev/null
  fi
  [ -s "$3" ] || rm -f "$3"
}
fuzz_seeds() { # TARGET CORPUS_DIR
  local t=$1 c=$2
  case "$t" in
  dicom | dicom_scan)
    cp tests/ref/dcm/*.dcm "$c/"
    deep_dicom "$c/deep12.dcm" 12
    deep_dicom "$c/deep80.dcm" 80
    # pydicom's test files (every transfer syntax, broken ones too), the small ones
    [ -d "$pydicom_files" ] && find "$pydicom_files" -name '*.dcm' -size -64k -exec cp {} "$c/" \; || true ;;
  png) cp tests/ref/png/*.png "$c/" ;;
  jpeg) # the JPEG frame inside the fixture DICOM (from its SOI marker on; libjpeg stops at EOI)
    local at
    at=$(LC_ALL=C grep -obUaP '\xff\xd8\xff' tests/ref/dcm/jpeg.dcm | head -1 | cut -d: -f1)
    [ -n "$at" ] && tail -c +$((at + 1)) tests/ref/dcm/jpeg.dcm >"$c/frame.jpg" ;;
  csv)
    printf 'ImageId, EncodedPixels\n1.2.276.0.7230010.3.1.4.8323329.5597.1517875188.959090, -1\n1.2.3, 175349 7 1013 12 1009 17\n' >"$c/train-rle.csv"
    printf 'ImageId,has_mask,kfold\n1.2.3,1,0\n"1.2,4",0,1\n' >"$c/folds.csv"
    printf '\xef\xbb\xbfa,"b ""q""",c\r\n1,2,3\r\n' >"$c/quoted.csv" ;;
  rle) # 3 bytes of width, height and format, then EncodedPixels
    printf '\x07\x05\x00%s' '1 3 4 2 10 5' >"$c/relative"
    printf '\x07\x05\x02%s' '1 3 8 2 20 5' >"$c/absolute"
    printf '\x3f\x3f\x01%s' '-1' >"$c/empty" ;;
  npy) cp tests/ref/golden/npy/*.npy "$c/" ;;
  safetensors)
    cp tests/ref/golden/st_python.safetensors tests/ref/golden/st_python_small.safetensors "$c/"
    card_safetensors "$c/card.safetensors" ;;
  pickle) # the pickles torch.save writes: every zip fixture's data.pkl, and the legacy files (a pickle comes first)
    local f
    for f in tests/ref/pth/*.pth tests/ref/pth/hostile/*.pth; do
      case $f in
      *legacy.pth) cp "$f" "$c/" ;;
      *) zip_member "$f" data.pkl "$c/$(basename "$f" .pth).pkl" ;;
      esac
    done ;;
  pth_legacy) cp tests/ref/pth/*legacy.pth tests/ref/pth/hostile/*legacy.pth "$c/" ;;
  pth_zip) find tests/ref/pth -name '*.pth' ! -name '*legacy.pth' -exec cp {} "$c/" \; ;;
  checkpoint)
    cp tests/ref/pth/*.pth tests/ref/golden/st_python_small.safetensors "$c/"
    card_safetensors "$c/card.safetensors" ;;
  esac
}

failed=0
printf '%-12s %12s %10s %8s %9s  %s\n' target inputs "inputs/s" corpus "peak RSS" result
for t in "${targets[@]}"; do
  bin=$dir/tests/fuzz/fuzz_$t
  [ -x "$bin" ] || { echo "fuzz: no target $t (built: $(ls "$dir"/tests/fuzz | grep '^fuzz_' | tr '\n' ' '))"; exit 2; }
  corpus=$dir/corpus/$t crashes=$dir/crashes/$t
  mkdir -p "$corpus" "$crashes" "tests/fuzz/regress/$t"
  fuzz_seeds "$t" "$corpus"
  limit=(-max_total_time="$seconds")
  # the four checkpoint targets share about a minute in CI (15 s each at the default 25)
  case $t in pickle | pth_legacy | pth_zip | checkpoint) limit=(-max_total_time="$(((seconds * 3 + 4) / 5))") ;; esac
  [ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
  # dcmtk asks for large buffers on corrupt lengths and catches the failure: let such requests fail, not abort
  ASAN_OPTIONS=allocator_may_return_null=1:detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" "$corpus" "tests/fuzz/regress/$t" "${limit[@]}" -max_len=65536 -timeout=30 -rss_limit_mb=2048 \
    -malloc_limit_mb=2048 -artifact_prefix="$crashes/" -print_final_stats=1 >"$dir/fuzz_$t.log" 2>&1 && rc=0 || rc=$?
  runs=$(awk '/stat::number_of_executed_units/{print $2}' "$dir/fuzz_$t.log")
  rate=$(awk '/stat::average_exec_per_sec/{print $2}' "$dir/fuzz_$t.log")
  size=$(find "$corpus" -type f | wc -l)
  rss=$(awk '/stat::peak_rss_mb/{print $2 " MB"}' "$dir/fuzz_$t.log")
  if [ "$rc" -eq 0 ]; then
    printf '%-12s %12s %10s %8s %9s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$size" "${rss:-?}" "no crash"
  elif grep -q "run interrupted" "$dir/fuzz_$t.log"; then # a signal from outside, not a finding
    failed=1
    printf '%-12s %12s %10s %8s %9s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$size" "${rss:-?}" "interrupted"
  else
    failed=1
    printf '%-12s %12s %10s %8s %9s  %s\n' "$t" "${runs:-?}" "${rate:-?}" "$size" "${rss:-?}" "CRASH (exit $rc)"
    grep -m 3 -E "ERROR|SUMMARY|runtime error" "$dir/fuzz_$t.log" | sed 's/^/    /'
    for f in "$crashes"/*; do
      [ -f "$f" ] || continue
      cp "$f" "tests/fuzz/regress/$t/"
      echo "    kept as tests/fuzz/regress/$t/$(basename "$f") (commit it with the fix)"
    done
  fi
done
[ "$failed" -eq 0 ] || { echo "fuzz: a reader crashed; logs in $dir/fuzz_<target>.log"; exit 1; }
