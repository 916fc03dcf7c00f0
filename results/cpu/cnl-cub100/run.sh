#!/usr/bin/env bash
# CNL on real photographs, on the CPU: +5NL and +5CNL on the CUB subset
# (shared/data/cub100-227px), EfficientNet-Lite0 with its ImageNet weights, the `transfer`
# profile (224 px), three seeds each. Run from the repository root; writes under $1
# (default: this folder). A finished run is kept, an interrupted one resumes.
#
# Lite0 placement (fgvc_lib/methods/cnl/model.py, PLACEMENTS): responses / NL sites
# blocks.2.0, blocks.2.1 (stride 8) and blocks.3.1, blocks.4.0, blocks.4.2 (stride 16);
# CNL query: the last layer (conv_head + BN, 1280 channels, stride 32).
#
# The recipe is the real-data recipe of results/cpu/real-recipe (the settings its sweeps
# selected, recipe.sh); the baseline rows are that recipe's baseline-seed* runs.
set -euo pipefail
R=${1:-results/cpu/cnl-cub100}
SEEDS=${SEEDS:-"0 1 2"}
source "$(dirname "$0")/../recipe.sh"
for seed in $SEEDS; do
  run "nl-seed$seed" --epochs "$EPOCHS" $SELECTED --method cnl --opt variant=nl --seed "$seed"
  run "cnl-seed$seed" --epochs "$EPOCHS" $SELECTED --method cnl --opt variant=cnl --seed "$seed"
done
