"""What each synthetic image shows: the bird template and every per-image random quantity.

:func:`sample_params` turns targets into a dict of per-image parameter
vectors (pose, colours, clutter, pattern phase, noise offset); the
rasteriser (:mod:`fgvc_lib.data.synthetic.raster`) draws them. Keeping the
scene apart from the drawing means the same scenes can be rendered at any
resolution and in any chunk size.

Implementation notes
--------------------
* All random parameters of a split are drawn up front from one generator,
  so the result does not depend on the rendering chunk size. Geometry and
  colours do not depend on the resolution either: the same seed gives the
  same scenes at 64 and 448 px (only the pixel noise differs).
* Learnability was tuned at the smoke setting (ResNet-18 from scratch,
  64 px, 10 classes x 40 train / 20 test images, SGD lr 0.05, momentum 0.9,
  weight decay 5e-4, batch 32, 5 epochs, 2 CPU cores, 30-60 s): 64-72 %
  test accuracy (chance 10 %) over three data seeds. With every class given
  the same part appearance, the same run stays at chance (10.5 %): nothing
  outside the parts carries the class. What matters most at 64 px is the
  bird's size and placement: smaller birds (50-70 % scale, +-30 degrees)
  gave ~45 %; centre shifts of up to 10 % ~55 %, shifts anywhere the bird
  fits ~50 %.
* The variation constants (:data:`SCALE_RANGE`, :data:`MAX_SHIFT`, ...) are
  read from this module when :func:`sample_params` runs: patch them here
  (``fgvc_lib.data.synthetic.scene``), not on the package.
* Changing anything here changes the pictures: bump
  :data:`fgvc_lib.data.synthetic.cache.GENERATOR_VERSION`.
"""
from __future__ import annotations

import numpy as np

from fgvc_lib.data.synthetic.classes import PALETTE, SLOT_NAMES, ClassTable

# -- the template, in object units (x = u towards the beak, y = v downwards) --
BODY = (0.0, 0.0, 0.34, 0.21)  # centre u, v, semi-axes a, b
HEAD = (0.34, -0.17, 0.14)  # centre u, v, radius
EYE = (0.40, -0.20, 0.026)
BEAK = np.array([[0.46, -0.215], [0.61, -0.16], [0.46, -0.115]], dtype=np.float32)
TAIL = np.array([[-0.22, -0.06], [-0.62, -0.15], [-0.62, 0.09], [-0.22, 0.08]], dtype=np.float32)
WING = (-0.04, -0.03, 0.24, 0.11, np.deg2rad(-8.0))  # centre, semi-axes, tilt
LEGS = ((0.02, 0.18, 0.05, 0.33), (-0.08, 0.18, -0.07, 0.33))  # segments u0, v0, u1, v1
LEG_RADIUS = 0.018
#: Part slot centres (crest, wing, tail) and their common radius.
SLOT_CENTRES = np.array([[0.30, -0.31], [-0.06, -0.03], [-0.55, -0.03]], dtype=np.float32)
SLOT_RADIUS = 0.095
#: Gap (image units) kept between the bird and the image border: over one pixel at
#: the smallest size (32 px), so no pixel the bird touches lies on the edge.
_BORDER = 0.035
BEAK_COLOUR = np.array([0.30, 0.24, 0.16], dtype=np.float32)
LEG_COLOUR = np.array([0.22, 0.18, 0.14], dtype=np.float32)
EYE_COLOUR = np.array([0.04, 0.04, 0.04], dtype=np.float32)

# -- intra-class variation ----------------------------------------------------
#: Image fraction per object unit; the bird is ~1.23 units long.
SCALE_RANGE = (0.58, 0.72)
MAX_ROTATION_DEG = 20.0
#: Largest shift of the bird's centre from the image centre (image units), before
#: clipping to keep the whole bird inside.
MAX_SHIFT = 0.06
PART_COLOUR_JITTER = 0.035  # std of the RGB jitter of part colours
NOISE_STD = 0.02  # pixel noise, in [0, 1] intensity units
#: Background clutter: at most this many blobs and twig-like lines behind the bird.
MAX_BLOBS = 6
MAX_LINES = 4


