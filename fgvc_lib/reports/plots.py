"""Learning curves of recorded runs: the one plotter of per-epoch history.

:func:`plot_curves` draws any history keys of one run or several: a loss and
an accuracy panel for one run (the default), chosen keys of several runs on
one axis (``overlay=True``), or named panels per run (``panels=``), e.g. the
validation top-1 of every head beside the training loss terms.

Like every figure of the library it returns a
:class:`matplotlib.figure.Figure` built without pyplot: nothing here selects
or changes the backend, and no figure is kept in pyplot's global list.

Implementation notes
--------------------
* Keys are ``/`` paths into each history entry (``"val/top1"``,
  ``"train/loss_1"``, ``"val_heads/L"``); a ``*`` matches any part
  (``"val_heads/*"``: every head), and the line of a matched key is labelled
  with what the ``*`` matched (``"L"``), in the order the run first records it.
* A key a run does not record is skipped for that run; a key no run records
  is an error naming the keys there are. Epochs without a value are gaps.
* A run whose status is not ``finished`` is drawn dashed and labelled with its
  status and the epochs it completed of those planned.
"""
from __future__ import annotations

import fnmatch
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fgvc_lib.errors import FGVCError

_ACCURACY_WORDS = ("acc", "top1", "top5", "mean_class")
_Y_LABELS = {"loss": "loss", "accuracy": "accuracy (%)", "other": "value"}
_GROUP_TITLES = {"loss": "losses", "accuracy": "accuracies", "other": "other values"}


def _flatten(entry: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    for key, value in entry.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flatten(value, name + "/"))
        elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


def _group(key: str) -> str:
    """``loss``, ``accuracy`` or ``other``: which panel a key goes to by default."""
    low = key.lower()
    if "loss" in low:
        return "loss"
    if key.startswith("val_heads/") or any(word in low for word in _ACCURACY_WORDS):
        return "accuracy"
    if key.startswith("train/"):
        return "loss"  # a training loss term (Cross-X's ce, c3s, cl)
    return "other"


def _runs(records: Any) -> list[tuple[str, Mapping[str, Any]]]:
    """``[(label, record)]`` from one record, a list of them or ``{label: record}``."""
    if isinstance(records, Mapping) and ("history" in records or "config" in records):
        records = [records]
    if isinstance(records, Mapping):
        items = list(records.items())
    else:
        items = []
        for i, rec in enumerate(records):
            path = rec.get("path") if isinstance(rec, Mapping) else None
            items.append((Path(path).name if path else f"run {i + 1}", rec))
    if not items:
        raise FGVCError("plot_curves got no runs",
                        "pass a run record, a list of them or {label: record}")
    for label, rec in items:
        if not isinstance(rec, Mapping) or not rec.get("history"):
            raise FGVCError(f"run {label!r} has no history",
                            "pass records of runs that trained at least one epoch")
    return items


def _match(pattern: str, available: Sequence[str]) -> list[tuple[str, str]]:
    """``[(key, line label)]`` of the keys ``pattern`` names among ``available``."""
    if "*" not in pattern:
        return [(pattern, pattern)] if pattern in available else []
    prefix = pattern.split("*", 1)[0]
    return [(k, k[len(prefix):]) for k in available if fnmatch.fnmatchcase(k, pattern)]


def _run_label(label: str, rec: Mapping[str, Any]) -> str:
    status = rec.get("status", "finished")
    if status == "finished":
        return label
    planned = (rec.get("config") or {}).get("epochs", "?")
    return f"{label} ({status}: {len(rec['history'])} of {planned} epochs)"


def plot_curves(records: Any, keys: Sequence[str] | None = None, *,
                panels: Mapping[str, Sequence[str]] | None = None, overlay: bool = False,
                title: str | None = None,
                cell_size: tuple[float, float] = (4.5, 3.2)) -> Figure:
    """Learning curves, epochs on the x axis.

    records: a run record (:class:`~fgvc_lib.reports.records.RunRecord` or a
        ``results.json`` dict), a list of them, or ``{label: record}``.
    keys: history keys to draw (see the module notes; ``*`` matches any part).
        Default: every loss and accuracy key a run records (the per-head values
        ``val_heads/*`` excepted), grouped into a loss and an accuracy panel.
    panels: ``{panel title: keys}`` instead of the grouping by kind, e.g.
        ``{"validation top-1 per head": ["val_heads/*"], "training loss terms": ["train/*"]}``.
    overlay: every run in the same panels, one line per run (and key); by
        default each run gets its own row of panels.
    title: the figure's title.
    """
    runs = _runs(records)
    flat = {label: [_flatten(e) for e in rec["history"]] for label, rec in runs}
    available = {label: list(dict.fromkeys(k for row in rows for k in row if k != "epoch"))
                 for label, rows in flat.items()}
    everywhere = sorted({k for keys_ in available.values() for k in keys_})
    if panels is None:
        if keys is None:
            keys = [k for k in everywhere
                    if _group(k) != "other" and not k.startswith("val_heads/")]
            if not keys:
                raise FGVCError("the runs record no loss or accuracy values",
                                f"pass keys= from: {', '.join(everywhere)}")
        grouped: dict[str, list[str]] = {}
        for key in keys:
            grouped.setdefault(_group(key), []).append(key)
        panel_keys = {_GROUP_TITLES[g]: grouped[g]
                      for g in ("loss", "accuracy", "other") if g in grouped}
        auto = True
    else:
        if keys is not None:
            raise FGVCError("plot_curves got both keys= and panels=",
                            "pass the keys inside panels={title: keys}")
        panel_keys = {t: list(k) for t, k in panels.items()}
        auto = False
    missing = [p for ks in panel_keys.values() for p in ks
               if not any(_match(p, available[label]) for label in available)]
    if missing:
        raise FGVCError(f"no run records {missing}", f"use some of: {', '.join(everywhere)}")

    n_rows = 1 if overlay else len(runs)
    fig = Figure(figsize=(cell_size[0] * len(panel_keys), cell_size[1] * n_rows),
                 layout="constrained")
    axes = fig.subplots(n_rows, len(panel_keys), squeeze=False)
    for r, (label, rec) in enumerate(runs):
        row = axes[0 if overlay else r]
        rows = flat[label]
        epochs = [int(e.get("epoch", i + 1)) for i, e in enumerate(rec["history"])]
        finished = rec.get("status", "finished") == "finished"
        run_label = _run_label(label, rec)
        for ax, (panel, patterns) in zip(row, panel_keys.items()):
            matched = [m for p in patterns for m in _match(p, available[label])]
            for key, key_label in matched:
                values = [v.get(key, math.nan) for v in rows]
                if all(math.isnan(v) for v in values):
                    continue
                if overlay:
                    line_label = run_label if len(patterns) == 1 and "*" not in patterns[0] \
                        else f"{run_label}: {key_label}"
                else:
                    line_label = key_label
                ax.plot(epochs, values, marker="o" if len(values) < 30 else None, markersize=3,
                        linestyle="-" if finished else "--", label=line_label)
            if not overlay and (not auto or len(runs) > 1):
                ax.set_title(f"{run_label}: {panel}", fontsize=9)
            elif overlay and not auto:
                ax.set_title(panel, fontsize=9)
    for col, patterns in enumerate(panel_keys.values()):
        groups = {_group(p) for p in patterns}
        ylabel = patterns[0] if len(patterns) == 1 and "*" not in patterns[0] else \
            _Y_LABELS[groups.pop()] if len(groups) == 1 else "value"
        for ax in axes[:, col]:
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            if ax.get_lines():
                ax.legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


__all__ = ["plot_curves"]
