"""Screenshots of the built book as a reader sees it: viewport-sized slices per page.

::

    .venv/bin/python book/screenshots.py                  # -> book/_build/screenshots/
    .venv/bin/python book/screenshots.py --pages notebooks/01_baseline.html --height 900

Renders each page offline in headless Chromium (network blocked, so a page that
still needs a CDN shows it) in one tall window, then cuts the picture into
slices of the viewport's height (``<page>-01.png``, ``<page>-02.png``, ...),
dropping the blank tail. Needs a Chromium on the PATH; the pictures are for
looking at, not for committing.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BOOK = Path(__file__).resolve().parent
SITE = BOOK / "_build" / "html"
OUT = BOOK / "_build" / "screenshots"


def shoot(page: Path, out: Path, width: int, height: int, max_height: int, browser: str) -> list[Path]:
    from PIL import Image, ImageChops

    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full.png"
        subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--allow-file-access-from-files", "--proxy-server=http://127.0.0.1:9",
                        "--virtual-time-budget=15000", f"--window-size={width},{max_height}",
                        f"--screenshot={full}", page.resolve().as_uri()],
                       capture_output=True, timeout=180, check=False)
        if not full.is_file():
            return []
        image = Image.open(full).convert("RGB")
    background = Image.new("RGB", image.size, image.getpixel((image.width - 1, image.height - 1)))
    box = ImageChops.difference(image, background).getbbox()
    bottom = box[3] if box else height
    written = []
    for index, top in enumerate(range(0, bottom, height), start=1):
        target = out / f"{page.stem}-{index:02d}.png"
        image.crop((0, top, width, min(top + height, bottom))).save(target)
        written.append(target)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, default=SITE)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--pages", nargs="*", help="pages relative to the site (default: the chapters)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900, help="height of one slice (the viewport)")
    parser.add_argument("--max-height", type=int, default=16000, help="tallest page rendered")
    args = parser.parse_args(argv)
    browser = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")
                    if shutil.which(b)), None)
    if browser is None:
        print("no Chromium on the PATH", file=sys.stderr)
        return 1
    pages = ([args.site / p for p in args.pages] if args.pages else
             [args.site / "book" / "intro.html", *sorted((args.site / "notebooks").glob("*.html"))])
    args.out.mkdir(parents=True, exist_ok=True)
    for page in pages:
        slices = shoot(page, args.out, args.width, args.height, args.max_height, browser)
        print(f"{page.relative_to(args.site)}: {len(slices)} slice(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
