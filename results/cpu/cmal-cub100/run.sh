#!/usr/bin/env bash
# CMAL-Net on the CUB subset under the real-data recipe of results/cpu/real-recipe (the
# `transfer` profile: EfficientNet-Lite0 with its ImageNet weights, 224 px), three seeds
# per row, on the 2-core CPU. Run from the repository root; writes under $1 (default: this
# folder). Each row is compared with the baseline of the same recipe and seeds
# (results/cpu/real-recipe/baseline-seed*), at equal epochs, and the records give the
# optimiser steps (CMAL-Net makes five per batch).
#   mda-batch-seedS   CMAL-Net, one MDA draw per batch (the library default, Algorithm 1)
#   mda-sample-seedS  CMAL-Net, one MDA draw per image (the default before; the GPU records)
#   raw-seedS         Table 2's Baseline 1: the same network and steps, raw images only
set -euo pipefail
R=${1:-results/cpu/cmal-cub100}
SEEDS=${SEEDS:-"0 1 2"}
RUN_PREFIX="flock /tmp/fgvc-cpu.lock env OMP_NUM_THREADS=2"
source "$(dirname "$0")/../recipe.sh"
for seed in $SEEDS; do
  run mda-batch-seed$seed  --method cmal --epochs $EPOCHS --seed $seed $SELECTED --opt mda_draw=batch
  run mda-sample-seed$seed --method cmal --epochs $EPOCHS --seed $seed $SELECTED --opt mda_draw=sample
  run raw-seed$seed        --method cmal --epochs $EPOCHS --seed $seed $SELECTED --opt augmentation=raw
done
