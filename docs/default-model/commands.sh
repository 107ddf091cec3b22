#!/usr/bin/env bash
# The commands that trained the bundled models (swintormer/assets/README.md), in order, from the
# repository root after `make setup`. Steps 2 and 3-4 ran side by side, pinned to one core each.
set -euo pipefail
export OMP_WAIT_POLICY=PASSIVE
S=.venv/bin/swintormer
# 1. swintormer-tiny from scratch (-> swintormer/assets/swintormer-tiny.safetensors, the default)
$S train --synthetic --model swintormer-tiny --crop 128 --batch 8 --steps 2000 --warmup 100 --seed 0 \
    --threads 2 --val-every 200 --save-every 200 --time-limit 44 --out runs/swintormer-tiny
# 2. swintormer-tiny fine-tuned (the start of step 5; not bundled)
#    (it started from the bundled step-1 file, swintormer/assets/swintormer-tiny.safetensors)
taskset -c 1 $S train --synthetic --init runs/swintormer-tiny/model.safetensors --crop 128 --batch 8 \
    --steps 1300 --warmup 50 --lr 2e-4 --seed 3 --threads 1 --val-every 200 --save-every 100 \
    --time-limit 55 --out runs/swintormer-tiny-ft
# 3. first stage
taskset -c 0 $S train --synthetic --stage autoencoder --model ae-f4-tiny --crop 128 --batch 8 \
    --steps 600 --warmup 50 --seed 4 --threads 1 --val-every 200 --save-every 100 \
    --time-limit 12 --out runs/ae-f4-tiny
# 4. denoiser on the frozen encoder
taskset -c 0 $S train --synthetic --stage denoiser --init runs/ae-f4-tiny/model.safetensors \
    --model denoiser-tiny --crop 128 --batch 8 --steps 1200 --warmup 50 --seed 5 --threads 1 \
    --val-every 200 --save-every 100 --time-limit 20 --out runs/denoiser-tiny
# 5. prior restorer from step 2 (-> swintormer/assets/swintormer-tiny-prior.safetensors)
$S train --synthetic --stage prior-restorer --model swintormer-tiny-prior \
    --init runs/denoiser-tiny/model.safetensors \
    --stage-option restorer=runs/swintormer-tiny-ft/model.safetensors --stage-option prior_steps=2 \
    --crop 128 --batch 8 --steps 1200 --warmup 50 --lr 2e-4 --seed 6 --threads 2 \
    --val-every 200 --save-every 100 --time-limit 40 --out runs/swintormer-tiny-prior
cp runs/swintormer-tiny-prior/model.safetensors swintormer/assets/swintormer-tiny-prior.safetensors

# (steps 1-5 above made the bundled files of 2026-11-26; run 1 was the default until step 8)
# --- 2026-11-27: the current default (swintormer/assets/swintormer-tiny.safetensors) -------------
# 6a/6b. Two fine-tunings of run 1 on an NVIDIA H200 (the device tool), side by side for 4.4 min,
#    from `bash benchmarks/gpu_session.sh $OUT 270` (probe -> 1782 / 1670 steps; logs in
#    swintormer-tiny/3-h200-a, 3-h200-b). Run 6a is what the CPU runs below start from.
#    python3 -m swintormer train --synthetic --init swintormer/assets/swintormer-tiny.safetensors \
#        --warmup 200 --lr 3e-4 --workers 7 --device cuda --log-every 10 --crop 128 --batch 32 --seed 10 \
#        --steps 1782 --val-every 0 --save-every 1000 --time-limit 5.25 --out runs/gpu-a
#    (6b: --crop 256 --batch 8 --seed 11 --steps 1670 --out runs/gpu-b)
# 7. A share of in-focus scenes (swintormer-tiny/4-in-focus): stopped by hand at step 400 of 900
#    (its last.safetensors, the EMA weights at step 400, is where step 8 starts)
$S train --synthetic --init runs/gpu-a/model.safetensors --recipe in_focus_prob=0.2 --crop 128 --batch 8 \
    --steps 900 --warmup 20 --lr 1e-4 --seed 13 --threads 2 --val-every 300 --save-every 100 \
    --time-limit 24 --out runs/cpu-focus
cp runs/cpu-focus/last.safetensors runs/cpu-focus-400.safetensors
# 8. Targets with a depth of field of their own (swintormer-tiny/5-bokeh) -> the default
$S train --synthetic --init runs/cpu-focus-400.safetensors --recipe in_focus_prob=0.2 --recipe bokeh_prob=0.3 \
    --crop 128 --batch 8 --steps 1200 --warmup 20 --lr 1e-4 --seed 14 --threads 2 --val-every 400 \
    --save-every 100 --time-limit 36 --out runs/cpu-bokeh
cp runs/cpu-bokeh/model.safetensors swintormer/assets/swintormer-tiny.safetensors

