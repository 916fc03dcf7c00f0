"""The dataset contract shared by every dataset in :mod:`fgvc_lib.data`.

torchvision style: ``Dataset(root, split, transform, ...)``, items are
``(image, target)`` with ``image`` an RGB PIL image before ``transform``.
Every dataset also exposes

* ``classes`` (list of names) and ``targets`` (list of ints, one per item),
  so splits can be stratified without loading images;
* ``has_boxes`` and ``annotation(i)``: the object box (and, for the synthetic
  set, the discriminative part boxes) in original-image pixels, for the
  attention-precision measures of the chapters.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

from torch.utils.data import Dataset

from fgvc_lib.data.image_io import load_rgb
from fgvc_lib.errors import FGVCError

Box = tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels, x1/y1 exclusive


class FGVCDataset(Dataset):
    """Base class: a list of ``(path, target)`` samples plus optional boxes.

    Subclasses fill ``self.samples``, ``self.classes`` and optionally
    ``self.boxes`` (one object box per sample) in ``__init__``.
    """

    splits: tuple[str, ...] = ("train", "test")

    def __init__(self, root: str | Path, split: str = "train",
                 transform: Callable | None = None,
                 target_transform: Callable | None = None) -> None:
        if split not in self.splits:
            raise FGVCError(f"{type(self).__name__}: unknown split {split!r}",
                            f"use one of: {', '.join(self.splits)}")
        self.root = Path(root).expanduser()
        self.split = split
        self.transform = transform
        self.target_transform = target_transform
        self.samples: list[tuple[Path, int]] = []
        self.classes: list[str] = []
        self.boxes: list[Box] | None = None

    # -- contract ---------------------------------------------------------
    @property
    def targets(self) -> list[int]:
        return [t for _, t in self.samples]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def has_boxes(self) -> bool:
        return self.boxes is not None

    def annotation(self, index: int) -> dict[str, Any]:
        """``{"object_box": Box, "part_boxes": [Box, ...], "size": (w, h)}``."""
        if self.boxes is None:
            raise FGVCError(f"{type(self).__name__} has no bounding boxes",
                            "use a dataset with boxes (synthetic, cub) for attention precision")
        img = load_rgb(self.samples[index][0])
        return {"object_box": self.boxes[index], "part_boxes": [], "size": img.size}

    def load_image(self, index: int):
        return load_rgb(self.samples[index][0])

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        image = self.load_image(index)
        target = self.samples[index][1]
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
                f"n={len(self)}, classes={self.num_classes}, boxes={self.has_boxes})")


def classes_sha256(classes: Sequence[str]) -> str:
    """SHA-256 of the ordered class names: which labels a model's outputs mean.

    Runs record it with their dataset (``dataset.classes_sha256``), so weights are never
    evaluated on data whose classes differ, even when the class count agrees.
    """
    return hashlib.sha256(json.dumps(list(classes), ensure_ascii=False).encode("utf-8")).hexdigest()


def require_dir(path: Path, dataset: str, hint: str) -> Path:
    """Raise a clear error if ``path`` is not a directory."""
    if not path.is_dir():
        raise FGVCError(f"{dataset}: folder not found: {path}", hint)
    return path


def require_file(path: Path, dataset: str, hint: str) -> Path:
    if not path.is_file():
        raise FGVCError(f"{dataset}: expected file missing: {path}", hint)
    return path
