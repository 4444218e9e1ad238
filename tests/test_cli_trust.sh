# test_cli_trust: sourced by test_cli.sh at the default size (uses its $bin, $work, expect, one_line_error, ok, bad,
# write_npy): usage errors exit 2 in every command (the new ones too: import, models, quantize, init's pretrained
# encoder, the architecture and algorithm flags of every command), before any file is read; --threads is capped;
# nothing is written over an input or an existing file without --force; hostile files (images, .npy, PyTorch
# checkpoints) fail in one line under 100 MB.
t=$work/trust
mkdir -p "$t"
backend=ref
"$bin" version | grep -q 'cpu' && backend=cpu

# usage CMD...: exit 2 with exactly one error line
usage() {
  expect 2 "$@"
  [ "$(grep -c '^pneumoseg' "$work/err")" -eq 1 ] && ok || bad "usage error not in one line: $* :: $(cat "$work/err")"
}

# --- every usage error exits 2, before any file is read (the files named here do not exist) ---
none=(--data "$t/none" --folds "$t/none.csv" --out "$t/none_run")
for o in "--batch 0" "--lr -1" "--lr nan" "--lr inf" "--lr 0" "--steps-per-epoch -1" "--epochs 0" "--accum 0" \
  "--size 48" "--size 0" "--wd -1" "--clip -1" "--top-k -1" "--loader-threads 0" "--threads -1" "--fold -1" \
  "--tops 0,0.5" "--tops 1.5" "--areas -5" "--areas 2.5" "--bottoms 0" "--pos-share 1.5" "--milestones 0" \
  "--loss bce=-1" "--aug spin:1" "--norm weird" "--sched weird" "--border weird" "--gamma 0" "--min-lr -1" \
  "--max-image-mb 0" "--resume --force" "--epochs" "--bogus 1" "--encoder bogus" "--decoder bogus" "--attention bogus" \
  "--encoder resnet50 --decoder albunet" "--conv-algo weird" "--precision fp8" "--freeze-encoder -1" \
  "--encoder-lr-scale -1" "--encoder-lr-scale nan" "--init"; do
  # shellcheck disable=SC2086
  usage "$bin" train "${none[@]}" $o
done
ev=(--weights "$t/none.safetensors" --data "$t/none" --folds "$t/none.csv")
for o in "--batch 0" "--size 48" "--tta weird" "--areas -5" "--tops 2" "--loss bce=x" "--fold -1" "--threads -1" \
  "--norm weird" "--out-size 0" "--loader-threads 0" "--encoder bogus" "--decoder bogus" "--attention bogus" \
  "--conv-algo weird" "--precision fp8"; do
  # shellcheck disable=SC2086
  usage "$bin" eval "${ev[@]}" $o
done
usage "$bin" eval --submission "$t/none.csv"
pr=(--weights "$t/none.safetensors" --images "$t/none" --out "$t/none.csv")
for o in "--batch 0" "--size 48" "--triplet 1.5,0,0.3" "--triplet 0.5,-1,0.3" "--triplet 0.5,100" "--triplet 0.5,1.5,0.3" \
  "--min-region -1" "--tta weird" "--norm weird" "--out-size 0" "--threads -3" "--dicom $t/none" "--encoder bogus" \
  "--decoder bogus" "--attention bogus" "--conv-algo weird" "--precision fp8"; do
  # shellcheck disable=SC2086
  usage "$bin" predict "${pr[@]}" $o
done
usage "$bin" predict --weights "$t/none.safetensors" --out "$t/none.csv"
for b in infer train ops loader dist; do usage "$bin" bench "$b" --batch 0; done
for b in infer train ops dist; do usage "$bin" bench "$b" --encoder bogus; done
for b in infer train ops; do
  usage "$bin" bench "$b" --decoder bogus
  usage "$bin" bench "$b" --encoder resnet50 --decoder albunet
  usage "$bin" bench "$b" --conv-algo weird
