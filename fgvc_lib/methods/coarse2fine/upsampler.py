"""The up-sampler from attention maps to image size, and its pre-training on synthetic pairs.

:class:`TransposedConvUpsampler` (the paper gives no architecture; our choice):
``log2(stride)`` transposed convolutions with kernel 4, stride 2, padding 1 (each
exactly doubles the side), widths ``width, width/2, ...`` (at least 4) with a ReLU
after all but the last, which has one output channel. Each attention map is
up-sampled on its own (the maps are batched as single-channel images), so
up-sampling all maps and then picking one equals picking one and up-sampling
it. A final bilinear resize fixes an off-by-rounding size (Inception-v3:
17 x 16 = 272 for a 299-px input).

Pre-training (:func:`pretrain_upsampler`): the inputs are random low-resolution
maps shaped like attention maps (one to three Gaussian blobs of random centre,
width and height, plus a little noise, scaled to a maximum of 1); each pair's
target is the input up-sampled by one of bilinear, bicubic or nearest-neighbour
interpolation, the three methods taking turns (a third of the pairs each). The
interpolator is not visible in the input, so the L2 optimum for an input is the
mean of its three interpolations: the up-sampler learns a smooth compromise
between the blocky and the smooth interpolators. (Giving one input all three
targets has the same optimum; it only triples the work per input.)
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

INTERPOLATORS = ("bilinear", "bicubic", "nearest")


def interpolate(maps: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """``(B, C, h, w) -> (B, C, *size)`` by ``mode`` (``align_corners=False`` where it applies)."""
    if mode == "nearest":
        return F.interpolate(maps, size=size, mode="nearest")
    return F.interpolate(maps, size=size, mode=mode, align_corners=False)


class TransposedConvUpsampler(nn.Module):
    """``(B, M, h, w) -> (B, M, H, W)``: see the module docstring."""

    def __init__(self, stride: int, width: int = 32) -> None:
        super().__init__()
        steps = int(round(math.log2(stride)))
        if stride < 2 or 2 ** steps != stride:
            raise ValueError(f"the up-sampler needs a power-of-two stride >= 2, got {stride}")
        self.stride = stride
        layers: list[nn.Module] = []
        c_in = 1
        for k in range(steps):
            last = k == steps - 1
            c_out = 1 if last else max(4, width // 2 ** k)
            layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.ReLU(inplace=True))
            c_in = c_out
        self.net = nn.Sequential(*layers)

    def forward(self, maps: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        b, m, h, w = maps.shape
        out = self.net(maps.reshape(b * m, 1, h, w))
        if size is not None and tuple(out.shape[-2:]) != tuple(size):
            out = F.interpolate(out, size=size, mode="bilinear", align_corners=False)
        return out.reshape(b, m, *out.shape[-2:])


class BilinearUpsampler(nn.Module):
    """The fixed alternative: bilinear interpolation to the image size (no parameters)."""

    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, maps: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        size = size or (maps.shape[-2] * self.stride, maps.shape[-1] * self.stride)
        return interpolate(maps, size, "bilinear")


def synthetic_maps(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``(n, 1, size, size)`` attention-like maps in [0, 1]: 1-3 Gaussian blobs plus noise."""
    g = generator
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float32),
                            torch.arange(size, dtype=torch.float32), indexing="ij")
    out = torch.zeros(n, size, size)
    blobs = torch.randint(1, 4, (n,), generator=g)
    for k in range(3):
        on = (blobs > k).float()[:, None, None]
        cy, cx = (torch.rand(n, generator=g) * size)[:, None, None], \
            (torch.rand(n, generator=g) * size)[:, None, None]
        sigma = (0.4 + torch.rand(n, generator=g) * size / 3)[:, None, None]
        amp = (0.3 + 0.7 * torch.rand(n, generator=g))[:, None, None]
        out += on * amp * torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma ** 2))
    out += 0.05 * torch.rand(n, size, size, generator=g)
    out = out / out.flatten(1).amax(1)[:, None, None]
    return out[:, None]


def synthetic_pairs(n: int, size: int, stride: int, generator: torch.Generator
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` pairs ``(inputs (n, 1, s, s), targets (n, 1, s*stride, s*stride))``; pair ``j``'s
    target uses ``INTERPOLATORS[j % 3]``."""
    inputs = synthetic_maps(n, size, generator)
    out_size = (size * stride, size * stride)
    targets = torch.empty(n, 1, *out_size)
    for j, mode in enumerate(INTERPOLATORS):
        targets[j::3] = interpolate(inputs[j::3], out_size, mode)
    return inputs, targets


def pretrain_upsampler(upsampler: TransposedConvUpsampler, pairs: int, epochs: int,
                       size: int = 8, batch_size: int = 32, lr: float = 1e-2, seed: int = 0,
                       eval_pairs: int = 300) -> dict[str, list[float] | dict[str, float]]:
    """Train ``upsampler`` with L2 on ``pairs`` synthetic pairs for ``epochs`` epochs (Adam).

    Returns ``{"train_loss": [per epoch], "eval_loss": [per epoch], "baselines": {...}}``:
    the eval losses are on ``eval_pairs`` held-out pairs, and ``baselines`` gives the loss
    of the three fixed interpolators on those pairs, the bar to clear. The mode of the
    up-sampler is restored; the generator is local, so the global RNG is untouched.
    """
    device = next(upsampler.parameters()).device
    g = torch.Generator().manual_seed(seed)
    x, y = synthetic_pairs(pairs, size, upsampler.stride, g)
    ex, ey = synthetic_pairs(eval_pairs, size, upsampler.stride, g)
    x, y, ex, ey = x.to(device), y.to(device), ex.to(device), ey.to(device)
    out_size = tuple(y.shape[-2:])
    baselines = {mode: float(F.mse_loss(interpolate(ex, out_size, mode), ey))
                 for mode in INTERPOLATORS}
    opt = torch.optim.Adam(upsampler.parameters(), lr=lr)
    was_training = upsampler.training
    upsampler.train()
    history: dict[str, list[float] | dict[str, float]] = {"train_loss": [], "eval_loss": [],
                                                          "baselines": baselines}
    for _ in range(epochs):
        order = torch.randperm(pairs, generator=g).to(device)
        total = 0.0
        for start in range(0, pairs, batch_size):
            idx = order[start:start + batch_size]
            loss = F.mse_loss(upsampler(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        history["train_loss"].append(total / max(1, pairs))  # type: ignore[union-attr]
        with torch.no_grad():
            history["eval_loss"].append(float(F.mse_loss(upsampler(ex), ey)))  # type: ignore[union-attr]
    upsampler.train(was_training)
    return history


__all__ = ["BilinearUpsampler", "INTERPOLATORS", "TransposedConvUpsampler", "interpolate",
           "pretrain_upsampler", "synthetic_maps", "synthetic_pairs"]
