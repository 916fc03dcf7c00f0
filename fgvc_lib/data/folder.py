"""Class-per-folder datasets, plus the small parsing helpers every real loader uses.

Layout read by :class:`ImageFolderDataset` (like ``/work/shared/data/flowers12-224px``)::

    ROOT/train/<class name>/<image>.jpg
    ROOT/test/<class name>/<image>.jpg
    ROOT/val/<class name>/<image>.jpg      (optional)

Classes are the sorted union of the class folders of all split folders that
exist, so a class missing from one split keeps the same index everywhere.
Images are the files with a known image extension (``IMAGE_EXTENSIONS``,
case-insensitive); other files and dot-files (``.DS_Store``) are skipped.
An image lying directly in a split folder, outside any class folder, is an
error rather than being silently dropped.

The helpers below (:func:`locate_root`, :func:`read_list_file`,
:func:`parse_number`, :func:`require_images`, :func:`image_size`) keep the
error messages of all loaders in one format: the dataset, the file, the line
number and the fix.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

from PIL import Image, UnidentifiedImageError

from fgvc_lib.data.base import FGVCDataset
from fgvc_lib.errors import FGVCError

IMAGE_EXTENSIONS: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


# --------------------------------------------------------------------------
# helpers shared by the real dataset loaders
# --------------------------------------------------------------------------
def locate_root(root: Path, dataset: str, marker: str, subfolders: Sequence[str] = (),
                fix: str = "") -> Path:
    """Return the folder holding ``marker``: ``root`` itself or ``root/<sub>``.

    This is how every loader accepts ``root`` pointing either at the extracted
    top folder or at its parent.
    """
    candidates = [root, *(root / sub for sub in subfolders)]
    for candidate in candidates:
        if (candidate / marker).exists():
            return candidate
    if not root.exists():
        raise FGVCError(f"{dataset}: dataset root not found: {root}", fix)
    looked = " or ".join(str(c / marker) for c in candidates)
    raise FGVCError(f"{dataset}: expected {marker} under {root} (looked for {looked})", fix)


@dataclass(frozen=True)
class ListLine:
    """One non-blank line of a list file, split into fields."""

    path: Path
    number: int  # 1-based, as an editor shows it
    text: str
    fields: list[str]

    def error(self, dataset: str, expected: str, fix: str, detail: str = "") -> FGVCError:
        detail = f": {detail}" if detail else ""
        return FGVCError(f"{dataset}: malformed line {self.number} in {self.path}: "
                         f"{self.text!r}{detail} (expected {expected})", fix)


def read_list_file(path: Path, dataset: str, *, columns: int, expected: str, fix: str,
                   sep: str | None = None) -> list[ListLine]:
    """Read a list file strictly: every non-blank line must have ``columns`` fields.

    ``sep=None`` splits on runs of whitespace; otherwise on ``sep`` with the
    fields stripped (so ``"3, 1"`` and ``"3,1"`` both work for ``sep=","``).
    The last field takes the rest of the line (class names with spaces).
    """
    if not path.is_file():
        raise FGVCError(f"{dataset}: expected file missing: {path}", fix)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise FGVCError(f"{dataset}: cannot read {path} ({exc})", fix) from exc
    lines: list[ListLine] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not stripped:
            continue
        if sep is None:
            fields = stripped.split(maxsplit=columns - 1)
        else:
            fields = [field.strip() for field in stripped.split(sep, columns - 1)]
        line = ListLine(path, number, stripped, fields)
        if len(fields) != columns or any(not field for field in fields):
            raise line.error(dataset, expected, fix, f"found {len(fields)} field(s), need {columns}")
        lines.append(line)
    if not lines:
        raise FGVCError(f"{dataset}: list file is empty: {path}", fix)
    return lines


def parse_number(line: ListLine, index: int, dataset: str, expected: str, fix: str,
                 kind: Callable[[str], float] = int) -> float:
    """Field ``index`` of ``line`` as ``int`` or ``float``, or a malformed-line error."""
    value = line.fields[index]
    try:
        return kind(value)
    except ValueError:
        raise line.error(dataset, expected, fix, f"field {index + 1} ({value!r}) is not a number") from None


def unique_mapping(lines: Iterable[ListLine], dataset: str, expected: str, fix: str,
                   key: Callable[[ListLine], object], value: Callable[[ListLine], object]) -> dict:
    """``{key(line): value(line)}``, refusing a key that appears twice."""
    mapping: dict = {}
    for line in lines:
        k = key(line)
        if k in mapping:
            raise line.error(dataset, expected, fix, f"id {k!r} appears twice")
        mapping[k] = value(line)
    return mapping


def require_images(paths: Sequence[Path], dataset: str, fix: str) -> None:
    """Fail at construction (not in the middle of an epoch) if images are missing."""
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise FGVCError(f"{dataset}: {len(missing)} of {len(paths)} image files are missing, "
                        f"first: {missing[0]}", fix)


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` from the file header, without decoding the pixels."""
    try:
        with Image.open(path) as img:
            return img.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FGVCError(f"corrupt or unreadable image: {path} ({exc})",
                        "delete or replace this file (re-download the dataset archive)") from exc


