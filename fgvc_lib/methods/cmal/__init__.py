"""CMAL-Net: cross-layer mutual attention learning (Liu et al., Pattern Recognition 140, 2023).

The network, its training step and the implementation notes (where the paper
is open, what we chose) are in :mod:`fgvc_lib.methods.cmal.model`; the
Table 2 augmentation baselines in :mod:`.augment`; the chapter's figures in
:mod:`.figures`; the paper's tables in ``tables.json``.

Use it through the registry::

    model = build_model("cmal", num_classes=100, backbone="resnet50", cv=1024)
"""
from __future__ import annotations

from pathlib import Path

from fgvc_lib.methods.cmal.options import AUGMENTATIONS, CMALOptions
from fgvc_lib.methods.spec import MethodSpec, ReleasedLoop


def _build(num_classes: int, backbone: str, pretrained: bool, weights: str | None,
           options: CMALOptions):
    from fgvc_lib.methods.cmal.model import CMALNet

    return CMALNet(num_classes, backbone, pretrained, weights, options)


#: The paper's Sec. 4.1 settings; backbone_lr_mult from the released code (note 11).
CMAL_RECIPE = {
    "optimizer": "sgd", "lr": 0.002, "momentum": 0.9, "weight_decay": 5e-4,
    "batch_size": 16, "epochs": 200, "scheduler": "cosine", "image_size": 448,
    "backbone_lr_mult": 0.1,
}

#: Sec. 4.1: TResNet-L is trained at 368 x 368 (its authors' setting), the others at 448.
CMAL_BACKBONE_RECIPE = {"tresnet_l": {"image_size": 368}}

SPEC = MethodSpec(
    name="cmal", title="CMAL-Net", options=CMALOptions, build=_build,
    default_backbone="resnet50", paper_recipe=CMAL_RECIPE, backbone_recipe=CMAL_BACKBONE_RECIPE,
    # At 64 px on ResNet-18 a 1024-wide 3x3 head on stage 3 costs twice the backbone,
    # five times per training step: the smoke profile uses C_v = 256.
    profile_options={"smoke": {"cv": 256}},
    comparison_maps={"expert 3": "expert3", "overall": "oval"},
    released_loop=ReleasedLoop(54.0, 3.0, "ResNet-50, 448 px, batch 16, H100"),
    tables_file=Path(__file__).with_name("tables.json"),
    # mda_draw was "sample" (per image) before it became "batch"; records made before
    # resolved_options existed ran with the old default. Records made before
    # truncated_steps existed ran every step through the whole network.
    legacy_defaults={"mda_draw": "sample", "truncated_steps": False}, chapter="02_cmal_net")

__all__ = ["AUGMENTATIONS", "CMALOptions", "CMAL_BACKBONE_RECIPE", "CMAL_RECIPE", "SPEC"]
