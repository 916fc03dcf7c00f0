"""CNL (Ye et al., ICIP 2020): cross-layer non-local module, with the non-local baseline.

The blocks (Eqs. (1)-(3)) are in :mod:`fgvc_lib.methods.cnl.blocks`; the network, where
the blocks go and the implementation notes in :mod:`fgvc_lib.methods.cnl.model`; the
chapter's figures and the cost and memory analysis in :mod:`.figures`; the paper's tables
in ``tables.json``.
"""
from __future__ import annotations

from pathlib import Path

from fgvc_lib.methods.cnl.options import CNLOptions
from fgvc_lib.methods.spec import MethodSpec


def _build(num_classes: int, backbone: str, pretrained: bool, weights: str | None,
           options: CNLOptions):
    from fgvc_lib.methods.cnl.model import CNLNet

    return CNLNet(num_classes, backbone, pretrained, weights, options)


#: Sec. 3.1: 448 px train and test, 110 epochs with 10 of gradual warm-up, batch 64, lr 0.01
#: decayed at epochs 50, 70, 90. "Decays by 0.9" read as x0.1 (note 9 of the model's
#: docstring); optimiser, momentum, weight decay: not stated, the released code's.
CNL_RECIPE = {
    "optimizer": "sgd", "momentum": 0.9, "weight_decay": 1e-4, "batch_size": 64, "lr": 0.01,
    "epochs": 110, "warmup_epochs": 10, "scheduler": "multistep", "milestones": [50, 70, 90],
    "gamma": 0.1, "backbone_lr_mult": 1.0, "image_size": 448,
}

#: Options of the rows of Table 2 (and of Table 3's "Ours" row: +5CNL).
TABLE2_ROWS: dict[str, dict] = {"+5NL": {"variant": "nl"}, "+5CNL": {"variant": "cnl"}}

SPEC = MethodSpec(
    name="cnl", title="CNL", options=CNLOptions, build=_build,
    default_backbone="resnet50", paper_recipe=CNL_RECIPE,
    comparison_maps={"CNL, shallowest response": "r1", "CNL, deepest response": "r_last"},
    tables_file=Path(__file__).with_name("tables.json"), chapter="04_cnl")

__all__ = ["CNLOptions", "CNL_RECIPE", "SPEC", "TABLE2_ROWS"]
