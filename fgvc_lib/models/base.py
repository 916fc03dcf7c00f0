"""Base class shared by every registered model."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.errors import unknown_name_error
from fgvc_lib.models.backbones import Backbone, build_backbone
from fgvc_lib.models.output import ModelOutput

if TYPE_CHECKING:
    from fgvc_lib.models.step import StepContext


#: How fine-tuning treats the backbone's BatchNorm statistics (see :meth:`FGVCModel.set_bn_policy`).
BN_POLICIES = ("train", "source", "frozen")


class FGVCModel(nn.Module):
    """A backbone plus method-specific heads.

    Subclasses implement ``forward(x) -> ModelOutput`` and may override
    :meth:`training_step` (how one batch trains), :meth:`param_groups`
    (per-group learning rates). The paper's training settings are the
    method's ``SPEC.paper_recipe`` (:class:`fgvc_lib.methods.MethodSpec`).
    """

    #: See :meth:`set_bn_policy`; ``"train"`` is PyTorch's behaviour.
    bn_policy: str = "train"

    def __init__(self, num_classes: int, backbone: str = "resnet50", pretrained: bool = False,
                 weights: str | None = None) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.backbone: Backbone = build_backbone(backbone, pretrained=pretrained, weights=weights)

    # -- training -------------------------------------------------------
    def losses(self, out: ModelOutput, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """The objective of one step: ``{"loss": total, **named terms}``. Default: the
        cross-entropy of the final logits (in float32). A one-step method overrides only this."""
        return {"loss": F.cross_entropy(out.logits.float(), targets)}

    def training_step(self, ctx: "StepContext", images: torch.Tensor,
                      targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Default: one forward, :meth:`losses`, one optimiser step; returns the terms."""
        with ctx.autocast():
            out = ctx.forward(images)
        terms = self.losses(out, targets)
        ctx.step(terms["loss"])
        return {k: v.detach() for k, v in terms.items()}

    def set_bn_policy(self, policy: str) -> None:
        """How training treats the running statistics of the backbone's BatchNorm layers.

        * ``"train"``: PyTorch's default, updated with momentum 0.1 at every
          training forward. Right for a network trained from scratch.
        * ``"source"``: updated with the momentum the pretrained weights were
          trained with (``Backbone.source_bn_momentum``; 0.01 for the
          TensorFlow-trained EfficientNet-Lite0), so a few epochs on a small
          set cannot rewrite them.
        * ``"frozen"``: never updated (those layers stay in eval mode while the
          model trains); their affine weights still learn. The heads' own
          BatchNorms train normally.
        """
        if policy not in BN_POLICIES:
            raise unknown_name_error("BatchNorm policy", policy, BN_POLICIES)
        self.bn_policy = policy
        momentum = getattr(self.backbone, "source_bn_momentum", 0.1) if policy == "source" else 0.1
        for module in self._backbone_norms():
            module.momentum = momentum
        self.train(self.training)

    def _backbone_norms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        return [m for m in self.backbone.modules()
                if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    def train(self, mode: bool = True) -> "FGVCModel":
        super().train(mode)
        if mode and self.bn_policy == "frozen":
            for module in self._backbone_norms():
                module.eval()
        return self

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
