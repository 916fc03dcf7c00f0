"""download_and_extract with file:// URLs: checksums, atomic files, safe extraction."""
from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest

from fgvc_lib.data.download import download_and_extract, download_file, extract_archive
from fgvc_lib.errors import FGVCError


def make_tgz(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


FILES = {"top/a.txt": b"alpha", "top/sub/b.txt": b"beta"}


def test_tgz_download_verified_and_extracted(tmp_path):
    archive = make_tgz(tmp_path / "src.tgz", FILES)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    sha256 = hashlib.sha256(archive.read_bytes()).hexdigest()
    root = tmp_path / "root"
    result = download_and_extract(archive.as_uri(), root, "data.tgz", md5=md5, sha256=sha256.upper(),
                                  progress=False)
    assert result == root / "data.tgz" and result.read_bytes() == archive.read_bytes()
    assert (root / "top" / "sub" / "b.txt").read_bytes() == b"beta"
    assert sorted(p.name for p in root.iterdir()) == ["data.tgz", "top"]  # no temp files left


def test_zip_download_and_remove_archive(tmp_path):
    archive = make_zip(tmp_path / "src.zip", FILES)
    root = tmp_path / "root"
    download_and_extract(archive.as_uri(), root, "data.zip", remove_archive=True, progress=False)
    assert (root / "top" / "a.txt").read_bytes() == b"alpha"
    assert not (root / "data.zip").exists()


def test_checksum_mismatch_leaves_nothing_behind(tmp_path):
    archive = make_tgz(tmp_path / "src.tgz", FILES)
    root = tmp_path / "root"
    with pytest.raises(FGVCError, match=r"checksum mismatch for .*src.tgz: md5 is [0-9a-f]{32}, expected 0{32}"):
        download_and_extract(archive.as_uri(), root, "data.tgz", md5="0" * 32, progress=False)
    assert list(root.iterdir()) == []
    with pytest.raises(FGVCError, match="sha256 is"):
        download_file(archive.as_uri(), root, "data.tgz", sha256="f" * 64, progress=False)
    assert list(root.iterdir()) == []


def test_existing_archive_is_reused_only_if_it_matches(tmp_path):
    archive = make_tgz(tmp_path / "src.tgz", FILES)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    root = tmp_path / "root"
    root.mkdir()
    (root / "data.tgz").write_bytes(b"stale")
    download_file(archive.as_uri(), root, "data.tgz", md5=md5, progress=False)
    assert (root / "data.tgz").read_bytes() == archive.read_bytes()  # replaced: checksum differed
    missing_source = (tmp_path / "gone.tgz").as_uri()
    assert download_file(missing_source, root, "data.tgz", md5=md5, progress=False) == root / "data.tgz"


def test_unreachable_url(tmp_path):
    with pytest.raises(FGVCError, match="download failed: .*absent.tgz.*save it as"):
        download_file((tmp_path / "absent.tgz").as_uri(), tmp_path / "root", "x.tgz", progress=False)
    assert list((tmp_path / "root").iterdir()) == []


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil-absolute.txt", "top/../../evil.txt"])
def test_tar_members_escaping_root_are_refused(tmp_path, member):
    archive = make_tgz(tmp_path / "bad.tgz", {"top/ok.txt": b"ok", member: b"evil"})
    root = tmp_path / "root"
    with pytest.raises(FGVCError, match="unsafe archive .*would be written outside"):
        extract_archive(archive, root)
    assert not (tmp_path / "evil.txt").exists()
    assert list(root.iterdir()) == []  # checked before anything was written


def test_tar_symlink_escaping_root_is_refused(tmp_path):
    archive = tmp_path / "link.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("top/link")
        info.type = tarfile.SYMTYPE
        info.linkname = "../../outside"
        tar.addfile(info)
    with pytest.raises(FGVCError, match="link 'top/link' -> '../../outside' points outside"):
        extract_archive(archive, tmp_path / "root")


def test_zip_member_escaping_root_is_refused(tmp_path):
    archive = make_zip(tmp_path / "bad.zip", {"../evil.txt": b"evil"})
    with pytest.raises(FGVCError, match="would be written outside"):
        extract_archive(archive, tmp_path / "root")
    assert not (tmp_path / "evil.txt").exists()


def test_extraction_merges_and_keeps_existing_files(tmp_path):
    root = tmp_path / "root"
    (root / "top").mkdir(parents=True)
    (root / "top" / "a.txt").write_bytes(b"mine")
    (root / "top" / "keep.txt").write_bytes(b"keep")
    extract_archive(make_tgz(tmp_path / "src.tgz", FILES), root)
    assert (root / "top" / "a.txt").read_bytes() == b"mine"
    assert (root / "top" / "keep.txt").read_bytes() == b"keep"
    assert (root / "top" / "sub" / "b.txt").read_bytes() == b"beta"
    assert sorted(p.name for p in root.iterdir()) == ["top"]


def test_bad_archives(tmp_path):
    with pytest.raises(FGVCError, match="unknown archive type"):
        extract_archive(tmp_path / "data.rar", tmp_path / "root")
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(b"not a tar file at all")
    with pytest.raises(FGVCError, match="cannot extract .*broken.tgz.*download it again"):
        extract_archive(broken, tmp_path / "root")
    assert list((tmp_path / "root").iterdir()) == []
