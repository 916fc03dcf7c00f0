"""Cross-X learning (Luo et al., ICCV 2019): OSME, C3S, cross-layer KL, merged maps.

The network, its training step and the implementation notes are in
:mod:`fgvc_lib.methods.cross_x.model`; the OSME block in :mod:`.osme`; the
C3S and cross-layer losses in :mod:`.losses`; the chapter's figures in
:mod:`.figures`; the paper's tables in ``tables.json``.
"""
from __future__ import annotations

from pathlib import Path

from fgvc_lib.methods.cross_x.options import ABLATIONS, CrossXOptions, TABLE2
from fgvc_lib.methods.spec import MethodSpec, ReleasedLoop


def _build(num_classes: int, backbone: str, pretrained: bool, weights: str | None,
           options: CrossXOptions):
    from fgvc_lib.methods.cross_x.model import CrossX

    return CrossX(num_classes, backbone, pretrained, weights, options)


#: Sec. 4.2. Weight decay: paper silent, released code none -> none (note 19).
CROSS_X_RECIPE = {
    "optimizer": "sgd", "momentum": 0.9, "batch_size": 32, "lr": 0.01, "epochs": 30,
    "scheduler": "multistep", "milestones": [15], "gamma": 0.1, "weight_decay": 0.0,
    "backbone_lr_mult": 1.0, "warmup_epochs": 0, "image_size": 448,
}

SPEC = MethodSpec(
    name="cross_x", title="Cross-X", options=CrossXOptions, build=_build,
    default_backbone="seresnet50", paper_recipe=CROSS_X_RECIPE,
    comparison_maps={"L/p1": "L/p1", "L/p2": "L/p2", "G/p1": "G/p1", "G/p2": "G/p2"},
    released_loop=ReleasedLoop(176.0, 2.0, "ResNet-50, 448 px, batch 32, H100"),
    tables_file=Path(__file__).with_name("tables.json"),
    # "per_branch" since commit cdb7100; records before 9934820 lack resolved_options.
    # merge_order was "eq5" before it became "fpn"; c3s_form did not exist ("eq4").
    legacy_defaults={"data_loss": "mixture", "merge_order": "eq5", "c3s_form": "eq4"},
    chapter="03_cross_x")

__all__ = ["ABLATIONS", "CROSS_X_RECIPE", "CrossXOptions", "SPEC", "TABLE2"]
