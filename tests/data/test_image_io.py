"""load_rgb: every PIL mode comes back as RGB with the right colours, or a clear error."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from fgvc_lib.data.image_io import load_rgb
from fgvc_lib.errors import FGVCError


def pixels(image: Image.Image) -> np.ndarray:
    assert image.mode == "RGB"
    return np.asarray(image)


def test_grayscale_becomes_three_equal_channels(tmp_path):
    path = tmp_path / "gray.png"
    Image.fromarray(np.array([[0, 100], [200, 255]], dtype=np.uint8)).save(path)
    rgb = pixels(load_rgb(path))
    assert rgb.shape == (2, 2, 3)
    assert rgb[..., 0].tolist() == [[0, 100], [200, 255]]
    assert (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all()


def test_cmyk_jpeg(tmp_path):
    path = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(path, quality=95)  # pure red in CMYK
    r, g, b = pixels(load_rgb(path))[8, 8].astype(int)
    assert r > 200 and g < 50 and b < 50


def test_rgba_composited_on_white(tmp_path):
    path = tmp_path / "rgba.png"
    data = np.zeros((1, 3, 4), dtype=np.uint8)
    data[0, 0] = (255, 0, 0, 255)  # opaque red
    data[0, 1] = (0, 0, 0, 0)      # fully transparent -> white, not black
    data[0, 2] = (0, 0, 0, 128)    # half-transparent black -> mid grey
    Image.fromarray(data, "RGBA").save(path)
    rgb = pixels(load_rgb(path)).astype(int)
    assert rgb[0, 0].tolist() == [255, 0, 0]
    assert rgb[0, 1].tolist() == [255, 255, 255]
    assert all(abs(v - 127) <= 2 for v in rgb[0, 2])


def test_grey_with_alpha(tmp_path):
    path = tmp_path / "la.png"
    Image.fromarray(np.array([[[0, 0], [0, 255]]], dtype=np.uint8), "LA").save(path)
    assert pixels(load_rgb(path)).tolist() == [[[255, 255, 255], [0, 0, 0]]]


def test_palette_and_palette_transparency(tmp_path):
    palette_image = Image.new("P", (2, 1))
    palette_image.putpalette([0, 0, 255, 0, 255, 0] + [0] * (256 * 3 - 6))
    palette_image.putdata([0, 1])
    plain, transparent = tmp_path / "p.png", tmp_path / "pt.png"
    palette_image.save(plain)
    palette_image.save(transparent, transparency=0)  # index 0 (blue) is transparent
    assert pixels(load_rgb(plain)).tolist() == [[[0, 0, 255], [0, 255, 0]]]
    assert pixels(load_rgb(transparent)).tolist() == [[[255, 255, 255], [0, 255, 0]]]


def test_sixteen_bit_uses_a_fixed_scale(tmp_path):
    path = tmp_path / "sixteen.png"
    values = np.array([[0, 257 * 10, 257 * 100, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(path)
    assert Image.open(path).mode.startswith("I")
    # A dark 16-bit image must stay dark: 257 * 100 -> 100, not stretched to the image maximum.
    assert pixels(load_rgb(path))[0, :, 0].tolist() == [0, 10, 100, 255]
    dark = tmp_path / "dark.png"
    Image.fromarray(np.array([[0, 257 * 50]], dtype=np.uint16)).save(dark)
    assert pixels(load_rgb(dark))[0, :, 0].tolist() == [0, 50]


def test_truncated_jpeg_names_the_file(tmp_path):
    path = tmp_path / "broken.jpg"
    noise = np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(noise).save(path)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(FGVCError, match=r"corrupt or truncated image: .*broken.jpg.*-> fix: delete or replace"):
        load_rgb(path)


def test_non_image_and_missing_file(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    with pytest.raises(FGVCError, match="corrupt or truncated image: .*notes.jpg"):
        load_rgb(text)
    with pytest.raises(FGVCError, match="image file not found: .*absent.jpg"):
        load_rgb(tmp_path / "absent.jpg")
