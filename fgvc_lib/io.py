"""The library's two small file and text helpers, used by every layer.

* :func:`atomic_write` -- write a file so that a reader (or a crash) never
  sees half of it: the content goes to a unique temporary file in the same
  folder, is flushed, then renamed over the target (``os.replace`` is atomic
  on POSIX). Checkpoints, run records, the synthetic cache and downloads all
  write through it.
* :func:`parse_key_value` -- one ``KEY=VALUE`` string (``--opt t=0.5``) to a
  pair, the value read as JSON where it is JSON and as a plain string
  otherwise (``--opt augmentation=mda`` needs no quotes).
* :class:`FileLock` -- an exclusive ``flock`` on a lock file (a run folder's
  ``.lock``, a synthetic split's cache entry) that records its holder (pid,
  host, start time, command), so a refusal can say who holds it and a lock
  left by a killed process is recognised; :func:`remove_stale_temporaries`
  deletes what a killed :func:`atomic_write` left, once the lock says no
  writer is alive.

This module imports nothing from the rest of the library but
:mod:`fgvc_lib.errors`, so the data layer can use it.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import socket
import sys
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


def remove_stale_temporaries(folder: str | Path, names: Iterator[str] | list[str] | tuple[str, ...]
                             ) -> list[Path]:
    """Delete the :func:`stale_temporaries` of every target in ``names``; return them.

    Call it only while holding the :class:`FileLock` that every writer of these
    targets holds, so no temporary file still being written is taken away.
    """
    removed = []
    for name in names:
        for tmp in list(stale_temporaries(folder, name)):
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append(tmp)
    return removed


try:  # POSIX; elsewhere the lock falls back to the holder record alone
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class FileLock:
    """An exclusive lock on ``path`` (created if missing), held until :meth:`release`.

    The lock is an ``flock`` on the open file, so the kernel releases it when the
    holder dies (``kill -9`` included): a lock can never outlive its process on the
    same machine. The file records the holder (pid, host, start time, command line)
    while it is held and is emptied on a clean release; a record found when taking
    a free lock therefore names a holder that ended without releasing it (killed, or
    crashed): :attr:`stale_holder`.

    ``blocking=False`` raises :class:`FGVCError` at once when another process holds
    the lock, naming it; ``what`` (e.g. ``"run folder runs/b"``) and ``fix`` word the
    message.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._handle = None
        self.stale_holder: dict[str, Any] | None = None

    @property
    def held(self) -> bool:
        return self._handle is not None

    def acquire(self, *, blocking: bool = False, what: str | None = None,
                fix: str = "wait for it to finish, or use another folder") -> "FileLock":
        if self._handle is not None:
            return self
        while True:
            handle = open(self.path, "a+", encoding="utf-8")
            if fcntl is None:  # pragma: no cover
                break
            flags = fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB)
            try:
                fcntl.flock(handle.fileno(), flags)
            except BlockingIOError:
                holder = _read_holder(handle)
                handle.close()
                raise FGVCError(f"{what or self.path} is in use by another process "
                                f"({describe_holder(holder)}; lock file {self.path})",
                                fix) from None
            except BaseException:
                handle.close()
                raise
            if _same_file(handle, self.path):
                break
            handle.close()  # the holder removed the file before releasing it: lock the new one
        try:
            previous = _read_holder(handle)
            if previous and fcntl is None and _alive_here(previous):  # pragma: no cover
                raise FGVCError(f"{what or self.path} is in use by another process "
                                f"({describe_holder(previous)}; lock file {self.path})", fix)
            self.stale_holder = previous or None
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(_this_holder()) + "\n")
            handle.flush()
        except BaseException:
            handle.close()
            raise
        self._handle = handle
        return self

    def release(self) -> None:
        """Empty the holder record and unlock (safe to call twice)."""
        handle, self._handle = self._handle, None
        if handle is None:
            return
        try:
            handle.seek(0)
            handle.truncate()
            handle.flush()
        except OSError:  # pragma: no cover - e.g. the folder was removed meanwhile
            pass
        finally:
            handle.close()  # closing the file drops the flock

    def __enter__(self) -> "FileLock":
        return self.acquire(blocking=True)

    def __exit__(self, *exc: object) -> None:
        self.release()


def _same_file(handle, path: Path) -> bool:
    try:
        here, there = os.fstat(handle.fileno()), os.stat(path)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _this_holder() -> dict[str, Any]:
    return {"pid": os.getpid(), "host": socket.gethostname(),
            "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv)[:300]}


def _read_holder(handle) -> dict[str, Any]:
    try:
        handle.seek(0)
        text = handle.read().strip()
    except OSError:  # pragma: no cover
        return {}
    if not text:
        return {}
    try:
        holder = json.loads(text)
    except json.JSONDecodeError:
        return {"unreadable": text[:80]}
    return holder if isinstance(holder, dict) else {"unreadable": text[:80]}


def _alive_here(holder: dict[str, Any]) -> bool:  # pragma: no cover - used without fcntl only
    if holder.get("host") != socket.gethostname() or not isinstance(holder.get("pid"), int):
        return False
    try:
        os.kill(holder["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe_holder(holder: dict[str, Any] | None) -> str:
    """``"pid 123 on host a, since 2025-...: fgvc train ..."`` for a lock's holder record."""
    if not holder:
        return "holder unknown"
    if "unreadable" in holder:
        return f"holder record unreadable: {holder['unreadable']!r}"
    text = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"
    if holder.get("started"):
        text += f", since {holder['started']}"
    if holder.get("command"):
        text += f": {holder['command']}"
    return text


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
