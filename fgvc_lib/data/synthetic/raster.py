"""The rasteriser of the synthetic birds: signed distance functions on pixel grids.

:func:`render_images` draws the scenes that
:func:`~fgvc_lib.data.synthetic.scene.sample_params` describes, and reads
the object and part boxes off the same coverage it paints, so the boxes
are exact by construction.

Implementation notes
--------------------
* Rendering is analytic and vectorised: each shape is a signed distance
  function evaluated on a pixel-centre coordinate grid for a batch of images
  at once, and its coverage ``clip(0.5 - d_px, 0, 1)`` gives one pixel of
  anti-aliasing. Boxes are read from coverage ``> 0``, so every pixel a part
  can influence lies inside its box (the "differ only locally" test relies
  on this).
* Speed: each shape is evaluated only in a window around it (the same
  window size for the whole batch, placed per image) and composited only
  where its coverage is non-zero; 4000 images of 64 px take about 2 s on
  one CPU core, 100 images of 448 px about 1 s. Pixel noise is a window at
  a random offset into one fixed noise tile per split, far cheaper than
  fresh normal draws per pixel.
* Changing anything here changes the pictures: bump
  :data:`fgvc_lib.data.synthetic.cache.GENERATOR_VERSION`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from fgvc_lib.data.synthetic.classes import (PATTERN_DARK, PATTERN_NAMES, SLOT_NAMES, check_int,
                                             make_class_table)
from fgvc_lib.data.synthetic.scene import (BEAK_COLOUR, EYE_COLOUR, LEG_COLOUR, MAX_BLOBS,
                                           MAX_LINES, PIECES, SLOT_CENTRES, SLOT_RADIUS,
                                           prototype_params)
from fgvc_lib.errors import FGVCError

#: Pixels rendered per chunk: bounds the float32 temporaries (~10 MB each).
_CHUNK_PIXELS = 1 << 21


# ---------------------------------------------------------------------------
# Signed distance functions on coordinate grids
# ---------------------------------------------------------------------------
def _ellipse_sdf(x: np.ndarray, y: np.ndarray, a: Any, b: Any) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse (first order, exact on the curve)."""
    k0 = np.sqrt((x / a) ** 2 + (y / b) ** 2)
    k1 = np.sqrt((x / (a * a)) ** 2 + (y / (b * b)) ** 2)
    return k0 * (k0 - 1.0) / np.maximum(k1, 1e-6)


def _circle_sdf(x: np.ndarray, y: np.ndarray, cx: Any, cy: Any, r: Any) -> np.ndarray:
    return np.sqrt((x - cx) ** 2 + (y - cy) ** 2) - r


