"""Baseline: backbone + global pooling + linear classifier.

The "original network" rows of every paper's tables (e.g. CMAL-Net Table 4,
Cross-X Tables 3-7 "ResNet-50").
"""
from __future__ import annotations

import torch
import torch.nn as nn

from fgvc_lib.models.base import FGVCModel
from fgvc_lib.models.blocks import class_activation_map, global_pool
from fgvc_lib.models.output import ModelOutput
from fgvc_lib.models.registry import register_model


class Baseline(FGVCModel):
    """``logits = W . pool(s5) + b``; the CAM of the predicted class is returned as attention."""

    def __init__(self, num_classes: int, backbone: str = "resnet50", pretrained: bool = False,
                 weights: str | None = None, pooling: str = "avg") -> None:
        super().__init__(num_classes, backbone, pretrained, weights)
        self.pooling = pooling
        self.classifier = nn.Linear(self.backbone.channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        feat = self.backbone(x)[-1]
        logits = self.classifier(global_pool(feat, self.pooling).flatten(1))
        cam = class_activation_map(feat, self.classifier.weight, logits.argmax(1))
        return ModelOutput(logits=logits, heads={"fc": logits}, attention={"cam": cam})


#: A plain fine-tuning recipe at the papers' common setting (448 px, SGD).
BASELINE_RECIPE = {
    "optimizer": "sgd", "lr": 0.01, "momentum": 0.9, "weight_decay": 5e-4,
    "batch_size": 32, "epochs": 100, "scheduler": "cosine", "backbone_lr_mult": 0.1,
}


@register_model("baseline", default_backbone="resnet50", paper_recipe=BASELINE_RECIPE,
                options=("pooling",))
def baseline(num_classes: int, backbone: str = "resnet50", pretrained: bool = False,
             **opts) -> Baseline:
    return Baseline(num_classes, backbone, pretrained, **opts)
