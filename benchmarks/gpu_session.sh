#!/usr/bin/env bash
# One GPU session's work, in one go (a lent GPU machine has minutes, not hours):
#   1. the Triton kernels' tests, un-interpreted, on the GPU (tests/kernels);
#   2. two fine-tuning runs of swintormer-tiny from the bundled default, side by side, for
#      TRAIN_S seconds each (their step counts set from a 40-step probe so the cosine ends in time);
#   3. then, with the GPU to itself, the kernel benchmark and the end-to-end GPU benchmark.
# Usage, from the repository root on a machine with torch, triton, scikit-image and a CUDA GPU:
#   bash benchmarks/gpu_session.sh OUTDIR [TRAIN_S]      (TRAIN_S=0: no training, checks only)
# OUTDIR receives: session.log, kernel_tests.log, kernels.json, runs.tar.gz (runs' logs and models)
# and the end-to-end results JSON. Budget: about 1 min + TRAIN_S + 2 min (kernel tests, run
# alongside training, or before the benchmark when TRAIN_S=0) + 5 min (the full kernel benchmark,
# which writes its JSON after every case, so a cut-short run keeps what it measured).
set -u -o pipefail
OUT=${1:?usage: gpu_session.sh OUTDIR [TRAIN_S]}
TRAIN_S=${2:-300}
source benchmarks/gpu_env.sh
$PY -c "import skimage" || { say "scikit-image is missing (the kernel tests need it)"; exit 1; }
kernel_tests() {  # tests/kernels on the GPU; SIGINT at the limit so pytest still prints its failures
    say "kernel tests"
    timeout -s INT -k 20 "${KERNEL_TESTS_S:-240}" $PY -m pytest tests/kernels -q --tb=short -p no:cacheprovider >"$OUT/kernel_tests.log" 2>&1
    tail -n 25 "$OUT/kernel_tests.log"
}

# Training photographs from PyWavelets, scikit-learn and matplotlib (the `train` extra): a GPU machine
# without them reads copies carried along, made here by `python -m swintormer.data.photos --export
# runs/photos` (carry runs/photos; PHOTO_DIR names another folder).
if [ "$TRAIN_S" -gt 0 ] && ! $PY -c "import pywt, sklearn, matplotlib" 2>/dev/null; then
    export SWINTORMER_PHOTO_DIR=${PHOTO_DIR:-runs/photos}
    [ -d "$SWINTORMER_PHOTO_DIR" ] || { say "no PyWavelets/scikit-learn/matplotlib and no $SWINTORMER_PHOTO_DIR: export the photographs first"; exit 1; }
    say "training photographs of the train extra read from $SWINTORMER_PHOTO_DIR"
fi

if [ "$TRAIN_S" -le 0 ]; then
    kernel_tests
else
# --- 2a. probe: 40 steps of both runs side by side, for the step rate under contention ---------
INIT=swintormer/assets/swintormer-tiny.safetensors
read -r -a EXTRA <<<"${EXTRA_OPTS:-}"  # e.g. EXTRA_OPTS='--recipe in_focus_prob=0.2 --recipe bokeh_prob=0.3 --recipe photo_scale=0.6,1 --recipe collage_prob=0.5 --recipe color_prob=0.5'
COMMON=(--synthetic --init "${INIT_CKPT:-$INIT}" --warmup 200 --lr 3e-4 --workers "${WORKERS:-7}" --device "${DEVICE:-cuda}" --log-every 10 "${EXTRA[@]}")
read -r -a A <<<"${A_OPTS:---crop 128 --batch 32 --seed 10}"
read -r -a B <<<"${B_OPTS:---crop 256 --batch 8 --seed 11}"
PROBE=${PROBE_STEPS:-40}
say "probe"
$PY -m swintormer train "${COMMON[@]}" "${A[@]}" --steps "$PROBE" --val-every 0 --save-every 0 --out /tmp/probe-a >/tmp/probe-a.log 2>&1 &
P1=$!
$PY -m swintormer train "${COMMON[@]}" "${B[@]}" --steps "$PROBE" --val-every 0 --save-every 0 --out /tmp/probe-b >/tmp/probe-b.log 2>&1 &
P2=$!
wait $P1 $P2  # (a bare wait would also wait for the tee above)
steps_for() {  # the step count that fits TRAIN_S at the probe's last logged rate (90% of it)
    $PY -c "import csv,sys; r=[float(x['it_per_s']) for x in csv.DictReader(open(sys.argv[1]))][-1]; print(max(${MIN_STEPS:-200}, int(r*$TRAIN_S*0.9)), r)" "$1/train.csv"
}
read -r NA RA < <(steps_for /tmp/probe-a) || { tail -20 /tmp/probe-a.log; exit 1; }
read -r NB RB < <(steps_for /tmp/probe-b) || { tail -20 /tmp/probe-b.log; exit 1; }
say "probe rates: a $RA it/s -> $NA steps, b $RB it/s -> $NB steps"

# --- 2b. the two runs, in the background -----------------------------------------------------
LIMIT=$(python3 -c "print(($TRAIN_S + 45) / 60)")
mkdir -p runs
say "training"
$PY -m swintormer train "${COMMON[@]}" "${A[@]}" --steps "$NA" --val-every 0 --save-every 1000 --time-limit "$LIMIT" --out runs/gpu-a >runs/gpu-a.log 2>&1 &
PA=$!
$PY -m swintormer train "${COMMON[@]}" "${B[@]}" --steps "$NB" --val-every 0 --save-every 1000 --time-limit "$LIMIT" --out runs/gpu-b >runs/gpu-b.log 2>&1 &
PB=$!

# --- 1. kernel tests while they train (correctness does not mind the company) -----------------
kernel_tests
wait $PA; say "run a exit $?"; wait $PB; say "run b exit $?"
tail -n 3 runs/gpu-a.log runs/gpu-b.log
tar czf "$OUT/runs.tar.gz" --exclude=last.safetensors runs/gpu-a runs/gpu-a.log runs/gpu-b runs/gpu-b.log
fi

# --- 3. benchmarks with the GPU to itself ----------------------------------------------------
say "kernel benchmark"
timeout "${BENCH_S:-330}" $PY benchmarks/bench_kernels.py --out "$OUT/kernels.json" 2>&1 | tail -25
say "end-to-end GPU benchmark"
timeout 90 $PY -m pytest benchmarks/test_speed.py -k gpu -q -p no:cacheprovider 2>&1 | tail -8
cp benchmarks/results/*.json "$OUT/" 2>/dev/null
rm -f "$OUT/cpu-2c-amd-epyc.json"
say "done"
