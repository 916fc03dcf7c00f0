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
# SEEDS and ROWS pick a part (e.g. ROWS=per_branch for the default row alone).
#
# At the recipe's learning rate (0.1 for the new layers) Cross-X's loss explodes within its
# first dozen steps, and with clipped gradients its heads stay at chance:
# ../cross_x-cub100-lr-diagnostics/README.md. GRAD_CLIP (a global L2 norm, unset by default)
# passes --grad-clip-norm to every run.
set -euo pipefail
GRAD_CLIP=${GRAD_CLIP:-}
R=${1:-results/cpu/cross_x-cub100}
SEEDS=${SEEDS:-"0 1 2"}
ROWS=${ROWS:-"per_branch summed_logits mixture c3s_linear"}
RUN_PREFIX=${RUN_PREFIX-"flock /tmp/fgvc-cpu.lock env OMP_NUM_THREADS=2"}
source "$(dirname "$0")/../recipe.sh"
for seed in $SEEDS; do
  for row in $ROWS; do
    case $row in
      per_branch|summed_logits|mixture) opt="data_loss=$row" ;;
      c3s_linear) opt="c3s_form=linear" ;;
      *) echo "run.sh: unknown row '$row'; use per_branch, summed_logits, mixture or c3s_linear" >&2
         exit 2 ;;
    esac
    run "$row-seed$seed" --method cross_x --epochs "$EPOCHS" --seed "$seed" $SELECTED --opt "$opt" \
      ${GRAD_CLIP:+--grad-clip-norm "$GRAD_CLIP"}
  done
done
