"""The options of the baseline: one frozen dataclass that checks itself (see :mod:`fgvc_lib.methods.spec`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from fgvc_lib.methods.spec import MethodOptions


@dataclass(frozen=True)
class BaselineOptions(MethodOptions):
    """``pooling``: global average (``"avg"``, the torchvision/timm default) or max pooling."""

    method_title: ClassVar[str] = "baseline"
    pooling: Literal["avg", "max"] = "avg"
