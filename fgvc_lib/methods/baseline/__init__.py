"""Baseline: backbone + global pooling + linear classifier.

The "original network" rows of every paper's tables (e.g. CMAL-Net Table 4,
Cross-X Tables 3-7 "ResNet-50"), and the floor every method is compared with.
"""
from __future__ import annotations

from pathlib import Path

from fgvc_lib.methods.baseline.options import BaselineOptions
from fgvc_lib.methods.spec import MethodSpec


def _build(num_classes: int, backbone: str, pretrained: bool, weights: str | None,
           options: BaselineOptions):
    from fgvc_lib.methods.baseline.model import Baseline

    return Baseline(num_classes, backbone, pretrained, weights, options)


#: A plain fine-tuning recipe at the papers' common setting (448 px, SGD).
BASELINE_RECIPE = {
    "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
    "batch_size": 32, "epochs": 100, "scheduler": "cosine", "backbone_lr_mult": 0.1,
}

SPEC = MethodSpec(
    name="baseline", title="Baseline", options=BaselineOptions, build=_build,
    default_backbone="resnet50", paper_recipe=BASELINE_RECIPE,
    comparison_maps={"CAM": "cam"},
    tables_file=Path(__file__).with_name("tables.json"), chapter="01_baseline")

__all__ = ["BASELINE_RECIPE", "BaselineOptions", "SPEC"]
