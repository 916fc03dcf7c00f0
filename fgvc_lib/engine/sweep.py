"""A small recorded sweep of training settings, selected on the validation split only.

``sweep(cfg, {"backbone_lr_mult": [0.1, 1.0], "weight_decay": [5e-4, 5e-5]}, out)``
trains (or loads) one run per combination under ``out/<name>=<value>,.../`` and
:func:`select_on_validation` keeps the combination whose best validation top-1
is highest. The test metrics are in each record, but nothing here reads them:
a recipe chosen on the test set would flatter every number the book shows.
"""
from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from fgvc_lib.config import TrainConfig
from fgvc_lib.errors import FGVCError


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, in the grid's order."""
    if not grid or any(len(v) == 0 for v in grid.values()):
        raise FGVCError("a sweep needs at least one value per setting",
                        "pass e.g. --grid backbone_lr_mult=0.1,1.0")
    names = list(grid)
    return [dict(zip(names, values)) for values in itertools.product(*grid.values())]


def point_name(point: Mapping[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in point.items())


def sweep(cfg: TrainConfig, grid: Mapping[str, Sequence[Any]], out_root: str | Path,
          device: str | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Train or load one run per grid point; returns their records (with ``"sweep_point"``)."""
    from fgvc_lib.engine.trainer import train_or_load

    known = set(TrainConfig.__dataclass_fields__)
    unknown = sorted(set(grid) - known)
    if unknown:
        raise FGVCError(f"sweep over unknown settings {unknown}",
                        "sweep TrainConfig settings, e.g. lr, backbone_lr_mult, weight_decay")
    records = []
    for point in grid_points(grid):
        point_cfg = replace(cfg, **point)
        point_cfg.validate()
        if progress:
            print(f"[sweep] {point_name(point)}", flush=True)
        record = dict(train_or_load(point_cfg, Path(out_root) / point_name(point), device=device,
                                    progress=progress))
        record["sweep_point"] = dict(point)
        records.append(record)
    return records


def validation_score(record: Mapping[str, Any]) -> float:
    """The best validation top-1 a run reached (the epoch its ``best.pt`` holds)."""
    best = record.get("best", {})
    if best.get("epoch", -1) < 0 or "val_top1" not in best:
        raise FGVCError(f"run {record.get('path', '?')} has no validation score",
                        "sweep with val_fraction > 0, so every run is selected on validation")
    return float(best["val_top1"])


def select_on_validation(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """The record with the highest :func:`validation_score` (the first of equals)."""
    if not records:
        raise FGVCError("no sweep runs to select from", "run the sweep first")
    return max(records, key=validation_score)