done
usage "$bin" bench infer --precision fp8
usage "$bin" bench dist --size 48
usage "$bin" bench dist --threads -1
usage "$bin" bench infer --weights "$t/none.safetensors" --encoder bogus
usage "$bin" bench infer --runs 0
usage "$bin" bench infer --size 48
for o in "--mode weird" "--encoder bogus" "--decoder bogus" "--attention bogus" "--conv-algo weird" "--precision fp8"; do
  # shellcheck disable=SC2086
  usage "$bin" infer --weights "$t/none.safetensors" --input "$t/none.npy" $o
done
usage "$bin" infer --weights "$t/none.safetensors" --input "$t/none.npy" --decoder ""
# the new commands: import, models, quantize, init's pretrained encoder (the named files do not exist)
for o in "--from bogus" "--encoder bogus" "--decoder bogus" "--encoder resnet50 --decoder albunet" "--from" "--bogus"; do
  # shellcheck disable=SC2086
  usage "$bin" import "$t/none.pth" --out "$t/imp.safetensors" $o
done
usage "$bin" import --out "$t/imp.safetensors"
usage "$bin" import "$t/none.pth"
qu=(--weights "$t/none.safetensors" --calib "$t/none" --out "$t/q.safetensors")
for o in "--n 0" "--n -1" "--n nan" "--percentile nan" "--percentile -5" "--percentile 101" "--size 48" "--size -32" \
  "--threads -1" "--norm weird" "--encoder bogus" "--decoder bogus" "--attention bogus" "--bogus 1"; do
  # shellcheck disable=SC2086
  usage "$bin" quantize "${qu[@]}" $o
done
for o in "--from bogus --encoder-weights $t/none.pth" "--from torchvision" "--seed -1" "--attention bogus" \
  "--decoder bogus" "--encoder resnet50 --decoder albunet"; do
  # shellcheck disable=SC2086
  usage "$bin" init --out "$t/i.safetensors" $o
done
for o in "--size 100" "--size -64" "--size nan" "--bogus 1"; do
  # shellcheck disable=SC2086
  usage "$bin" models $o
done
usage "$bin" version --bogus
usage "$bin" show --image "$t/none.png" --out "$t/o.png" --aug spin:1
usage "$bin" show --image "$t/none.png" --out "$t/o.png" --border weird
usage "$bin" folds --rle "$t/none.csv" --out "$t/f.csv" --k 1
usage "$bin" folds --rle "$t/none.csv" --out "$t/f.csv" --group-by site
usage "$bin" prepare --train-dicom "$t/none" --rle "$t/none.csv" --out "$t/p" --size 0
usage "$bin" prepare --test-dicom "$t/none" --out "$t/p" --threads -1
usage "$bin" prepare --out "$t/p"
usage "$bin" synth --out "$t/s" --n 0
usage "$bin" synth --out "$t/s" --quality 0
usage "$bin" synth --out "$t/s" --pos-rate 2
usage "$bin" show --image "$t/none.png" --out "$t/o.png" --threshold 2
usage "$bin" show --grid -1 --data "$t/none" --out "$t/o.png"
mkdir -p "$t/grid/train"
for i in $(seq 100 170); do touch "$t/grid/train/$i.png"; done # never decoded: the size check comes first
usage "$bin" show --grid 1024 --size 2048 --nrow 8 --data "$t/grid" --out "$t/o.png"
one_line_error "above the limit"

# --- --threads above the cores: capped, with a note ---
expect 0 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --backend "$backend" --threads 10000
grep -q "note: --threads 10000 is more than the [0-9]* cores" "$work/err" && ok || bad "--threads 10000 not capped with a note: $(cat "$work/err")"

