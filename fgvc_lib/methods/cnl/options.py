"""The options of CNL: one frozen dataclass that checks itself (see :mod:`fgvc_lib.methods.spec`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.spec import MethodOptions


@dataclass(frozen=True)
class CNLOptions(MethodOptions):
    """CNL's options (implementation notes of :mod:`fgvc_lib.methods.cnl.model`).

    variant: ``"cnl"`` (Eq. (3): one module, the five layers as responses, the query in
        res5; the "+5CNL" rows) or ``"nl"`` (Eq. (1) after each of the five layers; "+5NL").
    query: which layer is the query, ``"paper"`` (the last layer of res5, Sec. 3.1) or
        ``"released"`` (the first block of res5, as the authors' code).
    responses: the response (CNL) or insertion (NL) blocks as module names inside the
        backbone (``"layer2.1"``); ``None``: the placement of
        :data:`fgvc_lib.methods.cnl.model.PLACEMENTS` for the backbone.
    normalization: how ``f`` turns dot products into weights: ``"scaled_softmax"``
        (released code), ``"softmax"`` or ``"dot"`` (divided by the number of positions).
    embed_channels: ``d``; ``None``: 256 for CNL (the released code; Table 2's parameter
        counts), half the block's channels for NL (the non-local paper; Table 2 again).
    output_bn: one zero-initialised BN per response (``"per_response"``) or one on the sum
        (``"shared"``).
    """

    method_title: ClassVar[str] = "cnl"
    variant: Literal["cnl", "nl"] = "cnl"
    query: Literal["paper", "released"] = "paper"
    responses: tuple[str, ...] | None = None
    normalization: Literal["scaled_softmax", "softmax", "dot"] = "scaled_softmax"
    embed_channels: int | None = None
    output_bn: Literal["per_response", "shared"] = "per_response"

    def check(self) -> None:
        if self.embed_channels is not None and self.embed_channels < 1:
            raise FGVCError(f"cnl option embed_channels={self.embed_channels!r} must be an "
                            "integer >= 1", "pass e.g. embed_channels=256, or leave it unset")
        if self.responses is not None:
            if not self.responses:
                raise FGVCError("cnl option responses=[] names no layer",
                                'pass e.g. responses=["layer2.1", "layer3.1"], or leave it unset')
            if len(set(self.responses)) != len(self.responses):
                raise FGVCError(f"cnl option responses={list(self.responses)} names a layer twice",
                                "name each response layer once")
