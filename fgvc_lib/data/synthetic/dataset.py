"""The synthetic dataset itself: :class:`SyntheticFGVC` and the reader-facing :func:`describe`.

This module ties the parts together (class table, scene sampling,
rasteriser, cache) behind the library's dataset contract
(:class:`~fgvc_lib.data.base.FGVCDataset`). See the package docstring,
:mod:`fgvc_lib.data.synthetic`, for how an image is made.

Implementation notes
--------------------
* Train and test images use seeds derived from ``(seed, split)``; the
  class table depends on ``seed`` only, so both splits share the classes.
* ``part_boxes`` in :meth:`SyntheticFGVC.annotation` lists all three slots:
  each slot carries class information (a class is the combination), and
  the slot that separates a class from its sibling is named by
  :meth:`SyntheticFGVC.sibling_part`.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fgvc_lib.data.base import Box, FGVCDataset
from fgvc_lib.data.synthetic.cache import (CacheFiles, SplitArrays, cache_files, default_cache_root,
                                           open_split, save_cache)
from fgvc_lib.data.synthetic.classes import (COLOUR_NAMES, MAX_CLASSES, PATTERN_NAMES, SLOT_NAMES,
                                             check_int, check_num_classes, make_class_table)
from fgvc_lib.data.synthetic.raster import check_image_size, class_prototypes, render_images
from fgvc_lib.data.synthetic.scene import MAX_ROTATION_DEG, sample_params
from fgvc_lib.errors import FGVCError


class SyntheticFGVC(FGVCDataset):
    """Procedurally generated fine-grained birds; classes differ only in three small parts.

    Parameters
    ----------
    root:
        Cache folder; files go to ``root/synthetic/``. ``None``: ``$FGVC_CACHE``
        or ``~/.cache/fgvc_lib``.
    split:
        ``"train"`` or ``"test"`` (different seeds, disjoint images).
    transform, target_transform:
        Applied to the PIL RGB image and to the int target, torchvision style.
    num_classes:
        2 .. :data:`MAX_CLASSES`.
    per_class:
        Images per class in this split (the split is balanced).
    image_size:
        Side of the square images in pixels (>= 32).
    seed:
        Fixes the class table and, with the split, every image.
    download:
        Accepted for torchvision compatibility; nothing is downloaded.

    See the package docstring (or :func:`describe`) for how images are made.
    """

    def __init__(self, root: str | Path | None = None, split: str = "train",
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 num_classes: int = 10, per_class: int = 40, image_size: int = 64,
                 seed: int = 0, download: bool = False) -> None:
        num_classes = check_num_classes(num_classes)
        image_size = check_image_size(image_size)
        per_class = check_int("per_class", per_class)
        if per_class < 1:
            raise FGVCError(f"SyntheticFGVC: per_class={per_class} gives an empty split",
                            "use per_class >= 1 (e.g. 40 train / 20 test on a CPU)")
        seed = check_int("seed", seed)
        super().__init__(default_cache_root() if root is None else root, split,
                         transform, target_transform)
        self.num_classes_requested = num_classes
        self.per_class = per_class
        self.image_size = image_size
        self.seed = seed
        self.table = make_class_table(num_classes, seed)
        self.classes = self.table.names
        self.part_names = list(SLOT_NAMES)

        files = cache_files(self.root, split=split, num_classes=num_classes, per_class=per_class,
                            image_size=image_size, seed=seed)
        self.images_path, self.meta_path = files.images, files.meta
        loaded = open_split(files, num_classes * per_class, image_size,
                            lambda: self._generate(files))
        self.images, self._targets, self.object_boxes, self.part_boxes = loaded
        self.boxes = [tuple(float(x) for x in box) for box in self.object_boxes]

    def _generate(self, files: CacheFiles) -> SplitArrays:
        """Draw this split's targets and scenes, render them into the cache and return the arrays."""
        split_id = self.splits.index(self.split)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5917, split_id]))
        targets = np.repeat(np.arange(self.num_classes_requested), self.per_class)
        targets = targets[rng.permutation(len(targets))]
        params = sample_params(self.table, targets, rng, self.image_size)
        return save_cache(files, targets, self.table.codes, self.image_size,
                          lambda out: render_images(params, self.image_size, out=out)[1:])

    # -- dataset contract -------------------------------------------------
    @property
    def targets(self) -> list[int]:
        return [int(t) for t in self._targets]

    def __len__(self) -> int:
        return len(self._targets)

    def load_image(self, index: int) -> Image.Image:
        return Image.fromarray(np.array(self.images[index]))  # (H, W, 3) uint8 -> RGB

    def __getitem__(self, index: int):
        image = self.load_image(index)
        target = int(self._targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def annotation(self, index: int) -> dict[str, Any]:
        """Object box, the part boxes (all three slots) and their names, and ``(w, h)``.

        Boxes are ``(x0, y0, x1, y1)`` in pixels of the stored image, ``x1, y1``
        exclusive; every pixel the bird (or a part) touches lies inside.
        """
        part_boxes: list[Box] = [tuple(float(x) for x in box) for box in self.part_boxes[index]]
        return {"object_box": self.boxes[index], "part_boxes": part_boxes,
                "part_names": list(SLOT_NAMES), "size": (self.image_size, self.image_size)}

    # -- class structure --------------------------------------------------
    def sibling_part(self, class_index: int) -> str | None:
        """The one slot separating ``class_index`` from its sibling class (``None`` if unpaired)."""
        slot = int(self.table.sibling_slot[class_index])
        return None if slot < 0 else SLOT_NAMES[slot]

    @property
    def sibling_pairs(self) -> list[tuple[int, int, str]]:
        """``(class_a, class_b, slot)`` for every pair of classes differing in one part only."""
        return [(k, k + 1, SLOT_NAMES[int(self.table.sibling_slot[k])])
                for k in range(0, len(self.classes) - 1, 2) if self.table.sibling_slot[k] >= 0]

    def prototypes(self) -> np.ndarray:
        """:func:`class_prototypes` for this dataset's classes and resolution."""
        return class_prototypes(len(self.classes), self.image_size, self.seed)

    def __repr__(self) -> str:
        return (f"SyntheticFGVC(split={self.split!r}, n={len(self)}, classes={len(self.classes)}, "
                f"image_size={self.image_size}, seed={self.seed}, cache={str(self.images_path)!r})")


def describe(num_classes: int = 10, seed: int = 0) -> str:
    """A reader-facing description of the generator and of the first classes' codes."""
    table = make_class_table(num_classes, seed)
    lines = [
        "Synthetic fine-grained birds (fgvc_lib.data.synthetic).",
        "All classes share one bird template (body, head, beak, tail, wing, legs).",
        f"Three small part slots ({', '.join(SLOT_NAMES)}), each a disc 15% of the bird's length,",
        (f"carry the class: a colour ({', '.join(COLOUR_NAMES)}) and a pattern "
         f"({', '.join(PATTERN_NAMES)}) per slot; {MAX_CLASSES} combinations in all."),
        f"Per image, independent of the class: left/right flip, rotation +-{MAX_ROTATION_DEG:g} deg,",
        "scale, position, muted body colour, gradient background with clutter, part-colour jitter, noise.",
        "Classes 2k and 2k+1 are siblings that differ in one slot only (k mod 3).",
        "",
        f"Classes (seed={seed}):",
    ]
    for k, name in enumerate(table.names):
        slot = int(table.sibling_slot[k])
        note = f"  (sibling {k ^ 1}: differs at {SLOT_NAMES[slot]})" if slot >= 0 else ""
        lines.append(f"  {k:3d}  {name}{note}")
    return "\n".join(lines)
