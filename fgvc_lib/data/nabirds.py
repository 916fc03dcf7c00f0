"""NABirds (Cornell Lab of Ornithology): 48,562 images of North American birds.

Official layout (archive ``nabirds.tar.gz``, extracts to ``nabirds/``)::

    ROOT/nabirds/images.txt              "<uuid> <class dir>/<uuid without dashes>.jpg"
    ROOT/nabirds/image_class_labels.txt  "<uuid> <class id>"
    ROOT/nabirds/train_test_split.txt    "<uuid> <1 = train, 0 = test>"
    ROOT/nabirds/classes.txt             "<class id> <class name with spaces>"
    ROOT/nabirds/bounding_boxes.txt      "<uuid> <x> <y> <width> <height>"
    ROOT/nabirds/images/<class dir>/<file>.jpg

Whitespace separated; image ids are UUID strings. ``ROOT`` may be the
``nabirds`` folder or its parent.

Implementation notes
--------------------
* ``classes.txt`` lists the whole taxonomy (1,011 nodes, from ``0 Birds``
  down); images are labelled with leaf classes only, and their ids are not
  contiguous. The targets are the class ids *used* in
  ``image_class_labels.txt`` (over both splits, so train and test agree),
  sorted ascending and numbered 0..K-1 (K = 555 for the official set).
* Boxes: ``(x, y, x + width, y + height)`` in pixels, as in CUB.
* No direct download: the archive is behind a terms-of-use form, so
  ``download=True`` raises :class:`FGVCError` with the address.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from fgvc_lib.data.base import FGVCDataset
from fgvc_lib.data.cub import fill_from_cub_tables, read_cub_style
from fgvc_lib.data.folder import locate_root, no_download_error

NABIRDS_HOME = "https://dl.allaboutbirds.org/nabirds"


class NABirds(FGVCDataset):
    """NABirds with leaf-class targets and object boxes.

    Parameters
    ----------
    root:
        The ``nabirds`` folder or its parent.
    split:
        ``"train"`` (23,929 images) or ``"test"`` (24,633 images), per
        ``train_test_split.txt``.
    download:
        Not available (terms must be accepted on the web page); raises
        :class:`FGVCError` with instructions when the data is missing.
    """

    def __init__(self, root: str | Path, split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        super().__init__(root, split, transform, target_transform)
        name = type(self).__name__
        fix = (f"request nabirds.tar.gz at {NABIRDS_HOME} (accept the terms of use) and extract it "
               f"so that ROOT/nabirds/images.txt exists (ROOT = {self.root})")
        if download and not any((c / "images.txt").is_file() for c in (self.root, self.root / "nabirds")):
            raise no_download_error(name, self.root, fix)
        folder = locate_root(self.root, name, "images.txt", ("nabirds",), fix)
        tables = read_cub_style(folder, name, sep=None, with_boxes=True,
                                fix=fix + "; if the file is there but malformed, re-extract it")
        used_classes = sorted(set(tables.labels.values()))
        self.folder = folder
        fill_from_cub_tables(self, tables, folder / "images", strip_prefix=False, fix=fix,
                          class_ids=used_classes)
