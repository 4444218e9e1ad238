#!/usr/bin/env bash
# test_e2e: the whole job on a tiny synthetic set: synth -> prepare -> folds -> train -> eval -> predict;
# the submission decodes back to the predicted masks and --dicom gives the same submission as the prepared
# PNGs; --resume after 1 epoch equals an uninterrupted 2-epoch run (losses and weights, same backend); a run
# SIGKILLed after its first checkpoint resumes to the same result and no final-named file is half-written;
# --resume with another lr/batch/aug is refused in one line naming each, backend/threads only warn; best is
# a hard link to the top epoch file;
# a NaN stops the run with a message naming the step and keeps the last checkpoint (and says so only when one exists);
# a folds.csv naming an image that is not in --data fails at once, listing it; SIGINT stops the run between batches,
# leaves no temporary file, and --resume continues it; --force clears the old run's files so two runs never mix.
# Usage: test_e2e.sh PNEUMOSEG_BINARY E2E_MASKS_BINARY WORK_DIR
set -u
. "$(dirname "$0")/lib.sh"
bin=$1
masks=$2
work=$3
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
run() { "$@" >>log.txt 2>&1 || { bad "exit $?: $*"; tail -5 log.txt; }; }
# first_checkpoint RUN PID: waits until RUN has its first training state (or PID has ended), at most 300 s
first_checkpoint() {
  for _ in $(seq 1 3000); do
    [ -f "$1/last.state.safetensors" ] && return
    kill -0 "$2" 2>/dev/null || return
    sleep 0.1
  done
}
# The cpu backend when built, else ref.
backend=ref
"$bin" version | grep -q 'cpu' && backend=cpu
common=(--data data --folds folds.csv --fold 1 --batch 4 --size 64 --steps-per-epoch 2 --top-k 1 --backend "$backend" --quiet --loader-threads 1)
echo "backend $backend"

run "$bin" synth --out syn --n 16 --n-test 4 --size 128 --seed 3 --threads 2
run "$bin" prepare --train-dicom syn/dicom-images-train --test-dicom syn/dicom-images-test --rle syn/train-rle.csv --out data --size 64 --quiet
run "$bin" folds --rle syn/train-rle.csv --out folds.csv --k 4

# --- uninterrupted 2-epoch run ---
run "$bin" train "${common[@]}" --out runA --epochs 2
for f in run.json metrics.csv curves.png last.safetensors last.state.safetensors best.safetensors; do
  [ -s "runA/$f" ] && ok || bad "runA/$f missing"
done
[ "$(wc -l < runA/metrics.csv)" -eq 3 ] && ok || bad "metrics.csv should hold a header and 2 rows: $(cat runA/metrics.csv)"
[ "$(ls runA/epoch-*.safetensors 2>/dev/null | wc -l)" -eq 1 ] && ok || bad "--top-k 1 keeps one epoch file"
# best and the top-1 epoch file are one file (a hard link to that epoch's last.safetensors), not copies
[ runA/best.safetensors -ef "$(ls runA/epoch-*.safetensors | head -1)" ] && ok || bad "best is not a link to the top epoch file"
grep -q "+ checkpoints [0-9.]* s" log.txt && ok || bad "the epoch line lacks the checkpoint time"
awk -F, 'NR==2{a=$3} NR==3{b=$3} END{exit !(b < a)}' runA/metrics.csv && ok || bad "train loss did not fall: $(cat runA/metrics.csv)"
grep -q '"seed": 0' runA/run.json && grep -q '"lr": 0.0001' runA/run.json && ok || bad "run.json lacks settings"
# train's default --conv-algo auto keeps the run's algorithm choices in the run folder (for --resume)
grep -q '"conv_algo": "auto"' runA/run.json && head -1 runA/conv-algo.txt | grep -q '^# pneumoseg convolution algorithms' &&
  ok || bad "runA records no conv-algo auto choices: $(grep conv_algo runA/run.json)"
"$bin" train "${common[@]}" --out runA --epochs 2 >err.txt 2>&1 && bad "a second run into runA must be refused" || ok

