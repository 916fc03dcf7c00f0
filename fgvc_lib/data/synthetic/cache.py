"""The on-disk cache of generated synthetic splits: where it lives, how it is keyed, written and checked.

Rendering is cheap but not free (seconds for a 448 px split), and DataLoader
workers must not each regenerate the split, so every split is generated
once and then read back memory-mapped.

Implementation notes
--------------------
* The cache is two files per (parameters) key: a ``.npy`` image array
  (memory-mapped when read, so 448 px sets do not need to fit in RAM per
  worker) and a ``.npz`` with targets and boxes, written last. Both go
  through :func:`fgvc_lib.io.atomic_write` (a temporary file beside the
  target, then a rename), so a crash never leaves a half-written cache file
  under the final name, and a corrupt or truncated cache is regenerated.
* The meta file records the SHA-256 of the image array
  (``images_sha256``); an image file whose bytes do not match (zero-filled,
  overwritten, or a cache written before the checksum existed) is
  regenerated, as is a meta file that is truncated or no zip at all. Hashing
  costs about a second per GB, once per construction.
* The key hashes every parameter that changes the data and
  :data:`GENERATOR_VERSION`, so a change of the pictures never reuses an
  old cache.
* Writers of one split hold its lock file (``.<stem>.lock``,
  :class:`fgvc_lib.io.FileLock`), so two processes never render the same
  split at once (the second waits, then reads the cache), and temporary files
  a killed writer left are deleted by the next process that takes the lock:
  with the lock held, no live writer can own them.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fgvc_lib.data.synthetic.classes import SLOT_NAMES
from fgvc_lib.errors import FGVCError
from fgvc_lib.io import FileLock, atomic_write, remove_stale_temporaries

#: Bump when the rendered pictures change, so old caches are not reused.
GENERATOR_VERSION = 3
CACHE_ENV = "FGVC_CACHE"

#: ``(images (N, H, W, 3) uint8, targets (N,), object boxes (N, 4), part boxes (N, S, 4))``.
SplitArrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def default_cache_root() -> Path:
    """``$FGVC_CACHE`` if set, else ``~/.cache/fgvc_lib``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fgvc_lib"


def cache_key(**params: Any) -> str:
    """A short hash of every parameter that changes the generated data."""
    blob = json.dumps({"generator_version": GENERATOR_VERSION, **params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CacheFiles:
    """The two files of one generated split; the split is cached once both exist."""

    images: Path  # .npy, (N, H, W, 3) uint8
    meta: Path  # .npz: targets, object_boxes, part_boxes, codes, images_sha256; written last
    lock: Path  # held by a writer of this split (and while removing stale temporaries)

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete what a killed writer left (call with :attr:`lock` held)."""
        return remove_stale_temporaries(self.images.parent, (self.images.name, self.meta.name))


def cache_files(root: Path, *, split: str, num_classes: int, per_class: int, image_size: int,
                seed: int) -> CacheFiles:
    """The cache files of one split under ``root/synthetic/`` (the folder is created).

    The readable stem names the parameters for a person listing the folder;
    the key makes it unique.
    """
    key = cache_key(num_classes=num_classes, per_class=per_class, image_size=image_size,
                    seed=seed, split=split)
    stem = f"synthetic-{split}-{num_classes}c-{per_class}pc-{image_size}px-s{seed}-{key}"
    cache_dir = root / "synthetic"
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FGVCError(f"SyntheticFGVC: cannot create cache folder {cache_dir} ({exc})",
                        f"pass root= a writable folder or set ${CACHE_ENV}") from exc
    return CacheFiles(images=cache_dir / f"{stem}.images.npy", meta=cache_dir / f"{stem}.meta.npz",
                      lock=cache_dir / f".{stem}.lock")


def images_sha256(images: np.ndarray) -> str:
    """SHA-256 of an image array's bytes, read in chunks of about 64 MB (it may be a memmap)."""
    digest = hashlib.sha256()
    per_item = max(1, int(np.prod(images.shape[1:], dtype=np.int64)) * images.itemsize)
    step = max(1, (64 << 20) // per_item)
    for start in range(0, len(images), step):
        digest.update(np.ascontiguousarray(images[start:start + step]))
    return digest.hexdigest()


def open_split(files: CacheFiles, count: int, size: int,
               generate: Callable[[], SplitArrays]) -> SplitArrays:
    """The cached split, else ``generate()`` under the split's lock.

    The cache is read without the lock (its files are only ever replaced whole);
    only a missing or damaged cache takes it, then re-checks (another process may
    have just written it) before generating. Temporary files a killed writer left
    are removed whenever the lock is free.
    """
    loaded = load_cache(files, count, size)
    if loaded is not None:
        _tidy_if_free(files)
        return loaded
    with FileLock(files.lock):
        files.remove_stale_temporaries()
        loaded = load_cache(files, count, size)
        return loaded if loaded is not None else generate()


def _tidy_if_free(files: CacheFiles) -> None:
    lock = FileLock(files.lock)
    with contextlib.suppress(FGVCError, OSError):  # busy (a writer is at work) or read-only
        lock.acquire(blocking=False)
        try:
            files.remove_stale_temporaries()
        finally:
            lock.release()


def load_cache(files: CacheFiles, count: int, size: int) -> SplitArrays | None:
    """The cached arrays, or ``None`` if missing, incomplete or corrupt (then regenerate).

    ``count`` images of ``size`` px are expected; the images stay memory-mapped.
    """
    if not (files.images.is_file() and files.meta.is_file()):
        return None
    try:
        images = np.load(files.images, mmap_mode="r")
        with np.load(files.meta) as meta:
            targets = meta["targets"]
            object_boxes, part_boxes = meta["object_boxes"], meta["part_boxes"]
            recorded = str(meta["images_sha256"]) if "images_sha256" in meta.files else None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zipfile.LargeZipFile):
        return None  # missing, truncated or not a zip at all: regenerate
    if (images.shape != (count, size, size, 3) or images.dtype != np.uint8
            or targets.shape != (count,) or object_boxes.shape != (count, 4)
            or part_boxes.shape != (count, len(SLOT_NAMES), 4)):
        return None
    if recorded is None or images_sha256(images) != recorded:
        return None  # the images are not the ones the meta file describes (or unverifiable)
    return images, targets, object_boxes, part_boxes


def save_cache(files: CacheFiles, targets: np.ndarray, codes: np.ndarray, size: int,
               render: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]) -> SplitArrays:
    """Render a split straight into its cache file and write its metadata; return the arrays.

    ``render(out)`` fills ``out`` (an (N, size, size, 3) uint8 memmap of the
    temporary image file, so a 448 px split never sits in RAM whole) and
    returns ``(object_boxes, part_boxes)``. ``codes`` (the class table) is
    stored beside the targets, so the file itself says what its labels mean.
    """
    n = len(targets)
    boxes: dict[str, np.ndarray] = {}
    digest: dict[str, str] = {}

    def write_images(tmp: Path) -> None:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
        boxes["object"], boxes["parts"] = render(out)
        out.flush()
        digest["images"] = images_sha256(out)
        del out

    def write_meta(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, targets=targets, object_boxes=boxes["object"],
                     part_boxes=boxes["parts"], codes=codes,
                     images_sha256=np.array(digest["images"]))

    atomic_write(files.images, write_images)
    atomic_write(files.meta, write_meta)  # written last: marks the cache complete
    images = np.load(files.images, mmap_mode="r")
    return images, targets, boxes["object"], boxes["parts"]
