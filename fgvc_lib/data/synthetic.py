"""A procedurally generated fine-grained dataset: stylised birds that differ only in small parts.

This is the project's default dataset: it needs no download, renders at any
resolution (64 px for CPU smoke runs, 448 px like the papers) and, unlike the
real archives, knows *where* the class evidence is, so the attention chapters
can score attention maps against the discriminative parts (CMAL-Net's ACE/ACR,
Coarse2Fine's localisation error).

How an image is made
--------------------
Every class shares ONE object template, a stylised perching bird drawn from
analytic shapes: an elliptic body, a round head with an eye and a beak, a
wedge-shaped tail, a wing (a rotated ellipse in a darker shade) and two legs.
Three small round **part slots** sit on the template:

* ``crest`` -- on top of the head,
* ``wing``  -- in the middle of the wing,
* ``tail``  -- at the tip of the tail.

Each slot is a disc 15 % of the bird's length across. A slot's
*appearance* is a colour from a saturated palette (red, yellow, green, blue,
magenta, white) and a pattern that mixes that colour with a near-black tone:
``solid`` (all colour), ``ring`` (coloured rim, dark centre), ``stripes``
(alternating bands) or ``dots`` (dark dots on the colour). A **class** is one
appearance per slot, e.g. ``crest-red-stripes/wing-blue-dots/tail-white-ring``.
Outside the three discs, two classes are drawn identically, so the class
can only be read from the parts, as a bird species from its crest or wing bar.

Fine-grained pairs: classes ``2k`` and ``2k+1`` are *siblings* that share two
of the three slots and differ in exactly one, slot ``k mod 3`` (crest for
pairs 0-1, 6-7, ...; wing for 2-3, 8-9, ...; tail for 4-5, 10-11, ...).
Telling siblings apart needs that single part (:attr:`SyntheticFGVC.sibling_pairs`).
Other pairs of classes are drawn at random and usually differ in all slots.

Intra-class variation (drawn per image, independent of the class): facing
left or right, rotation (+-20 degrees), scale (bird length 73-90 % of the
image side), position (the centre shifted up to 6 % of the image side,
never cropping the bird), body colour (any hue, muted), background (a muted
vertical gradient), background clutter (blobs and twig-like lines behind the
bird), a small jitter of the part colours and of the pattern phase and
angle, a global brightness gain and pixel noise. Body and clutter colours are
kept desaturated, and clutter value stays below the white part colour, so
clutter never reproduces a part's appearance code and the body colour says
nothing about the class.

Annotations: every image stores its object box (all pixels the bird touches)
and the box of each part disc, in pixels with exclusive ``x1, y1``.

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
* The class table (the appearance codes) depends only on ``seed`` and is
  prefix-stable: the first 10 classes are the same with ``num_classes=10``
  and ``num_classes=50``. Train and test images use seeds derived from
  ``(seed, split)``.
* ``part_boxes`` in :meth:`SyntheticFGVC.annotation` lists all three slots:
  each slot carries class information (a class is the combination), and
  the slot that separates a class from its sibling is named by
  :meth:`SyntheticFGVC.sibling_part`.
* The cache is two files per (parameters) key: a ``.npy`` image array
  (memory-mapped when read, so 448 px sets do not need to fit in RAM per
  worker) and a ``.npz`` with targets and boxes, written last. Both are
  written to a unique temporary file then moved with :func:`os.replace`,
  so a crash never leaves a half-written cache file under the final name,
  and a corrupt cache is regenerated.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fgvc_lib.data.base import Box, FGVCDataset
from fgvc_lib.errors import FGVCError

#: Bump when the rendered pictures change, so old caches are not reused.
GENERATOR_VERSION = 3
CACHE_ENV = "FGVC_CACHE"

SLOT_NAMES: tuple[str, ...] = ("crest", "wing", "tail")
PATTERN_NAMES: tuple[str, ...] = ("solid", "ring", "stripes", "dots")
COLOUR_NAMES: tuple[str, ...] = ("red", "yellow", "green", "blue", "magenta", "white")
PALETTE = np.array([
    [0.90, 0.12, 0.10],
    [0.98, 0.85, 0.10],
    [0.10, 0.75, 0.20],
    [0.12, 0.30, 0.95],
    [0.85, 0.10, 0.80],
    [0.97, 0.97, 0.97],
], dtype=np.float32)
#: The tone a pattern alternates with (the "dark" of stripes, dots and ring).
PATTERN_DARK = np.array([0.07, 0.07, 0.08], dtype=np.float32)
NUM_APPEARANCES = len(PATTERN_NAMES) * len(COLOUR_NAMES)
#: Number of distinct classes the generator can make: one appearance per slot.
MAX_CLASSES = NUM_APPEARANCES ** len(SLOT_NAMES)

# -- the template, in object units (x = u towards the beak, y = v downwards) --
_BODY = (0.0, 0.0, 0.34, 0.21)  # centre u, v, semi-axes a, b
_HEAD = (0.34, -0.17, 0.14)  # centre u, v, radius
_EYE = (0.40, -0.20, 0.026)
_BEAK = np.array([[0.46, -0.215], [0.61, -0.16], [0.46, -0.115]], dtype=np.float32)
_TAIL = np.array([[-0.22, -0.06], [-0.62, -0.15], [-0.62, 0.09], [-0.22, 0.08]], dtype=np.float32)
_WING = (-0.04, -0.03, 0.24, 0.11, np.deg2rad(-8.0))  # centre, semi-axes, tilt
_LEGS = ((0.02, 0.18, 0.05, 0.33), (-0.08, 0.18, -0.07, 0.33))  # segments u0, v0, u1, v1
_LEG_RADIUS = 0.018
#: Part slot centres (crest, wing, tail) and their common radius.
SLOT_CENTRES = np.array([[0.30, -0.31], [-0.06, -0.03], [-0.55, -0.03]], dtype=np.float32)
SLOT_RADIUS = 0.095
#: Gap (image units) kept between the bird and the image border: over one pixel at
#: the smallest size (32 px), so no pixel the bird touches lies on the edge.
_BORDER = 0.035
_BEAK_COLOUR = np.array([0.30, 0.24, 0.16], dtype=np.float32)
_LEG_COLOUR = np.array([0.22, 0.18, 0.14], dtype=np.float32)
_EYE_COLOUR = np.array([0.04, 0.04, 0.04], dtype=np.float32)

# -- intra-class variation ----------------------------------------------------
#: Image fraction per object unit; the bird is ~1.23 units long.
SCALE_RANGE = (0.58, 0.72)
MAX_ROTATION_DEG = 20.0
#: Largest shift of the bird's centre from the image centre (image units), before
#: clipping to keep the whole bird inside.
MAX_SHIFT = 0.06
PART_COLOUR_JITTER = 0.035  # std of the RGB jitter of part colours
NOISE_STD = 0.02  # pixel noise, in [0, 1] intensity units
_MAX_BLOBS = 6
_MAX_LINES = 4
#: Pixels rendered per chunk: bounds the float32 temporaries (~10 MB each).
_CHUNK_PIXELS = 1 << 21


# ---------------------------------------------------------------------------
# Class table
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ClassTable:
    """Appearance codes of every class.

    ``codes[c, s] = (pattern, colour)`` indices of slot ``s`` for class ``c``;
    ``sibling_slot[c]`` is the slot index separating ``c`` from its sibling
    (``-1`` for an unpaired last class).
    """

    codes: np.ndarray  # (K, S, 2) int
    sibling_slot: np.ndarray  # (K,) int

    @property
    def names(self) -> list[str]:
        return [class_name(code) for code in self.codes]


def class_name(code: np.ndarray) -> str:
    """``"crest-red-stripes/wing-blue-dots/tail-white-ring"`` for one class code."""
    return "/".join(f"{slot}-{COLOUR_NAMES[c]}-{PATTERN_NAMES[p]}"
                    for slot, (p, c) in zip(SLOT_NAMES, code))


def make_class_table(num_classes: int, seed: int) -> ClassTable:
    """Draw the appearance codes of ``num_classes`` classes (prefix-stable in ``num_classes``).

    Class ``2k`` takes, in every slot, one of the appearances used least so
    far in that slot (ties: the least-used colour, then pattern, then at
    random), so small class sets spread over the palette instead of reusing
    one part look. Class ``2k+1`` copies class ``2k`` and changes slot
    ``k mod 3`` to a different colour *and* pattern, so siblings differ in one
    part only. A combination already taken is redrawn.
    """
    _check_num_classes(num_classes)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xC1A55]))
    n_pat, n_col, n_slot = len(PATTERN_NAMES), len(COLOUR_NAMES), len(SLOT_NAMES)
    codes = np.zeros((num_classes, n_slot, 2), dtype=np.int64)
    sibling_slot = np.full(num_classes, -1, dtype=np.int64)
    usage = np.zeros((n_slot, n_pat, n_col), dtype=np.int64)  # classes using each appearance
    used: set[bytes] = set()
    leftovers: list[np.ndarray] | None = None  # all unused combinations, built only if needed

    def least_used(slot: int, avoid: np.ndarray | None = None) -> np.ndarray:
        appearance, colour, pattern = usage[slot], usage[slot].sum(0), usage[slot].sum(1)
        score = (appearance * (n_slot * num_classes + 1) + colour[None, :]) * (num_classes + 1) \
            + pattern[:, None]
        score = score.astype(np.float64)
        if avoid is not None:
            score[avoid[0], :] = np.inf
            score[:, avoid[1]] = np.inf
        best = np.argwhere(score == score.min())
        return best[rng.integers(len(best))]

    for k in range(num_classes):
        slot = (k // 2) % n_slot
        code = None
        for attempt in range(64):
            if k % 2 == 1:
                candidate = codes[k - 1].copy()
                if attempt == 0:
                    candidate[slot] = least_used(slot, avoid=codes[k - 1, slot])
                else:
                    candidate[slot, 0] = (candidate[slot, 0] + rng.integers(1, n_pat)) % n_pat
                    candidate[slot, 1] = (candidate[slot, 1] + rng.integers(1, n_col)) % n_col
            elif attempt == 0:
                candidate = np.stack([least_used(j) for j in range(n_slot)])
            else:
                candidate = np.stack([rng.integers(0, n_pat, n_slot), rng.integers(0, n_col, n_slot)], 1)
            if candidate.tobytes() not in used:
                code = candidate
                break
        if code is None:
            # Only reached when most combinations are taken: fall back to any unused one.
            if leftovers is None:
                every = np.stack(np.meshgrid(*[np.arange(n_pat), np.arange(n_col)] * n_slot,
                                             indexing="ij"), -1).reshape(-1, n_slot, 2)
                leftovers = [c for c in every[rng.permutation(len(every))] if c.tobytes() not in used]
            while leftovers[-1].tobytes() in used:
                leftovers.pop()
            code = leftovers.pop()
        elif k % 2 == 1:
            sibling_slot[k] = sibling_slot[k - 1] = slot
        codes[k] = code
        used.add(code.tobytes())
        usage[np.arange(n_slot), code[:, 0], code[:, 1]] += 1
    return ClassTable(codes=codes, sibling_slot=sibling_slot)


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
    discs = [(*_HEAD,), (*SLOT_CENTRES[0], SLOT_RADIUS), (*SLOT_CENTRES[2], SLOT_RADIUS)]
    discs += [(u, v, 0.0) for u, v in np.concatenate([_TAIL, _BEAK])]
    discs += [(u, v, _LEG_RADIUS) for x0, y0, x1, y1 in _LEGS for u, v in ((x0, y0), (x1, y1))]
    # Body ellipse: 32 boundary points; the chords fall inside by < a (1 - cos(pi / 32)).
    t = np.linspace(0, 2 * np.pi, 32, endpoint=False)
    slack = _BODY[2] * (1 - np.cos(np.pi / 32))
    discs += [(_BODY[0] + _BODY[2] * np.cos(a), _BODY[1] + _BODY[3] * np.sin(a), slack) for a in t]
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

    line_mid, line_half = u(0, 1, _MAX_LINES, 2), u(0.06, 0.2, _MAX_LINES)
    line_angle = u(0, np.pi, _MAX_LINES)
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
        "blob_active": rng.random((n, _MAX_BLOBS)) < u(0.3, 1.0)[:, None],
        "blob_centre": u(0, 1, _MAX_BLOBS, 2),
        "blob_axes": u(0.03, 0.18, _MAX_BLOBS, 2),
        "blob_angle": u(0, np.pi, _MAX_BLOBS),
        "blob_colour": clutter_colour(_MAX_BLOBS),
        "line_active": rng.random((n, _MAX_LINES)) < u(0.0, 0.8)[:, None],
        "line_ends": line_ends,
        "line_radius": u(0.004, 0.015, _MAX_LINES),
        "line_colour": clutter_colour(_MAX_LINES) * 0.7,
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
        "blob_active": np.zeros((k, _MAX_BLOBS), bool),
        "blob_centre": np.zeros((k, _MAX_BLOBS, 2), np.float32),
        "blob_axes": np.full((k, _MAX_BLOBS, 2), 0.1, np.float32),
        "blob_angle": np.zeros((k, _MAX_BLOBS), np.float32),
        "blob_colour": np.zeros((k, _MAX_BLOBS, 3), np.float32),
        "line_active": np.zeros((k, _MAX_LINES), bool),
        "line_ends": np.zeros((k, _MAX_LINES, 4), np.float32),
        "line_radius": np.full((k, _MAX_LINES), 0.01, np.float32),
        "line_colour": np.zeros((k, _MAX_LINES, 3), np.float32),
        "pattern": table.codes[..., 0],
        "part_colour": PALETTE[table.codes[..., 1]],
        "pattern_angle": np.full((k, len(SLOT_NAMES)), np.deg2rad(45.0), np.float32),
        "pattern_phase": np.zeros((k, len(SLOT_NAMES), 2), np.float32),
        "gain": ones, "noise": 0 * ones, "noise_seed": np.zeros(k, np.int64),
        "noise_offset": np.zeros((k, 2), np.int64),
    }


# ---------------------------------------------------------------------------
# Rendering: signed distance functions on coordinate grids
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


def _template_pieces() -> list[tuple[str, tuple, np.ndarray, float]]:
    """``(kind, shape args, bounding centre (u, v), bounding radius)`` in drawing order."""
    pieces: list[tuple[str, tuple, np.ndarray, float]] = []
    for x0, y0, x1, y1 in _LEGS:
        pieces.append(("leg", (x0, y0, x1, y1, _LEG_RADIUS), np.array([(x0 + x1) / 2, (y0 + y1) / 2]),
                       float(np.hypot(x1 - x0, y1 - y0)) / 2 + _LEG_RADIUS))
    for kind, poly in (("tail", _TAIL),):
        centre = poly.mean(0)
        pieces.append((kind, (poly,), centre, float(np.max(np.hypot(*(poly - centre).T)))))
    pieces.append(("body", _BODY, np.array(_BODY[:2]), max(_BODY[2:])))
    pieces.append(("wing", _WING, np.array(_WING[:2]), max(_WING[2:4])))
    pieces.append(("head", _HEAD, np.array(_HEAD[:2]), _HEAD[2]))
    centre = _BEAK.mean(0)
    pieces.append(("beak", (_BEAK,), centre, float(np.max(np.hypot(*(_BEAK - centre).T)))))
    pieces.append(("eye", _EYE, np.array(_EYE[:2]), _EYE[2]))
    return pieces


_PIECES = _template_pieces()


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
    for k in range(_MAX_BLOBS):
        centre, axes = p["blob_centre"][:, k], p["blob_axes"][:, k]
        half = axes.max(1)
        win = canvas.window(centre[:, 0], centre[:, 1], half, half)
        c, s_ = col(np.cos(p["blob_angle"][:, k])), col(np.sin(p["blob_angle"][:, k]))
        dx, dy = win.X - col(centre[:, 0]), win.Y - col(centre[:, 1])
        d = _ellipse_sdf(dx * c + dy * s_, dy * c - dx * s_, col(axes[:, 0]), col(axes[:, 1]))
        canvas.paint(win, _coverage(d, size) * col(p["blob_active"][:, k]), p["blob_colour"][:, k].T)
    for k in range(_MAX_LINES):
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
    colours = {"leg": np.broadcast_to(_LEG_COLOUR[:, None], (3, n)), "tail": body * 0.8, "body": body,
               "wing": body * 0.72, "head": body, "beak": np.broadcast_to(_BEAK_COLOUR[:, None], (3, n)),
               "eye": np.broadcast_to(_EYE_COLOUR[:, None], (3, n))}
    object_boxes = np.tile(_EMPTY_BOX, (n, 1))
    for kind, args, (u0, v0), radius in _PIECES:
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
    _check_image_size(image_size)
    table = make_class_table(num_classes, seed)
    images, _, _ = render_images(prototype_params(table), image_size)
    return images


def prototype_annotations(num_classes: int, image_size: int = 64, seed: int = 0
                          ) -> tuple[np.ndarray, np.ndarray]:
    """Object boxes (K, 4) and part boxes (K, S, 4) of :func:`class_prototypes`."""
    _check_image_size(image_size)
    table = make_class_table(num_classes, seed)
    _, object_boxes, part_boxes = render_images(prototype_params(table), image_size)
    return object_boxes, part_boxes


# ---------------------------------------------------------------------------
# Argument checks and cache
# ---------------------------------------------------------------------------
def _check_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FGVCError(f"SyntheticFGVC: {name} must be an integer, got {value!r}",
                        f"pass {name} as an int")
    return int(value)


def _check_num_classes(num_classes: Any) -> int:
    num_classes = _check_int("num_classes", num_classes)
    if num_classes < 2:
        raise FGVCError(f"SyntheticFGVC: num_classes={num_classes} is too small",
                        "use num_classes >= 2 (10 for a CPU smoke run)")
    if num_classes > MAX_CLASSES:
        raise FGVCError(f"SyntheticFGVC: num_classes={num_classes} exceeds the {MAX_CLASSES} "
                        f"distinct part combinations ({NUM_APPEARANCES} appearances ^ "
                        f"{len(SLOT_NAMES)} slots)",
                        f"use num_classes <= {MAX_CLASSES}")
    return num_classes


def _check_image_size(image_size: Any) -> int:
    image_size = _check_int("image_size", image_size)
    if image_size < 32:
        raise FGVCError(f"SyntheticFGVC: image_size={image_size} is too small to draw the parts",
                        "use image_size >= 32 (64 on a CPU, 448 on a GPU)")
    return image_size


def default_cache_root() -> Path:
    """``$FGVC_CACHE`` if set, else ``~/.cache/fgvc_lib``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "fgvc_lib"


