"""The baseline network: ``logits = W . pool(s5) + b``."""
from __future__ import annotations

import torch
import torch.nn as nn

from fgvc_lib.methods.baseline.options import BaselineOptions
from fgvc_lib.models.base import FGVCModel
from fgvc_lib.models.blocks import class_activation_map, global_pool
from fgvc_lib.models.output import ModelOutput


class Baseline(FGVCModel):
    """``logits = W . pool(s5) + b``; the CAM of the predicted class is returned as attention."""

    def __init__(self, num_classes: int, backbone: str = "resnet50", pretrained: bool = False,
                 weights: str | None = None, options: BaselineOptions = BaselineOptions()) -> None:
        super().__init__(num_classes, backbone, pretrained, weights)
        self.pooling = options.pooling
        self.classifier = nn.Linear(self.backbone.channels[-1], num_classes)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        feat = self.backbone(x)[-1]
        logits = self.classifier(global_pool(feat, self.pooling).flatten(1))
        cam = class_activation_map(feat, self.classifier.weight, logits.argmax(1))
        return ModelOutput(logits=logits, heads={"fc": logits}, attention={"cam": cam})
