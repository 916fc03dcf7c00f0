"""Bilinear attention pooling (Eq. (1), Fig. 4) in its two readings, and the SVD initialisation.

Feature maps ``x`` ``(B, N, H, W)`` and attention maps ``a`` ``(B, M, H, W)``
(``a >= 0``: a ReLU follows the 1x1 attention conv). At each position ``i`` the
outer product ``a^i (x^i)^T`` is an ``M x N`` matrix; the two readings differ in
what is pooled:

* :func:`bap_wsdan` pools over the positions (as Eq. (1) is written, and as
  WS-DAN does): part feature ``f_m = 1/(HW) sum_i a_m^i x^i``, an ``M x N``
  matrix, one N-vector per map.
* :func:`bap_paper` pools over the channels at each position (the text below
  Eq. (1) and Fig. 4): ``f_m^i = pool_n a_m^i x_n^i``, an ``M x H*W`` matrix,
  one spatial map per attention map. Because ``a >= 0``, average pooling is
  ``a_m^i mean_n x_n^i`` and max pooling ``a_m^i max_n x_n^i``: each row is the
  attention map times one channel-pooled feature map.

Both return the matrix after signed square root and L2 normalisation of the
whole flattened matrix per image (WS-DAN's post-processing, kept for both so
that only the pooling differs).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.models.blocks.pooling import signed_sqrt_l2


def bap_wsdan_raw(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """``(B, M, N)``: ``f[b, m, n] = mean_i a[b, m, i] x[b, n, i]`` (no normalisation)."""
    h, w = x.shape[-2:]
    return torch.einsum("bmhw,bnhw->bmn", a, x) / float(h * w)


def bap_paper_raw(x: torch.Tensor, a: torch.Tensor, pool: str = "avg") -> torch.Tensor:
    """``(B, M, H, W)``: ``f[b, m, i] = pool_n a[b, m, i] x[b, n, i]`` for ``a >= 0``."""
    g = x.mean(1, keepdim=True) if pool == "avg" else x.amax(1, keepdim=True)
    return a * g


def normalize_matrix(f: torch.Tensor) -> torch.Tensor:
    """Signed square root, then unit L2 norm of each image's whole flattened matrix."""
    return signed_sqrt_l2(f.flatten(1)).view_as(f)


def bap_wsdan(x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
    """The normalised ``(B, M, N)`` part-feature matrix (pooling over positions)."""
    return normalize_matrix(bap_wsdan_raw(x.float(), a.float()))


def bap_paper(x: torch.Tensor, a: torch.Tensor, pool: str = "avg", grid: int | None = None
              ) -> torch.Tensor:
    """The normalised ``(B, M, G*G)`` matrix (pooling over channels), after average pooling
    the ``M x H x W`` maps to a ``grid x grid`` square (``None``: keep ``H x W``)."""
    f = bap_paper_raw(x.float(), a.float(), pool)
    if grid is not None and tuple(f.shape[-2:]) != (grid, grid):
        f = F.adaptive_avg_pool2d(f, grid)
    return normalize_matrix(f.flatten(2))


@torch.no_grad()
def orthogonalize_rows_(weight: torch.Tensor) -> torch.Tensor:
    """Algorithm 1, lines 2-3, in place: ``W = U S V^T`` (``W`` is ``M x C``, or a 1x1
    conv weight ``M x C x 1 x 1``); the first ``M`` right singular vectors become the
    rows of ``W``, so ``W W^T = I``. Needs ``M <= C``."""
    m = weight.shape[0]
    flat = weight.reshape(m, -1)
    if m > flat.shape[1]:
        raise ValueError(f"{m} orthonormal rows need at least {m} columns, got {flat.shape[1]}")
    _, _, vh = torch.linalg.svd(flat.double(), full_matrices=False)
    weight.copy_(vh[:m].to(weight.dtype).reshape(weight.shape))
    return weight


class AttentionConv(nn.Module):
    """``a = ReLU(W x)``: a 1x1 convolution without bias, ``W`` of shape ``M x C``."""

    def __init__(self, channels: int, num_maps: int, orthogonal: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, num_maps, 1, bias=False)
        if orthogonal:
            orthogonalize_rows_(self.conv.weight)

    @property
    def weight_matrix(self) -> torch.Tensor:
        """``W`` as an ``M x C`` matrix (a view of the conv weight)."""
        return self.conv.weight.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv(x))


__all__ = ["AttentionConv", "bap_paper", "bap_paper_raw", "bap_wsdan", "bap_wsdan_raw",
           "normalize_matrix", "orthogonalize_rows_"]
