"""CN-CNN's blocks: alignment of the levels, the high-low and low-high pathways, classifiers.

Levels are always passed low to high, ``[S3, S4, S5]``; the high-low pathway
*processes* them high to low (S5 first), as the paper's Sec. 2.2 says.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.models.blocks.convlstm import ConvLSTMCell, run_convlstm

#: Level names, low to high (ResNet stages 3, 4, 5 = ``layer2``, ``layer3``, ``layer4``).
LEVELS = ("S3", "S4", "S5")


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``x`` at spatial ``size``: area averaging where it shrinks (an integer factor is an
    exact block mean), bilinear interpolation where it grows, unchanged if equal."""
    size = tuple(int(s) for s in size)
    if tuple(x.shape[-2:]) == size:
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class Alignment(nn.Module):
    """Sec. 2.2: each level through a 1x1 convolution to ``width`` channels, then bilinearly
    resized to the size of the level ``align`` (``A_l = Up(W_l * S_l + b_l)``).

    The 1x1 convolution runs before the up-sampling: the two commute exactly (bilinear
    weights sum to one), and this order does the convolution on the small map.
    """

    def __init__(self, in_channels: list[int], width: int, align_index: int) -> None:
        super().__init__()
        self.align_index = align_index
        self.proj = nn.ModuleList(nn.Conv2d(c, width, 1) for c in in_channels)

    def forward(self, levels: list[torch.Tensor]) -> list[torch.Tensor]:
        size = levels[self.align_index].shape[-2:]
        return [resize_to(proj(s), size) for proj, s in zip(self.proj, levels)]


class HighLowPathway(nn.Module):
    """The high-low (HL) pathway over the aligned levels ``[A3, A4, A5]`` -> ``[H3, H4, H5]``.

    * ``"convlstm"``: one ConvLSTM run over the levels S5 -> S4 -> S3 of each image;
      ``H_l`` is the hidden state after the step that read ``A_l``.
    * ``"add"``: the FPN-style top-down sum, ``H5 = A5``, ``H4 = A5 + A4``,
      ``H3 = A5 + A4 + A3`` (all at one resolution, so no up-sampling is left).
    * ``"none"``: ``H_l = A_l``.
    In all three, ``H_l`` depends on ``A_l`` and the levels above it only.
    """

    def __init__(self, mode: str, width: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.mode = mode
        self.cell = ConvLSTMCell(width, width, kernel_size) if mode == "convlstm" else None

    def forward(self, aligned: list[torch.Tensor]) -> list[torch.Tensor]:
        high_to_low = aligned[::-1]
        if self.mode == "convlstm":
            out = run_convlstm(self.cell, high_to_low)
        elif self.mode == "add":
            out, total = [], None
            for a in high_to_low:
                total = a if total is None else total + a
                out.append(total)
        else:
            out = list(high_to_low)
        return out[::-1]


class LowHighPathway(nn.Module):
    """The low-high (LH) pathway: spatial and channel attention per level (Sec. 2.3).

    For level ``l`` with features ``F_l`` (the HL output resized to the level's own size):

    * spatial mask ``M^s_l = sigmoid(T_l (*) F_l)`` ``(B, 1, h, w)``, ``T_l`` a 3x3
      transposed convolution (stride 1, padding 1) to one channel;
    * channel mask ``M^c_l`` ``(B, C)`` from ``z_l = GAP(F_l)`` by two FC layers and a
      sigmoid, with information handed up from the lower levels (``handover``):
      ``"concat"``: ``a_l = ReLU(W1_l [z_l; a_{l-1}])``, ``M^c_l = sigmoid(W2_l a_l)``
      (``a_{l-1}`` absent at the lowest level); ``"average"``: each level's own mask
      ``sigmoid(W2_l ReLU(W1_l z_l))``, averaged with those of all lower levels;
    * output ``M^s_l M^c_l (.) F_l`` (``combine="product"``: one pixel-wise mask in
      [0, 1]) or ``M^s_l (.) F_l + M^c_l (.) F_l`` (``"sum"``).

    ``forward`` returns ``(outputs, spatial masks, channel masks)``, lists low to high.
    The outputs pass through :attr:`taps` (identities) so a CAM can hook them.
    """

    def __init__(self, width: int, reduction: int = 16, handover: str = "concat",
                 combine: str = "product", num_levels: int = 3) -> None:
        super().__init__()
        hidden = max(1, width // reduction)
        self.handover, self.combine = handover, combine
        self.spatial = nn.ModuleList(nn.ConvTranspose2d(width, 1, 3, padding=1)
                                     for _ in range(num_levels))
        extra = [0] + [hidden if handover == "concat" else 0] * (num_levels - 1)
        self.fc1 = nn.ModuleList(nn.Linear(width + e, hidden) for e in extra)
        self.fc2 = nn.ModuleList(nn.Linear(hidden, width) for _ in range(num_levels))

    def channel_masks(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        masks, own, below = [], [], None
        for fc1, fc2, f in zip(self.fc1, self.fc2, features):
            z = f.mean(dim=(2, 3))
            if self.handover == "concat":
                a = F.relu(fc1(z if below is None else torch.cat([z, below], dim=1)))
                below = a
                masks.append(torch.sigmoid(fc2(a)))
            else:
                own.append(torch.sigmoid(fc2(F.relu(fc1(z)))))
                masks.append(torch.stack(own).mean(0))
        return masks

    def forward(self, features: list[torch.Tensor]
                ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[torch.Tensor]]:
        channel = self.channel_masks(features)
        spatial = [torch.sigmoid(t(f)) for t, f in zip(self.spatial, features)]
        outputs = []
        for f, s, c in zip(features, spatial, channel):
            c = c[:, :, None, None]
            outputs.append(s * c * f if self.combine == "product" else s * f + c * f)
        return outputs, spatial, channel


class Classifier(nn.Module):
    """GAP and two FC layers: ``W2 ReLU(BN(W1 GAP(x)))``."""

    def __init__(self, width: int, hidden: int, num_classes: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.fc2 = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.relu(self.bn(self.fc1(x.mean(dim=(2, 3))))))


__all__ = ["Alignment", "Classifier", "HighLowPathway", "LEVELS", "LowHighPathway", "resize_to"]
