"""How well attention maps fall on the object: precision, ACE, ACR, pointing game.

CMAL-Net Sec. 4.5 scores an attention map against the object's
ground-truth box: the map is turned into a mask exactly as the method
builds its attention regions (Eqs. (4)-(6): up-sample, min-max normalise,
keep pixels above ``t``), and the *attention precision* (after Liu et al.,
the paper's ref. [30]) is the share of the mask's positive pixels that lie
inside the box. From it:

* ACE (attention-capturing error, Table 5): share of images whose
  precision is below 50 %;
* ACR (attention-capturing recall, Table 6): per class, the share of
  images that are both predicted correctly and have precision >= 50 %,
  averaged over classes.

Two common part-level checks complete the set: the pointing-game hit (is
the map's maximum inside a part box?) and the share of the map's energy
inside the part boxes.

Conventions
-----------
Maps are ``(B, H, W)`` (torch or numpy) in the input image's pixel grid
(use :func:`box_to_input_coords` to bring dataset boxes there). Boxes are
``x0, y0, x1, y1`` with exclusive ``x1, y1`` as everywhere in the library:
one object box per image ``(B, 4)``, or several part boxes ``(B, P, 4)``
where a part that is absent is a row of NaN.

Implementation notes
--------------------
* A pixel is inside a box when its centre ``(x + 0.5, y + 0.5)`` is; for
  integer boxes this is exactly ``x0 <= x < x1`` and it stays sensible for
  the fractional boxes that resizing produces.
* An image whose mask is empty (a constant map: after Eq. (5) no pixel is
  above ``t``) has precision 0, so it counts as an ACE failure: a map that
  points nowhere has not captured the object.
* ACR averages over the classes present in ``targets`` (a class with no
  test image is skipped, not scored 0), like the mean per-class accuracy.
* The energy measure clips negative map values to 0 and uses the map as
  given (no min-max normalisation): normalising would subtract the
  background level and change the shares.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from fgvc_lib.errors import FGVCError
from fgvc_lib.models.blocks.cam import minmax_normalize, threshold_mask

ArrayLike = torch.Tensor | np.ndarray | Sequence

#: The paper's pass mark: an image "captures" the object at >= 50 % precision.
MIN_PRECISION = 0.5


def _as_tensor(x: ArrayLike, dtype: np.dtype | None = None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    return torch.as_tensor(np.asarray(x, dtype=dtype))


def _maps(maps: ArrayLike) -> torch.Tensor:
    out = _as_tensor(maps).float()
    if out.ndim == 2:
        out = out.unsqueeze(0)
    if out.ndim != 3:
        raise FGVCError(f"attention maps must be (B, H, W), got shape {tuple(out.shape)}",
                        "stack one 2-D map per image")
    return out


def _boxes(boxes: ArrayLike, batch: int, device: torch.device) -> torch.Tensor:
    """Boxes as float ``(B, P, 4)`` on ``device``."""
    out = _as_tensor(boxes, np.float32).to(device=device, dtype=torch.float32)
    if out.ndim == 1:
        out = out.unsqueeze(0)
    if out.ndim == 2:
        out = out.unsqueeze(1)
    if out.ndim != 3 or out.shape[-1] != 4 or out.shape[0] != batch:
        raise FGVCError(f"boxes of shape {tuple(out.shape)} do not match {batch} maps",
                        "pass (B, 4) object boxes or (B, P, 4) part boxes as x0, y0, x1, y1")
    return out


def box_masks(boxes: ArrayLike, size: tuple[int, int], batch: int | None = None) -> torch.Tensor:
    """Boolean ``(B, H, W)``: pixels whose centre lies in any of the image's boxes.

    ``boxes``: ``(B, 4)`` or ``(B, P, 4)``; ``size`` is ``(H, W)``; NaN boxes
    (absent parts) cover nothing.
    """
    raw = _as_tensor(boxes, np.float32)
    if batch is None:
        batch = raw.shape[0] if raw.ndim >= 2 else 1
    b = _boxes(raw, batch, raw.device)
    h, w = size
    xs = torch.arange(w, device=b.device, dtype=torch.float32) + 0.5
    ys = torch.arange(h, device=b.device, dtype=torch.float32) + 0.5
    in_x = (xs >= b[..., 0:1]) & (xs < b[..., 2:3])  # (B, P, W)
    in_y = (ys >= b[..., 1:2]) & (ys < b[..., 3:4])  # (B, P, H)
    return (in_y[..., :, None] & in_x[..., None, :]).any(dim=1)


def attention_mask(maps: ArrayLike, t: float = 0.5, normalize: bool = True) -> torch.Tensor:
    """Eqs. (5)-(6): min-max normalise each map, keep pixels strictly above ``t``."""
    m = _maps(maps)
    return threshold_mask(minmax_normalize(m) if normalize else m, t)


def attention_precision(maps: ArrayLike, boxes: ArrayLike, t: float = 0.5,
                        normalize: bool = True) -> torch.Tensor:
    """Share of each mask's positive pixels inside the ground-truth box, ``(B,)``.

    ``boxes``: ``(B, 4)`` (or ``(B, P, 4)``: inside any of them). An empty
    mask gives 0.
    """
    mask = attention_mask(maps, t, normalize)
    inside = box_masks(boxes, tuple(mask.shape[-2:]), mask.shape[0]).to(mask.device)
    positives = mask.flatten(1).sum(1).float()
    hits = (mask & inside).flatten(1).sum(1).float()
    return torch.where(positives > 0, hits / positives.clamp_min(1), torch.zeros_like(hits))


def attention_capturing_error(maps: ArrayLike, boxes: ArrayLike, t: float = 0.5,
                              min_precision: float = MIN_PRECISION) -> float:
    """ACE (CMAL-Net Table 5): share of images with attention precision below 50 %."""
    precision = attention_precision(maps, boxes, t)
    return (precision < min_precision).float().mean().item()


def attention_capturing_recall(maps: ArrayLike, boxes: ArrayLike, preds: ArrayLike,
                               targets: ArrayLike, t: float = 0.5,
                               min_precision: float = MIN_PRECISION) -> float:
    """ACR (CMAL-Net Table 6): per class, the share of images predicted correctly
    *and* with precision >= 50 %, averaged over the classes present in ``targets``.

    ``preds`` are class indices ``(B,)`` or logits ``(B, K)`` (arg-maxed).
    """
    precision = attention_precision(maps, boxes, t)
    preds_t = _as_tensor(preds)
    targets_t = _as_tensor(targets).long().flatten().cpu()
    if preds_t.ndim == 2:
        preds_t = preds_t.argmax(1)
    preds_t = preds_t.long().flatten().cpu()
    if not (preds_t.numel() == targets_t.numel() == precision.numel()):
        raise FGVCError(f"{precision.numel()} maps, {preds_t.numel()} predictions and "
                        f"{targets_t.numel()} targets",
                        "pass one prediction and one target per map")
    good = ((preds_t == targets_t) & (precision.cpu() >= min_precision)).double()
    counts = torch.bincount(targets_t).double()
    hits = torch.bincount(targets_t, weights=good, minlength=counts.numel())
    present = counts > 0
    return (hits[present] / counts[present]).mean().item()


def pointing_game(maps: ArrayLike, boxes: ArrayLike, tolerance: float = 0.0) -> torch.Tensor:
    """Pointing-game hit per image ``(B,)`` bool: the map's maximum lies inside
    any of the image's (part) boxes, grown by ``tolerance`` pixels."""
    m = _maps(maps)
    b = _boxes(boxes, m.shape[0], m.device)
    b = b + torch.tensor([-tolerance, -tolerance, tolerance, tolerance], device=b.device)
    w = m.shape[-1]
    peak = m.flatten(1).argmax(1)
    px = (peak % w).float() + 0.5
    py = torch.div(peak, w, rounding_mode="floor").float() + 0.5
    inside = ((px[:, None] >= b[..., 0]) & (px[:, None] < b[..., 2])
              & (py[:, None] >= b[..., 1]) & (py[:, None] < b[..., 3]))
    return inside.any(1)


