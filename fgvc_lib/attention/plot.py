"""Figures for the chapters: heat-map overlays and attention grids.

Learning curves of recorded runs are :func:`fgvc_lib.reports.plots.plot_curves`.

Every function returns a :class:`matplotlib.figure.Figure` built without
pyplot, so nothing here selects or changes the backend and no figure is
kept alive in pyplot's global list. In a notebook a returned figure shows
as the cell's value (or with ``display(fig)``); elsewhere use
``fig.savefig(path)``.

Implementation notes
--------------------
* Images may come as ``uint8`` HWC arrays, PIL images, float arrays in
  [0, 1], or ``(3, H, W)`` tensors; normalised tensors are turned back into
  pixels with :func:`denormalize` (pass ``mean`` / ``std``).
* A heat map of another size than its image is resized bilinearly; values
  outside [0, 1] are min-max normalised first (a raw CAM).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from fgvc_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fgvc_lib.errors import FGVCError


def denormalize(tensor: torch.Tensor, mean: Sequence[float] = IMAGENET_MEAN,
                std: Sequence[float] = IMAGENET_STD) -> np.ndarray:
    """Undo ``(x - mean) / std``: ``(3, H, W)`` -> ``(H, W, 3)`` ``uint8``
    (or ``(B, 3, H, W)`` -> ``(B, H, W, 3)``)."""
    x = torch.as_tensor(tensor).detach().float().cpu()
    if x.ndim not in (3, 4) or x.shape[-3] != 3:
        raise FGVCError(f"denormalize expects (3, H, W) or (B, 3, H, W), got {tuple(x.shape)}",
                        "pass the normalised image tensor the model was fed")
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
    pixels = ((x * s + m) * 255.0).round().clamp(0, 255).to(torch.uint8)
    return pixels.movedim(-3, -1).numpy()


def _image_float(image: Any) -> np.ndarray:
    """Any supported image -> float ``(H, W, 3)`` in [0, 1]."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu()
        if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
            image = image.movedim(0, -1)
        image = image.numpy()
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    else:
        arr = arr.astype(np.float32)
        if arr.size and (arr.min() < -1e-3 or arr.max() > 1 + 1e-3):
            raise FGVCError(f"float image values span [{arr.min():.2f}, {arr.max():.2f}], not [0, 1]",
                            "pass uint8 pixels, or call denormalize(tensor, mean, std) first")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    if arr.ndim != 3 or arr.shape[-1] != 3:
        raise FGVCError(f"cannot read an RGB image from shape {arr.shape}",
                        "pass (H, W, 3), (3, H, W) or (H, W) images")
    return np.clip(arr, 0.0, 1.0)


