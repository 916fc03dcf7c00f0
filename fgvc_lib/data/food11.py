"""Food-11 (EPFL MMSPG, Singla et al., 2016): 16,643 food photos in 11 categories.

Two layouts are read. The original EPFL archive ``Food-11.zip``::

    ROOT/training/<class>_<n>.jpg        9,866 images   (split "train")
    ROOT/validation/<class>_<n>.jpg      3,430 images   (split "val")
    ROOT/evaluation/<class>_<n>.jpg      3,347 images   (split "test")

where ``<class>`` is the 0-based class index (``training/3_120.jpg`` is an
egg dish), and the widespread re-packaging with one sub-folder per class::

    ROOT/training/<class folder>/<any name>.jpg        (same for validation/, evaluation/)

Class folders are matched to the official classes by name, ignoring case,
spaces and punctuation (``"Noodles-Pasta"`` = ``"Noodles/Pasta"``), or by
index (``"6"``). ``ROOT`` may also be the parent of a ``Food-11/``,
``food-11/`` or ``food11/`` folder.

Implementation notes
--------------------
* Classes, in the official index order: Bread, Dairy product, Dessert, Egg,
  Fried food, Meat, Noodles/Pasta, Rice, Seafood, Soup, Vegetable/Fruit.
  They are fixed, so every split has 11 classes even if one is empty.
* Strictness: in the flat layout an image whose name is not
  ``<index>_<n>.<ext>`` with index 0..10 is an error, not skipped; in the
  folder layout an unknown class folder is an error; a split folder mixing
  both layouts is an error. Non-image files and dot-files are ignored.
* No boxes. No direct download (the EPFL page asks for a request form), so
  ``download=True`` raises :class:`FGVCError` with instructions.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

from fgvc_lib.data.base import FGVCDataset
from fgvc_lib.data.folder import is_image_file, locate_root, no_download_error
from fgvc_lib.errors import FGVCError

FOOD11_CLASSES: tuple[str, ...] = (
    "Bread", "Dairy product", "Dessert", "Egg", "Fried food", "Meat",
    "Noodles/Pasta", "Rice", "Seafood", "Soup", "Vegetable/Fruit",
)
FOOD11_HOME = "https://www.epfl.ch/labs/mmspg/downloads/food-image-datasets/"
_SPLIT_FOLDERS = {"train": "training", "val": "validation", "test": "evaluation"}
_FLAT_NAME = re.compile(r"^(\d+)_\d+$")


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


_CLASS_BY_KEY = {_normalise(c): i for i, c in enumerate(FOOD11_CLASSES)}
_CLASS_BY_KEY.update({str(i): i for i in range(len(FOOD11_CLASSES))})


class Food11(FGVCDataset):
    """Food-11, flat (``<class>_<n>.jpg``) or class-folder layout, no boxes.

    Parameters
    ----------
    root:
        The folder holding ``training/``, ``validation/`` and ``evaluation/``
        (or the parent of ``Food-11/``).
    split:
        ``"train"`` (training/), ``"val"`` (validation/) or ``"test"`` (evaluation/).
    download:
        Not available; raises :class:`FGVCError` with instructions when the
        data is missing.
    """

    splits = ("train", "val", "test")

    def __init__(self, root: str | Path, split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        super().__init__(root, split, transform, target_transform)
        name = type(self).__name__
        split_folder = _SPLIT_FOLDERS[split]
        fix = (f"get Food-11 from {FOOD11_HOME} (or a mirror such as Kaggle's 'food11-image-dataset') "
               f"and extract it so that ROOT/{split_folder}/ exists (ROOT = {self.root})")
        subfolders = ("Food-11", "food-11", "food11", "Food11")
        if download and not any((c / split_folder).is_dir()
                                for c in (self.root, *(self.root / s for s in subfolders))):
            raise no_download_error(name, self.root, fix)
        self.folder = locate_root(self.root, name, split_folder, subfolders, fix)
        self.classes = list(FOOD11_CLASSES)
        split_dir = self.folder / split_folder

        entries = sorted(p for p in split_dir.iterdir() if not p.name.startswith("."))
        flat_images = [p for p in entries if is_image_file(p)]
        class_dirs = [p for p in entries if p.is_dir()]
        if flat_images and class_dirs:
            raise FGVCError(f"{name}: {split_dir} mixes images ({flat_images[0].name}) and class "
                            f"folders ({class_dirs[0].name})",
                            "keep one layout: <class>_<n>.jpg files, or one folder per class")
        if class_dirs:
            for class_dir in class_dirs:
                target = _CLASS_BY_KEY.get(_normalise(class_dir.name))
                if target is None:
                    raise FGVCError(f"{name}: unknown class folder {class_dir}",
                                    f"name the folders after the Food-11 classes: {', '.join(FOOD11_CLASSES)}")
                self.samples.extend((p, target) for p in sorted(class_dir.iterdir()) if is_image_file(p))
        else:
            for image in flat_images:
                match = _FLAT_NAME.match(image.stem)
                if match is None or int(match.group(1)) >= len(FOOD11_CLASSES):
                    raise FGVCError(f"{name}: unexpected file name {image} (expected <class 0-10>_<n>.jpg)",
                                    "restore the original file names of Food-11.zip, or use one folder "
                                    "per class")
                self.samples.append((image, int(match.group(1))))
            # Numeric order (0_2 before 0_10) keeps the order stable and readable.
            self.samples.sort(key=lambda s: tuple(int(x) for x in s[0].stem.split("_")))
        if not self.samples:
            raise FGVCError(f"{name}: no images found in {split_dir}", fix)
