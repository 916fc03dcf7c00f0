"""Batched augmentations on image tensors, on the device.

CMAL-Net's Table 2 compares its mutual data augmentation (MDA) with
baselines that feed other augmented images into the same multi-step
training: a random resized crop (Baseline 2), pad-and-crop (3), pad-and-crop
plus flip (4), Mixup (5), CutMix (6), SaliencyMix (7) and a random choice
among the mixing methods (9). They live here so other chapters can reuse
them.

Conventions
-----------
* Images are ``(B, C, H, W)`` float tensors (already normalised); every
  function works on the whole batch at once, with no per-image Python loop
  and no host synchronisation (except :func:`sample_beta` with
  ``alpha != 1``, see there).
* Every random draw takes a ``torch.Generator`` (the trainer's
  ``StepContext.generator``), so a run replays exactly on resume. Numbers
  are drawn on the generator's device and moved to the images' device.
* The mixing methods return a :class:`MixedBatch`: the mixed images, the two
  label sets and a per-sample weight ``lam`` of the first label set. Its
  :meth:`MixedBatch.loss` is the usual ``lam * CE(y_a) + (1 - lam) * CE(y_b)``.

Choices (the original papers leave these to the implementation)
-----------------------------------------------------------------
* Mixup and CutMix draw one ``lam`` per batch and pair each image with a
  random permutation of the batch, as in their papers' reference code.
  CutMix uses one box for the whole batch and corrects ``lam`` to the
  pasted area actually kept after clipping.
* SaliencyMix (Uddin et al., ICLR 2021) centres the pasted box on the peak
  of the *source* image's saliency, per sample (the reference code uses the
  first source image's peak for the whole batch); the box size follows the
  batch's ``lam`` and the per-sample ``lam`` is corrected to the kept area.
  The saliency is the spectral residual of Hou & Zhang (CVPR 2007), the
  method the SaliencyMix authors call through OpenCV, computed here in
  batch with ``torch.fft`` on a 64 x 64 grey-level copy. Like any
  FFT-based saliency it sees the image as periodic, so on a smooth
  background the wrap-around edge at the border can outshine the object;
  on natural photographs (textured) it finds the object.
* Co-Mixup (Kim et al., ICLR 2021) is not implemented: it solves a
  discrete optimisation per batch, which a few batched tensor operations
  cannot reproduce faithfully.
* :func:`pad_crop` fills the padding with zeros. The images are already
  normalised, so zero is the dataset's mean colour (torchvision's
  ``RandomCrop(padding=16)`` on unnormalised images pads black).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from fgvc_lib.errors import FGVCError
from fgvc_lib.models.blocks.cam import crop_and_resize


# -- random numbers ------------------------------------------------------------
def _rand(shape: tuple[int, ...], generator: torch.Generator | None,
          device: torch.device) -> torch.Tensor:
    """Uniform [0, 1) numbers drawn from ``generator`` and moved to ``device``."""
    source = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=source).to(device)


def _randint(high: int, shape: tuple[int, ...], generator: torch.Generator | None,
             device: torch.device) -> torch.Tensor:
    source = generator.device if generator is not None else device
    return torch.randint(0, high, shape, generator=generator, device=source).to(device)


def _randperm(n: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    source = generator.device if generator is not None else device
    return torch.randperm(n, generator=generator, device=source).to(device)


def sample_beta(alpha: float, generator: torch.Generator | None,
                device: torch.device) -> torch.Tensor:
    """One draw of ``Beta(alpha, alpha)`` as a 0-d float32 tensor on ``device``.

    ``alpha = 1`` (the CutMix / SaliencyMix setting and this module's
    default) is the uniform distribution and stays on the device. Other
    values draw a seed from ``generator`` and sample with NumPy: torch has
    no generator-aware Gamma/Beta sampler. That costs one host read per call.
    """
    if alpha <= 0:
        raise FGVCError(f"mixing alpha must be > 0, got {alpha}",
                        "use alpha=1.0 (uniform lam) or another positive value")
    if alpha == 1.0:
        return _rand((), generator, device)
    seed = int(_randint(2**31 - 1, (1,), generator, torch.device("cpu"))[0])
    value = np.random.default_rng(seed).beta(alpha, alpha)
    return torch.tensor(float(value), dtype=torch.float32, device=device)


def _check_images(images: torch.Tensor, who: str) -> None:
    if images.ndim != 4 or not images.is_floating_point():
        raise FGVCError(f"{who}: expected a float image batch (B, C, H, W), got "
                        f"{tuple(images.shape)} {images.dtype}",
                        "pass the normalised float images the model receives")


# -- mixed batches ---------------------------------------------------------------
@dataclass
class MixedBatch:
    """Images mixed from pairs plus what the loss needs.

    Attributes
    ----------
    images: ``(B, C, H, W)`` mixed images.
    targets_a, targets_b: ``(B,)`` labels of the two images mixed into each sample.
    lam: ``(B,)`` float32 weight of ``targets_a`` (the share of the first image).
    """

    images: torch.Tensor
    targets_a: torch.Tensor
    targets_b: torch.Tensor
    lam: torch.Tensor

    def loss(self, logits: torch.Tensor) -> torch.Tensor:
        """``mean_i [lam_i CE(logits_i, a_i) + (1 - lam_i) CE(logits_i, b_i)]``, in float32."""
        logits = logits.float()
        ce_a = F.cross_entropy(logits, self.targets_a, reduction="none")
        ce_b = F.cross_entropy(logits, self.targets_b, reduction="none")
        return (self.lam * ce_a + (1.0 - self.lam) * ce_b).mean()


def mixup(images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None,
          alpha: float = 1.0) -> MixedBatch:
    """Mixup (Zhang et al., ICLR 2018): ``lam * x + (1 - lam) * x[perm]``, one ``lam`` per batch."""
    _check_images(images, "mixup")
    b = images.shape[0]
    lam = sample_beta(alpha, generator, images.device)
    perm = _randperm(b, generator, images.device)
    mixed = images * lam.to(images.dtype) + images[perm] * (1.0 - lam).to(images.dtype)
    return MixedBatch(mixed, targets, targets[perm], lam.expand(b).clone())


def _box_masks(centre_x: torch.Tensor, centre_y: torch.Tensor, cut_ratio: torch.Tensor,
               height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks ``(B, H, W)`` of boxes of sides ``cut_ratio * (W, H)`` centred on
    ``(centre_x, centre_y)`` (pixels), clipped to the image; also the kept
    area fraction ``(B,)``. Corners are floored to whole pixels, as in the
    CutMix reference code."""
    cut_w = width * cut_ratio
    cut_h = height * cut_ratio
    x0 = (centre_x - cut_w / 2).clamp(0, width).floor()
    x1 = (centre_x + cut_w / 2).clamp(0, width).floor()
    y0 = (centre_y - cut_h / 2).clamp(0, height).floor()
    y1 = (centre_y + cut_h / 2).clamp(0, height).floor()
    xs = torch.arange(width, device=centre_x.device, dtype=centre_x.dtype)
    ys = torch.arange(height, device=centre_x.device, dtype=centre_x.dtype)
    inside_x = (xs[None] >= x0[:, None]) & (xs[None] < x1[:, None])  # (B, W)
    inside_y = (ys[None] >= y0[:, None]) & (ys[None] < y1[:, None])  # (B, H)
    masks = inside_y[:, :, None] & inside_x[:, None, :]
    area = (x1 - x0) * (y1 - y0) / float(height * width)
    return masks, area


