"""Robust image loading: every image comes back as RGB, or a clear error."""
from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

from fgvc_lib.errors import FGVCError


def load_rgb(path: str | Path) -> Image.Image:
    """Open ``path`` and return an RGB PIL image.

    Grayscale, palette, CMYK, 16-bit and RGBA images are converted (RGBA is
    composited on white, so transparent areas do not turn black). A missing,
    corrupt or truncated file raises :class:`FGVCError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FGVCError(f"image file not found: {path}",
                        "check the dataset folder is complete (re-extract the archive)")
    try:
        with Image.open(path) as img:
            img.load()  # force decoding now, so truncation is caught here
            return to_rgb(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FGVCError(f"corrupt or truncated image: {path} ({exc})",
                        "delete or replace this file (re-download the dataset archive)") from exc


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB (alpha composited on white)."""
    if img.mode == "RGB":
        return img.copy()
    if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: scale to 8 bits instead of clipping to white.
        import numpy as np

        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() if arr.size and arr.max() > 0 else 1.0
        img = Image.fromarray((arr / hi * 255.0).astype("uint8"), mode="L")
    return img.convert("RGB")