def _heat_float(heatmap: Any, size: tuple[int, int]) -> np.ndarray:
    """A 2-D map as float ``(H, W)`` in [0, 1] at ``size`` = ``(H, W)``."""
    heat = torch.as_tensor(np.asarray(heatmap.detach().cpu() if isinstance(heatmap, torch.Tensor)
                                      else heatmap, dtype=np.float32))
    heat = heat.squeeze()
    if heat.ndim != 2:
        raise FGVCError(f"a heat map must be 2-D, got shape {tuple(heat.shape)}",
                        "pass one (h, w) map per image")
    heat = torch.nan_to_num(heat)
    lo, hi = heat.min(), heat.max()
    if lo < 0 or hi > 1:
        heat = (heat - lo) / (hi - lo).clamp_min(1e-12)
    if tuple(heat.shape) != tuple(size):
        heat = F.interpolate(heat[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    return heat.clamp(0, 1).numpy()


#: Overlay colormap: perceptually uniform (equal steps of attention look equal), unlike jet.
ATTENTION_CMAP = "inferno"


def overlay(image: Any, heatmap: Any, alpha: float = 0.5, cmap: str = ATTENTION_CMAP) -> np.ndarray:
    """Blend a coloured heat map onto an image: ``(1 - alpha) * image + alpha * cmap(heat)``.

    Returns ``uint8`` ``(H, W, 3)`` at the image's size.
    """
    if not 0.0 <= alpha <= 1.0:
        raise FGVCError(f"alpha must be in [0, 1], got {alpha}", "use e.g. alpha=0.5")
    if cmap not in colormaps:
        raise FGVCError(f"unknown matplotlib colormap {cmap!r}", "use e.g. 'jet', 'viridis' or 'inferno'")
    img = _image_float(image)
    heat = _heat_float(heatmap, img.shape[:2])
    colour = colormaps[cmap](heat)[..., :3]
    blended = (1.0 - alpha) * img + alpha * colour
    return np.round(blended * 255.0).clip(0, 255).astype(np.uint8)


def _box_list(boxes: Any, batch: int) -> list[np.ndarray]:
    """Per image, an ``(P, 4)`` array of boxes (NaN rows dropped)."""
    if boxes is None:
        return [np.zeros((0, 4), np.float32)] * batch
    if isinstance(boxes, torch.Tensor):
        boxes = boxes.detach().cpu().numpy()
    if len(boxes) != batch:
        raise FGVCError(f"got boxes for {len(boxes)} images but {batch} images",
                        "pass one box (or list of boxes) per image")
    out = []
    for item in boxes:
        arr = np.asarray(item, dtype=np.float32).reshape(-1, 4)
        out.append(arr[~np.isnan(arr).any(1)])
    return out


def show_attention_grid(images: Any, maps: Mapping[str, Any], boxes: Any = None,
                        titles: Sequence[str] | None = None, alpha: float = 0.5,
                        cmap: str = ATTENTION_CMAP, show_input: bool = True,
                        mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                        cell_size: float = 2.2, box_color: str = "lime",
                        colorbar: bool = True) -> Figure:
    """A grid with one row per image and one column per attention map.

    Parameters
    ----------
    images: ``(B, 3, H, W)`` tensor, ``(B, H, W, 3)`` array or a list of images;
        normalised tensors need ``mean`` and ``std``.
    maps: column name -> ``(B, h, w)`` maps (any resolution; resized).
    boxes: optional per-image box ``(B, 4)`` or boxes ``(B, P, 4)`` / list,
        in image pixels, drawn on every panel.
    titles: optional one label per row (e.g. ``"true / predicted"``).
    show_input: add a first column with the plain image.
    colorbar: one colour scale beside the map columns (maps outside [0, 1] are min-max
        normalised per image before colouring, so the scale reads 0 = least, 1 = most).
    """
    if mean is not None or std is not None:
        images = denormalize(images, mean or IMAGENET_MEAN, std or IMAGENET_STD)
    if isinstance(images, torch.Tensor) and images.ndim == 3:
        images = images.unsqueeze(0)
    pictures = [_image_float(img) for img in images]
    batch = len(pictures)
    if batch == 0:
        raise FGVCError("show_attention_grid got no images", "pass at least one image")
    for name, stack in maps.items():
        if len(stack) != batch:
            raise FGVCError(f"map {name!r} has {len(stack)} entries for {batch} images",
                            "pass one map per image for every column")
    if titles is not None and len(titles) != batch:
        raise FGVCError(f"got {len(titles)} row titles for {batch} images", "pass one title per image")
    box_sets = _box_list(boxes, batch)

    columns = (["input"] if show_input else []) + list(maps)
    if not columns:
        raise FGVCError("nothing to show: no maps and show_input=False", "pass at least one map")
    fig = Figure(figsize=(cell_size * len(columns), cell_size * batch), layout="constrained")
    axes = fig.subplots(batch, len(columns), squeeze=False)
    for row, picture in enumerate(pictures):
        panels = ([picture] if show_input else []) + [
            overlay(picture, maps[name][row], alpha=alpha, cmap=cmap) for name in maps]
        for col, panel in enumerate(panels):
            ax = axes[row, col]
            ax.imshow(panel)
            for x0, y0, x1, y1 in box_sets[row]:
                ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                       edgecolor=box_color, linewidth=1.5))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(columns[col], fontsize=9)
            if col == 0 and titles is not None:
                ax.set_ylabel(titles[row], fontsize=9)
    if colorbar and maps:
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import Normalize

        map_axes = axes[:, 1:] if show_input else axes
        bar = fig.colorbar(ScalarMappable(Normalize(0.0, 1.0), cmap=cmap), ax=map_axes,
                           shrink=min(1.0, 0.9 / batch ** 0.5), aspect=15, pad=0.02)
        bar.set_label("attention", fontsize=9)
        bar.ax.tick_params(labelsize=9)
    return fig