def _polygon_sdf(x: np.ndarray, y: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Exact signed distance to a convex polygon (either winding).

    Inside, the distance to the nearest edge line; outside, to the nearest
    edge segment (the plain max of edge lines would bleed past sharp tips,
    such as the beak's, by more than the half pixel of anti-aliasing).
    """
    centroid = points.mean(0)
    inside = outside = None
    for (x0, y0), (x1, y1) in zip(points, np.roll(points, -1, axis=0)):
        ex, ey = float(x1 - x0), float(y1 - y0)
        length = float(np.hypot(ex, ey))
        # Orient each edge's normal away from the centroid, whatever the winding.
        sign = -1.0 if (centroid[0] - x0) * ey - (centroid[1] - y0) * ex > 0 else 1.0
        side = ((x - x0) * (sign * ey) - (y - y0) * (sign * ex)) / length
        edge = _segment_sdf(x, y, float(x0), float(y0), float(x1), float(y1), 0.0)
        inside = side if inside is None else np.maximum(inside, side)
        outside = edge if outside is None else np.minimum(outside, edge)
    return np.where(inside > 0, outside, inside)


def _segment_sdf(x: np.ndarray, y: np.ndarray, x0: Any, y0: Any, x1: Any, y1: Any, r: Any) -> np.ndarray:
    """Signed distance to a capsule (a segment thickened by ``r``)."""
    ex, ey = x1 - x0, y1 - y0
    px, py = x - x0, y - y0
    t = np.clip((px * ex + py * ey) / np.maximum(ex * ex + ey * ey, 1e-9), 0.0, 1.0)
    return np.sqrt((px - t * ex) ** 2 + (py - t * ey) ** 2) - r


def _coverage(d: np.ndarray, px_per_unit: Any) -> np.ndarray:
    """Fraction of a pixel inside a shape, from its signed distance (one pixel of anti-aliasing)."""
    return np.clip(0.5 - d * px_per_unit, 0.0, 1.0)


def _frac(x: np.ndarray) -> np.ndarray:
    """``x mod 1`` (``np.mod`` on floats is many times slower)."""
    return x - np.floor(x)


def _pattern_mix(a: np.ndarray, b: np.ndarray, pattern: int, angle: np.ndarray,
                 phase: np.ndarray, px_per_r: np.ndarray) -> np.ndarray:
    """Share of part colour (vs. the dark tone) at part-local coordinates ``a, b`` (radius 1).

    ``angle`` (B, 1, 1), ``phase`` (B, 1, 1, 2) and ``px_per_r`` (B, 1, 1) are per image.
    """
    if pattern == 0:  # solid
        return np.ones_like(a)
    if pattern == 1:  # ring: coloured rim, dark centre
        return _coverage(0.55 - np.sqrt(a * a + b * b), px_per_r)
    if pattern == 2:  # stripes: bands 0.38 r wide, at the per-image angle
        period = 0.76
        proj = a * np.cos(angle) + b * np.sin(angle)
        w = _frac(proj / period + phase[..., 0])
        return _coverage((np.abs(w - 0.25) - 0.25) * period, px_per_r)
    # dots: dark dots of radius 0.2 r on the colour, square grid of pitch 0.62 r
    cell = 0.62
    qa = (_frac(a / cell + phase[..., 0]) - 0.5) * cell
    qb = (_frac(b / cell + phase[..., 1]) - 0.5) * cell
    return _coverage(0.2 - np.sqrt(qa * qa + qb * qb), px_per_r)


# ---------------------------------------------------------------------------
# Canvas, boxes and the renderer
# ---------------------------------------------------------------------------
@dataclass
class _Window:
    """The same-sized pixel window in every image of a batch, placed per image."""

    index: np.ndarray | None  # (B*h*w,) flat indices into a (B*size*size) plane; None: whole image
    X: np.ndarray  # (B or 1, 1, w) pixel-centre x in image units [0, 1]
    Y: np.ndarray  # (B or 1, h, 1)
    x0: np.ndarray  # (B,) window origin in pixels
    y0: np.ndarray


class _Canvas:
    """A batch of planar RGB images (3, B*size*size) painted through windows.

    Most shapes touch a few percent of an image, so each is evaluated in a
    window around it instead of on the whole grid. Gathering and scattering a
    window costs a few times a plain array operation, so shapes whose window
    would cover much of the image are evaluated on the whole grid instead.
    """

    def __init__(self, n: int, size: int) -> None:
        self.n, self.size = n, size
        self.planes = np.empty((3, n * size * size), dtype=np.float32)
        coords = ((np.arange(size) + 0.5) / size).astype(np.float32)
        zeros = np.zeros(n, dtype=np.int64)
        self.full = _Window(None, coords[None, None, :], coords[None, :, None], zeros, zeros)

    def window(self, cx: np.ndarray, cy: np.ndarray, half_x: np.ndarray, half_y: np.ndarray) -> _Window:
        """A window holding every pixel that a shape of half extents ``half_*`` at ``c*`` can touch."""
        size = self.size
        # Coverage reaches half a pixel beyond the shape; the +3 absorbs that and the rounding.
        w = min(size, int(np.ceil(2 * float(np.max(half_x)) * size)) + 3)
        h = min(size, int(np.ceil(2 * float(np.max(half_y)) * size)) + 3)
        if w * h > 0.3 * size * size:
            return self.full
        x0 = np.clip(np.floor(cx * size - w / 2), 0, size - w).astype(np.int64)
        y0 = np.clip(np.floor(cy * size - h / 2), 0, size - h).astype(np.int64)
        xs = x0[:, None] + np.arange(w)
        ys = y0[:, None] + np.arange(h)
        base = np.arange(self.n)[:, None, None] * size * size
        index = (base + ys[:, :, None] * size + xs[:, None, :]).ravel()
        X = ((xs + 0.5) / size).astype(np.float32)[:, None, :]
        Y = ((ys + 0.5) / size).astype(np.float32)[:, :, None]
        return _Window(index, X, Y, x0, y0)

    def paint(self, win: _Window, alpha: np.ndarray, colour: np.ndarray) -> None:
        """Alpha-composite ``colour`` ((3, B) or (3, B, h, w)) over the window.

        Only pixels with non-zero coverage are read and written: shapes are
        small or thin, so this touches a few percent of the batch.
        """
        alpha = np.broadcast_to(alpha, (self.n, *alpha.shape[1:]))
        hit = np.flatnonzero(alpha)
        if hit.size == 0:
            return
        a = alpha.reshape(-1)[hit]
        if win.index is not None:
            pixels = win.index[hit]
        else:
            pixels = hit  # the window is the whole image: window order == canvas order
        if colour.ndim == 2:
            # hits come image by image, so each image's colour repeats once per hit
            per_image = np.count_nonzero(alpha.reshape(self.n, -1), axis=1)
            per_pixel = np.repeat(colour, per_image, axis=1)
        else:
            per_pixel = colour.reshape(3, -1)[:, hit]
        for channel in range(3):
            plane = self.planes[channel]
            value = plane.take(pixels)
            value += a * (per_pixel[channel] - value)
            plane.put(pixels, value)

    def images(self) -> np.ndarray:
        """The batch as (B, size, size, 3) float32."""
        return self.planes.reshape(3, self.n, self.size, self.size).transpose(1, 2, 3, 0)


_EMPTY_BOX = np.array([np.iinfo(np.int64).max, np.iinfo(np.int64).max, -1, -1])


def _mask_boxes(mask: np.ndarray, win: _Window) -> np.ndarray:
    """Tight image-pixel boxes (B, 4) of window masks (B, h, w); empty masks give ``_EMPTY_BOX``."""
    h, w = mask.shape[1:]
    cols, rows = mask.any(1), mask.any(2)
    boxes = np.stack([cols.argmax(1) + win.x0, rows.argmax(1) + win.y0,
                      w - cols[:, ::-1].argmax(1) + win.x0, h - rows[:, ::-1].argmax(1) + win.y0], 1)
    boxes[~cols.any(1)] = _EMPTY_BOX
    return boxes


def _union_boxes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.concatenate([np.minimum(a[:, :2], b[:, :2]), np.maximum(a[:, 2:], b[:, 2:])], 1)


def _render_chunk(p: dict[str, np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render one batch of images described by per-image parameters ``p``.

    Returns uint8 images (B, H, W, 3), object boxes (B, 4) and part boxes (B, S, 4).
    """
    n = len(p["scale"])
    canvas = _Canvas(n, size)
    col = lambda v: np.asarray(v, dtype=np.float32).reshape(n, 1, 1)

    # Background: vertical gradient, then clutter (always behind the bird, so it never hides a part).
    t = canvas.full.Y[None]  # (1, 1, H, 1)
    top, bottom = p["bg_top"].T[:, :, None, None], p["bg_bottom"].T[:, :, None, None]
    canvas.planes.reshape(3, n, size, size)[:] = top + (bottom - top) * t
    for k in range(MAX_BLOBS):
        centre, axes = p["blob_centre"][:, k], p["blob_axes"][:, k]
        half = axes.max(1)
        win = canvas.window(centre[:, 0], centre[:, 1], half, half)
        c, s_ = col(np.cos(p["blob_angle"][:, k])), col(np.sin(p["blob_angle"][:, k]))
        dx, dy = win.X - col(centre[:, 0]), win.Y - col(centre[:, 1])
        d = _ellipse_sdf(dx * c + dy * s_, dy * c - dx * s_, col(axes[:, 0]), col(axes[:, 1]))
        canvas.paint(win, _coverage(d, size) * col(p["blob_active"][:, k]), p["blob_colour"][:, k].T)
    for k in range(MAX_LINES):
        e, r = p["line_ends"][:, k], p["line_radius"][:, k]
        win = canvas.window((e[:, 0] + e[:, 2]) / 2, (e[:, 1] + e[:, 3]) / 2,
                            np.abs(e[:, 2] - e[:, 0]) / 2 + r, np.abs(e[:, 3] - e[:, 1]) / 2 + r)
        d = _segment_sdf(win.X, win.Y, col(e[:, 0]), col(e[:, 1]), col(e[:, 2]), col(e[:, 3]), col(r))
        canvas.paint(win, _coverage(d, size) * col(p["line_active"][:, k]), p["line_colour"][:, k].T)

    # Object frame: undo translation, rotation, scale and the left/right flip.
    cos, sin = np.cos(p["angle"]), np.sin(p["angle"])
    scale, flip, centre = p["scale"], p["flip"], p["centre"]
    px = col(scale * size)  # pixels per object unit

    def object_window(u0: float, v0: float, radius: float) -> tuple[_Window, np.ndarray, np.ndarray]:
        cx = centre[:, 0] + scale * (flip * u0 * cos - v0 * sin)
        cy = centre[:, 1] + scale * (flip * u0 * sin + v0 * cos)
        win = canvas.window(cx, cy, radius * scale, radius * scale)
        dx, dy = win.X - col(centre[:, 0]), win.Y - col(centre[:, 1])
        u = (dx * col(cos) + dy * col(sin)) / col(scale) * col(flip)
        v = (dy * col(cos) - dx * col(sin)) / col(scale)
        return win, u, v

    body = p["body"].T
    colours = {"leg": np.broadcast_to(LEG_COLOUR[:, None], (3, n)), "tail": body * 0.8, "body": body,
               "wing": body * 0.72, "head": body, "beak": np.broadcast_to(BEAK_COLOUR[:, None], (3, n)),
               "eye": np.broadcast_to(EYE_COLOUR[:, None], (3, n))}
    object_boxes = np.tile(_EMPTY_BOX, (n, 1))
    for kind, args, (u0, v0), radius in PIECES:
        win, u, v = object_window(u0, v0, radius)
        if kind == "leg":
            d = _segment_sdf(u, v, *args)
        elif kind in ("tail", "beak"):
            d = _polygon_sdf(u, v, *args)
        elif kind == "body":
            d = _ellipse_sdf(u - args[0], v - args[1], args[2], args[3])
        elif kind == "wing":
            wu, wv, wa, wb, tilt = args
            ct, st = np.cos(tilt), np.sin(tilt)
            d = _ellipse_sdf((u - wu) * ct + (v - wv) * st, (v - wv) * ct - (u - wu) * st, wa, wb)
        else:  # head, eye
            d = _circle_sdf(u, v, *args)
        alpha = _coverage(d, px)
        object_boxes = _union_boxes(object_boxes, _mask_boxes(alpha > 0, win))
        canvas.paint(win, alpha, colours[kind])

    part_boxes = np.zeros((n, len(SLOT_NAMES), 4), dtype=np.int64)
    px_per_r = px * SLOT_RADIUS
    dark = PATTERN_DARK[:, None, None, None]
    for s, (cu, cv) in enumerate(SLOT_CENTRES):
        win, u, v = object_window(float(cu), float(cv), SLOT_RADIUS)
        a, b = (u - cu) / SLOT_RADIUS, (v - cv) / SLOT_RADIUS
        disc = _coverage(np.sqrt(a * a + b * b) - 1.0, px_per_r)
        part_boxes[:, s] = _mask_boxes(disc > 0, win)
        object_boxes = _union_boxes(object_boxes, part_boxes[:, s])
        mix = np.empty_like(a)
        for pattern in range(len(PATTERN_NAMES)):
            sel = np.flatnonzero(p["pattern"][:, s] == pattern)
            if sel.size:
                mix[sel] = _pattern_mix(a[sel], b[sel], pattern, col(p["pattern_angle"][:, s])[sel],
                                        p["pattern_phase"][sel, s][:, None, None, :], px_per_r[sel])
        colour = p["part_colour"][:, s].T[:, :, None, None]
        canvas.paint(win, disc, dark + mix * (colour - dark))

    planes = canvas.planes.reshape(3, n, size, size)
    planes *= (p["gain"] * 255.0)[None, :, None, None]
    noisy = np.flatnonzero(p["noise"] > 0)
    if noisy.size:
        # Pixel noise: a window at a per-image offset into one noise tile, which is
        # much cheaper than fresh normal draws and does not depend on the chunking.
        tile = _noise_tile(int(p["noise_seed"][noisy[0]]), size)
        for i in noisy:
            ox, oy = p["noise_offset"][i]
            planes[:, i] += tile[:, oy:oy + size, ox:ox + size] * (p["noise"][i] * 255.0)
    planes += 0.5
    np.clip(planes, 0.0, 255.0, out=planes)
    out = planes.astype(np.uint8).transpose(1, 2, 3, 0)
    return out, object_boxes, part_boxes


@functools.lru_cache(maxsize=2)
def _noise_tile(seed: int, size: int) -> np.ndarray:
    """Standard normal noise, (3, 2 * size, 2 * size), fixed by ``seed``."""
    return np.random.default_rng(seed).standard_normal((3, 2 * size, 2 * size), dtype=np.float32)


def render_images(params: dict[str, np.ndarray], size: int,
                  out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render all images in ``params`` at ``size`` px, in chunks of bounded memory.

    Writes into ``out`` (an (N, size, size, 3) uint8 array or memmap) if given.
    Returns ``(images, object_boxes (N, 4), part_boxes (N, S, 4))``.
    """
    n = len(params["scale"])
    if out is None:
        out = np.empty((n, size, size, 3), dtype=np.uint8)
    object_boxes = np.zeros((n, 4), dtype=np.int64)
    part_boxes = np.zeros((n, len(SLOT_NAMES), 4), dtype=np.int64)
    chunk = max(1, _CHUNK_PIXELS // (size * size))
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        sub = {k: v[start:stop] for k, v in params.items()}
        out[start:stop], object_boxes[start:stop], part_boxes[start:stop] = _render_chunk(sub, size)
    return out, object_boxes, part_boxes


def class_prototypes(num_classes: int, image_size: int = 64, seed: int = 0) -> np.ndarray:
    """One canonical rendering per class: centred, upright, facing right, no clutter or noise.

    All prototypes share body and background colours, so two of them differ
    only inside the part discs where their appearance codes differ.
    Returns ``(num_classes, image_size, image_size, 3)`` uint8.
    """
    check_image_size(image_size)
    table = make_class_table(num_classes, seed)
    images, _, _ = render_images(prototype_params(table), image_size)
    return images


def prototype_annotations(num_classes: int, image_size: int = 64, seed: int = 0
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Object boxes (K, 4) and part boxes (K, S, 4) of :func:`class_prototypes`."""
    check_image_size(image_size)
    table = make_class_table(num_classes, seed)
    _, object_boxes, part_boxes = render_images(prototype_params(table), image_size)
    return object_boxes, part_boxes


# ---------------------------------------------------------------------------
# Argument check
# ---------------------------------------------------------------------------
def check_image_size(image_size: Any) -> int:
    """``image_size`` as an int >= 32, below which the part patterns cannot be drawn."""
    image_size = check_int("image_size", image_size)
    if image_size < 32:
        raise FGVCError(f"SyntheticFGVC: image_size={image_size} is too small to draw the parts",
                        "use image_size >= 32 (64 on a CPU, 448 on a GPU)")
    return image_size
