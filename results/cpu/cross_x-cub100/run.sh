#!/usr/bin/env bash
# Cross-X's data term on the CUB subset under the real-data recipe of
# results/cpu/real-recipe (the `transfer` profile: EfficientNet-Lite0 with its ImageNet
# weights, 224 px), three seeds per row, on the 2-core CPU. Run from the repository root;
# writes under $1 (default: this folder). Rows (full method, GAP on U^{L-1}, library defaults
# otherwise, so merge_order=fpn and c3s_form=eq4):
#   per_branch-seedS     one cross-entropy per branch (our modification, the default)
#   summed_logits-seedS  one cross-entropy on the summed logits (the released code)
#   mixture-seedS        Eq. (9) on the normalised Eq. (7) (the literal reading)
#   c3s_linear-seedS     per_branch with the released code's linear C3S
# Each is compared with the baseline of results/cpu/real-recipe (same recipe and seeds).
set -euo pipefail
R=${1:-results/cpu/cross_x-cub100}
RUN_PREFIX="flock /tmp/fgvc-cpu.lock env OMP_NUM_THREADS=2"
source "$(dirname "$0")/../recipe.sh"
for seed in 0 1 2; do
  for term in per_branch summed_logits mixture; do
    run $term-seed$seed --method cross_x --epochs $EPOCHS --seed $seed $SELECTED --opt data_loss=$term
  done
  run c3s_linear-seed$seed --method cross_x --epochs $EPOCHS --seed $seed $SELECTED --opt c3s_form=linear
done
