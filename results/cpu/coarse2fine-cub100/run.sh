#!/usr/bin/env bash
# Coarse2Fine on real photographs, on the CPU: Coarse2Fine with and without the orthogonal
# initialisation of the attention weights, three seeds each (the baseline rows are the
# real-data recipe's results/cpu/real-recipe/baseline-seed* runs, same recipe and seeds). Data: the CUB subset (shared/data/cub100-227px, 100
# species); EfficientNet-Lite0 with its ImageNet weights; the `transfer` profile (224 px).
# Run from the repository root; writes under $1 (default: this folder). A finished run is
# kept, an interrupted one resumes.
#
# Lite0 stage (fgvc_lib/methods/coarse2fine/model.py, note 4): the whole pretrained extractor
# (conv_head + BN + ReLU6, 1280 channels, stride 32) feeds the attention conv and BAP: 7 x 7
# attention maps at 224 px, up-sampled 32x by five transposed convolutions. The transfer
# profile's Coarse2Fine options pre-train the up-sampler on 6,000 pairs (7 px) for 5 epochs.
#
# The recipe is the real-data recipe of results/cpu/real-recipe (the settings its sweeps
# selected, recipe.sh).
set -euo pipefail
R=${1:-results/cpu/coarse2fine-cub100}
SEEDS=${SEEDS:-"0 1 2"}
source "$(dirname "$0")/../recipe.sh"
# The paper's model on every seed first (the row read against the baseline), then the
# initialisation ablation.
for seed in $SEEDS; do
  run "c2f-ortho-seed$seed" --epochs "$EPOCHS" $SELECTED --method coarse2fine --opt orthogonal_init=true --seed "$seed"
done
for seed in $SEEDS; do
  run "c2f-plaininit-seed$seed" --epochs "$EPOCHS" $SELECTED --method coarse2fine --opt orthogonal_init=false --seed "$seed"
done
.venv/bin/fgvc results "$R"
