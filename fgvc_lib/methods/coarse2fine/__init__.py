"""Coarse2Fine (Eshratifar et al.): BAP, center loss, a learned up-sampler, a fine pass.

The network, its training step and the implementation notes are in
:mod:`fgvc_lib.methods.coarse2fine.model`; bilinear attention pooling and the
SVD initialisation in :mod:`.bap`; the center loss in :mod:`.center`; the
up-sampler and its pre-training in :mod:`.upsampler`; the localisation metric
of Table 7 in :mod:`.localization`; the chapter's figures in :mod:`.figures`;
the paper's tables in ``tables.json``.
"""
from __future__ import annotations

from pathlib import Path

from fgvc_lib.methods.coarse2fine.options import Coarse2FineOptions
from fgvc_lib.methods.spec import MethodSpec


def _build(num_classes: int, backbone: str, pretrained: bool, weights: str | None,
           options: Coarse2FineOptions):
    from fgvc_lib.methods.coarse2fine.model import Coarse2Fine

    return Coarse2Fine(num_classes, backbone, pretrained, weights, options)


#: Setup section: Inception-v3, SGD momentum 0.9, 200 epochs, weight decay 1e-5, batch 64.
#: Input size, lr and schedule are not given: 448 px, lr 0.005, per-step cosine (note 12).
COARSE2FINE_RECIPE = {
    "backbone": "inception_v3", "optimizer": "sgd", "momentum": 0.9, "epochs": 200,
    "weight_decay": 1e-5, "batch_size": 64, "lr": 0.005, "scheduler": "cosine",
    "backbone_lr_mult": 1.0, "warmup_epochs": 0, "image_size": 448,
}

#: Only the scale changes per profile: the up-sampler's pre-training (the paper: 60,000
#: pairs, 100 epochs, the defaults) and the grid of ``bap="paper"`` (the map side).
PROFILE_OPTIONS = {
    "smoke": {"pretrain_pairs": 600, "pretrain_epochs": 3, "pretrain_size": 4, "paper_grid": 4},
    "gpu": {"pretrain_pairs": 20000, "pretrain_epochs": 10},
    "transfer": {"pretrain_pairs": 6000, "pretrain_epochs": 5, "pretrain_size": 7,
                 "paper_grid": 7},
}

SPEC = MethodSpec(
    name="coarse2fine", title="Coarse2Fine", options=Coarse2FineOptions, build=_build,
    default_backbone="inception_v3", paper_recipe=COARSE2FINE_RECIPE,
    profile_options=PROFILE_OPTIONS,
    comparison_maps={"mean attention": "mean", "mask": "mask"},
    tables_file=Path(__file__).with_name("tables.json"), chapter="06_coarse2fine")

__all__ = ["COARSE2FINE_RECIPE", "Coarse2FineOptions", "PROFILE_OPTIONS", "SPEC"]
