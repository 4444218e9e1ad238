# test_cli_settings: sourced by test_cli.sh --settings (uses its $bin, $work, expect, one_line_error, ok, bad):
# settings travel with the weights: a model trained at 64 px (resnet18, one step) runs at 64 in eval and predict
# without --size or --encoder and they say so; eval's printed triplet pasted into predict gives eval's own masks;
# a flag that overrides a recorded value is warned about; a file without training settings keeps the defaults.
t=$work/settings
mkdir -p "$t"
backend=ref
"$bin" version | grep -q 'cpu' && backend=cpu
"$bin" synth --out "$t/syn" --n 12 --n-test 2 --size 64 --seed 5 --threads 2 >"$t/log" 2>&1 &&
  "$bin" prepare --train-dicom "$t/syn/dicom-images-train" --rle "$t/syn/train-rle.csv" --out "$t/data" --size 64 --quiet >>"$t/log" 2>&1 &&
  "$bin" folds --rle "$t/syn/train-rle.csv" --out "$t/folds.csv" --k 3 >>"$t/log" 2>&1
if [ $? -ne 0 ]; then
  echo "SKIP settings-travel checks: synth/prepare need dcmtk and libpng: $(tail -1 "$t/log")"
else
  expect 0 "$bin" train --data "$t/data" --folds "$t/folds.csv" --fold 0 --out "$t/run" --epochs 1 --steps-per-epoch 1 \
    --batch 2 --size 64 --encoder resnet18 --backend "$backend" --top-k 0 --quiet --loader-threads 1 --tops 0.3,0.6 \
    --areas 0,2000 --bottoms 0.3
  w64=$t/run/best.safetensors
  # eval without --size / --encoder: 64 and resnet18 from the file, and it says so
  expect 0 "$bin" eval --weights "$w64" --data "$t/data" --folds "$t/folds.csv" --fold 0 --batch 4 --backend "$backend" \
    --tops 0.3,0.6 --areas 0,2000 --bottoms 0.3 --save-masks "$t/eval_masks"
  cp "$work/out" "$t/eval.txt"
  grep -q "model: resnet18 unet (from the weights file)" "$work/err" &&
    grep -q "from .*best.safetensors: size 64" "$work/err" && grep -q " at 64, tta" "$t/eval.txt" && ok ||
    bad "eval did not run at 64 from the file's settings: $(cat "$work/err")"
  expect 1 "$bin" eval --weights "$w64" --data "$t/data" --folds "$t/folds.csv" --save-masks "$t/data/mask" --force
  one_line_error "is also the input --data (its mask/)"
  triplet=$(awk '$1=="best_triplet"{print $2}' "$t/eval.txt")
  area=$(echo "$triplet" | cut -d, -f2)
  [ "$area" = 0 ] || [ "$area" = 2000 ] && ok || bad "best_triplet $triplet: min_area not in the 1024-pixels it was given in"
  # eval's triplet pasted into predict gives eval's own masks
  mkdir -p "$t/val"
  for id in $(awk -F, '$3==0{print $1}' "$t/folds.csv"); do cp "$t/data/train/$id.png" "$t/val/"; done
  expect 0 "$bin" predict --weights "$w64" --images "$t/val" --out "$t/sub.csv" --batch 4 --backend "$backend" \
    --triplet "$triplet" --save-masks "$t/pred_masks"
  grep -q "size 64" "$work/err" && ok || bad "predict did not say it runs at 64: $(cat "$work/err")"
  n=0
  for f in "$t"/eval_masks/*.png; do
    n=$((n + 1))
    cmp -s "$f" "$t/pred_masks/$(basename "$f")" || { bad "eval and predict masks differ for $(basename "$f") (triplet $triplet)"; n=-1000; }
  done
  [ "$n" -gt 0 ] && [ "$n" -eq "$(ls "$t/val" | wc -l)" ] && ok || bad "eval wrote $n masks for $(ls "$t/val" | wc -l) images"
  # predict without --size / --triplet: the file's, said so; a flag that overrides one is warned about
  expect 0 "$bin" predict --weights "$w64" --images "$t/val" --out "$t/sub2.csv" --batch 4 --backend "$backend"
  grep -q "model: resnet18 unet (from the weights file)" "$work/err" &&
    grep -q "from .*: size 64, normalisation imagenet, triplet [0-9.]*,[0-9]*,[0-9.]* (val kaggle" "$work/err" &&
    ok || bad "predict did not take size and triplet from the file: $(cat "$work/err")"
  expect 0 "$bin" predict --weights "$w64" --images "$t/val" --out "$t/sub3.csv" --batch 4 --backend "$backend" --size 96 \
    --triplet 0.5,100,0.4
  grep -q "warning: --size 96 overrides the size 64" "$work/err" && grep -q "warning: --triplet 0.5,100,0.4 overrides" "$work/err" &&
    ok || bad "no warning for flags overriding the file's settings: $(cat "$work/err")"
  # a file without settings (PyTorch's, or init's) keeps the defaults and says so
  expect 0 "$bin" predict --weights "$work/w.safetensors" --images "$t/val" --out "$t/sub4.csv" --batch 4 --backend "$backend" --size 64
  grep -q "records no training settings" "$work/err" && ok || bad "a card-less file was not reported: $(cat "$work/err")"
  # an existing mask folder is written only with --force
  expect 1 "$bin" predict --weights "$w64" --images "$t/val" --out "$t/sub5.csv" --save-masks "$t/pred_masks"
  one_line_error "is not empty"
  expect 0 "$bin" predict --weights "$w64" --images "$t/val" --out "$t/sub5.csv" --save-masks "$t/pred_masks" --force --backend "$backend"
fi

