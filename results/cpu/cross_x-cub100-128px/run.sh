#!/usr/bin/env bash
# Cross-X's data term on real photographs, on the 2-core CPU machine (no GPU in that session):
# the CUB subset, EfficientNet-Lite0 with ImageNet weights, 128 px, 5 epochs, otherwise the
# `gpu` profile and the settings of the GPU CUB runs (results/gpu/run_b.sh, run_c.sh).
# Run from the repository root of a clean checkout; writes under $1 (default: this folder).
set -euo pipefail
R=${1:-results/cpu/cross_x-cub100-128px}
CUB=${CUB:-../shared/data/cub100-227px}
FGVC=${FGVC:-fgvc}
COMMON="--dataset cub_list --data-root $CUB --profile gpu --backbone efficientnet_lite0
  --weights .data/lite0_imagenet_backbone_fp16.pt --lr 0.01 --backbone-lr-mult 0.1
  --image-size 128 --epochs 5 --workers 1 --device cpu --quiet"
# C3S + GMP on U^{L-1}, no merged maps, no CL: the ablation row that collapsed on the GPU.
C3S_GMP="--opt osme=true --opt c3s=true --opt mid=true --opt merged=false --opt cl=false --opt pooling_mid=max"
# A finished run is kept; an interrupted one resumes from its checkpoint.
run() {
  local out=$1; shift
  if grep -qs '"status": "finished"' "$R/$out/results.json"; then return; fi
  if [ -f "$R/$out/checkpoint.pt" ]; then set -- "$@" --resume; fi
  $FGVC train $COMMON "$@" --out "$R/$out"   # a run's own flags come last and win
}
run cross_x-per_branch   --method cross_x
run baseline             --method baseline
run cross_x-mixture      --method cross_x --opt data_loss=mixture
run c3s_gmp-per_branch   --method cross_x $C3S_GMP
run c3s_gmp-mixture      --method cross_x $C3S_GMP --opt data_loss=mixture
# Notebook 03's other hypotheses for Cross-X's gap to the baseline on this backbone.
run cross_x-cl_detached    --method cross_x --opt cl_detach_target=true
run cross_x-lambda2_0      --method cross_x --opt lambda2=0
run baseline-backbone_lr1  --method baseline --backbone-lr-mult 1
run cross_x-backbone_lr1   --method cross_x --backbone-lr-mult 1
# A second seed where the first one differed most from the baseline.
run baseline-seed1             --method baseline --seed 1
run cross_x-per_branch-seed1   --method cross_x --seed 1
run cross_x-cl_detached-seed1  --method cross_x --opt cl_detach_target=true --seed 1
# The two changes that helped, together.
run cross_x-cl_detached-backbone_lr1  --method cross_x --opt cl_detach_target=true --backbone-lr-mult 1
