"""The one output format that every registered model returns.

Training, evaluation, visualisation and Grad-CAM treat all methods alike
because every ``forward`` returns a :class:`ModelOutput`:

* ``logits``     -- the method's final prediction, shape ``(B, K)``;
* ``heads``      -- named per-head logits, each ``(B, K)`` (e.g. ``p1``, ``p_oval``);
* ``attention``  -- named attention maps, each ``(B, h, w)`` at the resolution
  the method computes them (up-sample with :func:`fgvc_lib.attention.upsample_maps`);
* ``extras``     -- anything else a method's training step needs (pooled
  part features for Cross-X's C3S, descriptors, ...). Never read by the
  generic trainer.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class ModelOutput:
    logits: torch.Tensor
    heads: dict[str, torch.Tensor] = field(default_factory=dict)
    attention: dict[str, torch.Tensor] = field(default_factory=dict)
    extras: dict[str, object] = field(default_factory=dict)

    def head(self, name: str | None) -> torch.Tensor:
        """Logits of head ``name``; ``None`` or ``"final"`` gives the final prediction."""
        if name is None or name == "final":
            return self.logits
        if name not in self.heads:
            from fgvc_lib.errors import unknown_name_error

            raise unknown_name_error("head", name, ["final", *self.heads])
        return self.heads[name]