# ---------------------------------------------------------------------------
# Random parameters of every image
# ---------------------------------------------------------------------------
def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB, all inputs in [0, 1]; returns ``(..., 3)`` float32."""
    h = np.mod(h, 1.0) * 6.0
    i = np.floor(h).astype(np.int64) % 6
    f = h - np.floor(h)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    table = np.stack([np.stack(c, -1) for c in
                      ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))], 0)
    return np.take_along_axis(table, i[None, ..., None].repeat(3, -1), 0)[0].astype(np.float32)


def _hull_discs() -> np.ndarray:
    """Discs ``(u, v, r)`` whose union covers the bird: its extent at any pose, cheaply."""
    discs = [(*HEAD,), (*SLOT_CENTRES[0], SLOT_RADIUS), (*SLOT_CENTRES[2], SLOT_RADIUS)]
    discs += [(u, v, 0.0) for u, v in np.concatenate([TAIL, BEAK])]
    discs += [(u, v, LEG_RADIUS) for x0, y0, x1, y1 in LEGS for u, v in ((x0, y0), (x1, y1))]
    # Body ellipse: 32 boundary points; the chords fall inside by < a (1 - cos(pi / 32)).
    t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    slack = BODY[2] * (1 - np.cos(np.pi / 32))
    discs += [(BODY[0] + BODY[2] * np.cos(a), BODY[1] + BODY[3] * np.sin(a), slack) for a in t]
    return np.array(discs, dtype=np.float64)  # the wing, eye and wing disc lie inside these


_HULL = _hull_discs()


def _object_extent(flip: np.ndarray, angle: np.ndarray, scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per image, the bird's ``(min_x, min_y)`` and ``(max_x, max_y)`` relative to its centre (image units)."""
    u, v, r = (_HULL[:, i][None, :] for i in range(3))
    u = u * flip[:, None]
    cos, sin = np.cos(angle)[:, None], np.sin(angle)[:, None]
    x, y = u * cos - v * sin, u * sin + v * cos
    low = np.stack([(x - r).min(1), (y - r).min(1)], 1) * scale[:, None]
    high = np.stack([(x + r).max(1), (y + r).max(1)], 1) * scale[:, None]
    return low, high


