"""Attention tools shared by the chapters.

* :mod:`~fgvc_lib.attention.gradcam` -- Grad-CAM, Grad-CAM++, LayerCAM and
  FinerCAM on any registered model, and the model's own attention maps;
* :mod:`~fgvc_lib.attention.metrics` -- attention precision, ACE and ACR
  (CMAL-Net Sec. 4.5), pointing game, energy in part boxes;
* :mod:`~fgvc_lib.attention.plot` -- overlays and attention grids.

Every map here is ``(B, H, W)`` at input resolution, in [0, 1].
"""
from fgvc_lib.attention.gradcam import (CAM_METHODS, HeadSelector, attention_from_output, compute_cam,
                                        model_attention, resolve_cam_layer)
from fgvc_lib.attention.metrics import (attention_capturing_error, attention_capturing_recall,
                                        attention_mask, attention_precision, box_masks,
                                        box_to_input_coords, energy_in_boxes, pointing_game)
from fgvc_lib.attention.plot import denormalize, overlay, show_attention_grid
from fgvc_lib.models.blocks.cam import minmax_normalize, upsample_maps

__all__ = [
    "CAM_METHODS", "HeadSelector", "attention_capturing_error", "attention_capturing_recall",
    "attention_from_output", "attention_mask", "attention_precision", "box_masks",
    "box_to_input_coords", "compute_cam", "denormalize", "energy_in_boxes", "minmax_normalize",
    "model_attention", "overlay", "pointing_game", "resolve_cam_layer",
    "show_attention_grid", "upsample_maps",
]
