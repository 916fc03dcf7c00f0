#!/usr/bin/env bash
# The real-data recipe on the 2-core CPU: the CUB subset (shared/data/cub100-227px),
# EfficientNet-Lite0 with its ImageNet weights, 224 px (the photographs are 227 px), the
# `transfer` profile. Run from the repository root; writes under $1 (default: this folder).
#   1. the linear probe on frozen features (the floor);
#   2. the learning rates, selected on the validation split only: lr of the new layers
#      {0.01, 0.1} x backbone multiplier {0.1, 1.0}, pretrained BatchNorm statistics frozen,
#      one epoch on the whole training split (the schedule runs to zero within it);
#   3. the BatchNorm policy at the selected rates: frozen (reused from step 2) or train;
#   4. the baseline with the selected settings on the whole training split, three seeds.
# Test-set numbers of steps 2-3 use 300 test images and are never read by the selection.
set -euo pipefail
R=${1:-results/cpu/real-recipe}
SEEDS=${SEEDS:-"0 1 2"}
# recipe.sh: the data, the profile and `run`, shared with every method's script. It also
# turns on channels_last, which trains Lite0 ~1.6x faster on this CPU (a memory layout, not a
# setting: the records' provenance says which ran; the lr sweep's four runs ran without it).
source "$(dirname "$0")/../recipe.sh"

[ -f "$R/probe-lite0-224/results.json" ] || $FGVC probe $COMMON --out "$R/probe-lite0-224"

$FGVC sweep $SWEEP --bn-policy frozen --grid lr=0.01,0.1 --grid backbone_lr_mult=0.1,1.0 \
    --out "$R/sweep-lr" | tee "$R/sweep-lr.txt"
RATES=$(selected "$R/sweep-lr.txt")
POINT=$(grep "selected on validation" "$R/sweep-lr.txt" | cut -d: -f1)
mkdir -p "$R/sweep-bn"
# The frozen point is the run step 2 selected (same config): reuse it instead of retraining.
[ -e "$R/sweep-bn/bn_policy=frozen" ] || ln -s "../sweep-lr/$POINT" "$R/sweep-bn/bn_policy=frozen"
$FGVC sweep $SWEEP $RATES --grid bn_policy=frozen,train --out "$R/sweep-bn" | tee "$R/sweep-bn.txt"
SELECTED="$RATES $(selected "$R/sweep-bn.txt")"
echo "selected on validation: $SELECTED" | tee "$R/selected.txt"

for seed in $SEEDS; do
  run "baseline-seed$seed" --method baseline --epochs "$EPOCHS" --seed "$seed" $SELECTED
done