# --- 2026-11-27, second session: more photographs (the `train` extra), photo_scale, PSNR loss ------
# 9. From run 8 with 19 training photographs and crops cut from photographs resized by 0.6-1
#    (swintormer-tiny/6-photos). Steps 1-1,400 ran with --threads 2; it was then stopped and
#    resumed (`--resume auto`, same arguments but --threads 1, pinned with taskset -c 0) beside step 10.
$S train --synthetic --init swintormer/assets/swintormer-tiny.safetensors --recipe in_focus_prob=0.2 \
    --recipe bokeh_prob=0.3 --recipe photo_scale=0.6,1 --crop 128 --batch 8 --steps 3600 --warmup 50 \
    --lr 2e-4 --seed 16 --threads 1 --val-every 600 --save-every 200 --time-limit 100 --out runs/cpu-photos
# 10. The same from run 8 with the PSNR loss (swintormer-tiny/6-psnr; a comparison, not bundled)
taskset -c 1 $S train --synthetic --init swintormer/assets/swintormer-tiny.safetensors --recipe in_focus_prob=0.2 \
    --recipe bokeh_prob=0.3 --recipe photo_scale=0.6,1 --stage-option loss=psnr --crop 128 --batch 8 \
    --steps 2000 --warmup 50 --lr 1e-4 --seed 17 --threads 1 --val-every 500 --save-every 100 \
    --time-limit 60 --out runs/cpu-psnr
# 11a/11b. Side by side from run 9, one core each, the same seed (so the same crops and validation
#    batches), L1 at lr 1e-4 and the PSNR loss at 5e-5 (swintormer-tiny/7-l1, 7-psnr); both stopped
#    by --time-limit 27 before step 1,000 (their last.safetensors hold the EMA weights)
COMMON="--synthetic --init runs/cpu-photos/model.safetensors --recipe in_focus_prob=0.2 --recipe bokeh_prob=0.3
    --recipe photo_scale=0.6,1 --crop 128 --batch 8 --steps 1000 --warmup 20 --seed 18 --threads 1 --val-every 500
    --val-batches 8 --save-every 100 --time-limit 27"
taskset -c 0 $S train $COMMON --lr 1e-4 --out runs/cpu-l1-2 &
taskset -c 1 $S train $COMMON --lr 5e-5 --stage-option loss=psnr --out runs/cpu-psnr-2 &
wait
# choosing among 9, 11a and 11b on the training photographs (not the test split):
$S synth --out data/synth --split seen --no-dual-pixel
for c in runs/cpu-photos/model.safetensors runs/cpu-l1-2/last.safetensors runs/cpu-psnr-2/last.safetensors; do
    $S eval --data data/synth --split seen --checkpoint $c -o out/eval-seen-$(basename $(dirname $c)) --figures 0
done
cp runs/cpu-psnr-2/model.safetensors swintormer/assets/swintormer-tiny.safetensors   # 11b: the default until 12a

# --- 2026-11-27, third session: collages (recipe collage_prob, color_prob) --------------------------
# 12a/12b. Side by side from run 11b, one core each, the same seed: 12a with half the crops made
#    collages and half channel-permuted (swintormer-tiny/8-collage, the candidate), 12b without
#    (swintormer-tiny/8-control, its control); both finished their 3,200 steps
COMMON="--synthetic --init swintormer/assets/swintormer-tiny.safetensors --recipe in_focus_prob=0.2
    --recipe bokeh_prob=0.3 --recipe photo_scale=0.6,1 --crop 128 --batch 8 --steps 3200 --warmup 50
    --lr 2e-4 --seed 19 --threads 1 --val-every 800 --val-batches 8 --save-every 100 --time-limit 88"
taskset -c 0 $S train $COMMON --recipe collage_prob=0.5 --recipe color_prob=0.5 --out runs/cpu-collage &
taskset -c 1 $S train $COMMON --out runs/cpu-control &
wait
for r in collage control; do
    $S eval --data data/synth --checkpoint runs/cpu-$r/model.safetensors --baseline unsharp -o out/eval-$r --figures 0
    $S eval --data data/synth --split seen --checkpoint runs/cpu-$r/model.safetensors -o out/eval-seen-$r --figures 0
done
cp runs/cpu-collage/model.safetensors swintormer/assets/swintormer-tiny.safetensors   # 12a: the default
# 13a/13b (exploration, not bundled). From run 12a side by side, one core each, the same seed,
#    lr 5e-5, 1,100 steps (25 minutes each): 13a without collages (swintormer-tiny/9-no-collage),
#    13b with a fifth of the crops collages (swintormer-tiny/9-collage-0.2)
COMMON="--synthetic --init runs/cpu-collage/model.safetensors --recipe in_focus_prob=0.2 --recipe bokeh_prob=0.3
    --recipe photo_scale=0.6,1 --crop 128 --batch 8 --steps 1100 --warmup 20 --lr 5e-5 --seed 20 --threads 1
    --val-every 1100 --val-batches 8 --save-every 100 --time-limit 33"
taskset -c 0 $S train $COMMON --out runs/cpu-nocollage &
taskset -c 1 $S train $COMMON --recipe collage_prob=0.2 --recipe color_prob=0.5 --out runs/cpu-collage02 &
wait
for r in nocollage collage02; do
    $S eval --data data/synth --checkpoint runs/cpu-$r/model.safetensors -o out/eval-$r --figures 0
    $S deblur swintormer/assets/sample_blurry.png --checkpoint runs/cpu-$r/model.safetensors -o out/sample-$r.png
done
