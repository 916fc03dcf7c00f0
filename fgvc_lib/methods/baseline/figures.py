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


def method_diagram():
    """The baseline as a diagram: five backbone stages, global average pooling and one
    linear layer give the scores s_k; the same weights applied at every position of the
    last feature map give the class activation map (the chapter's CAM equation)."""
    from matplotlib.figure import Figure

    from fgvc_lib.reports.diagrams import DATA, MODEL, NOTE, RECORD, draw_arrow, draw_box

    fig = Figure(figsize=(7.2, 2.9))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 14.4)
    ax.set_ylim(0, 5.8)
    ax.axis("off")
    draw_box(ax, (0.1, 3.2), 1.3, 1.3, "input\nimage", DATA, 9.5)
    xs = [1.8 + 1.2 * i for i in range(5)]
    for i, x in enumerate(xs):
        draw_box(ax, (x, 3.2), 1.0, 1.3, f"stage\n{i + 1}", MODEL, 9.5)
        draw_arrow(ax, ((xs[i - 1] + 1.0) if i else 1.4, 3.85), (x, 3.85))
    draw_box(ax, (7.9, 3.2), 2.0, 1.3, "$X$: $C \\times h \\times w$\n(stride 32)", NOTE, 9.5)
    draw_arrow(ax, (xs[-1] + 1.0, 3.85), (7.9, 3.85))
    draw_box(ax, (10.3, 3.2), 1.4, 1.3, "global\naverage\npool", MODEL, 9.5)
    draw_arrow(ax, (9.9, 3.85), (10.3, 3.85))
    draw_box(ax, (12.1, 3.2), 2.2, 1.3, "linear $w_k, b_k$\nscores $s_k$", RECORD, 9.5)
    draw_arrow(ax, (11.7, 3.85), (12.1, 3.85))
    draw_box(ax, (7.9, 0.5), 4.4, 1.3,
             "CAM $\\Omega_k = \\sum_c w_k^c X^c$\n(the head at every position)", "#fee0d2", 9.5)
    draw_arrow(ax, (8.9, 3.2), (8.9, 1.8), color="tab:red", ls="--")
    draw_arrow(ax, (13.2, 3.2), (12.3, 1.3), color="tab:red", ls="--", rad=-0.2)
    ax.text(0.2, 1.15, "pooling and the linear layer commute:\n"
            "$s_k$ = spatial mean of $\\Omega_k$ + $b_k$", fontsize=9.5, ha="left", va="center")
    return fig
