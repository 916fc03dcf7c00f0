"""Weakly supervised localisation for Table 7: a box from the attention, and the error metric.

Box rule (Fig. 6's caption: up-sampler, then an averaging convolution, then a
threshold; the kernel, the threshold and how a box is read off are not given,
so these are ours):

1. the mean of the up-sampled attention maps, ``(B, H, W)`` at image size;
2. a ``k x k`` box filter, ``k`` the odd number nearest ``H / 8`` (at least 3),
   zero padding not counted;
3. min-max normalisation to [0, 1] and the threshold ``t = 0.5``;
4. the tight box around the largest 4-connected region above the threshold
   (an empty region gives the whole image).

Metric (Zhang et al., 2018, as the paper uses it): an image is localised
correctly when the IoU of the predicted and the true box is *greater than*
0.5 and the predicted class is right; the localisation error is the percentage
of images that are not. Boxes are ``x0, y0, x1, y1`` in pixels, ``x1, y1``
exclusive.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from fgvc_lib.models.blocks.cam import minmax_normalize


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of matching rows of two ``(B, 4)`` box tensors."""
    a, b = a.float(), b.float()
    iw = (torch.minimum(a[:, 2], b[:, 2]) - torch.maximum(a[:, 0], b[:, 0])).clamp_min(0)
    ih = (torch.minimum(a[:, 3], b[:, 3]) - torch.maximum(a[:, 1], b[:, 1])).clamp_min(0)
    inter = iw * ih
    area = lambda x: (x[:, 2] - x[:, 0]).clamp_min(0) * (x[:, 3] - x[:, 1]).clamp_min(0)  # noqa: E731
    union = area(a) + area(b) - inter
    return inter / union.clamp_min(1e-12)


def localization_correct(pred_boxes: torch.Tensor, true_boxes: torch.Tensor,
                         pred_labels: torch.Tensor, true_labels: torch.Tensor,
                         iou_threshold: float = 0.5) -> torch.Tensor:
    """Per image: IoU strictly above ``iou_threshold`` and the right label (bool ``(B,)``)."""
    return (box_iou(pred_boxes, true_boxes) > iou_threshold) & (
        torch.as_tensor(pred_labels) == torch.as_tensor(true_labels))


def localization_error(pred_boxes: torch.Tensor, true_boxes: torch.Tensor,
                       pred_labels: torch.Tensor, true_labels: torch.Tensor) -> float:
    """Table 7's error in %: the share of images not localised correctly."""
    ok = localization_correct(pred_boxes, true_boxes, pred_labels, true_labels)
    return 100.0 * (1.0 - ok.float().mean().item())


def smoothing_kernel(size: int) -> int:
    """The box filter's side for an image side ``size``: odd, nearest ``size / 8``, >= 3."""
    k = max(3, int(round(size / 8)))
    return k if k % 2 == 1 else k + 1


def smooth(maps: torch.Tensor, kernel: int) -> torch.Tensor:
    """The averaging convolution: ``(B, H, W)`` -> same size, padding not counted."""
    return F.avg_pool2d(maps[:, None].float(), kernel, stride=1, padding=kernel // 2,
                        count_include_pad=False)[:, 0]


def largest_region_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Tight ``x0, y0, x1, y1`` box of the largest 4-connected ``True`` region of ``(H, W)``."""
    from scipy import ndimage

    h, w = mask.shape
    labels, n = ndimage.label(mask)
    if n == 0:
        return 0, 0, w, h
    sizes = np.bincount(labels.ravel())[1:]
    ys, xs = np.nonzero(labels == 1 + int(np.argmax(sizes)))
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def attention_box(maps: torch.Tensor, t: float = 0.5, kernel: int | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """Steps 2-4 of the box rule for up-sampled mean maps ``(B, H, W)``.

    Returns ``(boxes (B, 4) float, thresholded masks (B, H, W) bool)``.
    """
    kernel = kernel or smoothing_kernel(maps.shape[-1])
    norm = minmax_normalize(smooth(maps, kernel))
    masks = norm > t
    boxes = torch.tensor([largest_region_box(m) for m in masks.cpu().numpy()],
                         dtype=torch.float32)
    return boxes, masks


__all__ = ["attention_box", "box_iou", "largest_region_box", "localization_correct",
           "localization_error", "smooth", "smoothing_kernel"]