# --- no output over an input, nor over an existing file or into a non-empty folder without --force ---
cp "$work/x.npy" "$t/x_copy.npy"
expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --save-probs "$work/x.npy"
one_line_error "also the input --input"
cmp -s "$work/x.npy" "$t/x_copy.npy" && ok || bad "infer wrote over its input"
expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --save-probs "$work/x.npy" --force
one_line_error "also the input"
expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --save-logits "$work/w.safetensors" --force
one_line_error "also the input --weights"
expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --save-logits "$work/y.npy"
one_line_error "exists (--force"
expect 2 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --save-logits "$t/a.npy" --save-probs "$t/a.npy"
one_line_error "both name"
expect 1 "$bin" infer --weights "$work/w.safetensors" --input "$work/x.npy" --save-logits "$t/nofolder/a.npy"
one_line_error "does not exist"
ls "$work"/*.tmp.* "$t"/*.tmp.* >/dev/null 2>&1 && bad "a temporary file was left behind" || ok
expect 1 "$bin" init --out "$work/w.safetensors"
one_line_error "exists"
# import and init --encoder-weights: never over their checkpoint (even with --force), nothing without --force, the
# folder must exist; each refused before the checkpoint is read, naming the user's path
pth_in=$t/in.legacy.pth
cp "$(dirname "$0")/ref/pth/wrapped.legacy.pth" "$pth_in"
cp "$pth_in" "$t/in_copy.pth"
expect 1 "$bin" import "$pth_in" --out "$pth_in" --force
one_line_error "--out $pth_in is also the input --in"
expect 1 "$bin" import --in "$pth_in" --out "$work/w.safetensors"
one_line_error "--out $work/w.safetensors exists (--force"
expect 1 "$bin" import "$pth_in" --out "$t/nofolder/w.safetensors"
one_line_error "does not exist"
expect 1 "$bin" import "$pth_in" --out "$t" --force
one_line_error "is a folder"
expect 1 "$bin" init --encoder-weights "$pth_in" --out "$pth_in" --force
one_line_error "--out $pth_in is also the input --encoder-weights"
cmp -s "$pth_in" "$t/in_copy.pth" && ok || bad "import or init wrote over its checkpoint"
ls "$t"/*.tmp.* "$work"/*.tmp.* >/dev/null 2>&1 && bad "a temporary file was left behind" || ok
printf 'ImageId,EncodedPixels\n' >"$t/sample.csv"
mkdir -p "$t/imgs" "$t/full"
touch "$t/full/keep.txt"
expect 1 "$bin" predict --weights "$work/w.safetensors" --images "$t/imgs" --out "$t/sample.csv" --sample-submission "$t/sample.csv" --force
one_line_error "also the input --sample-submission"
expect 1 "$bin" predict --weights "$work/w.safetensors" --images "$t/imgs" --out "$t/sub.csv" --save-masks "$t/imgs" --force
one_line_error "--save-masks .* is also the input --images"
expect 1 "$bin" predict --weights "$work/w.safetensors" --images "$t/imgs" --out "$t/sub.csv" --save-masks "$t/full"
one_line_error "is not empty (--force"
expect 1 "$bin" predict --weights "$work/w.safetensors" --images "$t/imgs" --out "$t/sub.csv" --save-probs "$t/full"
one_line_error "is not empty"
expect 1 "$bin" predict --weights "$work/w.safetensors" --images "$t/imgs" --out "$t/sub.csv" --overlays "$t/full"
one_line_error "is not empty"
expect 2 "$bin" predict --weights "$work/w.safetensors" --images "$t/imgs" --out "$t/sub.csv" --save-masks "$t/m" --save-probs "$t/m"
one_line_error "both name"
[ -f "$t/full/keep.txt" ] && [ ! -e "$t/sub.csv" ] && ok || bad "a refused predict touched its outputs"
printf 'ImageId, EncodedPixels\n1.2.3, -1\n' >"$t/rle.csv"
expect 1 "$bin" folds --rle "$t/rle.csv" --out "$t/rle.csv" --force
one_line_error "also the input --rle"
expect 1 "$bin" show --image "$work/x.npy" --out "$work/x.npy" --force
one_line_error "also the input --image"
expect 1 "$bin" eval --weights "$work/w.safetensors" --data "$t/none" --folds "$t/none.csv" --save-masks "$t/full"
one_line_error "is not empty"
expect 1 "$bin" train --data "$t/full" --folds "$t/none.csv" --out "$t/full"
one_line_error "also the input --data"
mkdir -p "$t/notarun"
touch "$t/notarun/thesis.tex"
printf 'ImageId,has_mask,kfold\n1.2.3,0,0\n1.2.4,0,1\n' >"$t/folds_ok.csv"
mkdir -p "$t/data_ok/train"
touch "$t/data_ok/train/1.2.3.png" "$t/data_ok/train/1.2.4.png"
expect 1 "$bin" train --data "$t/data_ok" --folds "$t/folds_ok.csv" --out "$t/notarun" --batch 1
one_line_error "is not empty (--force"
# folds.csv ids: a path, or an id in two folds, is refused naming it
printf 'ImageId,has_mask,kfold\n../../etc/passwd,0,0\n1.2.4,0,1\n' >"$t/folds_path.csv"
expect 1 "$bin" train --data "$t/data_ok" --folds "$t/folds_path.csv" --out "$t/r1" --batch 1
one_line_error "holds a path"
printf 'ImageId,has_mask,kfold\n1.2.3,0,0\n1.2.4,0,1\n1.2.3,0,1\n' >"$t/folds_dup.csv"
expect 1 "$bin" train --data "$t/data_ok" --folds "$t/folds_dup.csv" --out "$t/r1" --batch 1
one_line_error "more than one row.*1.2.3"
# an ImageId that a submission row cannot carry is refused with the file's name
mkdir -p "$t/commas"
cp "$t/data_ok/train/1.2.3.png" "$t/commas/a,b.png"
expect 1 "$bin" predict --weights "$work/w.safetensors" --images "$t/commas" --out "$t/sub.csv"
one_line_error "a,b.png.*comma"

# --- hostile files (images, .npy, PyTorch checkpoints): one line, exit 1, peak RSS under 100 MB ---
if [ -n "${PN_TEST_HOSTILE:-}" ] && [ -x "$PN_TEST_HOSTILE" ] && [ -n "${PN_TEST_PEAK_RSS:-}" ] && [ -x "$PN_TEST_PEAK_RSS" ]; then
  h=$t/hostile
  mkdir -p "$h"
  "$PN_TEST_HOSTILE" "$h" || bad "hostile_files failed"
  # hostile WHAT CMD...: exit 1, one error line naming the file and WHAT, under 100 MB
  hostile() {
    local what=$1
    shift
    "$PN_TEST_PEAK_RSS" "$t/kb" "$@" >"$work/out" 2>"$work/err"
    local rc=$? kb
    kb=$(cat "$t/kb" 2>/dev/null || echo 0)
    [ "$rc" -eq 1 ] && ok || bad "exit $rc (wanted 1): $* :: $(head -c 300 "$work/err")"
    one_line_error "$what"
    [ "$kb" -lt 100000 ] && ok || bad "peak RSS $kb KB (over 100 MB): $*"
    echo "hostile: exit $rc, peak RSS $((kb / 1024)) MB: $(grep '^pneumoseg' "$work/err" | cut -c1-200)"
  }
  hostile "terabyte.npy: the header claims" "$bin" infer --weights "$work/w.safetensors" --input "$h/terabyte.npy"
  # PyTorch checkpoints: a 4 TB tensor over a storage the file lacks, lists nested 100,000 deep, a pickle whose
  # REDUCEs would copy 13 GB, a zip record that honestly inflates 160-fold (a zip bomb)
  hostile "huge.pth: truncated: storage '0' needs 4398046511104 bytes" "$bin" import "$h/huge.pth" --out "$t/hp.safetensors"
  hostile "deep.pth: checkpoint nests containers deeper than 32" "$bin" import "$h/deep.pth" --out "$t/hp.safetensors"
  hostile "amplifying.pth: object: interpreting the pickle would take more than" "$bin" import "$h/amplifying.pth" --out "$t/hp.safetensors"
  # init and infer build their model (resnet34: 98 MB of weights) before they read the checkpoint: no memory bound
  expect 1 "$bin" init --encoder-weights "$h/deep.pth" --out "$t/hp.safetensors"
  one_line_error "deep.pth: checkpoint nests containers deeper than 32"
  expect 1 "$bin" infer --weights "$h/huge.pth" --input "$work/x.npy"
  one_line_error "huge.pth: truncated: storage '0' needs"
  if "$bin" import "$h/zip_bomb.pth" --out "$t/hp.safetensors" 2>&1 | grep -q "no libzip"; then
    echo "SKIP zip bomb check: built without libzip"
  else
    hostile "zip_bomb.pth: zip records inflate to more than 8 times" "$bin" import "$h/zip_bomb.pth" --out "$t/hp.safetensors"
  fi
  [ ! -e "$t/hp.safetensors" ] && ok || bad "a refused checkpoint left an output"
  if "$bin" show --image "$h/huge.png" --out "$t/h0.png" 2>&1 | grep -q "built without"; then
    echo "SKIP hostile PNG checks: built without libpng"
  else
    hostile "huge.png: a 20000x20000 image" "$bin" show --image "$h/huge.png" --out "$t/h1.png"
    mkdir -p "$t/hpng"
    cp "$h/huge.png" "$t/hpng/1.2.3.png"
    # through predict's folder walk (the model is loaded first, so no memory bound here)
    expect 1 "$bin" predict --weights "$work/w.safetensors" --images "$t/hpng" --out "$t/hsub.csv" --size 64 --backend "$backend"
    one_line_error "1.2.3.png: a 20000x20000 image"
  fi
  if [ -f "$h/huge_jpeg.dcm" ] && ! "$bin" show --image "$h/deep.dcm" --out "$t/h0.png" 2>&1 | grep -q "built without"; then
    hostile "deep.dcm: sequences nested" "$bin" show --image "$h/deep.dcm" --out "$t/h2.png"
    hostile "huge_native.dcm: a 16000x16000 image" "$bin" show --image "$h/huge_native.dcm" --out "$t/h3.png"
    hostile "huge_jpeg.dcm: a 20000x20000 image" "$bin" show --image "$h/huge_jpeg.dcm" --out "$t/h4.png"
    hostile "1.2.840.10008.1.2.4.90 (JPEG 2000" "$bin" show --image "$h/j2k.dcm" --out "$t/h5.png"
    hostile "1.2.840.10008.1.2.4.201 (High-Throughput JPEG 2000" "$bin" show --image "$h/htj2k.dcm" --out "$t/h6.png"
    hostile "RLE Lossless" "$bin" show --image "$h/rle.dcm" --out "$t/h7.png"
    # the same files inside a folder a command walks: reported per file, never a crash
    mkdir -p "$t/hdcm"
    cp "$h/deep.dcm" "$h/huge_jpeg.dcm" "$t/hdcm/"
    "$bin" prepare --test-dicom "$t/hdcm" --out "$t/hprep" --size 64 --quiet >"$work/out" 2>"$work/err"
    [ $? -eq 3 ] && grep -q "failed" "$work/out" && ok || bad "prepare on hostile DICOMs: $(cat "$work/out" "$work/err")"
  else
    echo "SKIP hostile DICOM checks: built without dcmtk or libjpeg"
  fi
else
  echo "SKIP hostile-file checks: PN_TEST_HOSTILE / PN_TEST_PEAK_RSS not set (run through ctest)"
fi
