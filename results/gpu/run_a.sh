#!/usr/bin/env bash
# GPU session A: throughput benchmarks and the main runs (baseline, CMAL-Net, Cross-X) on
# synthetic data at 448 px and on the 100-species CUB subset with EfficientNet-Lite0 ImageNet
# weights. Run from the repository root on the GPU machine; writes results/gpu/.
set -u
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1 FGVC_CACHE=/tmp/fgvc_cache
R=results/gpu; CUB=.data/cub100-227px; W=.data/lite0_imagenet_backbone_fp16.pt
LIMIT=${LIMIT:-500}
step() { if [ "$SECONDS" -lt "$LIMIT" ]; then echo "== [$SECONDS s] $*"; timeout 300 "$@" || echo "!! failed ($?): $*"; else echo "-- skipped (time): $*"; fi; }
[ -d .data/cub100-227px ] || python -m zipfile -e .data/cub100.zip .data/
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__)"
FGVC="python -m fgvc_lib.cli"
LITE="--backbone efficientnet_lite0 --weights $W --lr 0.01 --backbone-lr-mult 0.1"
step python benchmarks/bench_model.py --method cmal --backbone resnet50 --image-size 448 --batch-size 16 --channels-last --mode both --reference --steps 10 --json $R/bench/cmal_r50_b16.json
step python benchmarks/bench_model.py --method cross_x --backbone resnet50 --image-size 448 --batch-size 32 --channels-last --mode both --reference --steps 10 --json $R/bench/cross_x_r50_b32.json
step $FGVC train --method baseline --dataset synthetic --profile gpu --out $R/synthetic448/baseline-r50 --quiet
step $FGVC train --method baseline --dataset cub_list --data-root $CUB --profile gpu $LITE --out $R/cub100/baseline-lite0 --quiet
step $FGVC train --method cmal --dataset cub_list --data-root $CUB --profile gpu $LITE --batch-size 16 --out $R/cub100/cmal-lite0 --quiet
step $FGVC train --method cross_x --dataset cub_list --data-root $CUB --profile gpu $LITE --out $R/cub100/cross_x-lite0 --quiet
step $FGVC train --method cmal --dataset synthetic --profile gpu --batch-size 16 --out $R/synthetic448/cmal-r50 --quiet
step $FGVC train --method cross_x --dataset synthetic --profile gpu --backbone resnet50 --out $R/synthetic448/cross_x-r50 --quiet
echo "== done at $SECONDS s"
find $R -name '*.json' | sort
tar czf "${OUT:-/tmp}/results_gpu.tgz" $(find $R -name '*.json')