def is_image_file(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


def no_download_error(dataset: str, root: Path, instructions: str) -> FGVCError:
    """The error for ``download=True`` on a dataset without a direct download."""
    return FGVCError(f"{dataset}: no direct download exists for this dataset and it was not found "
                     f"under {root}", instructions)


# --------------------------------------------------------------------------
# ImageFolderDataset
# --------------------------------------------------------------------------
class ImageFolderDataset(FGVCDataset):
    """``ROOT/<split>/<class>/<image>``: one folder per class (no boxes).

    Parameters
    ----------
    root:
        The folder holding ``train/`` and ``test/`` (and optionally ``val/``).
    split:
        ``"train"``, ``"val"`` or ``"test"``: the sub-folder to read.
    download:
        There is nothing to download for a user's own folder; ``True`` raises
        :class:`FGVCError` when the split folder is missing.
    """

    splits = ("train", "val", "test")

    def __init__(self, root: str | Path, split: str = "train", transform: Callable | None = None,
                 target_transform: Callable | None = None, download: bool = False) -> None:
        super().__init__(root, split, transform, target_transform)
        name = type(self).__name__
        layout_fix = (f"arrange the images as ROOT/{split}/<class name>/<image>.jpg "
                      f"(ROOT = {self.root})")
        split_dir = self.root / split
        if not split_dir.is_dir():
            if download:
                raise no_download_error(name, self.root, layout_fix)
            if not self.root.is_dir():
                raise FGVCError(f"{name}: dataset root not found: {self.root}", layout_fix)
            raise FGVCError(f"{name}: expected split folder {split_dir}", layout_fix)

        class_names: set[str] = set()
        for split_name in self.splits:
            folder = self.root / split_name
            if folder.is_dir():
                class_names.update(p.name for p in folder.iterdir()
                                   if p.is_dir() and not p.name.startswith("."))
        self.classes = sorted(class_names)
        class_to_index = {c: i for i, c in enumerate(self.classes)}

        stray = sorted(p for p in split_dir.iterdir() if is_image_file(p))
        if stray:
            raise FGVCError(f"{name}: image outside any class folder: {stray[0]}",
                            f"move it into {split_dir}/<class name>/")
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for file in sorted(class_dir.iterdir()):
                if is_image_file(file):
                    self.samples.append((file, class_to_index[class_dir.name]))
        if not self.samples:
            raise FGVCError(f"{name}: no images found under {split_dir}", layout_fix)


def load_mat(path: Path, dataset: str, fix: str) -> dict:
    """Load a MATLAB ``.mat`` file with ``squeeze_me=True`` (cell arrays -> object arrays).

    SciPy is imported here, not at module import, so the other loaders work
    without it.
    """
    if not path.is_file():
        raise FGVCError(f"{dataset}: expected file missing: {path}", fix)
    try:
        import scipy.io
    except ImportError as exc:  # pragma: no cover - scipy is installed with the project
        raise FGVCError(f"{dataset}: reading {path} needs SciPy, which is not installed",
                        "pip install scipy") from exc
    try:
        return scipy.io.loadmat(str(path), squeeze_me=True)
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError, ... on bad files
        raise FGVCError(f"{dataset}: cannot read MATLAB file {path} ({type(exc).__name__}: {exc})",
                        fix) from exc


def mat_variable(mat: dict, key: str, path: Path, dataset: str, fix: str):
    """``mat[key]`` as a 1-D numpy array (a single entry is squeezed to a scalar by SciPy)."""
    import numpy as np

    if key not in mat:
        found = ", ".join(k for k in mat if not k.startswith("__")) or "nothing"
        raise FGVCError(f"{dataset}: {path} has no variable {key!r} (found: {found})", fix)
    return np.atleast_1d(mat[key]).ravel()
