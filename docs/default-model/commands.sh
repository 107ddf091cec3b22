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
