"""Center loss for attention learning, Eqs. (2)-(3).

One center matrix per class (``K x M x D``, the shape of a part-feature matrix),
all zeros at the start, kept as a buffer (not a parameter: no gradient moves it).

* Eq. (2), :func:`center_loss`: squared Frobenius distance between each image's
  feature matrix and its class center; ``reduction="batch"`` averages over the
  images of the batch, ``"classes"`` first averages within each class present in
  the batch and then over those classes (Eq. (2)'s ``1/C sum_i`` with ``C`` the
  classes present: an absent class has no feature matrix to compare).
  ``normalize_centers=True`` compares with the center scaled to unit norm (the
  feature matrices have unit norm; a zero center stays zero).
* Eq. (3), :func:`update_centers`: ``c_i <- (1 - beta) c_i + beta f_i`` with ``f_i``
  the mean feature matrix of class ``i`` in the batch, detached; classes absent
  from the batch keep their centers. The loss of a step uses the centers from
  before that step's update.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def _unit(c: torch.Tensor) -> torch.Tensor:
    return F.normalize(c.flatten(1), dim=1).view_as(c)


def center_loss(features: torch.Tensor, targets: torch.Tensor, centers: torch.Tensor,
                reduction: str = "batch", normalize_centers: bool = True) -> torch.Tensor:
    """Eq. (2). features ``(B, M, D)``, targets ``(B,)``, centers ``(K, M, D)`` -> scalar."""
    c = centers[targets].to(features.dtype)
    if normalize_centers:
        c = _unit(c)
    dist = (features - c).pow(2).flatten(1).sum(1)  # (B,)
    if reduction == "batch":
        return dist.mean()
    if reduction != "classes":
        raise ValueError(f"unknown center-loss reduction {reduction!r}; use 'batch' or 'classes'")
    k = centers.shape[0]
    counts = torch.bincount(targets, minlength=k).to(dist.dtype)
    per_class = torch.zeros(k, dtype=dist.dtype, device=dist.device).index_add(0, targets, dist)
    present = counts > 0
    return (per_class[present] / counts[present]).mean()


@torch.no_grad()
def update_centers(centers: torch.Tensor, features: torch.Tensor, targets: torch.Tensor,
                   beta: float) -> torch.Tensor:
    """Eq. (3) in place on ``centers`` ``(K, M, D)``; returns it."""
    k = centers.shape[0]
    f = features.detach().to(centers.dtype)
    counts = torch.bincount(targets, minlength=k).to(centers.dtype)
    sums = torch.zeros_like(centers).index_add(0, targets, f)
    present = counts > 0
    means = sums[present] / counts[present].view(-1, *([1] * (centers.ndim - 1)))
    centers[present] = (1.0 - beta) * centers[present] + beta * means
    return centers


__all__ = ["center_loss", "update_centers"]
