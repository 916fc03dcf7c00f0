"""The non-local block, its two-input form, and the cross-layer non-local module.

Notation as in the paper: a feature map ``X`` of ``H x W`` positions and ``C`` channels is
read as ``HW`` row vectors. ``theta``, ``phi`` and ``g`` are 1x1 convolutions to an
embedding of ``d`` channels, ``z`` a 1x1 convolution back to the query's ``C`` channels,
followed by a BatchNorm whose weight and bias start at zero (so every block starts as the
identity).

* :class:`NonLocalBi` is Eq. (2), ``NL_bi(X^q, X^r) = X^q + z(f(theta(X^q), phi(X^r)) g(X^r))``;
  called with one input it is Eq. (1), the non-local block ``NL(X) = NL_bi(X, X)``.
* :class:`CrossLayerNonLocal` is Eq. (3), ``CNL(X^q, X^{r_1}, ..., X^{r_n}) = X^q + sum_i Z^{r_i}``
  with ``Z^{r_i} = z(f(theta(X^q), phi_i(X^{r_i})) g_i(X^{r_i}))``: ``theta`` and ``z`` are
  shared (Eq. (3) gives them no index), ``phi_i`` and ``g_i`` belong to response ``i``, and
  the responses may have any size and width.
* :func:`pairwise_attention` is ``f``: a dot product, normalised in one of three ways
  (:data:`NORMALIZATIONS`).

Every forward returns the attention matrices too, ``(B, H^q W^q, H^r W^r)``, one per
response: row ``j`` says how much query position ``j`` takes from each response position.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

#: ``"dot"``: ``theta^T phi / N_r`` (the dot-product form of the non-local paper, normalised
#: by the number of response positions); ``"softmax"``: ``softmax(theta^T phi)`` over the
#: response positions (the embedded Gaussian); ``"scaled_softmax"``: ``softmax(theta^T phi /
#: sqrt(d))`` (the released code).
NORMALIZATIONS = ("scaled_softmax", "softmax", "dot")


def pairwise_attention(query: torch.Tensor, response: torch.Tensor,
                       normalization: str = "scaled_softmax") -> torch.Tensor:
    """``f(theta(X^q), phi(X^r))``: ``query`` ``(B, d, N_q)``, ``response`` ``(B, d, N_r)``
    -> ``(B, N_q, N_r)``; softmax rows sum to one."""
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization {normalization!r}; use one of {NORMALIZATIONS}")
    scores = torch.bmm(query.transpose(1, 2), response)  # (B, N_q, N_r)
    if normalization == "dot":
        return scores / response.shape[-1]
    if normalization == "scaled_softmax":
        scores = scores / math.sqrt(query.shape[1])
    # Softmax in float32 also under autocast: rows of thousands of positions in bf16
    # lose the small weights.
    return scores.float().softmax(dim=-1).to(scores.dtype)


def _conv1x1(cin: int, cout: int, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=1, bias=bias)


def zero_bn(channels: int) -> nn.BatchNorm2d:
    """A BatchNorm whose affine weight and bias are zero: its output is exactly zero, so the
    residual it closes starts as the identity."""
    bn = nn.BatchNorm2d(channels)
    nn.init.zeros_(bn.weight)
    nn.init.zeros_(bn.bias)
    return bn


def aggregate(attention: torch.Tensor, values: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """``attention`` ``(B, N_q, N_r)`` times ``values`` ``(B, d, N_r)`` -> ``(B, d, H^q, W^q)``."""
    out = torch.bmm(values, attention.transpose(1, 2).to(values.dtype))  # (B, d, N_q)
    return out.reshape(out.shape[0], out.shape[1], *shape)


class NonLocalBi(nn.Module):
    """Eq. (2): ``X^q + BN(z(f(theta(X^q), phi(X^r)) g(X^r)))``; with one input, Eq. (1).

    Parameters
    ----------
    query_channels, response_channels: ``C^q`` and ``C^r`` (equal for Eq. (1)).
    embed_channels: ``d``, the width of ``theta``, ``phi`` and ``g``.
    normalization: see :data:`NORMALIZATIONS`.

    ``forward(x_q, x_r=None)`` returns ``(output, attention)``; ``x_r=None`` is Eq. (1).
    The residual is the query (the paper prints ``X^l``, the layer both inputs come from
    in Eq. (1)).
    """

    def __init__(self, query_channels: int, response_channels: int | None = None,
                 embed_channels: int | None = None,
                 normalization: str = "scaled_softmax") -> None:
        super().__init__()
        response_channels = query_channels if response_channels is None else response_channels
        embed = embed_channels or max(1, query_channels // 2)
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {normalization!r}; use one of {NORMALIZATIONS}")
        self.normalization = normalization
        self.theta = _conv1x1(query_channels, embed)
        self.phi = _conv1x1(response_channels, embed)
        self.g = _conv1x1(response_channels, embed)
        self.z = _conv1x1(embed, query_channels, bias=False)  # BN follows
        self.bn = zero_bn(query_channels)

    def forward(self, x_q: torch.Tensor, x_r: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        x_r = x_q if x_r is None else x_r
        attention = pairwise_attention(self.theta(x_q).flatten(2), self.phi(x_r).flatten(2),
                                       self.normalization)
        y = aggregate(attention, self.g(x_r).flatten(2), x_q.shape[-2:])
        return x_q + self.bn(self.z(y)), attention


class CrossLayerNonLocal(nn.Module):
    """Eq. (3): one query layer, ``n`` response layers (shallow to deep).

    Parameters
    ----------
    query_channels: ``C^q``.
    response_channels: ``C^{r_1}, ..., C^{r_n}`` (any widths).
    embed_channels: ``d``, shared by ``theta`` and every ``phi_i``, ``g_i`` (the dot product
        and the shared ``z`` need one width).
    normalization: see :data:`NORMALIZATIONS`.
    output_bn: ``"per_response"``: each ``Z^{r_i}`` is ``BN_i(z(.))``, one zero-initialised
        BN per response (the released code); ``"shared"``: one BN on the sum of the ``z``
        outputs (``z`` is linear, so it then runs once, on ``sum_i y_i``).

    ``forward(x_q, responses)`` returns ``(output, [attention_1, ..., attention_n])``.
    """

    def __init__(self, query_channels: int, response_channels: Sequence[int],
                 embed_channels: int = 256, normalization: str = "scaled_softmax",
                 output_bn: str = "per_response") -> None:
        super().__init__()
        if not response_channels:
            raise ValueError("CrossLayerNonLocal needs at least one response layer")
        if normalization not in NORMALIZATIONS:
            raise ValueError(f"unknown normalization {normalization!r}; use one of {NORMALIZATIONS}")
        if output_bn not in ("per_response", "shared"):
            raise ValueError(f"unknown output_bn {output_bn!r}; use per_response or shared")
        self.normalization = normalization
        self.output_bn = output_bn
        self.theta = _conv1x1(query_channels, embed_channels)
        self.phi = nn.ModuleList(_conv1x1(c, embed_channels) for c in response_channels)
        self.g = nn.ModuleList(_conv1x1(c, embed_channels) for c in response_channels)
        self.z = _conv1x1(embed_channels, query_channels, bias=False)
        n_bn = len(response_channels) if output_bn == "per_response" else 1
        self.bn = nn.ModuleList(zero_bn(query_channels) for _ in range(n_bn))

    @property
    def num_responses(self) -> int:
        return len(self.phi)

    def forward(self, x_q: torch.Tensor, responses: Sequence[torch.Tensor]
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if len(responses) != self.num_responses:
            raise ValueError(f"CrossLayerNonLocal got {len(responses)} responses, "
                             f"built for {self.num_responses}")
        query = self.theta(x_q).flatten(2)  # computed once, shared by every response
        attentions, ys = [], []
        for phi, g, x_r in zip(self.phi, self.g, responses):
            a = pairwise_attention(query, phi(x_r).flatten(2), self.normalization)
            attentions.append(a)
            ys.append(aggregate(a, g(x_r).flatten(2), x_q.shape[-2:]))
        if self.output_bn == "shared":
            total = self.bn[0](self.z(torch.stack(ys).sum(0)))
        else:
            total = sum(bn(self.z(y)) for bn, y in zip(self.bn, ys))
        return x_q + total, attentions


__all__ = ["CrossLayerNonLocal", "NORMALIZATIONS", "NonLocalBi", "aggregate",
           "pairwise_attention", "zero_bn"]
