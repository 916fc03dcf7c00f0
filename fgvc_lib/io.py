"""The library's two small file and text helpers, used by every layer.

* :func:`atomic_write` -- write a file so that a reader (or a crash) never
  sees half of it: the content goes to a unique temporary file in the same
  folder, is flushed, then renamed over the target (``os.replace`` is atomic
  on POSIX). Checkpoints, run records, the synthetic cache and downloads all
  write through it.
* :func:`parse_key_value` -- one ``KEY=VALUE`` string (``--opt t=0.5``) to a
  pair, the value read as JSON where it is JSON and as a plain string
  otherwise (``--opt augmentation=mda`` needs no quotes).

This module imports nothing from the rest of the library but
:mod:`fgvc_lib.errors`, so the data layer can use it.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from fgvc_lib.errors import FGVCError

TMP_SUFFIX = ".tmp"


def atomic_write(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` to fill a temporary file, then move it to ``path``.

    The temporary file lives beside ``path`` (same file system, so the rename
    is atomic) and is removed if ``writer`` fails. Its permissions follow the
    process umask, as a plain ``open`` would (``mkstemp`` alone gives 0600).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: str | Path, data: Any) -> None:
    """``data`` as indented JSON (paths and tensors converted), written atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist") and getattr(obj, "ndim", 0) > 0:
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def stale_temporaries(folder: str | Path, name: str) -> Iterator[Path]:
    """Temporary files :func:`atomic_write` left for target ``name`` after a kill."""
    folder = Path(folder)
    if folder.is_dir():
        yield from folder.glob(f".{name}.*{TMP_SUFFIX}")


def parse_key_value(text: str) -> tuple[str, Any]:
    """``"t=0.5"`` -> ``("t", 0.5)``; ``"pooling=avg"`` -> ``("pooling", "avg")``.

    Raises :class:`FGVCError` (one line) when there is no ``=`` or no key.
    """
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise FGVCError(f"expected KEY=VALUE, got {text!r}", "write e.g. --opt t=0.5")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key, value
