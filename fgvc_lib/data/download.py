"""Download an archive, verify it, and extract it safely.

:func:`download_and_extract` is what ``download=True`` on a dataset calls:

1. stream the URL (``http(s)://`` or ``file://``) into a temporary file
   ``ROOT/.<filename>.<random>.tmp`` while hashing it;
2. compare the hash with the expected MD5 / SHA-256 (when one is given) and
   the byte count with the expected size and the server's ``Content-Length``;
   on any failure the temporary file is deleted, so no partial archive is
   ever left behind;
3. rename the temporary file to ``ROOT/<filename>`` atomically: steps 1-3 are
   :func:`fgvc_lib.io.atomic_write`, so a file with the final name is always
   a complete download;
4. check every member of the archive (tar, tar.gz/tgz, zip) *before* writing
   anything: absolute paths, ``..`` escapes and links pointing outside ROOT
   are refused, with every path resolved through the archive's own symlinks
   (a chain ``a -> ..``, ``a/b -> ..`` escapes although each link alone looks
   harmless); then extract into a temporary folder inside ROOT with
   ``tarfile``'s ``filter="data"`` (which checks each member again against the
   tree really written so far) and move the top-level entries into ROOT, so
   an interrupted extraction does not leave a half-filled dataset folder that
   looks complete.

Implementation notes
--------------------
* ``filter="data"`` exists from Python 3.10.12 / 3.11.4 / 3.12 on; without it
  extraction stops with a one-line error (the project requires >= 3.11.4).
* An archive already at ``ROOT/<filename>`` is reused only when its size and
  checksum match. Without a known checksum it is refused unless the caller
  passes ``allow_unverified=True`` (a file of that name may come from anywhere);
  a fresh download without a checksum is still checked against its
  ``Content-Length``. A mismatching archive is downloaded again.
* Existing folders are merged, not deleted: files already in ROOT are kept,
  so re-extracting never destroys a user's data.
* Only checksums published by the dataset owners or confirmed across many
  independent copies are used by the loaders; where none is known, the
  loader checks the extracted layout instead (see each loader's docstring).
"""
from __future__ import annotations

import hashlib
import os
import platform
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

from fgvc_lib.errors import FGVCError
from fgvc_lib.io import atomic_write

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Resource:
    """One downloadable archive of a dataset."""

    url: str
    filename: str
    md5: str | None = None
    sha256: str | None = None
    size: int | None = None  # bytes, where known


