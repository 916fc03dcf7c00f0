#!/usr/bin/env bash
# Does a longer schedule lift the fine-tuned baseline above its linear probe? The baseline of
# results/cpu/real-recipe (the settings its validation sweeps selected, recipe.sh) with 10
# epochs instead of 5 (the `transfer` profile's own number), on the CUB subset at 224 px.
# Run from the repository root; writes under $1 (default: this folder). A finished run is
# kept, an interrupted one resumes.
set -euo pipefail
R=${1:-results/cpu/real-recipe-10ep}
SEEDS=${SEEDS:-"0 1 2"}
EPOCHS=10
source "$(dirname "$0")/../recipe.sh"
for seed in $SEEDS; do
  run "baseline-seed$seed" --method baseline --epochs "$EPOCHS" --seed "$seed" $SELECTED
done
