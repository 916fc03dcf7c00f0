"""Download an archive, verify it, and extract it safely.

:func:`download_and_extract` is what ``download=True`` on a dataset calls:

1. stream the URL (``http(s)://`` or ``file://``) into a temporary file
   ``ROOT/.<filename>.<random>.tmp`` while hashing it;
2. compare the hash with the expected MD5 / SHA-256 (when one is given) and
   the byte count with the server's ``Content-Length``; on any failure the
   temporary file is deleted, so no partial archive is ever left behind;
3. rename the temporary file to ``ROOT/<filename>`` atomically: steps 1-3 are
   :func:`fgvc_lib.io.atomic_write`, so a file with the final name is always
   a complete download;
4. check every member of the archive (tar, tar.gz/tgz, zip) *before* writing
   anything: absolute paths, ``..`` escapes and links pointing outside ROOT
   are refused; then extract into a temporary folder inside ROOT and move the
   top-level entries into ROOT, so an interrupted extraction does not leave a
   half-filled dataset folder that looks complete.

Implementation notes
--------------------
* An archive already at ``ROOT/<filename>`` is reused when its checksum
  matches, or when no checksum is known (thanks to step 3 it cannot be a
  partial download of ours). A mismatching one is downloaded again.
* Existing folders are merged, not deleted: files already in ROOT are kept,
  so re-extracting never destroys a user's data.
* Only checksums published by the dataset owners or confirmed across many
  independent copies are used by the loaders; where none is known, the
  loader checks the extracted layout instead (see each loader's docstring).
"""
from __future__ import annotations

import hashlib
import os
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
                  sha256: str | None = None, *, progress: bool = True,
                  timeout: float = 60.0) -> Path:
    """Download ``url`` to ``root/filename`` atomically, verifying the checksum(s)."""
    root = Path(root).expanduser()
    root.mkdir(parents=True, exist_ok=True)
    target = root / filename
    expected = _expected_digests(md5, sha256)
    manual_fix = (f"check the network connection, or download {url} yourself "
                  f"and save it as {target}")

    if target.is_file():
        if not expected or all(file_digest(target, a) == h for a, h in expected.items()):
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


def _check_tar(archive: Path, tar: tarfile.TarFile, dest: Path) -> None:
    for member in tar.getmembers():
        _check_member_path(archive, member.name, dest)
        if member.issym() or member.islnk():
            link_base = (dest / member.name).parent if member.issym() else dest
            target = (link_base / member.linkname).resolve()
            if PurePosixPath(member.linkname).is_absolute() or (target != dest and dest not in target.parents):
                raise FGVCError(f"unsafe archive {archive}: link {member.name!r} -> {member.linkname!r} "
                                f"points outside {dest}",
                                "do not extract this archive; download it again from the official source")
        elif not (member.isfile() or member.isdir()):
            raise FGVCError(f"unsafe archive {archive}: member {member.name!r} is a device or fifo",
                            "do not extract this archive; download it again from the official source")


def extract_archive(archive: str | Path, dest: str | Path) -> list[Path]:
    """Extract ``archive`` into ``dest`` safely; return the top-level paths created or merged."""
    archive = Path(archive)
    dest = Path(dest).expanduser()
    dest.mkdir(parents=True, exist_ok=True)
    dest = dest.resolve()
    kind = _archive_kind(archive)
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
                         sha256: str | None = None, *, remove_archive: bool = False,
                         progress: bool = True) -> Path:
    """Download ``url`` to ``root/filename`` (verified, atomic) and extract it into ``root``.

    Returns the path of the archive (deleted again when ``remove_archive``).
    """
    archive = download_file(url, root, filename, md5=md5, sha256=sha256, progress=progress)
    extract_archive(archive, root)
    if remove_archive:
        archive.unlink(missing_ok=True)
    return archive


def ensure_downloaded(dataset: str, resources: Sequence[Resource], root: Path,
                      present: Callable[[], bool], expected_layout: str) -> None:
    """Download and extract ``resources`` into ``root`` unless ``present()`` already holds.

    After extraction ``present()`` must hold; this is the structure check that
    stands in for a checksum where none is published.
    """
    if present():
        return
    for resource in resources:
        download_and_extract(resource.url, root, resource.filename,
                             md5=resource.md5, sha256=resource.sha256)
    if not present():
        urls = ", ".join(r.url for r in resources)
        raise FGVCError(f"{dataset}: the downloaded archive(s) did not produce the expected layout "
                        f"{expected_layout} under {root}",
                        f"the files at {urls} may have changed; download and extract them manually "
                        f"so that {expected_layout} exists under {root}")