def file_digest(path: str | Path, algorithm: str) -> str:
    """Hex digest of a file, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _expected_digests(md5: str | None, sha256: str | None) -> dict[str, str]:
    expected = {}
    if md5:
        expected["md5"] = md5.lower()
    if sha256:
        expected["sha256"] = sha256.lower()
    return expected


def download_file(url: str, root: str | Path, filename: str, md5: str | None = None,
                  sha256: str | None = None, *, size: int | None = None, progress: bool = True,
                  timeout: float = 60.0, allow_unverified: bool = False) -> Path:
    """Download ``url`` to ``root/filename`` atomically, verifying the checksum(s) and size.

    An archive already at ``root/filename`` is verified before it is reused (and
    downloaded again when it does not match); with no checksum to verify it against it
    is refused unless ``allow_unverified``.
    """
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    target = root / filename
    expected = _expected_digests(md5, sha256)
    manual_fix = (f"check the network connection, or download {url} yourself "
                  f"and save it as {target}")

    if target.is_file():
        if not expected:
            if not allow_unverified:
                raise FGVCError(f"{target} already exists, but there is no known checksum to "
                                f"verify it against (it would be used as the archive of {url})",
                                "delete it to download it again, or pass allow_unverified=True "
                                "if you know where it came from")
            return target
        if (size is None or target.stat().st_size == size) \
                and all(file_digest(target, a) == h for a, h in expected.items()):
            return target

    def fetch(tmp_path: Path) -> None:
        hashers = {algorithm: hashlib.new(algorithm) for algorithm in expected}
        received = 0
        try:
            with open(tmp_path, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
                length_header = response.headers.get("Content-Length")
                total = int(length_header) if length_header and length_header.isdigit() else None
                bar = _progress_bar(total, filename, progress)
                try:
                    for chunk in iter(lambda: response.read(_CHUNK), b""):
                        out.write(chunk)
                        for hasher in hashers.values():
                            hasher.update(chunk)
                        received += len(chunk)
                        bar(len(chunk))
                finally:
                    bar(None)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise FGVCError(f"download failed: {url} ({_one_line(exc)})", manual_fix) from exc
        if total is not None and received != total:
            raise FGVCError(f"download incomplete: {url} gave {received} of {total} bytes", manual_fix)
        if size is not None and received != size:
            raise FGVCError(f"download of {url} has {received} bytes, expected {size} "
                            "(the partial file was deleted)", manual_fix)
        for algorithm, hasher in hashers.items():
            actual = hasher.hexdigest()
            if actual != expected[algorithm]:
                raise FGVCError(
                    f"checksum mismatch for {url}: {algorithm} is {actual}, expected "
                    f"{expected[algorithm]} (the partial file was deleted)",
                    f"retry; if it persists the file at the URL has changed or is damaged: "
                    f"download it manually from the dataset's home page and save it as {target}")

    atomic_write(target, fetch)
    return target


def _one_line(exc: BaseException) -> str:
    """Exception text on one line (the CLI prints an FGVCError as a single line)."""
    return " ".join(str(exc).split())


def _progress_bar(total: int | None, name: str, enabled: bool) -> Callable[[int | None], None]:
    """A tqdm byte counter if tqdm is installed and ``enabled``; ``None`` closes it."""
    if not enabled:
        return lambda n: None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return lambda n: None
    bar = tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False)

    def update(n: int | None) -> None:
        if n is None:
            bar.close()
        else:
            bar.update(n)

    return update


# --------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------
def _archive_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith((".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar")):
        return "tar"
    if name.endswith(".zip"):
        return "zip"
    raise FGVCError(f"unknown archive type: {path}",
                    "use a .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz or .zip archive")


def _check_member_path(archive: Path, member: str, dest: Path) -> None:
    """Refuse a member whose path is absolute or leaves ``dest``."""
    pure = PurePosixPath(member.replace("\\", "/"))
    resolved = (dest / pure).resolve()
    if pure.is_absolute() or ".." in pure.parts or (resolved != dest and dest not in resolved.parents):
        raise FGVCError(f"unsafe archive {archive}: member {member!r} would be written outside {dest}",
                        "do not extract this archive; download it again from the official source")


_UNSAFE_FIX = "do not extract this archive; download it again from the official source"
_MAX_LINK_DEPTH = 40


class _Escapes(Exception):
    """A path that leaves the extraction folder (internal to :func:`_check_tar`)."""


def _check_tar(archive: Path, tar: tarfile.TarFile, dest: Path) -> None:
    """Refuse any member that would land, or any link that would point, outside ``dest``.

    Paths are resolved the way the file system will resolve them once the archive is
    written: every component that is one of the archive's own symlinks is followed (to
    a depth of 40), so a chain of individually harmless links cannot lead out.
    """
    members = tar.getmembers()
    symlinks = {_norm(m.name): m.linkname for m in members if m.issym()}

    def resolve(parts: list[str], depth: int = 0, follow_last: bool = True) -> list[str]:
        """``parts`` (relative to ``dest``) with the archive's symlinks followed."""
        if depth > _MAX_LINK_DEPTH:
            raise _Escapes("a loop of symlinks")
        out: list[str] = []
        for i, part in enumerate(parts):
            if part in ("", "."):
                continue
            if part == "..":
                if not out:
                    raise _Escapes("..")
                out.pop()
                continue
            out.append(part)
            target = symlinks.get("/".join(out))
            if target is not None and (follow_last or i < len(parts) - 1):
                if PurePosixPath(target).is_absolute():
                    raise _Escapes(target)
                out = resolve(out[:-1] + target.split("/"), depth + 1)
        return out

    # A symlink's own location may pass through another symlink: key each one by where it
    # really lies (a fixed point; an escaping location is reported by the loop below).
    declared = [(_norm(m.name), m.linkname) for m in members if m.issym()]
    for _ in range(_MAX_LINK_DEPTH):
        try:
            located = {"/".join(resolve(name.split("/"), follow_last=False)): target
                       for name, target in declared}
        except _Escapes:
            break
        if located == symlinks:
            break
        symlinks = located

    for member in members:
        _check_member_path(archive, member.name, dest)
        try:
            resolve(_norm(member.name).split("/"), follow_last=False)
        except _Escapes:
            raise FGVCError(f"unsafe archive {archive}: member {member.name!r} would be written "
                            f"outside {dest} through the archive's own symlinks", _UNSAFE_FIX) from None
        if member.issym() or member.islnk():
            if member.issym():
                parent = _norm(member.name).split("/")[:-1]
                target_parts = parent + member.linkname.split("/")
            else:  # a hard link names another member, relative to the archive's top
                target_parts = member.linkname.split("/")
            try:
                if PurePosixPath(member.linkname).is_absolute():
                    raise _Escapes(member.linkname)
                resolve(target_parts)
            except _Escapes:
                raise FGVCError(f"unsafe archive {archive}: link {member.name!r} -> "
                                f"{member.linkname!r} points outside {dest}", _UNSAFE_FIX) from None
        elif not (member.isfile() or member.isdir()):
            raise FGVCError(f"unsafe archive {archive}: member {member.name!r} is a device or fifo",
                            _UNSAFE_FIX)


