"""The options of Coarse2Fine: one frozen dataclass that checks itself (see :mod:`fgvc_lib.methods.spec`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.spec import MethodOptions


@dataclass(frozen=True)
class Coarse2FineOptions(MethodOptions):
    """Coarse2Fine's options (implementation notes of :mod:`fgvc_lib.methods.coarse2fine.model`).

    num_maps: M, attention maps from the 1x1 attention conv (the paper: 8).
    bap: ``"wsdan"`` pools the products over positions (M x C part features, the
        default), ``"paper"`` pools over channels at each position (M x H*W, the
        paper's text), ``"none"`` is the plain backbone (GAP + linear head, no
        attention; needs ``cascade=False``).
    paper_pool: the channel pooling of ``bap="paper"`` (average or max).
    paper_grid: ``bap="paper"`` pools its M x H x W maps to this square grid, so the
        classifier's size does not depend on the input size.
    feature_stage: which backbone stage (0..3, strides 4..32) feeds BAP; ``None``: the
        stride-16 stage (Inception-v3 Mixed_6e, the paper's cut; ResNet layer3), except
        EfficientNet-Lite0, whose whole pretrained extractor (stage 3, 1280 channels) is used.
    cascade: the fine pass (mask from the up-sampled attention, same feature network,
        its own head). ``False``: backbone + BAP + center loss only (Table 9's
        "IncV3 + Attention"); the prediction is then the coarse head's.
    fine_attention: the fine pass's attention conv: its ``"own"`` (default) or the coarse
        pass's (``"shared"``).
    upsampler: ``"learned"`` transposed convolutions (pre-trained on synthetic pairs) or
        a fixed ``"bilinear"`` interpolation.
    upsampler_width: channels of the up-sampler's first transposed conv (halved per layer).
    mask_grad: the fine cross-entropy reaches the coarse pass through the mask
        (``False``: the mask is detached, the feedback path of the paper is cut).
    orthogonal_init: Algorithm 1, lines 2-3 (rows of the attention weight from its SVD).
    center_lambda, center_beta: lambda of Eq. (4), beta of Eq. (3).
    center_reduction: Eq. (2) averaged over the images of the batch or over the classes
        present in it.
    normalize_centers: the loss compares a feature matrix with its class center scaled to
        unit norm (the features have unit norm).
    feature_scale: the classifiers see ``feature_scale`` x the unit-norm feature matrix.
    inference: the final prediction: ``"coarse"``, ``"fine"`` or ``"average"`` (of the
        two heads' probabilities); all three are reported as heads either way.
    pretrain_pairs, pretrain_epochs, pretrain_size: synthetic up-sampler pre-training
        (pairs, epochs, side of the low-resolution input maps); ``pretrain_pairs=0`` skips it.
    """

    method_title: ClassVar[str] = "coarse2fine"
    num_maps: int = 8
    bap: Literal["wsdan", "paper", "none"] = "wsdan"
    paper_pool: Literal["avg", "max"] = "avg"
    paper_grid: int = 28
    feature_stage: int | None = None
    cascade: bool = True
    fine_attention: Literal["own", "shared"] = "own"
    upsampler: Literal["learned", "bilinear"] = "learned"
    upsampler_width: int = 32
    mask_grad: bool = True
    orthogonal_init: bool = True
    center_lambda: float = 1.0
    center_beta: float = 0.05
    center_reduction: Literal["batch", "classes"] = "batch"
    normalize_centers: bool = True
    feature_scale: float = 10.0
    inference: Literal["coarse", "fine", "average"] = "average"
    pretrain_pairs: int = 60000
    pretrain_epochs: int = 100
    pretrain_size: int = 8

    def check(self) -> None:
        if self.num_maps < 1:
            raise FGVCError(f"coarse2fine option num_maps={self.num_maps} must be >= 1",
                            "pass e.g. num_maps=8 (the paper's M)")
        if self.paper_grid < 1:
            raise FGVCError(f"coarse2fine option paper_grid={self.paper_grid} must be >= 1",
                            "pass e.g. paper_grid=28 (448 px at stride 16)")
        if self.feature_stage is not None and not 0 <= self.feature_stage <= 3:
            raise FGVCError(f"coarse2fine option feature_stage={self.feature_stage} must be "
                            "0, 1, 2 or 3", "pass e.g. feature_stage=2 (stride 16)")
        if self.upsampler_width < 1:
            raise FGVCError(f"coarse2fine option upsampler_width={self.upsampler_width} must "
                            "be >= 1", "pass e.g. upsampler_width=32")
        for name in ("center_lambda", "feature_scale"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise FGVCError(f"coarse2fine option {name}={value!r} must be a finite "
                                "number >= 0", f"pass e.g. {name}=1.0")
        if not 0.0 <= self.center_beta <= 1.0:
            raise FGVCError(f"coarse2fine option center_beta={self.center_beta!r} must lie "
                            "in [0, 1]", "pass e.g. center_beta=0.05 (WS-DAN's value)")
        for name in ("pretrain_pairs", "pretrain_epochs"):
            if getattr(self, name) < 0:
                raise FGVCError(f"coarse2fine option {name}={getattr(self, name)} must be "
                                ">= 0", f"pass e.g. {name}=0 to skip the pre-training")
        if self.pretrain_size < 1:
            raise FGVCError(f"coarse2fine option pretrain_size={self.pretrain_size} must be "
                            ">= 1", "pass e.g. pretrain_size=8")
        if self.bap == "none" and self.cascade:
            raise FGVCError("coarse2fine option bap='none' (the plain backbone) has no "
                            "attention maps to build the fine image from, but cascade=True",
                            "set cascade=False with bap='none'")
