"""The class table of the synthetic birds: which part appearance makes which class.

A class is one *appearance* (a colour of :data:`PALETTE` and a pattern of
:data:`PATTERN_NAMES`) per part slot (:data:`SLOT_NAMES`). The table lives
apart from the renderer because it is all a reader (or :func:`describe`)
needs to know about the classes, and because it fixes the dataset's
labels: it depends only on ``seed`` and is prefix-stable, the first 10
classes are the same with ``num_classes=10`` and ``num_classes=50``.

The argument checks shared by the whole package (:func:`check_int`,
:func:`check_num_classes`) are here too, the class count's limit being a
property of the table (:data:`MAX_CLASSES`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fgvc_lib.errors import FGVCError

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
    check_num_classes(num_classes)
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
# Argument checks (shared by the package)
# ---------------------------------------------------------------------------
def check_int(name: str, value: Any) -> int:
    """``value`` as an int; bools and floats are refused (``64.0`` px is a typo, not a size)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise FGVCError(f"SyntheticFGVC: {name} must be an integer, got {value!r}",
                        f"pass {name} as an int")
    return int(value)


def check_num_classes(num_classes: Any) -> int:
    """``num_classes`` as an int in 2 .. :data:`MAX_CLASSES` (the distinct part combinations)."""
    num_classes = check_int("num_classes", num_classes)
    if num_classes < 2:
        raise FGVCError(f"SyntheticFGVC: num_classes={num_classes} is too small",
                        "use num_classes >= 2 (10 for a CPU smoke run)")
    if num_classes > MAX_CLASSES:
        raise FGVCError(f"SyntheticFGVC: num_classes={num_classes} exceeds the {MAX_CLASSES} "
                        f"distinct part combinations ({NUM_APPEARANCES} appearances ^ "
                        f"{len(SLOT_NAMES)} slots)",
                        f"use num_classes <= {MAX_CLASSES}")
    return num_classes