def sample_params(table: ClassTable, targets: np.ndarray, rng: np.random.Generator,
                  size: int) -> dict[str, np.ndarray]:
    """Draw every per-image random quantity for ``targets`` (all vectors, no per-image loop)."""
    n = len(targets)
    u = lambda lo, hi, *shape: rng.uniform(lo, hi, (n, *shape)).astype(np.float32)
    scale = u(*SCALE_RANGE)
    flip = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(np.float32)
    angle = np.deg2rad(u(-MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    # Shift the bird from the image centre, only as far as the whole bird stays inside.
    low, high = _object_extent(flip, angle, scale)
    low, high = _BORDER - low, 1.0 - _BORDER - high
    if np.any(low > high):  # only reachable by editing SCALE_RANGE / the template
        raise RuntimeError("synthetic bird does not fit in the image: lower SCALE_RANGE")
    centre = np.clip(0.5 + u(-MAX_SHIFT, MAX_SHIFT, 2), low, high).astype(np.float32)
    bg_h, bg_s, bg_v = u(0, 1), u(0.05, 0.35), u(0.45, 0.80)
    bg_top = _hsv_to_rgb(bg_h, bg_s, bg_v)
    bg_bottom = _hsv_to_rgb(bg_h + u(-0.06, 0.06), np.clip(bg_s + u(-0.1, 0.1), 0, 0.4),
                            np.clip(bg_v + u(-0.25, 0.05), 0.25, 0.85))

    def clutter_colour(k: int) -> np.ndarray:
        return _hsv_to_rgb(bg_h[:, None] + u(-0.1, 0.1, k), u(0.05, 0.4, k),
                           np.clip(bg_v[:, None] + u(-0.3, 0.1, k), 0.2, 0.85))

    line_mid, line_half = u(0, 1, MAX_LINES, 2), u(0.06, 0.2, MAX_LINES)
    line_angle = u(0, np.pi, MAX_LINES)
    line_dir = np.stack([np.cos(line_angle), np.sin(line_angle)], -1) * line_half[..., None]
    line_ends = np.concatenate([line_mid - line_dir, line_mid + line_dir], -1)
    codes = table.codes[targets]  # (n, S, 2)
    part_colour = PALETTE[codes[..., 1]] + rng.normal(0, PART_COLOUR_JITTER, (n, len(SLOT_NAMES), 3))
    return {
        "flip": flip,
        "angle": angle,
        "scale": scale,
        "centre": centre,
        "body": _hsv_to_rgb(u(0, 1), u(0.10, 0.45), u(0.35, 0.75)),
        "bg_top": bg_top,
        "bg_bottom": bg_bottom,
        "blob_active": rng.random((n, MAX_BLOBS)) < u(0.3, 1.0)[:, None],
        "blob_centre": u(0, 1, MAX_BLOBS, 2),
        "blob_axes": u(0.03, 0.18, MAX_BLOBS, 2),
        "blob_angle": u(0, np.pi, MAX_BLOBS),
        "blob_colour": clutter_colour(MAX_BLOBS),
        "line_active": rng.random((n, MAX_LINES)) < u(0.0, 0.8)[:, None],
        "line_ends": line_ends,
        "line_radius": u(0.004, 0.015, MAX_LINES),
        "line_colour": clutter_colour(MAX_LINES) * 0.7,
        "pattern": codes[..., 0],
        "part_colour": np.clip(part_colour, 0, 1).astype(np.float32),
        "pattern_angle": np.deg2rad(u(30.0, 60.0, len(SLOT_NAMES))),
        "pattern_phase": u(0, 1, len(SLOT_NAMES), 2),
        "gain": u(0.9, 1.1),
        "noise": np.full(n, NOISE_STD, dtype=np.float32),
        "noise_seed": np.full(n, rng.integers(0, 2**63 - 1)),  # one noise tile per split
        "noise_offset": np.floor(u(0, 1, 2) * size).astype(np.int64),
    }


def prototype_params(table: ClassTable) -> dict[str, np.ndarray]:
    """Canonical parameters: one clutter-free, centred, upright bird per class, same colours."""
    k = len(table.codes)
    ones = np.ones(k, dtype=np.float32)
    scale = 0.62 * ones
    low, high = _object_extent(ones, 0 * ones, scale)
    centre = (0.5 - (low + high) / 2).astype(np.float32)  # the bird's box centred in the image
    body = np.tile(np.array([0.55, 0.46, 0.36], np.float32), (k, 1))
    bg = np.tile(np.array([0.78, 0.82, 0.86], np.float32), (k, 1))
    return {
        "flip": ones, "angle": 0 * ones, "scale": scale, "centre": centre, "body": body,
        "bg_top": bg, "bg_bottom": bg,
        "blob_active": np.zeros((k, MAX_BLOBS), bool),
        "blob_centre": np.zeros((k, MAX_BLOBS, 2), np.float32),
        "blob_axes": np.full((k, MAX_BLOBS, 2), 0.1, np.float32),
        "blob_angle": np.zeros((k, MAX_BLOBS), np.float32),
        "blob_colour": np.zeros((k, MAX_BLOBS, 3), np.float32),
        "line_active": np.zeros((k, MAX_LINES), bool),
        "line_ends": np.zeros((k, MAX_LINES, 4), np.float32),
        "line_radius": np.full((k, MAX_LINES), 0.01, np.float32),
        "line_colour": np.zeros((k, MAX_LINES, 3), np.float32),
        "pattern": table.codes[..., 0],
        "part_colour": PALETTE[table.codes[..., 1]],
        "pattern_angle": np.full((k, len(SLOT_NAMES)), np.deg2rad(45.0), np.float32),
        "pattern_phase": np.zeros((k, len(SLOT_NAMES), 2), np.float32),
        "gain": ones, "noise": 0 * ones, "noise_seed": np.zeros(k, np.int64),
        "noise_offset": np.zeros((k, 2), np.int64),
    }


# ---------------------------------------------------------------------------
# The template as the rasteriser draws it
# ---------------------------------------------------------------------------
def _template_pieces() -> list[tuple[str, tuple, np.ndarray, float]]:
    """``(kind, shape args, bounding centre (u, v), bounding radius)`` in drawing order."""
    pieces: list[tuple[str, tuple, np.ndarray, float]] = []
    for x0, y0, x1, y1 in LEGS:
        pieces.append(("leg", (x0, y0, x1, y1, LEG_RADIUS), np.array([(x0 + x1) / 2, (y0 + y1) / 2]),
                       float(np.hypot(x1 - x0, y1 - y0)) / 2 + LEG_RADIUS))
    for kind, poly in (("tail", TAIL),):
        centre = poly.mean(0)
        pieces.append((kind, (poly,), centre, float(np.max(np.hypot(*(poly - centre).T)))))
    pieces.append(("body", BODY, np.array(BODY[:2]), max(BODY[2:])))
    pieces.append(("wing", WING, np.array(WING[:2]), max(WING[2:4])))
    pieces.append(("head", HEAD, np.array(HEAD[:2]), HEAD[2]))
    centre = BEAK.mean(0)
    pieces.append(("beak", (BEAK,), centre, float(np.max(np.hypot(*(BEAK - centre).T)))))
    pieces.append(("eye", EYE, np.array(EYE[:2]), EYE[2]))
    return pieces


#: The template's shapes in drawing order; each is drawn in a window of its bounding radius.
PIECES = _template_pieces()
