#!/usr/bin/env bash
# CN-CNN's Table 2-3 configurations on the CUB subset under the real-data recipe of
# results/cpu/real-recipe (the `transfer` profile: EfficientNet-Lite0 with its ImageNet
# weights, 224 px), three seeds per row, beside that recipe's baseline-seed* runs (same seeds),
# on the 2-core CPU. Run from the repository root; writes under $1 (default: this folder).
# Rows (library defaults otherwise: product of the masks, channel hand-over by concatenation),
# every CN-CNN row with $CN_OPTS, default width 128 aligned at S4's stride 16: at 224 px the
# default width 256 at stride 8 would put about 11 GMACs of ConvLSTM on a 0.4-GMAC backbone;
# this setting has about 0.7 (the same for every CN-CNN row, so the rows stay comparable):
#   hl-seedS         hl=add lh=off (Table 2 "HL": the FPN-style sum of the aligned levels)
#   hl_lh-seedS      hl=add lh=on  (Table 2 "HL+LH" = Table 3 "w/o ConvLSTM")
#   cn_cnn-seedS     hl=convlstm lh=on (Table 3 "w/ ConvLSTM", the full model of Table 1)
# Lite0's levels: blocks.2 (stride 8, 40 channels), blocks.4 (stride 16, 112), and the end of
# the pretrained extractor (conv_head + BN, stride 32, 1280).
set -euo pipefail
R=${1:-results/cpu/cn_cnn-cub100}
SEEDS=${SEEDS:-"0 1 2"}
CN_OPTS=${CN_OPTS:---opt width=128 --opt align=s4}
RUN_PREFIX="flock /tmp/fgvc-cpu.lock env OMP_NUM_THREADS=2"
source "$(dirname "$0")/../recipe.sh"
# The learning rate of CN-CNN's own layers, selected on the validation split only, as the
# recipe's baseline had its own selected: the full model, one epoch on the whole training
# split (the schedule runs to zero within it), lr {0.01, 0.1} at the recipe's backbone
# multiplier 0.1 and frozen BatchNorm statistics. At the baseline's lr 0.1 the full model
# did not learn in 10 epochs (../cn_cnn-cub100-10ep-failed/). Every CN-CNN row then runs
# with the selected lr (set CN_SELECTED to skip the sweep).
if [ -z "${CN_SELECTED:-}" ]; then
  $FGVC sweep $SWEEP --method cn_cnn $CN_OPTS --opt hl=convlstm --opt lh=on \
      --bn-policy frozen --backbone-lr-mult 0.1 --grid lr=0.01,0.1 --out "$R/sweep-lr" \
      | tee "$R/sweep-lr.txt"
  CN_SELECTED="$(selected "$R/sweep-lr.txt")--backbone-lr-mult 0.1 --bn-policy frozen"
  echo "selected on validation: $CN_SELECTED" | tee "$R/selected.txt"
fi
SELECTED=$CN_SELECTED
# The full model on every seed first (the row read against the baseline), then the ablations
# from the richest down, so a budget that stops early leaves the rows that matter most.
for seed in $SEEDS; do
  run cn_cnn-seed$seed --method cn_cnn --epochs $EPOCHS --seed $seed $SELECTED $CN_OPTS --opt hl=convlstm --opt lh=on
done
for seed in $SEEDS; do
  run hl_lh-seed$seed --method cn_cnn --epochs $EPOCHS --seed $seed $SELECTED $CN_OPTS --opt hl=add --opt lh=on
done
for seed in $SEEDS; do
  run hl-seed$seed --method cn_cnn --epochs $EPOCHS --seed $seed $SELECTED $CN_OPTS --opt hl=add --opt lh=off
done