def cutmix(images: torch.Tensor, targets: torch.Tensor, generator: torch.Generator | None = None,
           alpha: float = 1.0) -> MixedBatch:
    """CutMix (Yun et al., ICCV 2019): paste one random box of ``x[perm]`` into every
    image; the box has area ``1 - lam`` before clipping; ``lam`` is then set to the
    area actually left from the first image."""
    _check_images(images, "cutmix")
    b, _, h, w = images.shape
    lam = sample_beta(alpha, generator, images.device)
    perm = _randperm(b, generator, images.device)
    centre = _rand((2,), generator, images.device) * torch.tensor([w, h], device=images.device)
    cut_ratio = torch.sqrt(1.0 - lam).expand(b)
    masks, area = _box_masks(centre[0].expand(b), centre[1].expand(b), cut_ratio, h, w)
    mixed = torch.where(masks[:, None], images[perm], images)
    return MixedBatch(mixed, targets, targets[perm], (1.0 - area).float())


def _gaussian_blur(maps: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """Separable ``size x size`` Gaussian blur of ``(B, 1, h, w)`` maps, reflect padding."""
    radius = size // 2
    coords = torch.arange(-radius, radius + 1, device=maps.device, dtype=maps.dtype)
    kernel = torch.exp(-0.5 * (coords / sigma) ** 2)
    kernel = kernel / kernel.sum()
    padded = F.pad(maps, (radius, radius, 0, 0), mode="reflect")
    maps = F.conv2d(padded, kernel.view(1, 1, 1, -1))
    padded = F.pad(maps, (0, 0, radius, radius), mode="reflect")
    return F.conv2d(padded, kernel.view(1, 1, -1, 1))


def spectral_residual_saliency(images: torch.Tensor, work_size: int = 64, blur_size: int = 5,
                               blur_sigma: float = 8.0) -> torch.Tensor:
    """Spectral-residual saliency (Hou & Zhang, CVPR 2007), batched: ``(B, C, H, W) -> (B, H, W)``.

    The grey-level image is shrunk to ``work_size`` squared (64, as OpenCV's
    ``StaticSaliencySpectralResidual`` that SaliencyMix calls); the saliency is
    ``|IFFT(exp(R + i P))|^2`` with ``P`` the phase spectrum and ``R`` the log
    amplitude minus its 3 x 3 local mean; it is blurred (5 x 5 Gaussian),
    resized back and min-max normalised to [0, 1]. The amplitude gets a small
    floor (1e-6 of its maximum) so flat synthetic images, whose spectra have
    exact zeros, give finite logs. Computed in float32 whatever the input dtype.
    """
    _check_images(images, "spectral_residual_saliency")
    h, w = images.shape[-2:]
    with torch.autocast(device_type=images.device.type, enabled=False):
        grey = images.float().mean(dim=1, keepdim=True)
        small = F.interpolate(grey, size=(work_size, work_size), mode="bilinear",
                              align_corners=False, antialias=True)
        spectrum = torch.fft.fft2(small)
        amplitude = spectrum.abs()
        floor = 1e-6 * amplitude.flatten(1).amax(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1)
        log_amplitude = torch.log(amplitude + floor)
        residual = log_amplitude - F.avg_pool2d(log_amplitude, 3, stride=1, padding=1,
                                                count_include_pad=False)
        rebuilt = torch.polar(torch.exp(residual), torch.angle(spectrum))
        saliency = torch.fft.ifft2(rebuilt).abs() ** 2
        saliency = _gaussian_blur(saliency, blur_size, blur_sigma)
        saliency = F.interpolate(saliency, size=(h, w), mode="bilinear", align_corners=False)
        flat = saliency.flatten(1)
        lo = flat.min(1, keepdim=True).values
        hi = flat.max(1, keepdim=True).values
        return ((flat - lo) / (hi - lo).clamp_min(1e-12)).view(-1, h, w)


def saliencymix(images: torch.Tensor, targets: torch.Tensor,
                generator: torch.Generator | None = None, alpha: float = 1.0,
                saliency: torch.Tensor | None = None) -> MixedBatch:
    """SaliencyMix (Uddin et al., ICLR 2021): paste the most salient box of the
    source image ``x[perm]`` into the same place of each image.

    ``saliency``: optional ``(B, H, W)`` saliency of ``images`` (default:
    :func:`spectral_residual_saliency`). The box side is ``sqrt(1 - lam)``
    of the image side, one ``lam`` per batch; each box is centred on its
    source's saliency peak and ``lam`` is corrected per sample to the kept area.
    """
    _check_images(images, "saliencymix")
    b, _, h, w = images.shape
    lam = sample_beta(alpha, generator, images.device)
    perm = _randperm(b, generator, images.device)
    if saliency is None:
        saliency = spectral_residual_saliency(images)
    elif saliency.shape != (b, h, w):
        raise FGVCError(f"saliencymix: saliency has shape {tuple(saliency.shape)}, "
                        f"expected {(b, h, w)}",
                        "pass one (H, W) saliency map per image, at the image size")
    peak = saliency[perm].flatten(1).argmax(dim=1)
    # +0.5: the centre of the peak pixel, so an odd box is centred on it exactly.
    centre_y = (peak // w).float() + 0.5
    centre_x = (peak % w).float() + 0.5
    masks, area = _box_masks(centre_x, centre_y, torch.sqrt(1.0 - lam).expand(b), h, w)
    mixed = torch.where(masks[:, None], images[perm], images)
    return MixedBatch(mixed, targets, targets[perm], (1.0 - area).float())


# -- geometric augmentations ---------------------------------------------------
def random_resized_crop(images: torch.Tensor, generator: torch.Generator | None = None,
                        scale: tuple[float, float] = (0.08, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3),
                        out_size: tuple[int, int] | None = None) -> torch.Tensor:
    """Random resized crop on a batch: per image, a box of area ``s * H * W``
    (``s ~ U(scale)``) and aspect ``w / h = r`` (``log r ~ U(log ratio)``), at
    a uniform position, resized bilinearly to ``out_size`` (default input size).

    Unlike torchvision's rejection loop, a box that would not fit is clipped
    to the image side (one pass, no data-dependent loop).
    """
    _check_images(images, "random_resized_crop")
    if not (0 < scale[0] <= scale[1] <= 1) or not (0 < ratio[0] <= ratio[1]):
        raise FGVCError(f"random_resized_crop: bad scale {scale} or ratio {ratio}",
                        "use 0 < scale_min <= scale_max <= 1 and 0 < ratio_min <= ratio_max")
    b, _, h, w = images.shape
    device = images.device
    u = _rand((b, 4), generator, device)
    area = (scale[0] + (scale[1] - scale[0]) * u[:, 0]) * (h * w)
    log_r = math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1]
    aspect = torch.exp(log_r)
    box_w = torch.sqrt(area * aspect).clamp(max=w)
    box_h = torch.sqrt(area / aspect).clamp(max=h)
    x0 = (w - box_w) * u[:, 2]
    y0 = (h - box_h) * u[:, 3]
    boxes = torch.stack([x0, y0, x0 + box_w, y0 + box_h], dim=1)
    return crop_and_resize(images, boxes, out_size)


def pad_crop(images: torch.Tensor, generator: torch.Generator | None = None,
             padding: int = 16, fill: float = 0.0) -> torch.Tensor:
    """Pad every side by ``padding`` pixels (value ``fill``) and cut a random
    window of the input size from each image: integer shifts, exact pixels."""
    _check_images(images, "pad_crop")
    if padding < 0:
        raise FGVCError(f"pad_crop: padding must be >= 0, got {padding}", "use e.g. padding=16")
    b, c, h, w = images.shape
    device = images.device
    padded = F.pad(images, (padding, padding, padding, padding), value=fill)
    offset_y = _randint(2 * padding + 1, (b,), generator, device)
    offset_x = _randint(2 * padding + 1, (b,), generator, device)
    rows = offset_y[:, None] + torch.arange(h, device=device)  # (B, H)
    cols = offset_x[:, None] + torch.arange(w, device=device)  # (B, W)
    batch = torch.arange(b, device=device)[:, None, None]
    # Gather in (B, H, W, C) layout: one advanced-indexing call for the batch.
    windows = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return windows.permute(0, 3, 1, 2)


def random_flip(images: torch.Tensor, generator: torch.Generator | None = None,
                p: float = 0.5) -> torch.Tensor:
    """Horizontal flip of each image with probability ``p``."""
    _check_images(images, "random_flip")
    flip = _rand((images.shape[0],), generator, images.device) < p
    return torch.where(flip[:, None, None, None], images.flip(-1), images)


__all__ = ["MixedBatch", "cutmix", "mixup", "pad_crop", "random_flip", "random_resized_crop",
           "sample_beta", "saliencymix", "spectral_residual_saliency"]
