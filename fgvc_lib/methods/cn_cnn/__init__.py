"""CN-CNN (Guo et al., 2021): cross-layer navigation with a ConvLSTM and attention.

The network, its training step and the implementation notes are in
:mod:`fgvc_lib.methods.cn_cnn.model`; the alignment, the two pathways and the
classifiers in :mod:`.pathways` (the ConvLSTM cell is the shared block
:mod:`fgvc_lib.models.blocks.convlstm`); the chapter's figures in
:mod:`.figures`; the paper's tables in ``tables.json``.
"""
from __future__ import annotations

from pathlib import Path

from fgvc_lib.methods.cn_cnn.options import CNCNNOptions, CONFIGS, RELEASED_LH
from fgvc_lib.methods.spec import MethodSpec


def _build(num_classes: int, backbone: str, pretrained: bool, weights: str | None,
           options: CNCNNOptions):
    from fgvc_lib.methods.cn_cnn.model import CNCNN

    return CNCNN(num_classes, backbone, pretrained, weights, options)


#: Sec. 3.1: 448 px, SGD momentum 0.9, weight decay 5e-4, 300 epochs, lr 0.001 for the
#: backbone and 0.1 for the new modules. Batch size and schedule are not stated (note 10).
CN_CNN_RECIPE = {
    "optimizer": "sgd", "lr": 0.1, "backbone_lr_mult": 0.01, "momentum": 0.9,
    "weight_decay": 5e-4, "epochs": 300, "image_size": 448, "batch_size": 16,
    "scheduler": "cosine", "schedule_unit": "step", "warmup_epochs": 0,
}

SPEC = MethodSpec(
    name="cn_cnn", title="CN-CNN", options=CNCNNOptions, build=_build,
    default_backbone="resnet50", paper_recipe=CN_CNN_RECIPE,
    # Narrower aligned maps and classifiers on the CPU (64 px inputs); the channel MLP
    # keeps 8 hidden units.
    profile_options={"smoke": {"width": 64, "cls_hidden": 128, "ca_reduction": 8}},
    comparison_maps={"LH S3": "LH/S3", "LH S4": "LH/S4", "LH S5": "LH/S5"},
    tables_file=Path(__file__).with_name("tables.json"), chapter="05_cn_cnn")

__all__ = ["CN_CNN_RECIPE", "CONFIGS", "CNCNNOptions", "RELEASED_LH", "SPEC"]
