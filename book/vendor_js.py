"""Fetch the JavaScript the built book needs for offline reading.

By default the book's pages load MathJax (math), RequireJS and the ipywidgets
HTML manager (interactive widgets) from CDNs, so without internet the math
shows as raw TeX and widgets stay blank. This script downloads pinned
versions of those three packages from the npm registry (``npm pack``: one
tarball each, no dependency install), checks each tarball against the
integrity hash pinned below, and extracts only the files the pages load into
``book/_vendor_js/vendor/`` (git-ignored). ``book/_ext/offline_js.py`` then
serves that folder through Sphinx's ``html_extra_path`` and points
``mathjax_path`` and ``nb_ipywidgets_js`` at it. Without the folder the book
still builds and uses the CDNs.

Usage (from the repository root; needs ``npm`` and the registry)::

    .venv/bin/python book/vendor_js.py           # fetch unless already there
    .venv/bin/python book/vendor_js.py --force   # fetch again

Exit status 0 also when npm is missing or the registry cannot be reached: the
script then says so and the build falls back to the CDNs (use ``--strict`` to
make that an error).
"""
from __future__ import annotations

import argparse
import base64
import fnmatch
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

BOOK_DIR = Path(__file__).resolve().parent
EXTRA_PATH_DIR = BOOK_DIR / "_vendor_js"  # what html_extra_path copies into the site root
VENDOR_DIR = EXTRA_PATH_DIR / "vendor"  # -> <site>/vendor/...
MANIFEST = VENDOR_DIR / "VERSIONS.json"


@dataclass(frozen=True)
class NpmPackage:
    """One pinned npm package and the part of it the pages need."""

    name: str
    version: str
    integrity: str  # npm's sha512 of the tarball: the registry must serve exactly this
    target: str  # folder under vendor/
    keep: tuple[str, ...]  # fnmatch patterns, relative to the package root
    drop: tuple[str, ...] = ()

    @property
    def spec(self) -> str:
        return f"{self.name}@{self.version}"


PACKAGES: tuple[NpmPackage, ...] = (
    NpmPackage(
        name="mathjax",
        version="3.2.2",
        integrity="sha512-Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/"
        "FEsPsjKPZGJvtRZM1vO+geW0OhGw==",
        target="mathjax",
        # es5/ is the browser build; its loader fetches fonts and TeX
        # extensions relative to itself, so the whole tree comes along,
        # except the SVG renderer and the Node entry, which pages never load.
        keep=("es5/*", "LICENSE"),
        drop=("es5/*svg*", "es5/node-main.js"),
    ),
    NpmPackage(
        name="requirejs",
        version="2.3.8",
        integrity="sha512-7/cTSLOdYkNBNJcDMWf+luFvMriVm7eYxp4BcFCsAX0wF421Vyce5SXP17c+"
        "Jd5otXKGNehIonFlyQXSowL6Mw==",
        target="requirejs",
        keep=("require.js",),
    ),
    NpmPackage(
        # 1.0.x is the HTML manager for ipywidgets 8 (widget protocol 2).
        name="@jupyter-widgets/html-manager",
        version="1.0.15",
        integrity="sha512-5thBIV6ymNgmPVOHvzx+gGy8ZSKmSazhtGw4/c4xJDVzRhG9PTeQsRjF3FUTopvF"
        "i//SABeNz1yp47bCrJ3CQA==",
        target="html-manager",
        # embed-amd.js plus the font/icon files its bundled CSS refers to.
        keep=("dist/embed-amd.js", "dist/*.woff", "dist/*.woff2", "dist/*.ttf",
              "dist/*.eot", "dist/*.svg", "dist/*.LICENSE.txt"),
    ),
)

# The widget manager's bundle carries two copies of Font Awesome 5's stylesheet.
# One refers to its fonts through webpack (hashed names beside embed-amd.js,
# found from the script's own URL); the other is literal CSS that a <style>
# element puts into the page, with ``url(../webfonts/fa-*.woff2)`` etc., which a
# browser resolves against the *page*: for the book's pages (one folder below
# the site root) that is ``<site>/webfonts/``. The same font files are copied
# there under the names that CSS asks for. The hashed names are fixed by the
# pinned, integrity-checked tarball (html-manager 1.0.15); the family of each
# was read from the files' own name tables (fa-brands-400 = "Font Awesome 5
# Brands Regular", fa-regular-400 = "Font Awesome 5 Free Regular", fa-solid-900
# = "Font Awesome 5 Free Solid"), and the SVG fonts are re-checked when vendoring.
WEBFONTS_DIR = EXTRA_PATH_DIR / "webfonts"  # -> <site>/webfonts/...
WEBFONT_ALIASES: dict[str, str] = {
    "fa-brands-400.woff2": "d878b0a6a1144760244f.woff2",
    "fa-brands-400.woff": "2285773e6b4b172f07d9.woff",
    "fa-brands-400.ttf": "527940b104eb2ea366c8.ttf",
    "fa-brands-400.eot": "23f19bb08961f37aaf69.eot",
    "fa-brands-400.svg": "2f517e09eb2ca6650ff5.svg",
    "fa-regular-400.woff2": "7a3337626410ca2f4071.woff2",
    "fa-regular-400.woff": "bb58e57c48a3e911f15f.woff",
    "fa-regular-400.ttf": "491974d108fe4002b2aa.ttf",
    "fa-regular-400.eot": "77206a6bb316fa0aded5.eot",
    "fa-regular-400.svg": "4689f52cc96215721344.svg",
    "fa-solid-900.woff2": "1551f4f60c37af51121f.woff2",
    "fa-solid-900.woff": "eeccf4f66002c6f2ba24.woff",
    "fa-solid-900.ttf": "be9ee23c0c6390141475.ttf",
    "fa-solid-900.eot": "9bbb245e67a133f6e486.eot",
    "fa-solid-900.svg": "7a8b4f130182d19a2d7c.svg",
}
_SVG_FAMILY = {"fa-brands-400": "Font Awesome 5 Brands", "fa-regular-400": "Font Awesome 5 Free Regular",
               "fa-solid-900": "Font Awesome 5 Free Solid"}

