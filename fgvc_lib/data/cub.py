"""Caltech-UCSD Birds-200-2011 (CUB) and CUB-style list-file subsets.

Official layout read by :class:`CUB200` (archive ``CUB_200_2011.tgz``,
11,788 images of 200 species)::

    ROOT/CUB_200_2011/images.txt              "<image id> <class dir>/<file>.jpg"
    ROOT/CUB_200_2011/image_class_labels.txt  "<image id> <class id>"
    ROOT/CUB_200_2011/train_test_split.txt    "<image id> <1 = train, 0 = test>"
    ROOT/CUB_200_2011/classes.txt             "<class id> <NNN.Class_name>"
    ROOT/CUB_200_2011/bounding_boxes.txt      "<image id> <x> <y> <width> <height>"
    ROOT/CUB_200_2011/images/<class dir>/<file>.jpg

Fields are separated by whitespace; image and class ids are 1-based. The
official split has 5,994 training and 5,794 test images. ``ROOT`` may be the
``CUB_200_2011`` folder itself or its parent (where the archive extracts it).

:class:`CUBList` reads the comma-separated variant used by
``/work/shared/data/cub100-227px``: the same four files without
``bounding_boxes.txt``, lines like ``"0, Black_footed_Albatross/0000.jpg"``,
0-based ids, ``ROOT/images/<class>/<file>.jpg``. Its README states the
split counts the wrong way round; the flags in ``train_test_split.txt``
(1 = train) are what this loader follows (2,903 train / 2,999 test there).

Implementation notes
--------------------
* Targets: the class ids of ``classes.txt`` sorted ascending and numbered
  0..K-1, so CUB's 1..200 become 0..199 and a 0-based subset stays as it is.
* Class names drop CUB's numeric folder prefix (``"001.Black_footed_Albatross"``
  -> ``"Black_footed_Albatross"``), matching the names of the subsets.
* Boxes: ``(x, y, x + width, y + height)`` read as float pixels. CUB does not
  state whether x, y are 0- or 1-based; they are used as given (0-based,
  top-left corner), the common reading.
* The four (five) files must agree: every image id needs exactly one label
  and one split flag, no id may repeat and every class id must be listed in
  ``classes.txt``; all images must exist. Any violation raises
  :class:`FGVCError` naming the file and line.
* Download: ``download=True`` fetches ``CUB_200_2011.tgz`` from CaltechDATA and
  checks the MD5 ``97eceeb196236b17998738112f37df78`` (the archive's published
  checksum, the same in many independent loaders).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from fgvc_lib.data.base import Box, FGVCDataset
from fgvc_lib.data.download import Resource, ensure_downloaded
from fgvc_lib.data.folder import (
    ListLine,
    locate_root,
    parse_number,
    read_list_file,
    require_images,
    unique_mapping,
)
from fgvc_lib.errors import FGVCError

CUB_URL = "https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1"
CUB_MD5 = "97eceeb196236b17998738112f37df78"
CUB_HOME = "https://www.vision.caltech.edu/datasets/cub_200_2011/"


@dataclass
class CUBStyleTables:
    """The parsed list files of a CUB-style dataset, keyed by image id (a string)."""

    image_ids: list[str]             # in images.txt order
    paths: dict[str, str]            # image id -> path relative to images/
    labels: dict[str, int]           # image id -> class id as written
    is_train: dict[str, bool]
    class_names: dict[int, str]      # class id -> name as written
    boxes: dict[str, Box] | None     # image id -> (x0, y0, x1, y1)


def read_cub_style(folder: Path, dataset: str, *, sep: str | None, fix: str,
                   with_boxes: bool, box_file: str = "bounding_boxes.txt") -> CUBStyleTables:
    """Read ``images.txt``, ``image_class_labels.txt``, ``train_test_split.txt``,
    ``classes.txt`` (and ``bounding_boxes.txt``) from ``folder`` and cross-check them.

    Image ids are kept as strings (NABirds uses UUIDs); class ids are ints.
    """
    def rows(name: str, columns: int, expected: str) -> list[ListLine]:
        return read_list_file(folder / name, dataset, columns=columns, expected=expected,
                              fix=fix, sep=sep)

    fmt_images = "'<image id> <relative path>'"
    images = rows("images.txt", 2, fmt_images)
    paths = unique_mapping(images, dataset, fmt_images, fix,
                           key=lambda row: row.fields[0], value=lambda row: row.fields[1])
    image_ids = list(paths)

    fmt_classes = "'<class id> <class name>'"
    classes = rows("classes.txt", 2, fmt_classes)
    class_names = unique_mapping(classes, dataset, fmt_classes, fix,
                                 key=lambda row: int(parse_number(row, 0, dataset, fmt_classes, fix)),
                                 value=lambda row: row.fields[1])

    fmt_labels = "'<image id> <class id>'"
    label_rows = rows("image_class_labels.txt", 2, fmt_labels)
    labels = unique_mapping(label_rows, dataset, fmt_labels, fix,
                            key=lambda row: row.fields[0],
                            value=lambda row: int(parse_number(row, 1, dataset, fmt_labels, fix)))
    for line in label_rows:
        if labels[line.fields[0]] not in class_names:
            raise line.error(dataset, fmt_labels, fix,
                             f"class id {line.fields[1]} is not listed in {folder / 'classes.txt'}")

    fmt_split = "'<image id> <1 for train, 0 for test>'"
    split_rows = rows("train_test_split.txt", 2, fmt_split)
    for line in split_rows:
        if line.fields[1] not in ("0", "1"):
            raise line.error(dataset, fmt_split, fix, f"flag {line.fields[1]!r} is not 0 or 1")
    is_train = unique_mapping(split_rows, dataset, fmt_split, fix,
                              key=lambda row: row.fields[0], value=lambda row: row.fields[1] == "1")

    boxes = None
    box_rows: list[ListLine] = []
    if with_boxes:
        fmt_boxes = "'<image id> <x> <y> <width> <height>'"
        box_rows = rows(box_file, 5, fmt_boxes)

        def to_box(line: ListLine) -> Box:
            x, y, w, h = (float(parse_number(line, i, dataset, fmt_boxes, fix, float)) for i in range(1, 5))
            if w < 0 or h < 0:
                raise line.error(dataset, fmt_boxes, fix, "negative width or height")
            return (x, y, x + w, y + h)

        boxes = unique_mapping(box_rows, dataset, fmt_boxes, fix,
                               key=lambda row: row.fields[0], value=to_box)

    # Every table must describe exactly the images of images.txt.
    known = set(paths)
    for name, table, lines in (("image_class_labels.txt", labels, label_rows),
                               ("train_test_split.txt", is_train, split_rows),
                               (box_file, boxes, box_rows)):
        if table is None:
            continue
        for line in lines:
            if line.fields[0] not in known:
                raise line.error(dataset, "an image id listed in images.txt", fix,
                                 f"image id {line.fields[0]!r} is not in {folder / 'images.txt'}")
        absent = [i for i in image_ids if i not in table]
        if absent:
            raise FGVCError(f"{dataset}: {folder / name} has no entry for {len(absent)} image id(s) "
                            f"of images.txt, first: {absent[0]!r}", fix)
    return CUBStyleTables(image_ids, paths, labels, is_train, class_names, boxes)


_CUB_PREFIX = re.compile(r"^\d+\.")


class CUB200(FGVCDataset):
    """CUB-200-2011 from the official archive (200 classes, with object boxes).

    Parameters
    ----------
    root:
        The ``CUB_200_2011`` folder or its parent.
    split:
        ``"train"`` (5,994 images) or ``"test"`` (5,794 images), per
        ``train_test_split.txt``.
    download:
        Fetch and extract ``CUB_200_2011.tgz`` (1.1 GB, MD5-checked) into
        ``root`` if the dataset is not there yet.
    """

    resources: tuple[Resource, ...] = (Resource(CUB_URL, "CUB_200_2011.tgz", md5=CUB_MD5),)

    def __init__(self, root: str | Path, split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        super().__init__(root, split, transform, target_transform)
        name = type(self).__name__
        fix = (f"download CUB_200_2011.tgz from {CUB_HOME} (or pass download=True) and extract it "
               f"so that ROOT/CUB_200_2011/images.txt exists (ROOT = {self.root})")
        if download:
            ensure_downloaded(name, self.resources, self.root,
                              present=lambda: self._find_folder() is not None,
                              expected_layout="CUB_200_2011/images.txt")
        folder = locate_root(self.root, name, "images.txt", ("CUB_200_2011",), fix)
        tables = read_cub_style(
            folder, name, sep=None, with_boxes=True,
            fix=fix + "; if the file is there but malformed, re-extract it from the archive "
                      "(for comma-separated list files such as cub100-227px use CUBList)")
        self.folder = folder
        fill_from_cub_tables(self, tables, folder / "images", strip_prefix=True, fix=fix)

    def _find_folder(self) -> Path | None:
        for candidate in (self.root, self.root / "CUB_200_2011"):
            if (candidate / "images.txt").is_file():
                return candidate
        return None


class CUBList(FGVCDataset):
    """A CUB subset described by comma-separated list files (0-based ids, no boxes).

    ``root`` is the folder holding ``images.txt`` and ``images/`` (for
    example ``/work/shared/data/cub100-227px``). There is no download: such
    subsets are made locally.
    """

    def __init__(self, root: str | Path, split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        super().__init__(root, split, transform, target_transform)
        name = type(self).__name__
        fix = (f"point root at the folder holding images.txt, image_class_labels.txt, "
               f"train_test_split.txt, classes.txt and images/ (ROOT = {self.root})")
        if download and not (self.root / "images.txt").is_file():
            raise FGVCError(f"{name}: a CUB list subset cannot be downloaded and none was found "
                            f"under {self.root}",
                            "build the subset locally, or use CUB200(download=True) for the full set")
        folder = locate_root(self.root, name, "images.txt", (), fix)
        tables = read_cub_style(
            folder, name, sep=",", with_boxes=False,
            fix=fix + "; lines look like '3, Class_name/0003.jpg' (for the whitespace-separated "
                      "official CUB_200_2011 layout use CUB200)")
        self.folder = folder
        fill_from_cub_tables(self, tables, folder / "images", strip_prefix=False, fix=fix)


def fill_from_cub_tables(dataset: FGVCDataset, tables: CUBStyleTables, image_dir: Path, *,
                      strip_prefix: bool, fix: str, class_ids: list[int] | None = None) -> None:
    """Fill ``samples``, ``classes`` and ``boxes`` of ``dataset`` for its split.

    ``class_ids`` are the class ids that become targets 0..K-1 in this
    order; by default every id of ``classes.txt``, ascending.
    """
    ids = sorted(tables.class_names) if class_ids is None else class_ids
    target_of = {class_id: index for index, class_id in enumerate(ids)}
    names = [tables.class_names[i] for i in ids]
    dataset.classes = [_CUB_PREFIX.sub("", n) for n in names] if strip_prefix else names
    want_train = dataset.split == "train"
    chosen = [i for i in tables.image_ids if tables.is_train[i] == want_train]
    if not chosen:
        raise FGVCError(f"{type(dataset).__name__}: no {dataset.split} images in "
                        f"{dataset.folder / 'train_test_split.txt'}", fix)
    dataset.samples = [(image_dir / tables.paths[i], target_of[tables.labels[i]]) for i in chosen]
    dataset.boxes = None if tables.boxes is None else [tables.boxes[i] for i in chosen]
    require_images([p for p, _ in dataset.samples], type(dataset).__name__, fix)
