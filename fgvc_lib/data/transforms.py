"""Image transforms for training and evaluation.

Transforms stop at a ``uint8`` CHW tensor; conversion to float and
normalisation happen on the device (:class:`DeviceNormalize`), which keeps
host-to-device copies 4x smaller and the loader workers cheaper.

Which mean/std to normalise with is not decided here: it belongs to the
weights, so each backbone carries its own
(:attr:`fgvc_lib.models.backbones.Backbone.normalization`, like timm's
``pretrained_cfg``); this module only defines ImageNet's statistics, once.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.nn as nn
from torchvision.transforms import v2

IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
#: ``(mean, std)`` per RGB channel, for images scaled to [0, 1].
Normalization = tuple[tuple[float, ...], tuple[float, ...]]


def default_resize(image_size: int) -> int:
    """The customary resize before the crop: 448 <- 512, 64 <- 73."""
    return int(round(image_size * 8 / 7))


def train_transform(image_size: int, resize_size: int | None = None, flip: bool = True) -> v2.Compose:
    """Resize the short side, random crop, horizontal flip (the papers' recipe)."""
    resize_size = resize_size or default_resize(image_size)
    steps = [v2.PILToTensor(), v2.Resize(resize_size, antialias=True), v2.RandomCrop(image_size)]
    if flip:
        steps.append(v2.RandomHorizontalFlip())
    return v2.Compose(steps)


def eval_transform(image_size: int, resize_size: int | None = None) -> v2.Compose:
    """Resize the short side, centre crop."""
    resize_size = resize_size or default_resize(image_size)
    return v2.Compose([v2.PILToTensor(), v2.Resize(resize_size, antialias=True),
                       v2.CenterCrop(image_size)])


class SmallImageWarning(UserWarning):
    """An image smaller than the crop: it is up-sampled, i.e. blurry and mostly made up."""


class SmallImageCheck:
    """A transform step that passes images through and warns, once, about one smaller
    than ``crop`` pixels on its short side (the resize would silently up-sample it).

    One instance per dataset: the first small image is reported with its size and
    ``name``; later ones are not (in each loader process: a DataLoader worker holds its
    own copy).
    """

    def __init__(self, crop: int, name: str) -> None:
        self.crop = int(crop)
        self.name = name
        self.warned = False

    def __call__(self, image):
        if not self.warned:
            width, height = _image_size(image)
            if min(width, height) < self.crop:
                self.warned = True
                warnings.warn(f"{self.name}: an image of {width}x{height} px is smaller than the "
                              f"{self.crop} px crop and is up-sampled to fit (blurry); further "
                              "small images of this dataset are not reported",
                              SmallImageWarning, stacklevel=2)
        return image


def _image_size(image) -> tuple[int, int]:
    if isinstance(image, torch.Tensor):
        return int(image.shape[-1]), int(image.shape[-2])
    return image.size  # PIL: (width, height)


def box_preserving_transform(image_size: int) -> v2.Compose:
    """Resize to a square without cropping, so boxes map by a plain scale
    (used when measuring attention against ground-truth boxes)."""
    return v2.Compose([v2.PILToTensor(), v2.Resize((image_size, image_size), antialias=True)])


class DeviceNormalize(nn.Module):
    """``uint8 (B, 3, H, W)`` on any device -> normalised float, optionally channels_last.

    Pass the model's own ``mean, std``
    (``DeviceNormalize(*model.backbone.normalization)``); the ImageNet
    default suits only backbones trained from scratch or on ImageNet's
    statistics.
    """

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 channels_last: bool = False) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1) * 255.0, persistent=False)
        self.channels_last = channels_last

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = (images.float() - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Back to ``uint8``-range floats in [0, 255] (for plots)."""
        return (x * self.std + self.mean).clamp(0, 255)
