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


def _symlink(tar: tarfile.TarFile, name: str, target: str) -> None:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    tar.addfile(info)


def _file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_a_chain_of_harmless_looking_symlinks_cannot_lead_out(tmp_path):
    # Each link alone stays inside (top/a -> .. is ROOT; top/a/b -> .. looks like top/),
    # but followed as written, top/a/b is ROOT/b and points at ROOT's parent.
    archive = tmp_path / "chain.tar"
    with tarfile.open(archive, "w") as tar:
        _symlink(tar, "top/a", "..")
        _symlink(tar, "top/a/b", "..")
        _file(tar, "top/a/b/evil.txt", b"evil")
    root = tmp_path / "root"
    with pytest.raises(FGVCError, match=r"unsafe archive .*chain.tar: (link 'top/a/b' -> '\.\.' "
                                        r"points outside|member 'top/a/b/evil.txt')"):
        extract_archive(archive, root)
    assert not (tmp_path / "evil.txt").exists()
    assert list(root.iterdir()) == []


def test_a_member_written_through_a_link_to_outside_is_refused(tmp_path):
    archive = tmp_path / "via.tar"
    with tarfile.open(archive, "w") as tar:
        _symlink(tar, "top/up", ".")          # harmless
        _symlink(tar, "top/up/out", "..")     # top/out -> ROOT: still inside
        _symlink(tar, "top/out/esc", "..")    # ROOT/esc -> ROOT's parent
        _file(tar, "top/out/esc/evil.txt", b"evil")
    with pytest.raises(FGVCError, match="unsafe archive"):
        extract_archive(archive, tmp_path / "root")
    assert not (tmp_path / "evil.txt").exists()


def test_links_that_stay_inside_are_extracted(tmp_path):
    archive = tmp_path / "ok.tar"
    with tarfile.open(archive, "w") as tar:
        _file(tar, "top/real/x.txt", b"x")
        _symlink(tar, "top/l1", "real")
        _symlink(tar, "top/l2", "l1")
    root = tmp_path / "root"
    extract_archive(archive, root)
    assert (root / "top" / "l2" / "x.txt").read_bytes() == b"x"


def test_a_python_without_the_data_filter_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.delattr(tarfile, "data_filter")
    archive = make_tgz(tmp_path / "src.tgz", FILES)
    with pytest.raises(FGVCError, match=r"lacks tarfile's filter='data'.*Python >= 3\.11\.4") as info:
        extract_archive(archive, tmp_path / "root")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "root" / "top").exists()


def test_the_project_requires_a_python_with_the_data_filter():
    import tomllib

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    assert tomllib.loads(pyproject.read_text())["project"]["requires-python"] == ">=3.11.4"


def test_an_existing_archive_without_a_known_checksum_is_not_reused_silently(tmp_path):
    archive = make_tgz(tmp_path / "src.tgz", FILES)
    root = tmp_path / "root"
    root.mkdir()
    (root / "data.tgz").write_bytes(b"who knows")
    with pytest.raises(FGVCError, match=r"already exists, but there is no known checksum.*"
                                        r"allow_unverified=True"):
        download_file(archive.as_uri(), root, "data.tgz", progress=False)
    assert (root / "data.tgz").read_bytes() == b"who knows"  # left as it was
    assert download_file(archive.as_uri(), root, "data.tgz", progress=False,
                         allow_unverified=True) == root / "data.tgz"


def test_the_expected_size_is_checked(tmp_path):
    archive = make_tgz(tmp_path / "src.tgz", FILES)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    root = tmp_path / "root"
    with pytest.raises(FGVCError, match=r"has \d+ bytes, expected 12345"):
        download_file(archive.as_uri(), root, "data.tgz", md5=md5, size=12345, progress=False)
    assert list(root.iterdir()) == []


def test_every_archive_the_library_downloads_is_https_and_checksummed():
    from fgvc_lib.data.real import REAL_DATASETS

    resources = [r for cls in REAL_DATASETS.values() for r in getattr(cls, "resources", ())]
    assert {r.filename for r in resources} >= {"CUB_200_2011.tgz", "fgvc-aircraft-2013b.tar.gz",
                                               "images.tar", "annotation.tar", "lists.tar"}
    for r in resources:
        assert r.url.startswith("https://"), r.url
        assert r.md5 or r.sha256, r.filename


class _FakeResponse(io.BytesIO):
    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def test_stanford_dogs_download_is_verified(tmp_path, monkeypatch):
    """A monkeypatched downloader serves a fake images.tar: it is refused, not extracted."""
    import urllib.request

    from fgvc_lib.data.dogs import StanfordDogs

    fake = make_tgz(tmp_path / "fake.tar", {"Images/n0-x/a.jpg": b"not a dog"}).read_bytes()
    asked = []

    def urlopen(url, timeout=None):
        asked.append(url)
        return _FakeResponse(fake)

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    root = tmp_path / "dogs"
    with pytest.raises(FGVCError, match=r"https://vision\.stanford\.edu/aditya86/ImageNetDogs/"
                                        r"images\.tar has \d+ bytes, expected 793579520"):
        StanfordDogs(root, download=True)
    assert asked == ["https://vision.stanford.edu/aditya86/ImageNetDogs/images.tar"]
    assert list(root.iterdir()) == []  # nothing kept, nothing extracted


def test_stanford_dogs_verifies_an_existing_archive_before_reusing_it(tmp_path, monkeypatch):
    import urllib.error
    import urllib.request

    from fgvc_lib.data.dogs import StanfordDogs

    root = tmp_path / "dogs"
    root.mkdir()
    make_tgz(root / "images.tar", {"Images/n0-x/a.jpg": b"not a dog"})  # someone's file
    asked = []

    def urlopen(url, timeout=None):
        asked.append(url)
        raise urllib.error.URLError("offline")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(FGVCError, match="download failed: https://.*images.tar"):
        StanfordDogs(root, download=True)
    assert asked == ["https://vision.stanford.edu/aditya86/ImageNetDogs/images.tar"]
    assert not (root / "Images").exists()  # the unverified archive was not extracted
