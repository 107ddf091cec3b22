#!/usr/bin/env bash
# Issue 18's GPU measurements in one run of under 8 minutes (a lent GPU machine has minutes):
#   1. the Triton kernel benchmark, all 100 cases (bench_kernels.py; 270 s limit, its JSON
#      rewritten after every case, so a cut-short run keeps what it measured);
#   2. swintormer-dpdd and the bundled default per tile (256 and 512) in eager, Triton kernels,
#      CUDA graphs and torch.compile, fp32/fp16/bf16, and end to end on a 1680x1120 photo
#      (bench_gpu.py, given what is left of 450 s as its budget: it starts no cell after it).
# Usage, from the repository root on a machine with torch, triton and a CUDA GPU:
#   bash benchmarks/gpu_bench.sh OUTDIR
# OUTDIR receives session.log, kernels.json and gpu.json; copy the JSON files to
# benchmarks/results/<device>-kernels.json and <device>-gpu.json and run benchmarks/report.py.
set -u -o pipefail
OUT=${1:?usage: gpu_bench.sh OUTDIR}
source benchmarks/gpu_env.sh
TOTAL_S=${TOTAL_S:-450}
say "kernel benchmark"
timeout -k 10 "${KERNELS_S:-270}" $PY benchmarks/bench_kernels.py --out "$OUT/kernels.json" 2>&1 | tail -25
LEFT=$((TOTAL_S - ($(date +%s) - T0)))
say "model benchmark (budget $((LEFT - 40)) s)"
timeout -k 10 "$LEFT" $PY benchmarks/bench_gpu.py --budget "$((LEFT - 40))" --out "$OUT/gpu.json" 2>&1 | tail -80
say "done"
