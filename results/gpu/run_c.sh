#!/usr/bin/env bash
# GPU session C: the ablations owed by sessions A and B, run as parallel lanes on one GPU.
#   * CMAL-Net Table 2 (MDA and Baselines 1-9 rows) and Table 3 (t sweep),
#   * Cross-X Figs. 3-4 ablations (Table 2 reuses four of their runs),
# each on the synthetic data at 448 px and on the 100-species CUB subset with
# EfficientNet-Lite0 ImageNet weights (224 px: the subset's photographs are 227 px);
# plus CMAL-Net R-50 on the synthetic data at 448 px and re-runs of the synthetic baseline
# and Cross-X with generator version 3, and at the end, alone on the GPU, compiled throughput.
#
# Usage, from a copy of the repository root on the GPU machine:
#   setsid bash results/gpu/run_c.sh ROOT > ROOT/run_c.log 2>&1 < /dev/null &
# Everything lands under ROOT/results/gpu/ (ROOT defaults to /tmp/gpuc); logs in ROOT/logs/.
# DRY=1 prints the commands instead of running them.
set -u
ROOT=${1:-/tmp/gpuc}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 FGVC_CACHE=/tmp/fgvc_cache
R=$ROOT/results/gpu
CUB=/tmp/cub/cub100-227px
W=.data/lite0_imagenet_backbone_fp16.pt
mkdir -p "$R" "$ROOT/logs" "$FGVC_CACHE"
FGVC="python -m fgvc_lib.cli"
[ "${DRY:-0}" = 1 ] && FGVC="echo fgvc"
[ -d "$CUB" ] || [ "${DRY:-0}" = 1 ] || python -m zipfile -e .data/cub100.zip /tmp/cub/
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
python -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"

SYN="--dataset synthetic --profile gpu --workers 2 --quiet"
LITE="--dataset cub_list --data-root $CUB --profile gpu --backbone efficientnet_lite0 --weights $W \
--lr 0.01 --backbone-lr-mult 0.1 --image-size 224 --workers 2 --quiet"
# Synthetic ablations: CMAL-Net on ResNet-18 with C_v = 256 (R-50 with C_v = 1024 costs
# ~9 s per epoch here, too much for 13 runs in one session), Cross-X on ResNet-50.
SYN_CMAL="$SYN --backbone resnet18 --opt cv=256 --batch-size 16 --epochs 8"
SYN_CX="$SYN --backbone resnet50 --epochs 8"
CUB_CMAL="$LITE --batch-size 16 --epochs 5"
CUB_CX="$LITE --epochs 10"
T2A='"MDA (GMP), raw input" "Baseline 1 (raw only)" "Baseline 2 (random crop 0.5)" "Baseline 3 (pad 16 + crop)" "Baseline 4 (pad + crop + flip)"'
T2B='"Baseline 5 (Mixup)" "Baseline 6 (CutMix)" "Baseline 7 (SaliencyMix)" "Baseline 9 (random combination)"'

# One lane = commands run one after another in the background, logged to ROOT/logs/NAME.log.
lane() {
  local name=$1; shift
  ( for cmd in "$@"; do
      echo "== [$SECONDS s] $cmd"
      eval "$cmd" || echo "!! failed ($?): $cmd"
    done
    echo "== lane $name done [$SECONDS s]" ) > "$ROOT/logs/$name.log" 2>&1 &
}
# The synthetic set is rendered once (by the first synthetic run); the other lanes wait for it.
WAIT_SYN='until [ "${DRY:-0}" = 1 ] || [ $(ls $FGVC_CACHE/*.npz 2>/dev/null | wc -l) -ge 2 ]; do sleep 3; done'

lane syn_main \
  "$FGVC train --method cmal $SYN --batch-size 16 --out $R/synthetic448/cmal-r50" \
  "$FGVC train --method baseline $SYN --out $R/synthetic448/baseline-r50-v3" \
  "$FGVC train --method cross_x $SYN --backbone resnet50 --out $R/synthetic448/cross_x-r50-v3"
lane cub_cmal_a \
  "$FGVC table cmal.table2 $CUB_CMAL --out $R/cub100-ablations --rows $T2A" \
  "$FGVC table cmal.table3 $CUB_CMAL --out $R/cub100-ablations --rows 't = 0.1' 't = 0.3'"
lane cub_cmal_b \
  "$FGVC table cmal.table2 $CUB_CMAL --out $R/cub100-ablations --rows $T2B" \
  "$FGVC table cmal.table3 $CUB_CMAL --out $R/cub100-ablations --rows 't = 0.7' 't = 0.9'"
lane cub_cross_x \
  "$FGVC table cross_x.ablation_gmp $CUB_CX --out $R/cub100-ablations" \
  "$FGVC table cross_x.ablation_gap $CUB_CX --out $R/cub100-ablations" \
  "$FGVC table cross_x.table2 $CUB_CX --out $R/cub100-ablations --no-train"
lane syn_cmal \
  "$WAIT_SYN" \
  "$FGVC table cmal.table2 $SYN_CMAL --out $R/synthetic448-ablations --rows $T2A" \
  "$FGVC table cmal.table3 $SYN_CMAL --out $R/synthetic448-ablations" \
  "$FGVC table cmal.table2 $SYN_CMAL --out $R/synthetic448-ablations --rows $T2B"
lane syn_cross_x \
  "$WAIT_SYN" \
  "$FGVC table cross_x.ablation_gmp $SYN_CX --out $R/synthetic448-ablations" \
  "$FGVC table cross_x.ablation_gap $SYN_CX --out $R/synthetic448-ablations" \
  "$FGVC table cross_x.table2 $SYN_CX --out $R/synthetic448-ablations --no-train"
wait
echo "== all lanes done at $SECONDS s"

# Throughput, alone on the GPU, compiled, beside a compiled plain ResNet-50 step.
BENCH="python benchmarks/bench_model.py --backbone resnet50 --image-size 448 --channels-last --mode train --reference --reference-compile --compile --steps 10"
[ "${DRY:-0}" = 1 ] && BENCH="echo bench"
$BENCH --method cmal --batch-size 16 --json "$R/bench/cmal_r50_b16_compiled.json"
$BENCH --method cross_x --batch-size 32 --json "$R/bench/cross_x_r50_b32_compiled.json"
echo "== done at $SECONDS s"
