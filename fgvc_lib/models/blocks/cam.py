"""Class activation maps and attention boxes (CMAL-Net Eqs. (4)-(7)).

Everything here is batched: no per-image Python loop on the hot path.
Maps are ``(B, h, w)``; boxes are ``(B, 4)`` as ``x0, y0, x1, y1`` in pixel
coordinates of the map they came from, with ``x1, y1`` exclusive.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align


def class_activation_map(features: torch.Tensor, class_weights: torch.Tensor,
                         classes: torch.Tensor) -> torch.Tensor:
    """CAM (Zhou et al.; CMAL-Net Eq. (4)): ``Omega(a, b) = sum_c w_k^c x^c(a, b)``.

    features: ``(B, C, h, w)``; class_weights: ``(K, C)``; classes: ``(B,)``.
    Returns ``(B, h, w)``.
    """
    w = class_weights[classes].to(features.dtype)  # (B, C)
    return torch.einsum("bc,bchw->bhw", w, features)


def upsample_maps(maps: torch.Tensor, size: tuple[int, int] | int) -> torch.Tensor:
    """Bilinear up-sampling of ``(B, h, w)`` maps to ``size`` (CMAL-Net, after Eq. (4))."""
    if isinstance(size, int):
        size = (size, size)
    return F.interpolate(maps.unsqueeze(1).float(), size=size, mode="bilinear",
                         align_corners=False).squeeze(1)


def minmax_normalize(maps: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Per-map min-max normalisation to [0, 1] (CMAL-Net Eq. (5)).

    A constant map becomes all zeros (so no pixel exceeds any threshold t >= 0).
    """
    flat = maps.flatten(1)
    lo = flat.min(dim=1, keepdim=True).values
    hi = flat.max(dim=1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(eps)).view_as(maps)


def threshold_mask(norm_maps: torch.Tensor, t: float) -> torch.Tensor:
    """Binary mask of pixels strictly above ``t`` (CMAL-Net Eq. (6))."""
    return norm_maps > t


def mask_to_box(mask: torch.Tensor) -> torch.Tensor:
    """Smallest box covering all positive pixels of each ``(B, H, W)`` mask.

    Returns float ``(B, 4)`` ``x0, y0, x1, y1`` with exclusive ``x1, y1``.
    An empty mask gives the whole image (no crop).
    """
    b, h, w = mask.shape
    rows = mask.any(dim=2)  # (B, H)
    cols = mask.any(dim=1)  # (B, W)
    ar_h = torch.arange(h, device=mask.device)
    ar_w = torch.arange(w, device=mask.device)
    big = torch.iinfo(torch.long).max
    y0 = torch.where(rows, ar_h, big).amin(1)
    y1 = torch.where(rows, ar_h, -1).amax(1) + 1
    x0 = torch.where(cols, ar_w, big).amin(1)
    x1 = torch.where(cols, ar_w, -1).amax(1) + 1
    empty = ~rows.any(1)
    box = torch.stack([x0, y0, x1, y1], 1)
    full = torch.tensor([0, 0, w, h], device=mask.device)
    box = torch.where(empty[:, None], full, box)
    return box.float()


def pad_boxes(boxes: torch.Tensor, pad: float, size: tuple[int, int]) -> torch.Tensor:
    """Grow boxes by ``pad`` x image side on each side, clipped to the image."""
    h, w = size
    grow = torch.tensor([-pad * w, -pad * h, pad * w, pad * h], device=boxes.device)
    out = boxes + grow
    limit = torch.tensor([w, h, w, h], device=boxes.device, dtype=boxes.dtype)
    return torch.minimum(out.clamp_min(0), limit)


def crop_and_resize(images: torch.Tensor, boxes: torch.Tensor,
                    out_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Crop each image to its box and resize it bilinearly to ``out_size``
    (default: the input size), in one batched ``roi_align`` call.

    One bilinear sample per output pixel, at the pixel's centre
    (``sampling_ratio=1``, ``aligned=True``): a full-image box returns the
    image unchanged, an integer box of the output size returns the exact
    pixels, and an up-scaled crop equals ``F.interpolate(...,
    align_corners=False)`` of the cropped pixels except along the crop's
    border, where it reads the neighbouring image pixels instead of
    repeating the edge. (Two samples per bin would average
    neighbouring pixels and blur even the identity crop.) Box coordinates
    stay in float32 whatever the image dtype: bfloat16 cannot represent
    pixel positions above 256 exactly.
    """
    b, _, h, w = images.shape
    out_size = out_size or (h, w)
    idx = torch.arange(b, device=images.device, dtype=torch.float32)[:, None]
    rois = torch.cat([idx, boxes.to(device=images.device, dtype=torch.float32)], 1)
    source = images if images.dtype in (torch.float32, torch.float64) else images.float()
    crops = roi_align(source, rois.to(source.dtype), output_size=out_size, spatial_scale=1.0,
                      sampling_ratio=1, aligned=True)
    return crops.to(images.dtype)


def attention_boxes(maps: torch.Tensor, image_size: tuple[int, int], t: float) -> torch.Tensor:
    """Eqs. (4)-(6) after the CAM: up-sample, min-max normalise, threshold, box.

    maps: ``(B, h, w)`` raw CAMs. Returns boxes ``(B, 4)`` in input-pixel coordinates.
    """
    norm = minmax_normalize(upsample_maps(maps, image_size))
    return mask_to_box(threshold_mask(norm, t))
