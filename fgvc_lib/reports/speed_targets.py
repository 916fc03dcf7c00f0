"""The project's training-speed targets, in one place (see benchmarks/README.md).

Measured on an H100 beside a plain ResNet-50 step timed in the same run.
"""
from __future__ import annotations

#: method -> (training img/s of the authors' released loop on an H100, required speed-up over it).
RELEASED_LOOP: dict[str, tuple[float, float]] = {
    "cmal": (54.0, 3.0),     # ResNet-50, 448 px, batch 16
    "cross_x": (176.0, 2.0),  # ResNet-50, 448 px, batch 32
}
#: Per backbone pass, every method reaches at least this share of a compiled plain ResNet-50.
PASS_RATIO_TARGET = 0.85