def energy_in_boxes(maps: ArrayLike, boxes: ArrayLike) -> torch.Tensor:
    """Share of each map's (non-negative) energy inside the union of its boxes, ``(B,)``.

    A map with no energy gives 0.
    """
    m = _maps(maps).clamp_min(0)
    inside = box_masks(_boxes(boxes, m.shape[0], m.device), tuple(m.shape[-2:]), m.shape[0])
    total = m.flatten(1).sum(1)
    within = (m * inside).flatten(1).sum(1)
    return torch.where(total > 0, within / total.clamp_min(1e-12), torch.zeros_like(total))


def box_to_input_coords(box: ArrayLike, orig_size: ArrayLike,
                        input_size: int | tuple[int, int]) -> torch.Tensor:
    """Map boxes from original-image pixels to a model input made by resizing the
    whole image to ``input_size`` (no crop; see ``box_preserving_transform``).

    box: ``(..., 4)`` ``x0, y0, x1, y1``; orig_size: ``(w, h)`` (PIL order, as in
    ``dataset.annotation(i)["size"]``) or ``(..., 2)``; input_size: side of the
    square input, or ``(w, h)``.
    """
    b = _as_tensor(box, np.float32).float()
    orig = _as_tensor(orig_size, np.float32).float().to(b.device)
    if b.shape[-1] != 4 or orig.shape[-1] != 2:
        raise FGVCError(f"box {tuple(b.shape)} / orig_size {tuple(orig.shape)} have the wrong layout",
                        "pass boxes as (..., 4) x0, y0, x1, y1 and sizes as (w, h)")
    if (orig <= 0).any():
        raise FGVCError(f"original image size must be positive, got {orig.tolist()}",
                        "pass the (width, height) of the image the box refers to")
    target = torch.tensor([input_size, input_size] if isinstance(input_size, int) else list(input_size),
                          dtype=torch.float32, device=b.device)
    scale = target / orig  # (..., 2) as (sx, sy)
    return b * torch.cat([scale, scale], dim=-1)