def _norm(name: str) -> str:
    """An archive member's name as ``a/b/c`` (no ``./``, no trailing ``/``)."""
    return "/".join(p for p in name.replace("\\", "/").split("/") if p not in ("", "."))


def require_tar_data_filter() -> None:
    """Refuse to extract a tar archive on a Python without ``tarfile``'s ``filter="data"``."""
    if not hasattr(tarfile, "data_filter"):
        raise FGVCError(f"this Python ({platform.python_version()}) lacks tarfile's filter='data', "
                        "which safe extraction of the dataset archives needs",
                        "use Python >= 3.11.4 (the project's requirement), or extract the archive "
                        "yourself and pass its folder as the data root")


def extract_archive(archive: str | Path, dest: str | Path) -> list[Path]:
    """Extract ``archive`` into ``dest`` safely; return the top-level paths created or merged."""
    archive = Path(archive)
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    kind = _archive_kind(archive)
    if kind == "tar":
        require_tar_data_filter()
    staging = Path(tempfile.mkdtemp(dir=dest, prefix=f".{archive.name}.extracting-"))
    try:
        try:
            if kind == "tar":
                with tarfile.open(archive) as tar:
                    _check_tar(archive, tar, dest)
                    tar.extractall(staging, filter="data")
            else:
                with zipfile.ZipFile(archive) as zf:
                    for name in zf.namelist():
                        _check_member_path(archive, name, dest)
                    zf.extractall(staging)
        except FGVCError:
            raise
        except (tarfile.TarError, zipfile.BadZipFile, OSError, EOFError) as exc:
            raise FGVCError(f"cannot extract {archive} ({_one_line(exc)})",
                            f"delete {archive} and download it again") from exc
        created = []
        for entry in sorted(staging.iterdir()):
            _merge_move(entry, dest / entry.name)
            created.append(dest / entry.name)
        return created
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _merge_move(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``; merge folders, keep files already there."""
    if not target.exists():
        os.replace(source, target)
    elif source.is_dir() and target.is_dir():
        for child in source.iterdir():
            _merge_move(child, target / child.name)
    # else: an existing file wins; the archive's copy is dropped with the staging folder


def download_and_extract(url: str, root: str | Path, filename: str, md5: str | None = None,
                         sha256: str | None = None, *, size: int | None = None,
                         remove_archive: bool = False, progress: bool = True,
                         allow_unverified: bool = False) -> Path:
    """Download ``url`` to ``root/filename`` (verified, atomic) and extract it into ``root``.

    Returns the path of the archive (deleted again when ``remove_archive``).
    """
    archive = download_file(url, root, filename, md5=md5, sha256=sha256, size=size,
                            progress=progress, allow_unverified=allow_unverified)
    extract_archive(archive, root)
    if remove_archive:
        archive.unlink(missing_ok=True)
    return archive


def ensure_downloaded(dataset: str, resources: Sequence[Resource], root: Path,
                      present: Callable[[], bool], expected_layout: str,
                      allow_unverified: bool = False) -> None:
    """Download and extract ``resources`` into ``root`` unless ``present()`` already holds.

    After extraction ``present()`` must hold: the structure check on top of the
    archives' checksums.
    """
    if present():
        return
    for resource in resources:
        download_and_extract(resource.url, root, resource.filename,
                             md5=resource.md5, sha256=resource.sha256, size=resource.size,
                             allow_unverified=allow_unverified)
    if not present():
        urls = ", ".join(r.url for r in resources)
        raise FGVCError(f"{dataset}: the downloaded archive(s) did not produce the expected layout "
                        f"{expected_layout} under {root}",
                        f"the files at {urls} may have changed; download and extract them manually "
                        f"so that {expected_layout} exists under {root}")