# --- SIGKILL after the first checkpoint, then --resume: equal to the uninterrupted run ---
cut -d, -f1-6 runA/metrics.csv > a.csv
"$bin" train "${common[@]}" --out runC --epochs 2 >>log.txt 2>&1 &
pid=$!
first_checkpoint runC $pid
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
# every final-named checkpoint must be complete: eval loads the weights, resume loads the state
for f in runC/*.safetensors; do
  "$bin" eval --weights "$f" --data data --folds folds.csv --fold 1 --size 64 --batch 4 --backend "$backend" >/dev/null 2>err.txt ||
    { grep -q "is a training state" err.txt || bad "half-written or unreadable $f: $(cat err.txt)"; }
done
# the machine's cache now says the opposite of every choice: the resumed run still runs the run's own choices (it
# writes every choice it knows back to the run folder: the same file)
if [ -n "${PN_CACHE_DIR:-}" ] && [ -f "$PN_CACHE_DIR/conv-algo.txt" ]; then
  awk '/^#/ {print; next} {$11 = 1 - $11; print}' "$PN_CACHE_DIR/conv-algo.txt" >flipped.txt &&
    mv flipped.txt "$PN_CACHE_DIR/conv-algo.txt"
fi
cp runC/conv-algo.txt algo_before.txt
run "$bin" train "${common[@]}" --out runC --epochs 2 --resume
cmp -s algo_before.txt runC/conv-algo.txt && ok || bad "the resumed run changed its algorithm choices: $(diff algo_before.txt runC/conv-algo.txt | head -4)"
ls runC | grep -q '\.tmp\.' && bad "temporaries left in runC" || ok
cut -d, -f1-6 runC/metrics.csv > c.csv
cmp -s a.csv c.csv && ok || bad "killed+resumed metrics differ: $(paste -d'|' a.csv c.csv)"
cmp -s runA/last.safetensors runC/last.safetensors && ok || bad "resumed weights differ from the uninterrupted run"

# --- check before work: a folds.csv naming images not in --data fails at once, listing them, creating nothing ---
{ cat folds.csv; printf '1.2.3.4.5.6.7.8.9,0,2\n1.2.3.4.5.6.7.8.10,1,0\n'; } >folds_missing.csv
"$bin" train "${common[@]/folds.csv/folds_missing.csv}" --out runM --epochs 1 >miss.txt 2>&1
rc=$?
[ "$rc" -eq 1 ] && grep -q "2 images of the fold split are not in data/train: 1.2.3.4.5.6.7.8.9, 1.2.3.4.5.6.7.8.10" miss.txt &&
  ! grep -q "^epoch" miss.txt && [ ! -e runM ] && ok || bad "missing images not reported at once (exit $rc): $(cat miss.txt)"

# --- SIGINT after the first checkpoint: says so, no temporary file, and --resume continues to the same result ---
"$bin" train "${common[@]}" --out runI --epochs 6 >int.txt 2>&1 &
pid=$!
first_checkpoint runI $pid
kill -INT $pid 2>/dev/null
wait $pid
rc=$?
[ "$rc" -eq 130 ] && grep -q "interrupted by SIGINT in epoch [0-9]*: runI keeps the checkpoint of epoch [0-9]*; train --resume" int.txt &&
  ok || bad "SIGINT: exit $rc, $(tail -2 int.txt)"
ls runI | grep -q '\.tmp\.' && bad "SIGINT left a temporary file: $(ls runI)" || ok
"$bin" train "${common[@]}" --out runI --epochs 2 --resume >>log.txt 2>&1 || bad "--resume after SIGINT failed: $(tail -3 log.txt)"
head -3 runI/metrics.csv | cut -d, -f1-6 >i.csv
cmp -s a.csv i.csv && ok || bad "interrupted+resumed metrics differ: $(paste -d'|' a.csv i.csv)"

# --- train --force starts over: the old run's checkpoints and epoch files go, other files stay ---
cp -r runA runF
touch runF/notes.txt
run "$bin" train "${common[@]}" --out runF --epochs 1 --top-k 0 --force
[ "$(ls runF/epoch-*.safetensors 2>/dev/null | wc -l)" -eq 0 ] && [ -f runF/notes.txt ] &&
  [ "$(wc -l <runF/metrics.csv)" -eq 2 ] && ok || bad "--force left the old run's files: $(ls runF)"

# --- --resume refuses settings that change the result (one line, each with both values), allows the rest ---
"$bin" train "${common[@]}" --out runA --epochs 3 --resume --lr 0.001 --batch 2 --aug none >err.txt 2>&1 &&
  bad "--resume with another --lr/--batch/--aug must be refused" || {
  [ "$(grep -c 'settings differ' err.txt)" -eq 1 ] && grep -q -- '--lr 0.0001 in the run, 0.001 now' err.txt &&
    grep -q -- '--batch 4 in the run, 2 now' err.txt && grep -q -- '--aug .* in the run, "none" now' err.txt &&
    ! grep -q -- '--epochs' err.txt && ok || bad "resume refusal line: $(cat err.txt)"
}
[ "$(wc -l < runA/metrics.csv)" -eq 3 ] && ok || bad "a refused resume touched metrics.csv"
other=ref
[ "$backend" = ref ] && other=auto
"$bin" train "${common[@]}" --out runA --epochs 2 --resume --backend "$other" --threads 1 --top-k 2 >err.txt 2>&1 &&
  grep -q -- '--backend was .* now' err.txt && grep -q -- '--threads was 0, now 1' err.txt && ok ||
  bad "--resume with another backend/threads should run with warnings: $(cat err.txt)"

# --- another architecture: se_resnext50_32x4d (the blog's) trains, resumes exactly, and eval reads the model from
# its weights file ---
se=(--data data --folds folds.csv --fold 1 --batch 2 --size 64 --steps-per-epoch 1 --top-k 1 --backend "$backend" --quiet
    --loader-threads 1 --encoder se_resnext50_32x4d)
run "$bin" train "${se[@]}" --out runS --epochs 2
run "$bin" train "${se[@]}" --out runT --epochs 1
run "$bin" train "${se[@]}" --out runT --epochs 2 --resume
cmp -s <(cut -d, -f1-6 runS/metrics.csv) <(cut -d, -f1-6 runT/metrics.csv) && ok || bad "se_resnext50 resumed metrics differ"
cmp -s runS/last.safetensors runT/last.safetensors && ok || bad "se_resnext50 resumed weights differ"
grep -q '"encoder": "se_resnext50_32x4d"' runS/run.json && ok || bad "run.json lacks the encoder"
"$bin" train "${se[@]}" --out runT --epochs 3 --resume --encoder resnet34 >err.txt 2>&1 && bad "--resume with another encoder must be refused" ||
  { grep -q "encoder" err.txt && ok || bad "the refusal does not name the encoder: $(cat err.txt)"; }
"$bin" eval --weights runS/best.safetensors --data data --folds folds.csv --fold 1 --size 64 --batch 2 --backend "$backend" \
  >eval_se.txt 2>err.txt && grep -q "model: se_resnext50_32x4d unet (from the weights file)" err.txt && ok ||
  bad "eval of the se_resnext50 run: $(tail -2 err.txt)"

# --- NaN: a huge learning rate makes the loss or the gradients non-finite ---
"$bin" train "${common[@]}" --out runN --epochs 3 --lr 1e30 --steps-per-epoch 3 >nan.txt 2>&1 && bad "lr 1e30 should fail" || {
  grep -q "non-finite .* at step [0-9]" nan.txt && ok || bad "no NaN/Inf message naming the step: $(tail -2 nan.txt)"
  # a checkpoint is said to be kept only when one exists
  { grep -q "(epoch 1, batch" nan.txt && grep -q "there is no checkpoint" nan.txt; } ||
    { grep -q "the last good checkpoint (epoch [0-9]*) is kept" nan.txt && [ -f runN/last.state.safetensors ]; } && ok ||
    bad "the NaN message claims a checkpoint that does not exist: $(tail -1 nan.txt)"
}

# --- fp16 dynamic loss scaling, through the fake module (ref arithmetic with a set_precision slot) ---
if [ -n "${PN_TEST_MODULE_DIR:-}" ] && [ -f "$PN_TEST_MODULE_DIR/libpneumoseg-fake.so" ]; then
  fake=(--data data --folds folds.csv --fold 1 --batch 2 --size 64 --steps-per-epoch 1 --top-k 1 --backend fake --quiet
        --loader-threads 1 --epochs 1)
  export PN_BACKEND_PATH=$PN_TEST_MODULE_DIR
  run "$bin" train "${fake[@]}" --out runF32
  "$bin" train "${fake[@]}" --out runF16 --precision fp16 >f16.txt 2>&1 || bad "fp16 run failed: $(tail -3 f16.txt)"
  grep -q "skipped 0 (loss scale 65536)" f16.txt && ok || bad "the fp16 epoch line lacks the loss scale: $(grep epoch f16.txt)"
  # scaling by 2^16 and unscaling by 2^-16 is exact in float32, so the weights equal the unscaled run's
  cmp -s runF32/last.safetensors runF16/last.safetensors && ok || bad "fp16 loss scaling changed the float32 result"
  grep -q '"precision": "fp16"' runF16/run.json && ok || bad "run.json lacks the precision"
  # the first gradient norm overflows: that step is skipped, the scale halves, the run goes on
  PN_FAKE_INF_SUMSQ=1 "$bin" train "${fake[@]}" --out runSkip --precision fp16 >skip.txt 2>&1 || bad "skip run failed: $(tail -3 skip.txt)"
  grep -q "skipped 1 (loss scale 32768)" skip.txt && ok || bad "an overflowing step was not skipped: $(grep epoch skip.txt)"
  # in fp32 the same overflow stops the run, naming the step
  PN_FAKE_INF_SUMSQ=1 "$bin" train "${fake[@]}" --out runInf >inf.txt 2>&1 && bad "fp32 with an inf gradient norm should fail" || {
    grep -q "non-finite gradient norm (Inf) at step 1" inf.txt && ok || bad "no message naming step 1: $(tail -2 inf.txt)"; }
  unset PN_BACKEND_PATH
else
  echo "SKIP fp16 loss-scaling checks: PN_TEST_MODULE_DIR has no libpneumoseg-fake.so (run through ctest)"
fi

# --- eval ---
"$bin" eval --weights runA/best.safetensors --data data --folds folds.csv --fold 1 --size 64 --batch 4 --tta hflip \
  --backend "$backend" >eval.txt 2>>log.txt && ok || bad "eval failed: $(tail -3 log.txt)"
k=$(awk '$1=="kaggle"{print $2}' eval.txt)
awk -v k="$k" 'BEGIN{exit !(k >= 0 && k <= 1)}' && ok || bad "eval kaggle '$k' not in [0, 1]"
grep -q '^best_triplet ' eval.txt && grep -q '^dice_pos ' eval.txt && grep -q '^empty_acc ' eval.txt && ok || bad "eval output incomplete"

# --- predict: PNGs and DICOMs, sample order, masks parse back ---
# a loose triplet so that some masks are non-empty even after 4 steps
pred=(--weights runA/best.safetensors runA/last.safetensors --size 64 --batch 4 --tta hflip --triplet 0.3,0,0.3 --backend "$backend")
run "$bin" predict "${pred[@]}" --images data/test --out sub.csv --sample-submission syn/sample_submission.csv \
  --save-masks masks --save-probs probs --overlays overlays
run "$bin" predict "${pred[@]}" --dicom syn/dicom-images-test --out sub_dicom.csv --sample-submission syn/sample_submission.csv
head -1 sub.csv | grep -q '^ImageId,EncodedPixels$' && ok || bad "submission header"
diff <(cut -d, -f1 sub.csv | tail -n +2) <(cut -d, -f1 syn/sample_submission.csv | tail -n +2 | sed 's/^ *//') >/dev/null && ok ||
  bad "rows not in the sample submission's order"
"$masks" sub.csv masks 1024 >>log.txt 2>&1 && ok || bad "the submission does not decode to the predicted masks: $(tail -2 log.txt)"
cmp -s sub.csv sub_dicom.csv && ok || bad "--dicom and --images give different submissions"
[ "$(ls overlays | wc -l)" -ge 1 ] && [ "$(ls probs | wc -l)" -eq 4 ] && ok || bad "overlays / probability maps missing"
"$bin" eval --submission sub.csv --truth syn/test-rle.csv >>log.txt 2>&1 && ok || bad "eval --submission failed"
"$bin" predict "${pred[@]}" --images data/test --out sub.csv >err.txt 2>&1 && bad "overwriting sub.csv without --force" || ok

echo "test_e2e: $passed passed, $failed failed, 0 skipped"
[ "$failed" -eq 0 ]
