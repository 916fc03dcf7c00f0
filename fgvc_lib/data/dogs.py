"""Stanford Dogs (Khosla et al., 2011): 20,580 ImageNet images of 120 breeds.

Official layout (``images.tar``, ``annotation.tar`` and ``lists.tar`` all
extracted into ``ROOT``)::

    ROOT/Images/<wnid>-<breed>/<wnid>_<n>.jpg      e.g. Images/n02085620-Chihuahua/n02085620_7.jpg
    ROOT/Annotation/<wnid>-<breed>/<wnid>_<n>      PASCAL-VOC XML, no extension
    ROOT/train_list.mat                            file_list, annotation_list, labels (12,000)
    ROOT/test_list.mat                             the same for the test images (8,580)

``file_list`` holds paths relative to ``Images/``
(``"n02085620-Chihuahua/n02085620_5927.jpg"``), ``annotation_list`` the same
relative to ``Annotation/`` without extension, ``labels`` the 1-based class.
The ``.mat`` lists may also sit in ``ROOT/lists/``.

Implementation notes
--------------------
* Classes are the ``Images/`` sub-folders sorted by name (i.e. by WordNet id),
  which is the order of the official 1-based labels; the loader checks that
  every listed file lies in the folder of its label, so a mismatch cannot
  pass silently. Class names are the breed part of the folder name
  (``"n02085620-Chihuahua"`` -> ``"Chihuahua"``).
* Boxes: some images show several dogs and carry several ``<object>``
  entries; the *largest* box is the object box. VOC coordinates are 1-based
  inclusive: ``(xmin - 1, ymin - 1, xmax, ymax)``, clipped at 0.
  ``load_boxes=False`` skips ``Annotation/`` entirely (boxes are None).
* Download: ``download=True`` fetches the three archives from the dataset's
  Stanford page over https and checks each one's size, MD5 and SHA-256
  (:data:`DOGS_ARCHIVES`; an archive already in ``ROOT`` is verified the same
  way before it is reused), then the extracted layout (``Images/``,
  ``Annotation/``, ``train_list.mat``, ``test_list.mat``).
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Callable

from fgvc_lib.data.base import Box, FGVCDataset
from fgvc_lib.data.download import Resource, ensure_downloaded
from fgvc_lib.data.folder import load_mat, mat_variable, require_images
from fgvc_lib.errors import FGVCError

DOGS_BASE_URL = "https://vision.stanford.edu/aditya86/ImageNetDogs/"
DOGS_HOME = DOGS_BASE_URL
#: ``name: (bytes, md5, sha256)`` of the three official archives. Stanford publishes no
#: checksum; these agree across independent copies: the SHA-256s and sizes recorded by
#: TensorFlow Datasets (``url_checksums/stanford_dogs.txt``) and the MD5s several
#: public loaders check.
DOGS_ARCHIVES: dict[str, tuple[int, str, str]] = {
    "images.tar": (793579520, "1bb1f2a596ae7057f99d7d75860002ef",
                   "a443fc2f9a851aa1a7b8e4fa4af94b8459fce2c9f5a2f4dd4669cf9673a4ec58"),
    "annotation.tar": (21852160, "4298cc0031f6bc6e74612ac83b5988e2",
                       "662ed36f707be6b195c2fda392d8e153e83af28cedc8e2134a649f198def30fd"),
    "lists.tar": (481280, "edbb9f16854ec66506b5f09b583e0656",
                  "34b47cacd9a98b5d150e084f24d29391c084c55272295ec65c85651bc35f4d6c"),
}


def read_voc_box(path: Path, dataset: str, fix: str) -> Box:
    """The largest ``<object><bndbox>`` of a PASCAL-VOC XML file, 0-based, exclusive ends."""
    if not path.is_file():
        raise FGVCError(f"{dataset}: annotation file missing: {path}", fix)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise FGVCError(f"{dataset}: malformed annotation XML {path} ({exc})", fix) from exc
    boxes: list[Box] = []
    for obj in root.iter("object"):
        bndbox = obj.find("bndbox")
        if bndbox is None:
            continue
        try:
            xmin, ymin, xmax, ymax = (float(bndbox.findtext(tag, "")) for tag in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            raise FGVCError(f"{dataset}: malformed <bndbox> in {path} (need numeric xmin, ymin, xmax, ymax)",
                            fix) from None
        if xmax < xmin or ymax < ymin:
            raise FGVCError(f"{dataset}: empty box in {path}: xmax < xmin or ymax < ymin", fix)
        boxes.append((max(xmin - 1.0, 0.0), max(ymin - 1.0, 0.0), xmax, ymax))
    if not boxes:
        raise FGVCError(f"{dataset}: no <object><bndbox> in {path}", fix)
    return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))


class StanfordDogs(FGVCDataset):
    """Stanford Dogs with the official train/test lists and object boxes.

    Parameters
    ----------
    root:
        The folder into which ``images.tar``, ``annotation.tar`` and
        ``lists.tar`` were extracted (holding ``Images/`` and ``Annotation/``).
    split:
        ``"train"`` (12,000 images) or ``"test"`` (8,580 images).
    download:
        Fetch and extract the three archives into ``root`` (size- and
        checksum-verified, then layout-checked).
    load_boxes:
        Read the boxes from ``Annotation/`` (default); ``False`` does not need
        that folder.
    """

    resources: tuple[Resource, ...] = tuple(
        Resource(DOGS_BASE_URL + name, name, md5=md5, sha256=sha256, size=size)
        for name, (size, md5, sha256) in DOGS_ARCHIVES.items())

    def __init__(self, root: str | Path, split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False,
                 load_boxes: bool = True) -> None:
        super().__init__(root, split, transform, target_transform)
        name = type(self).__name__
        fix = (f"download images.tar, annotation.tar and lists.tar from {DOGS_HOME} (or pass "
               f"download=True) and extract them into ROOT so that ROOT/Images/, ROOT/Annotation/ and "
               f"ROOT/{split}_list.mat exist (ROOT = {self.root})")
        if download:
            ensure_downloaded(name, self.resources, self.root, present=self._present,
                              expected_layout="Images/, Annotation/, train_list.mat and test_list.mat")
        if not self.root.is_dir():
            raise FGVCError(f"{name}: dataset root not found: {self.root}", fix)
        image_root = self.root / "Images"
        if not image_root.is_dir():
            raise FGVCError(f"{name}: expected folder Images/ under {self.root} (missing {image_root})", fix)
        class_dirs = sorted(p.name for p in image_root.iterdir() if p.is_dir() and not p.name.startswith("."))
        if not class_dirs:
            raise FGVCError(f"{name}: no class folders in {image_root}", fix)
        self.classes = [d.split("-", 1)[1] if "-" in d else d for d in class_dirs]

        list_path = self._list_file(split)
        if list_path is None:
            raise FGVCError(f"{name}: expected file missing: {self.root / f'{split}_list.mat'}", fix)
        mat = load_mat(list_path, name, fix)
        files = [str(f).strip() for f in mat_variable(mat, "file_list", list_path, name, fix)]
        labels = mat_variable(mat, "labels", list_path, name, fix)
        if "annotation_list" in mat:
            annotations = [str(a).strip() for a in mat_variable(mat, "annotation_list", list_path, name, fix)]
        else:
            annotations = [f.rsplit(".", 1)[0] for f in files]
        if not (len(files) == len(labels) == len(annotations)) or not files:
            raise FGVCError(f"{name}: {list_path} has {len(files)} files, {len(labels)} labels and "
                            f"{len(annotations)} annotations; they must be equal and non-zero", fix)

        for index, (file, label) in enumerate(zip(files, labels)):
            try:
                label_int = int(label)
            except (TypeError, ValueError):
                raise FGVCError(f"{name}: entry {index + 1} of 'labels' in {list_path} is not a "
                                f"number: {label!r}", fix) from None
            if label_int != label or not 1 <= label_int <= len(class_dirs):
                raise FGVCError(f"{name}: entry {index + 1} of 'labels' in {list_path} is {label!r}, "
                                f"not an integer in 1..{len(class_dirs)} (the folders of {image_root})",
                                fix)
            folder = file.split("/", 1)[0]
            if folder != class_dirs[label_int - 1]:
                raise FGVCError(f"{name}: entry {index + 1} of {list_path}: {file} has label {label_int}, "
                                f"but class {label_int} is folder {class_dirs[label_int - 1]} "
                                f"(labels follow the sorted folders of {image_root})", fix)
            self.samples.append((image_root / file, label_int - 1))
        require_images([p for p, _ in self.samples], name, fix)

        if load_boxes:
            annotation_root = self.root / "Annotation"
            if not annotation_root.is_dir():
                raise FGVCError(f"{name}: expected folder Annotation/ under {self.root} "
                                f"(missing {annotation_root})", fix + ", or pass load_boxes=False")
            self.boxes = [read_voc_box(annotation_root / a, name, fix) for a in annotations]

    def _list_file(self, split: str) -> Path | None:
        for folder in (self.root, self.root / "lists"):
            if (folder / f"{split}_list.mat").is_file():
                return folder / f"{split}_list.mat"
        return None

    def _present(self) -> bool:
        return ((self.root / "Images").is_dir() and (self.root / "Annotation").is_dir()
                and self._list_file("train") is not None and self._list_file("test") is not None)