def cache_key(**params: Any) -> str:
    """A short hash of every parameter that changes the generated data."""
    blob = json.dumps({"generator_version": GENERATOR_VERSION, **params}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _atomic_save(path: Path, writer: Callable[[Path], None]) -> None:
    """Write through ``writer(tmp)`` to a unique temp file beside ``path``, then rename it over."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------------------
# The dataset
# ---------------------------------------------------------------------------
class SyntheticFGVC(FGVCDataset):
    """Procedurally generated fine-grained birds; classes differ only in three small parts.

    Parameters
    ----------
    root:
        Cache folder; files go to ``root/synthetic/``. ``None``: ``$FGVC_CACHE``
        or ``~/.cache/fgvc_lib``.
    split:
        ``"train"`` or ``"test"`` (different seeds, disjoint images).
    transform, target_transform:
        Applied to the PIL RGB image and to the int target, torchvision style.
    num_classes:
        2 .. :data:`MAX_CLASSES`.
    per_class:
        Images per class in this split (the split is balanced).
    image_size:
        Side of the square images in pixels (>= 32).
    seed:
        Fixes the class table and, with the split, every image.
    download:
        Accepted for torchvision compatibility; nothing is downloaded.

    See the module docstring (or :func:`describe`) for how images are made.
    """

    def __init__(self, root: str | Path | None = None, split: str = "train",
                 transform: Callable | None = None, target_transform: Callable | None = None,
                 num_classes: int = 10, per_class: int = 40, image_size: int = 64,
                 seed: int = 0, download: bool = False) -> None:
        num_classes = _check_num_classes(num_classes)
        image_size = _check_image_size(image_size)
        per_class = _check_int("per_class", per_class)
        if per_class < 1:
            raise FGVCError(f"SyntheticFGVC: per_class={per_class} gives an empty split",
                            "use per_class >= 1 (e.g. 40 train / 20 test on a CPU)")
        seed = _check_int("seed", seed)
        super().__init__(default_cache_root() if root is None else root, split,
                         transform, target_transform)
        self.num_classes_requested = num_classes
        self.per_class = per_class
        self.image_size = image_size
        self.seed = seed
        self.table = make_class_table(num_classes, seed)
        self.classes = self.table.names
        self.part_names = list(SLOT_NAMES)

        key = cache_key(num_classes=num_classes, per_class=per_class, image_size=image_size,
                        seed=seed, split=split)
        stem = f"synthetic-{split}-{num_classes}c-{per_class}pc-{image_size}px-s{seed}-{key}"
        cache_dir = self.root / "synthetic"
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise FGVCError(f"SyntheticFGVC: cannot create cache folder {cache_dir} ({exc})",
                            f"pass root= a writable folder or set ${CACHE_ENV}") from exc
        self.images_path = cache_dir / f"{stem}.images.npy"
        self.meta_path = cache_dir / f"{stem}.meta.npz"
        loaded = self._load_cache()
        if loaded is None:
            loaded = self._generate()
        self.images, self._targets, self.object_boxes, self.part_boxes = loaded
        self.boxes = [tuple(float(x) for x in box) for box in self.object_boxes]

    # -- cache ------------------------------------------------------------
    def _expected_count(self) -> int:
        return self.num_classes_requested * self.per_class

    def _load_cache(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """The cached arrays, or ``None`` if missing, incomplete or corrupt (then regenerate)."""
        if not (self.images_path.is_file() and self.meta_path.is_file()):
            return None
        n, size = self._expected_count(), self.image_size
        try:
            images = np.load(self.images_path, mmap_mode="r")
            with np.load(self.meta_path) as meta:
                targets = meta["targets"]
                object_boxes, part_boxes = meta["object_boxes"], meta["part_boxes"]
        except (OSError, ValueError, KeyError, EOFError):
            return None
        if (images.shape != (n, size, size, 3) or images.dtype != np.uint8
                or targets.shape != (n,) or object_boxes.shape != (n, 4)
                or part_boxes.shape != (n, len(SLOT_NAMES), 4)):
            return None
        return images, targets, object_boxes, part_boxes

    def _generate(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        split_id = self.splits.index(self.split)
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0x5917, split_id]))
        targets = np.repeat(np.arange(self.num_classes_requested), self.per_class)
        targets = targets[rng.permutation(len(targets))]
        params = sample_params(self.table, targets, rng, self.image_size)
        n, size = len(targets), self.image_size
        boxes: dict[str, np.ndarray] = {}

        def write_images(tmp: Path) -> None:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(n, size, size, 3))
            _, boxes["object"], boxes["parts"] = render_images(params, size, out=out)
            out.flush()
            del out

        def write_meta(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, targets=targets, object_boxes=boxes["object"],
                         part_boxes=boxes["parts"], codes=self.table.codes)

        _atomic_save(self.images_path, write_images)
        _atomic_save(self.meta_path, write_meta)  # written last: marks the cache complete
        images = np.load(self.images_path, mmap_mode="r")
        return images, targets, boxes["object"], boxes["parts"]

    # -- dataset contract -------------------------------------------------
    @property
    def targets(self) -> list[int]:
        return [int(t) for t in self._targets]

    def __len__(self) -> int:
        return len(self._targets)

    def load_image(self, index: int) -> Image.Image:
        return Image.fromarray(np.array(self.images[index]))  # (H, W, 3) uint8 -> RGB

    def __getitem__(self, index: int):
        image = self.load_image(index)
        target = int(self._targets[index])
        if self.transform is not None:
            image = self.transform(image)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return image, target

    def annotation(self, index: int) -> dict[str, Any]:
        """Object box, the part boxes (all three slots) and their names, and ``(w, h)``.

        Boxes are ``(x0, y0, x1, y1)`` in pixels of the stored image, ``x1, y1``
        exclusive; every pixel the bird (or a part) touches lies inside.
        """
        part_boxes: list[Box] = [tuple(float(x) for x in box) for box in self.part_boxes[index]]
        return {"object_box": self.boxes[index], "part_boxes": part_boxes,
                "part_names": list(SLOT_NAMES), "size": (self.image_size, self.image_size)}

    # -- class structure --------------------------------------------------
    def sibling_part(self, class_index: int) -> str | None:
        """The one slot separating ``class_index`` from its sibling class (``None`` if unpaired)."""
        slot = int(self.table.sibling_slot[class_index])
        return None if slot < 0 else SLOT_NAMES[slot]

    @property
    def sibling_pairs(self) -> list[tuple[int, int, str]]:
        """``(class_a, class_b, slot)`` for every pair of classes differing in one part only."""
        return [(k, k + 1, SLOT_NAMES[int(self.table.sibling_slot[k])])
                for k in range(0, len(self.classes) - 1, 2) if self.table.sibling_slot[k] >= 0]

    def prototypes(self) -> np.ndarray:
        """:func:`class_prototypes` for this dataset's classes and resolution."""
        return class_prototypes(len(self.classes), self.image_size, self.seed)

    def __repr__(self) -> str:
        return (f"SyntheticFGVC(split={self.split!r}, n={len(self)}, classes={len(self.classes)}, "
                f"image_size={self.image_size}, seed={self.seed}, cache={str(self.images_path)!r})")


def describe(num_classes: int = 10, seed: int = 0) -> str:
    """A reader-facing description of the generator and of the first classes' codes."""
    table = make_class_table(num_classes, seed)
    lines = [
        "Synthetic fine-grained birds (fgvc_lib.data.synthetic).",
        "All classes share one bird template (body, head, beak, tail, wing, legs).",
        f"Three small part slots ({', '.join(SLOT_NAMES)}), each a disc 15% of the bird's length,",
        (f"carry the class: a colour ({', '.join(COLOUR_NAMES)}) and a pattern "
         f"({', '.join(PATTERN_NAMES)}) per slot; {MAX_CLASSES} combinations in all."),
        f"Per image, independent of the class: left/right flip, rotation +-{MAX_ROTATION_DEG:g} deg,",
        "scale, position, muted body colour, gradient background with clutter, part-colour jitter, noise.",
        "Classes 2k and 2k+1 are siblings that differ in one slot only (k mod 3).",
        "",
        f"Classes (seed={seed}):",
    ]
    for k, name in enumerate(table.names):
        slot = int(table.sibling_slot[k])
        note = f"  (sibling {k ^ 1}: differs at {SLOT_NAMES[slot]})" if slot >= 0 else ""
        lines.append(f"  {k:3d}  {name}{note}")
    return "\n".join(lines)
