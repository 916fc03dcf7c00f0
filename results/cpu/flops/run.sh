#!/usr/bin/env bash
# FLOPs of one whole training step per image (forward + backward of every optimiser step
# the method takes on a batch), every registered method at its paper setting (ResNet-50,
# 448 px, 200 classes), beside a plain ResNet-50 step; counted on the CPU by
# torch.utils.flop_counter (benchmarks/bench_model.py --mode flops). No timing: the
# achieved TFLOP/s need a GPU (benchmarks/README.md). Run from the repository root.
set -euo pipefail
OUT=${1:-results/cpu/flops}
PY=${PY:-.venv/bin/python}
for method in $($PY -c "from fgvc_lib.methods import available_methods; print(*available_methods())"); do
  extra=()
  # Coarse2Fine pre-trains its up-sampler once, at the first step: not part of a step's cost.
  [ "$method" = coarse2fine ] && extra=(--option pretrain_pairs=0)
  $PY benchmarks/bench_model.py --method "$method" --backbone resnet50 --image-size 448 \
      --batch-size 2 --num-classes 200 --device cpu --mode flops --reference "${extra[@]}" \
      --json "$OUT/${method}_r50_448.json"
done
