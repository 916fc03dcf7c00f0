"""Base class shared by every registered model."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.models.backbones import Backbone, build_backbone
from fgvc_lib.models.output import ModelOutput

if TYPE_CHECKING:
    from fgvc_lib.engine.step import StepContext


class FGVCModel(nn.Module):
    """A backbone plus method-specific heads.

    Subclasses implement ``forward(x) -> ModelOutput`` and may override
    :meth:`training_step` (how one batch trains), :meth:`param_groups`
    (per-group learning rates). The paper's training settings are given to
    :func:`fgvc_lib.models.registry.register_model` as ``paper_recipe``.
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50", pretrained: bool = False,
                 weights: str | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone: Backbone = build_backbone(backbone, pretrained=pretrained, weights=weights)

    # -- training -------------------------------------------------------
    def training_step(self, ctx: "StepContext", images: torch.Tensor,
                      targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Default: one cross-entropy step on the final logits."""
        with ctx.autocast():
            out = ctx.forward(images)
            loss = F.cross_entropy(out.logits.float(), targets)
        ctx.step(loss)
        return {"loss": loss.detach()}

    def param_groups(self, lr: float, backbone_lr_mult: float = 1.0,
                     weight_decay: float = 0.0) -> list[dict[str, Any]]:
        """Backbone parameters at ``lr * backbone_lr_mult``, new layers at ``lr``.

        Biases and normalisation weights get no weight decay (the usual
        torchvision reference-script choice).
        """
        backbone_ids = {id(p) for p in self.backbone.parameters()}
        groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
        for p in self.parameters():
            if not p.requires_grad:
                continue
            key = (id(p) in backbone_ids, p.ndim <= 1)
            groups.setdefault(key, []).append(p)
        out = []
        for (is_backbone, no_decay), params in sorted(groups.items()):
            out.append({
                "params": params,
                "lr": lr * (backbone_lr_mult if is_backbone else 1.0),
                "weight_decay": 0.0 if no_decay else weight_decay,
                "name": ("backbone" if is_backbone else "head") + ("_no_decay" if no_decay else ""),
            })
        return out

    # -- attention ------------------------------------------------------
    def cam_layers(self) -> dict[str, nn.Module]:
        """Named layers that Grad-CAM / LayerCAM may target (deepest last)."""
        return {f"stage{i + 2}": self.backbone.stage_module(i) for i in range(4)}

    def forward(self, x: torch.Tensor) -> ModelOutput:  # pragma: no cover - abstract
        raise NotImplementedError