# The files the pages load; book/_ext/offline_js.py checks the same list.
ENTRY_FILES: tuple[str, ...] = (
    "mathjax/es5/tex-mml-chtml.js",
    "requirejs/require.js",
    "html-manager/dist/embed-amd.js",
)


def sri_sha512(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def is_complete(vendor_dir: Path = VENDOR_DIR) -> bool:
    """All entry files present and the manifest matches the pinned versions."""
    if not all((vendor_dir / entry).is_file() for entry in ENTRY_FILES):
        return False
    webfonts = vendor_dir.parent / WEBFONTS_DIR.name
    if not all((webfonts / alias).is_file() for alias in WEBFONT_ALIASES):
        return False
    try:
        manifest = json.loads((vendor_dir / MANIFEST.name).read_text())
    except (OSError, ValueError):
        return False
    return manifest == {package.name: package.version for package in PACKAGES}


def _wanted(package: NpmPackage, relative: str) -> bool:
    if not any(fnmatch.fnmatch(relative, pattern) for pattern in package.keep):
        return False
    return not any(fnmatch.fnmatch(relative, pattern) for pattern in package.drop)


def _npm_pack(package: NpmPackage, workdir: Path) -> Path:
    completed = subprocess.run(
        ["npm", "pack", package.spec, "--json", "--pack-destination", str(workdir)],
        check=True, capture_output=True, text=True,
    )
    filename = json.loads(completed.stdout)[0]["filename"]
    return workdir / filename


def _extract(package: NpmPackage, tarball: Path, destination: Path) -> int:
    """Copy the wanted regular files of an npm tarball (rooted at ``package/``)."""
    count = 0
    with tarfile.open(tarball, "r:gz") as archive:
        for member in archive.getmembers():
            path = PurePosixPath(member.name)
            if not member.isfile() or len(path.parts) < 2 or ".." in path.parts:
                continue  # links, folders, and anything trying to leave the package
            relative = PurePosixPath(*path.parts[1:]).as_posix()
            if not _wanted(package, relative):
                continue
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            target.write_bytes(source.read())
            count += 1
    return count


def _copy_webfonts(dist: Path, webfonts: Path) -> None:
    """Copy the widget manager's Font Awesome files to the names its page-level CSS uses."""
    webfonts.mkdir(parents=True, exist_ok=True)
    for alias, hashed in WEBFONT_ALIASES.items():
        source = dist / hashed
        if not source.is_file():
            raise RuntimeError(f"html-manager font {hashed} (for {alias}) is not in the tarball: "
                               "the pinned version changed, update WEBFONT_ALIASES")
        if alias.endswith(".svg"):
            family = _SVG_FAMILY[alias.rsplit(".", 1)[0]]
            if family not in source.read_text(errors="replace")[:2000]:
                raise RuntimeError(f"{hashed} is not {family}: update WEBFONT_ALIASES")
        shutil.copyfile(source, webfonts / alias)


def vendor(force: bool = False) -> Path:
    """Fetch and extract all packages into :data:`VENDOR_DIR`; return it."""
    if is_complete() and not force:
        print(f"vendored JS already present: {VENDOR_DIR}")
        return VENDOR_DIR
    if shutil.which("npm") is None:
        raise RuntimeError("npm not found: install Node.js/npm, or build without vendoring (CDNs)")
    staging = EXTRA_PATH_DIR.with_name(EXTRA_PATH_DIR.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="book-vendor-") as workdir:
        for package in PACKAGES:
            tarball = _npm_pack(package, Path(workdir))
            actual = sri_sha512(tarball.read_bytes())
            if actual != package.integrity:
                raise RuntimeError(
                    f"{package.spec}: tarball integrity {actual} differs from the pinned "
                    f"{package.integrity}; refusing to vendor it (update the pin only after "
                    "checking why the registry content changed)"
                )
            count = _extract(package, tarball, staging / "vendor" / package.target)
            print(f"{package.spec}: {count} files")
    _copy_webfonts(staging / "vendor" / "html-manager" / "dist", staging / WEBFONTS_DIR.name)
    manifest = {package.name: package.version for package in PACKAGES}
    (staging / "vendor" / MANIFEST.name).write_text(json.dumps(manifest, indent=2) + "\n")
    if not is_complete(staging / "vendor"):
        raise RuntimeError(f"vendoring incomplete: expected {ENTRY_FILES} under {staging}")
    # swap in only a complete tree, so a failed run never leaves half a folder
    shutil.rmtree(EXTRA_PATH_DIR, ignore_errors=True)
    staging.rename(EXTRA_PATH_DIR)
    print(f"vendored JS ready: {VENDOR_DIR}")
    return VENDOR_DIR


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="fetch again even if present")
    parser.add_argument("--strict", action="store_true",
                        help="exit with an error when the JS cannot be fetched")
    args = parser.parse_args(argv)
    try:
        vendor(force=args.force)
    except (RuntimeError, subprocess.CalledProcessError, OSError, ValueError) as error:
        detail = getattr(error, "stderr", None) or error
        print(f"could not vendor the book's JavaScript: {detail}\n"
              "the book will load MathJax and the widget JS from CDNs instead",
              file=sys.stderr)
        return 1 if args.strict else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
