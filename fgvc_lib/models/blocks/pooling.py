"""Global pooling operators shared by the chapters.

CMAL-Net Table 2 compares GMP, GAP, bilinear pooling (BP) and global
covariance pooling (GCP); Cross-X switches GAP/GMP on U^{L-1} (its Table 2).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def global_pool(x: torch.Tensor, kind: str = "avg") -> torch.Tensor:
    """``(B, C, H, W) -> (B, C, 1, 1)`` by average (``"avg"``) or max (``"max"``).

    Max pooling goes through ``adaptive_max_pool2d``, whose backward routes the
    gradient to the saved arg-max. ``amax``'s backward instead finds the
    maximum again by equality (``x == max``) and divides by the number of
    matches; under ``torch.compile`` with bf16 autocast the recomputed ``x``
    can differ from the saved maximum in rounding, no element matches and
    every gradient becomes 0/0 = NaN (seen with BN + ELU before the pooling,
    on CPU and CUDA, torch 2.11-2.14).
    """
    if kind in ("avg", "gap"):
        return x.mean(dim=(2, 3), keepdim=True)
    if kind in ("max", "gmp"):
        return F.adaptive_max_pool2d(x, 1)
    raise ValueError(f"unknown pooling {kind!r}; use 'avg' or 'max'")


def signed_sqrt_l2(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Signed square root then L2 normalisation, the usual bilinear post-processing."""
    x = torch.sign(x) * torch.sqrt(x.abs() + eps)
    return F.normalize(x, dim=1)


def bilinear_pool(x: torch.Tensor) -> torch.Tensor:
    """Bilinear pooling (Lin et al.): the average outer product of the feature
    vector with itself over positions, ``(B, C, H, W) -> (B, C*C)``, followed
    by signed square root and L2 normalisation."""
    b, c, h, w = x.shape
    flat = x.float().reshape(b, c, h * w)
    gram = torch.bmm(flat, flat.transpose(1, 2)) / (h * w)
    return signed_sqrt_l2(gram.reshape(b, c * c))


def covariance_pool(x: torch.Tensor, iterations: int = 5) -> torch.Tensor:
    """Global covariance pooling with matrix square-root normalisation computed
    by Newton-Schulz iterations (the iSQRT-COV recipe),
    ``(B, C, H, W) -> (B, C*(C+1)/2)`` (upper triangle of the symmetric result)."""
    b, c, h, w = x.shape
    flat = x.float().reshape(b, c, h * w)
    centred = flat - flat.mean(dim=2, keepdim=True)
    cov = torch.bmm(centred, centred.transpose(1, 2)) / (h * w)
    eye = torch.eye(c, device=x.device, dtype=cov.dtype).expand(b, c, c)
    trace = cov.diagonal(dim1=1, dim2=2).sum(-1).clamp_min(1e-8).view(b, 1, 1)
    a = cov / trace
    y, z = a, eye
    for _ in range(iterations):
        t = 0.5 * (3.0 * eye - z.bmm(y))
        y, z = y.bmm(t), t.bmm(z)
    sqrt_cov = y * trace.sqrt()
    rows, cols = torch.triu_indices(c, c, device=x.device)
    return sqrt_cov[:, rows, cols]


class GlobalPool(nn.Module):
    """Module wrapper: ``"max"``, ``"avg"``, ``"bilinear"`` or ``"covariance"``;
    returns ``(B, D)`` with ``D = out_dim(C)``."""

    def __init__(self, kind: str = "max") -> None:
        super().__init__()
        if kind not in ("max", "avg", "gmp", "gap", "bilinear", "covariance"):
            raise ValueError(f"unknown pooling {kind!r}")
        self.kind = kind

    def out_dim(self, channels: int) -> int:
        if self.kind == "bilinear":
            return channels * channels
        if self.kind == "covariance":
            return channels * (channels + 1) // 2
        return channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kind == "bilinear":
            return bilinear_pool(x).to(x.dtype)
        if self.kind == "covariance":
            return covariance_pool(x).to(x.dtype)
        return global_pool(x, self.kind).flatten(1)
