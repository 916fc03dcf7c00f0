"""Stanford Cars (Krause et al., 2013): 16,185 images of 196 car models.

Original devkit layout (``cars_train.tgz``, ``cars_test.tgz``, ``car_devkit.tgz``
and the later ``cars_test_annos_withlabels.mat``)::

    ROOT/cars_train/00001.jpg ...                8,144 images
    ROOT/cars_test/00001.jpg ...                 8,041 images
    ROOT/devkit/cars_meta.mat                    class_names: 1 x 196 cell of strings
    ROOT/devkit/cars_train_annos.mat             annotations: struct array with fields
                                                 bbox_x1, bbox_y1, bbox_x2, bbox_y2, class, fname
    ROOT/cars_test_annos_withlabels.mat          the same for the test images
        (or ROOT/devkit/cars_test_annos_withlabels.mat)

``ROOT`` may also be the parent of a ``stanford_cars/`` folder holding the
above (torchvision's arrangement). Copies that nest the images one level
deeper (``cars_train/cars_train/*.jpg``, as some mirrors do) are accepted.

Implementation notes
--------------------
* ``class`` is 1-based: target = class - 1; ``classes`` are the names of
  ``cars_meta.mat`` in order.
* Boxes are 1-based *inclusive* pixel coordinates (MATLAB convention). They
  become 0-based with exclusive ends: ``(x1 - 1, y1 - 1, x2, y2)``.
* The test labels live only in ``cars_test_annos_withlabels.mat``; the
  devkit's ``cars_test_annos.mat`` has no ``class`` field, so it is refused
  with a message pointing to the file with labels.
* No direct download: the original Stanford address no longer serves the
  files, so ``download=True`` raises :class:`FGVCError` with instructions.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from fgvc_lib.data.base import Box, FGVCDataset
from fgvc_lib.data.folder import load_mat, locate_root, mat_variable, no_download_error, require_images
from fgvc_lib.errors import FGVCError

CARS_HOME = "https://ai.stanford.edu/~jkrause/cars/car_dataset.html"
_FIELDS = ("bbox_x1", "bbox_y1", "bbox_x2", "bbox_y2", "class", "fname")


class StanfordCars(FGVCDataset):
    """Stanford Cars from the original devkit ``.mat`` files, with object boxes.

    Parameters
    ----------
    root:
        The folder holding ``cars_train/``, ``cars_test/`` and ``devkit/``, or
        the parent of a ``stanford_cars/`` folder holding them.
    split:
        ``"train"`` (8,144 images) or ``"test"`` (8,041 images).
    download:
        Not available; raises :class:`FGVCError` with instructions when the
        data is missing.
    """

    def __init__(self, root: str | Path, split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        super().__init__(root, split, transform, target_transform)
        name = type(self).__name__
        fix = ("the original site (" + CARS_HOME + ") no longer serves the files: get cars_train.tgz, "
               "cars_test.tgz, car_devkit.tgz and cars_test_annos_withlabels.mat from a mirror "
               "(e.g. the Kaggle copies of 'Stanford Cars') and extract them so that "
               f"ROOT/devkit/cars_meta.mat and ROOT/cars_{split}/ exist (ROOT = {self.root})")
        marker = "devkit/cars_meta.mat"
        if download and not any((c / marker).is_file() for c in (self.root, self.root / "stanford_cars")):
            raise no_download_error(name, self.root, fix)
        folder = locate_root(self.root, name, marker, ("stanford_cars",), fix)
        self.folder = folder

        meta_path = folder / "devkit" / "cars_meta.mat"
        names = mat_variable(load_mat(meta_path, name, fix), "class_names", meta_path, name, fix)
        self.classes = [str(n).strip() for n in names]

        annos_path = self._annotation_file(folder, fix)
        annotations = mat_variable(load_mat(annos_path, name, fix), "annotations", annos_path, name, fix)
        missing = [f for f in _FIELDS if annotations.dtype.names is None or f not in annotations.dtype.names]
        if missing:
            hint = (" (cars_test_annos.mat has no labels: use cars_test_annos_withlabels.mat)"
                    if missing == ["class"] else "")
            raise FGVCError(f"{name}: 'annotations' in {annos_path} lacks field(s) "
                            f"{', '.join(missing)}{hint}", fix)

        image_dir = folder / f"cars_{split}"
        if (image_dir / image_dir.name).is_dir():
            image_dir = image_dir / image_dir.name
        if not image_dir.is_dir():
            raise FGVCError(f"{name}: image folder not found: {image_dir}", fix)

        boxes: list[Box] = []
        for index, record in enumerate(annotations):
            try:
                fname = str(record["fname"]).strip()
                class_id = int(record["class"])
                x1, y1, x2, y2 = (float(record[f]) for f in _FIELDS[:4])
            except (TypeError, ValueError) as exc:
                raise FGVCError(f"{name}: malformed entry {index + 1} of 'annotations' in {annos_path} "
                                f"({exc})", fix) from exc
            if not 1 <= class_id <= len(self.classes):
                raise FGVCError(f"{name}: entry {index + 1} ({fname}) of {annos_path} has class "
                                f"{class_id}, outside 1..{len(self.classes)} of {meta_path}", fix)
            if x2 < x1 or y2 < y1:
                raise FGVCError(f"{name}: entry {index + 1} ({fname}) of {annos_path} has an empty box "
                                f"({x1}, {y1}, {x2}, {y2})", fix)
            self.samples.append((image_dir / fname, class_id - 1))
            boxes.append((x1 - 1.0, y1 - 1.0, x2, y2))
        if not self.samples:
            raise FGVCError(f"{name}: no annotations in {annos_path}", fix)
        self.boxes = boxes
        require_images([p for p, _ in self.samples], name, fix)

    def _annotation_file(self, folder: Path, fix: str) -> Path:
        if self.split == "train":
            return folder / "devkit" / "cars_train_annos.mat"
        for candidate in (folder / "cars_test_annos_withlabels.mat",
                          folder / "devkit" / "cars_test_annos_withlabels.mat"):
            if candidate.is_file():
                return candidate
        unlabeled = folder / "devkit" / "cars_test_annos.mat"
        extra = (f" ({unlabeled} exists but has no labels)" if unlabeled.is_file() else "")
        raise FGVCError(f"{type(self).__name__}: expected file missing: "
                        f"{folder / 'cars_test_annos_withlabels.mat'}{extra}",
                        fix)
