"""One-squeeze multi-excitation (OSME), Cross-X Eqs. (1)-(2) (after MAMC, Sun et al. 2018).

OSME squeezes a feature map ``U`` (``B x C x H x W``) once by global average
pooling into ``z``, then runs ``P`` independent gates on ``z``::

    m^p = sigmoid(W_2^p ReLU(W_1^p z))          Eq. (1)
    U_p = m^p (.) U   (channel re-weighting)    Eq. (2)

giving ``P`` attention-specific maps. Here the ``P`` maps are returned
**concatenated along channels** as one ``B x (P*C) x H x W`` tensor: that is
exactly what the classifier pools and concatenates (Fig. 1), it keeps
tensors 4-D (channels_last works) and it gives Grad-CAM one module output
to hook. :func:`split_parts` and :func:`part_activation_maps` undo the
concatenation.

Two placements are supported:

* on a map (:meth:`OSME.forward` with ``shortcut=None``): ``U`` is any stage
  output -- the generic placement, used for non-ResNet backbones;
* inside a residual block (:func:`residual_block_parts`): ``U`` is the
  residual branch before the addition, and each part becomes
  ``ReLU(m^p (.) U + shortcut)`` -- OSME as the multi-gate extension of an SE
  block, which also sits on the residual branch.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from fgvc_lib.errors import FGVCError


def excitation_width(channels: int, reduction: int) -> int:
    """Hidden width of each gate's bottleneck: ``channels // reduction``, at least 1."""
    return max(1, channels // reduction)


class OSME(nn.Module):
    """``P`` squeeze-and-excitation gates sharing one squeeze (Eqs. (1)-(2)).

    Parameters
    ----------
    channels: ``C``, the channel count of the map to re-weight.
    num_excitations: ``P``.
    reduction: the bottleneck of each gate is ``C // reduction`` wide
        (16, as in SE-ResNet, by default).
    """

    def __init__(self, channels: int, num_excitations: int = 2, reduction: int = 16) -> None:
        super().__init__()
        if num_excitations < 1 or reduction < 1 or channels < 1:
            raise FGVCError(
                f"OSME needs channels, num_excitations and reduction >= 1, got "
                f"{channels}, {num_excitations}, {reduction}",
                "pass positive integers")
        self.channels = channels
        self.num_excitations = num_excitations
        width = excitation_width(channels, reduction)
        # One small MLP per excitation: the gates share the squeeze only (W_1^p, W_2^p per p).
        self.excitations = nn.ModuleList(
            nn.Sequential(nn.Linear(channels, width), nn.ReLU(inplace=True),
                          nn.Linear(width, channels), nn.Sigmoid())
            for _ in range(num_excitations))

    def gates(self, u: torch.Tensor) -> list[torch.Tensor]:
        """The ``P`` gate vectors ``m^p`` of Eq. (1), each ``(B, C)`` in ``(0, 1)``."""
        z = u.mean(dim=(2, 3))  # the one squeeze
        return [excite(z) for excite in self.excitations]

    def forward(self, u: torch.Tensor, shortcut: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. (2) for every ``p``; returns ``(B, P*C, H, W)`` (part ``p`` in channel block ``p``).

        With ``shortcut`` (the residual placement) each part is
        ``ReLU(m^p (.) u + shortcut)``, the way a residual block finishes.
        """
        if u.ndim != 4 or u.shape[1] != self.channels:
            raise FGVCError(f"OSME built for {self.channels} channels got a map of shape "
                            f"{tuple(u.shape)}", "apply it to the stage it was built for")
        parts = []
        for m in self.gates(u):
            part = u * m[:, :, None, None].to(u.dtype)
            if shortcut is not None:
                part = torch.relu(part + shortcut)
            parts.append(part)
        return torch.cat(parts, dim=1)


def split_parts(u: torch.Tensor, num_parts: int) -> torch.Tensor:
    """``(B, P*C, H, W) -> (B, P, C, H, W)`` (a view when the layout allows)."""
    if u.shape[1] % num_parts:
        raise FGVCError(f"{u.shape[1]} channels do not split into {num_parts} parts",
                        "pass the P the map was built with")
    return u.unflatten(1, (num_parts, u.shape[1] // num_parts))


def part_activation_maps(u: torch.Tensor, num_parts: int) -> torch.Tensor:
    """Channel-mean of each part map: ``(B, P*C, H, W) -> (B, P, H, W)`` (Cross-X Fig. 5)."""
    return split_parts(u, num_parts).mean(dim=2)


def is_resnet_block(block: nn.Module) -> bool:
    """True for timm's ResNet ``Bottleneck`` / ``BasicBlock`` (ResNet, SE-ResNet, ...)."""
    from timm.models.resnet import BasicBlock, Bottleneck

    return isinstance(block, (BasicBlock, Bottleneck)) and isinstance(
        _final_activation(block), nn.ReLU)


def _final_activation(block: nn.Module) -> nn.Module | None:
    # Bottleneck finishes with act3, BasicBlock with act2.
    act = getattr(block, "act3", None)
    return act if act is not None else getattr(block, "act2", None)


def _residual_branch(block: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Residual branch (before SE and the addition) and shortcut of a timm ResNet block.

    Mirrors timm's ``Bottleneck.forward`` / ``BasicBlock.forward`` up to the
    point where the SE module would act; a unit test checks that finishing
    it by hand reproduces ``block(x)`` exactly.
    """
    from timm.models.resnet import Bottleneck

    shortcut = x if block.downsample is None else block.downsample(x)
    if isinstance(block, Bottleneck):
        r = block.act1(block.bn1(block.conv1(x)))
        r = block.aa(block.act2(block.drop_block(block.bn2(block.conv2(r)))))
        r = block.bn3(block.conv3(r))
    else:
        r = block.aa(block.act1(block.drop_block(block.bn1(block.conv1(x)))))
        r = block.bn2(block.conv2(r))
    return r, shortcut


def residual_block_plain(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``block(x)`` recomputed through :func:`_residual_branch` (used by the tests)."""
    r, shortcut = _residual_branch(block, x)
    if block.se is not None:
        r = block.se(r)
    if block.drop_path is not None:
        r = block.drop_path(r)
    return _final_activation(block)(r + shortcut)


def residual_block_parts(block: nn.Module, x: torch.Tensor, osme: OSME,
                         with_plain: bool = True) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Run a timm ResNet block with OSME on its residual branch.

    Returns ``(plain, parts)``: ``plain`` is the block's ordinary output
    (its own SE, if any, included), which feeds the next stage, or ``None``
    when ``with_plain=False`` (the last block of the network, whose plain
    output nobody uses); ``parts`` is ``(B, P*C, H, W)`` with part ``p``
    ``ReLU(m^p (.) r + shortcut)``, ``r`` the residual branch before SE. The
    OSME gates replace SE for the parts: OSME is SE with ``P`` excitations.
    """
    if not is_resnet_block(block):
        raise FGVCError(f"residual OSME placement needs a timm ResNet block, got "
                        f"{type(block).__name__}", "use osme_placement='output'")
    r, shortcut = _residual_branch(block, x)
    gated = r if block.drop_path is None else block.drop_path(r)
    parts = osme(gated, shortcut=shortcut)
    plain = None
    if with_plain:
        branch = r if block.se is None else block.se(r)
        if block.drop_path is not None:
            branch = block.drop_path(branch)
        plain = _final_activation(block)(branch + shortcut)
    return plain, parts
