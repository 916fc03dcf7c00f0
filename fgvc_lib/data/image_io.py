"""Robust image loading: every image comes back as RGB, or a clear error.

Implementation notes
--------------------
* 16-bit images (PIL modes ``I;16*``) are mapped to 8 bits with a fixed
  scale (``value / 257``, so 65535 -> 255). An earlier version divided by the
  per-image maximum, which brightened dark 16-bit images and made the same
  pixel value map to different colours in different files.
* 32-bit integer images (mode ``I``) are ambiguous: values up to 255 are kept
  as 8-bit values, larger values are read as 16-bit data (``/ 257``, clipped).
  Float images (mode ``F``) are clipped to [0, 255].
* Every mode with an alpha channel (``RGBA``, ``LA``, ``PA``, ``La``, ``RGBa``
  and palette images with a transparency entry) is composited on white.
* EXIF orientation is *not* applied (torchvision's loaders do not either), so
  pixel coordinates of dataset boxes stay valid.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fgvc_lib.errors import FGVCError

_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


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
    except Image.DecompressionBombError as exc:
        raise FGVCError(f"image too large to decode safely: {path} ({exc})",
                        "resize the file, or raise PIL.Image.MAX_IMAGE_PIXELS if you trust it") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise FGVCError(f"corrupt or truncated image: {path} ({exc})",
                        "delete or replace this file (re-download the dataset archive)") from exc


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any PIL mode to RGB (alpha composited on white)."""
    if img.mode == "RGB":
        return img.copy()
    if img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if img.mode in _SIXTEEN_BIT_MODES or img.mode in ("I", "F"):
        return _wide_to_rgb(img)
    return img.convert("RGB")


def _wide_to_rgb(img: Image.Image) -> Image.Image:
    """16-bit / 32-bit integer / float single-channel image -> RGB, fixed scale."""
    arr = np.asarray(img, dtype=np.float64)
    if img.mode in _SIXTEEN_BIT_MODES or (img.mode == "I" and arr.size and arr.max() > 255):
        arr = arr / 257.0
    gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return Image.fromarray(gray).convert("RGB")
