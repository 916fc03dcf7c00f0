#!/usr/bin/env bash
# GPU session B: CMAL-Net and Cross-X main runs (session A's time ran out before them).
# CMAL-Net runs for 6 epochs here (about 26 s per epoch at 448 px on the H100), the others 12.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 FGVC_CACHE=/tmp/fgvc_cache
R=results/gpu; CUB=.data/cub100-227px; W=.data/lite0_imagenet_backbone_fp16.pt
LIMIT=${LIMIT:-330}
step() { if [ "$SECONDS" -lt "$LIMIT" ]; then echo "== [$SECONDS s] $*"; timeout 200 "$@" || echo "!! failed ($?): $*"; else echo "-- skipped (time): $*"; fi; }
[ -d .data/cub100-227px ] || python -m zipfile -e .data/cub100.zip .data/
FGVC="python -m fgvc_lib.cli"
LITE="--backbone efficientnet_lite0 --weights $W --lr 0.01 --backbone-lr-mult 0.1"
step $FGVC train --method cross_x --dataset cub_list --data-root $CUB --profile gpu $LITE --out $R/cub100/cross_x-lite0 --quiet
step $FGVC train --method cross_x --dataset synthetic --profile gpu --backbone resnet50 --out $R/synthetic448/cross_x-r50 --quiet
step $FGVC train --method cmal --dataset cub_list --data-root $CUB --profile gpu $LITE --batch-size 16 --epochs 6 --out $R/cub100/cmal-lite0-6ep --quiet
step $FGVC train --method cmal --dataset synthetic --profile gpu --batch-size 16 --epochs 6 --out $R/synthetic448/cmal-r50-6ep --quiet
echo "== done at $SECONDS s"
tar czf "${OUT:-/tmp}/results_gpu_b.tgz" $(find $R/cub100 $R/synthetic448 -name results.json)
