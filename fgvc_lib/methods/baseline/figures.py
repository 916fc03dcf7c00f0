"""The baseline chapter's analysis helpers: its attention, read four ways.

The baseline has no attention module of its own; chapter 01 compares the
class activation map of its linear head (CAM) with gradient-based maps
(Grad-CAM on stage 5, LayerCAM on the shallower stages 4 and 3), which any
method in the book can be given. :data:`CAM_VARIANTS` names them once, for
the picture grid and for the attention table (``attention_report``).
"""
from __future__ import annotations

import numpy as np
import torch

from fgvc_lib.attention.report import named_map

#: Label in the chapter -> map name understood by ``attention_report`` / ``named_map``.
CAM_VARIANTS: dict[str, str] = {
    "CAM": "cam",
    "Grad-CAM (stage 5)": "gradcam",
    "LayerCAM (stage 4)": "layercam@stage4",
    "LayerCAM (stage 3)": "layercam@stage3",
}


def cam_variant_maps(model: torch.nn.Module, images: torch.Tensor,
                     image_size: int) -> tuple[dict[str, np.ndarray], torch.Tensor]:
    """Every map of :data:`CAM_VARIANTS` for normalised ``images`` (``(B, H, W)`` each,
    in [0, 1]) and the model's predicted classes; the model's mode is restored."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(images)
        maps = {label: named_map(model, images, out, name, image_size)
                for label, name in CAM_VARIANTS.items()}
    finally:
        model.train(was_training)
    return maps, out.logits.argmax(1).cpu()
