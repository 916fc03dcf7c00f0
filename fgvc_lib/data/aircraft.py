"""FGVC-Aircraft 2013b (Maji et al., 2013): 10,000 images of 100 aircraft variants.

Official layout (archive ``fgvc-aircraft-2013b.tar.gz``)::

    ROOT/fgvc-aircraft-2013b/data/images/<7-digit id>.jpg
    ROOT/fgvc-aircraft-2013b/data/variants.txt               one variant name a line (100)
    ROOT/fgvc-aircraft-2013b/data/images_variant_trainval.txt "<id> <variant name>"
    ROOT/fgvc-aircraft-2013b/data/images_variant_test.txt     "<id> <variant name>"
    ROOT/fgvc-aircraft-2013b/data/images_box.txt              "<id> <xmin> <ymin> <xmax> <ymax>"
    (and the same for families.txt / manufacturers.txt, images_family_*.txt, ...)

Names may contain spaces (``"Cessna 172"``), so a line is split at its first
space only. ``ROOT`` may be ``fgvc-aircraft-2013b/``, its parent, or the
``data/`` folder itself.

Implementation notes
--------------------
* Splits: ``"train"`` and ``"trainval"`` both read the official *trainval*
  list (6,667 images, the usual training set in FGVC papers); ``"test"``
  reads the test list (3,333 images).
* ``level`` chooses the label: ``"variant"`` (default, 100 classes, the
  usual FGVC benchmark), ``"family"`` (70) or ``"manufacturer"`` (30).
  Class order is the order of ``variants.txt`` (resp. ``families.txt``,
  ``manufacturers.txt``).
* Boxes: the README gives xmin, ymin, xmax, ymax with the top-left pixel at
  (1, 1), i.e. 1-based inclusive; they become ``(xmin - 1, ymin - 1, xmax, ymax)``.
* Copyright banner: every image carries a 20-pixel banner with the
  photographer's credit at the bottom, which the README asks users to
  remove. With ``crop_banner=True`` (default) :meth:`load_image` drops the
  bottom 20 rows, ``annotation(i)["size"]`` is the cropped size, and the
  boxes are clipped to the cropped height (the origin stays at the top-left,
  so no coordinate shifts). Clipping needs each image's height, so
  ``boxes[i]`` reads that image's header on first access (cached).
* Download: ``download=True`` fetches the 2.6 GB archive from the VGG site
  and checks the MD5 ``d4acdd33327262359767eeaa97a4f732`` published there.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

from PIL import Image

from fgvc_lib.data.base import Box, FGVCDataset
from fgvc_lib.data.download import Resource, ensure_downloaded
from fgvc_lib.data.folder import (
    image_size,
    locate_root,
    parse_number,
    read_list_file,
    require_images,
    unique_mapping,
)
from fgvc_lib.data.image_io import load_rgb
from fgvc_lib.errors import FGVCError

AIRCRAFT_URL = "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz"
AIRCRAFT_MD5 = "d4acdd33327262359767eeaa97a4f732"
AIRCRAFT_HOME = "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/"
BANNER_HEIGHT = 20
_CLASS_FILES = {"variant": "variants.txt", "family": "families.txt", "manufacturer": "manufacturers.txt"}


class _BannerClippedBoxes(Sequence):
    """Boxes clipped to the image height minus the banner, computed on access."""

    def __init__(self, boxes: list[Box], paths: list[Path], banner: int) -> None:
        self._boxes = boxes
        self._paths = paths
        self._banner = banner
        self._cache: dict[int, Box] = {}

    def __len__(self) -> int:
        return len(self._boxes)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = range(len(self))[index]  # normalises negatives, raises IndexError
        if index not in self._cache:
            x0, y0, x1, y1 = self._boxes[index]
            height = image_size(self._paths[index])[1] - self._banner
            self._cache[index] = (x0, min(y0, float(height)), x1, min(y1, float(height)))
        return self._cache[index]


class FGVCAircraft(FGVCDataset):
    """FGVC-Aircraft 2013b at variant (or family / manufacturer) level, with boxes.

    Parameters
    ----------
    root:
        ``fgvc-aircraft-2013b/``, its parent, or its ``data/`` folder.
    split:
        ``"train"`` = ``"trainval"`` (6,667 images) or ``"test"`` (3,333).
    download:
        Fetch and extract the official archive (MD5-checked) into ``root``.
    crop_banner:
        Remove the 20-pixel copyright banner at the bottom of every image
        (default, as the dataset's README asks).
    level:
        ``"variant"``, ``"family"`` or ``"manufacturer"``.
    """

    splits = ("train", "trainval", "test")
    resources: tuple[Resource, ...] = (
        Resource(AIRCRAFT_URL, "fgvc-aircraft-2013b.tar.gz", md5=AIRCRAFT_MD5),)

    def __init__(self, root: str | Path, split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False,
                 crop_banner: bool = True, level: str = "variant") -> None:
        super().__init__(root, split, transform, target_transform)
        name = type(self).__name__
        if level not in _CLASS_FILES:
            raise FGVCError(f"{name}: unknown level {level!r}", f"use one of: {', '.join(_CLASS_FILES)}")
        self.level = level
        self.crop_banner = crop_banner
        fix = (f"download fgvc-aircraft-2013b.tar.gz from {AIRCRAFT_HOME} (or pass download=True) "
               f"and extract it so that ROOT/fgvc-aircraft-2013b/data/{_CLASS_FILES[level]} exists "
               f"(ROOT = {self.root})")
        marker = _CLASS_FILES[level]
        candidates = ("data", "fgvc-aircraft-2013b/data")
        if download:
            ensure_downloaded(name, self.resources, self.root,
                              present=lambda: any((self.root / c / marker).is_file()
                                                  for c in ("", *candidates)),
                              expected_layout=f"fgvc-aircraft-2013b/data/{marker}")
        data = locate_root(self.root, name, marker, candidates, fix)
        self.folder = data
        malformed_fix = fix + "; if the file is there but malformed, re-extract it from the archive"

        class_lines = read_list_file(data / marker, name, columns=1, expected="one class name a line",
                                     fix=malformed_fix)
        unique_mapping(class_lines, name, "distinct class names", malformed_fix,
                       key=lambda row: row.fields[0], value=lambda row: None)
        self.classes = [line.fields[0] for line in class_lines]
        target_of = {c: i for i, c in enumerate(self.classes)}

        list_split = "test" if split == "test" else "trainval"
        fmt = "'<image id> <class name>'"
        rows = read_list_file(data / f"images_{level}_{list_split}.txt", name, columns=2,
                              expected=fmt, fix=malformed_fix, sep=" ")
        ids: list[str] = []
        for line in rows:
            image_id, class_name = line.fields
            if class_name not in target_of:
                raise line.error(name, fmt, malformed_fix,
                                 f"class {class_name!r} is not listed in {data / marker}")
            ids.append(image_id)
            self.samples.append((data / "images" / f"{image_id}.jpg", target_of[class_name]))
        unique_mapping(rows, name, fmt, malformed_fix, key=lambda row: row.fields[0], value=lambda row: None)

        fmt_box = "'<image id> <xmin> <ymin> <xmax> <ymax>'"
        box_lines = read_list_file(data / "images_box.txt", name, columns=5, expected=fmt_box,
                                   fix=malformed_fix)

        def to_box(line) -> Box:
            xmin, ymin, xmax, ymax = (float(parse_number(line, i, name, fmt_box, malformed_fix, float))
                                      for i in range(1, 5))
            if xmax < xmin or ymax < ymin:
                raise line.error(name, fmt_box, malformed_fix, "xmax < xmin or ymax < ymin")
            return (xmin - 1.0, ymin - 1.0, xmax, ymax)

        all_boxes = unique_mapping(box_lines, name, fmt_box, malformed_fix,
                                   key=lambda row: row.fields[0], value=to_box)
        absent = [i for i in ids if i not in all_boxes]
        if absent:
            raise FGVCError(f"{name}: {data / 'images_box.txt'} has no box for {len(absent)} image(s), "
                            f"first: {absent[0]}", malformed_fix)
        raw_boxes = [all_boxes[i] for i in ids]
        paths = [p for p, _ in self.samples]
        self.boxes = (_BannerClippedBoxes(raw_boxes, paths, BANNER_HEIGHT)  # type: ignore[assignment]
                      if crop_banner else raw_boxes)
        require_images(paths, name, fix)

    def load_image(self, index: int) -> Image.Image:
        image = load_rgb(self.samples[index][0])
        if not self.crop_banner:
            return image
        width, height = image.size
        if height <= BANNER_HEIGHT:
            raise FGVCError(f"{type(self).__name__}: image {self.samples[index][0]} is only {height} px "
                            f"high, no room for the {BANNER_HEIGHT}-px banner",
                            "replace the file from the official archive, or pass crop_banner=False")
        return image.crop((0, 0, width, height - BANNER_HEIGHT))

    def annotation(self, index: int) -> dict[str, Any]:
        """Object box and (banner-cropped) image size; see the module notes."""
        assert self.boxes is not None
        width, height = image_size(self.samples[index][0])
        if self.crop_banner:
            height -= BANNER_HEIGHT
        return {"object_box": self.boxes[index], "part_boxes": [], "size": (width, height)}
