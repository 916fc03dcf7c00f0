#!/usr/bin/env bash
# The real-data recipe on the 2-core CPU: the CUB subset (shared/data/cub100-227px),
# EfficientNet-Lite0 with its ImageNet weights, 224 px (the photographs are 227 px), the
# `transfer` profile. Run from the repository root; writes under $1 (default: this folder).
#   1. the linear probe on frozen features (the floor);
#   2. a sweep of backbone lr multiplier x BatchNorm policy, selected on the validation
#      split only (1 epoch on 1,000 training images: what the CPU budget allows);
#   3. the baseline with the selected settings on the whole training split.
set -euo pipefail
R=${1:-results/cpu/real-recipe}
CUB=${CUB:-$(realpath ../shared/data/cub100-227px)}
FGVC=${FGVC:-.venv/bin/fgvc}
COMMON="--dataset cub_list --data-root $CUB --profile transfer --workers 1 --device cpu --quiet"
[ -f "$R/probe-lite0-224/results.json" ] || $FGVC probe $COMMON --out "$R/probe-lite0-224"
$FGVC sweep $COMMON --epochs 1 --max-train-samples 1000 --max-test-samples 300 \
    --grid backbone_lr_mult=0.1,1.0 --grid bn_policy=train,frozen --out "$R/sweep" | tee "$R/sweep.txt"
run() {  # a finished run is kept; an interrupted one resumes
  local out=$1; shift
  if grep -qs '"status": "finished"' "$R/$out/results.json"; then return; fi
  if [ -f "$R/$out/checkpoint.pt" ]; then set -- "$@" --resume; fi
  $FGVC train $COMMON "$@" --out "$R/$out"
}
# "backbone_lr_mult=1.0,bn_policy=frozen: ... <- selected" -> --backbone-lr-mult 1.0 --bn-policy frozen
SELECTED=$(grep "selected on validation" "$R/sweep.txt" | cut -d: -f1 | tr ',' '\n' \
           | sed -E 's/^([a-z_]+)=(.*)$/--\1 \2/; s/_/-/g' | tr '\n' ' ')
echo "selected: $SELECTED"
run baseline-seed0 --method baseline --epochs ${EPOCHS:-3} --seed 0 $SELECTED
