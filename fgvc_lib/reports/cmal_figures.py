"""Figures and small tables for the CMAL-Net chapter (Liu et al., Pattern Recognition 2023).

* :func:`regions_at_threshold` -- the attention boxes of Eqs. (5)-(7) for a
  threshold ``t`` other than the model's, from CAMs already computed (the
  chapter's widget moves ``t`` without running the network again).
* :func:`show_attention_regions` -- Fig. 5: each input with the boxes of
  ``A_1 .. A_N`` and ``A_oval`` drawn on it, and the crops beside it.
* :func:`plot_val_curves` -- validation accuracy per epoch of several runs on
  one axis, an unfinished run labelled with its status.
* :func:`training_budget` -- what two runs actually trained for (epochs,
  batch, optimiser steps, backbone passes), to say what is comparable.
* :func:`attention_vs_paper` -- Tables 5-6: the paper's ACE / ACR rows with
  our row from :func:`fgvc_lib.attention.report.attention_report` beneath.
* :func:`inference_cost_table` -- Table 9's CMAL-Net rows beside a benchmark
  record of ``benchmarks/bench_model.py``.
* :func:`throughput_check` -- the project's training-speed targets for
  CMAL-Net against a benchmark record.

Implementation notes
--------------------
* :func:`regions_at_threshold` sets the model's ``t`` for one call of
  :meth:`~fgvc_lib.models.cmal.CMALNet.attention_regions` and restores it,
  so the boxes come from the model's own code path (same normalisation,
  padding and empty-mask rule), not from a copy of it.
* Optimiser steps per epoch follow the trainer's loader: the last partial
  batch is dropped when the training split holds at least two batches
  (``fgvc_lib.data.loaders.build_loaders``), on one process.
* Table 9 times one image on the authors' GPU. The benchmark measures the
  whole ``RAW + A_oval`` forward at batch 1 and both variants per image at
  batch 16; the ``RAW`` forward at batch 1 is not measured and shows as
  missing, not as an estimate.
* The speed targets are those of ``benchmarks/README.md``: training at least
  three times the authors' released loop (54 images/s on an H100 at batch 16,
  448 px, ``/work/shared/notes/paper-vs-official-code.md``), and at least
  0.85 of a *compiled* plain ResNet-50 per backbone pass. A ratio measured
  against an eager reference is reported as such, never as meeting the
  second target.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import MaxNLocator

from fgvc_lib.errors import FGVCError
from fgvc_lib.reports.speed_targets import PASS_RATIO_TARGET, RELEASED_LOOP

#: Training images/s of the authors' released CMAL-Net loop (H100, batch 16, 448 px) and the
#: project's required speed-up over it; the per-pass target is shared by every method.
RELEASED_LOOP_TRAIN_IMG_S, TRAIN_SPEEDUP_TARGET = RELEASED_LOOP["cmal"]

#: Our attention map behind each column of Tables 5-6 (model, name in ``attention_report``).
ATTENTION_COLUMNS: dict[str, tuple[str, str]] = {
    "Omega_ori": ("baseline", "cam"),
    "Omega_1": ("cmal", "expert1"),
    "Omega_2": ("cmal", "expert2"),
    "Omega_3": ("cmal", "expert3"),
    "Omega_oval": ("cmal", "oval"),
}

#: Table 9 rows that a CMAL-Net benchmark record can fill.
TABLE9_ROWS = {
    "raw": "ResNet-50-based CMAL-Net (RAW)",
    "raw+oval": "ResNet-50-based CMAL-Net (RAW + A_oval)",
    "original": "Original ResNet-50",
}

_REGION_COLORS = ("tab:orange", "tab:green", "tab:blue", "tab:purple", "tab:red", "tab:cyan")


# ---------------------------------------------------------------- attention regions


def regions_at_threshold(model: torch.nn.Module, cams: Sequence[torch.Tensor],
                         image_size: Sequence[int] | int, t: float):
    """Eqs. (5)-(7) with threshold ``t``: the :class:`~fgvc_lib.models.cmal.AttentionRegions`
    of ``cams`` (the experts' raw CAMs, ``ModelOutput.attention["expert<n>"]``)."""
    if not hasattr(model, "attention_regions") or not hasattr(model, "t"):
        raise FGVCError(f"{type(model).__name__} has no CMAL-Net attention regions",
                        "pass a model built with build_model('cmal', ...)")
    if not 0.0 <= float(t) <= 1.0:
        raise FGVCError(f"threshold t must lie in [0, 1], got {t!r}", "use e.g. t=0.5 (Table 3)")
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    previous = model.t
    model.t = float(t)
    try:
        return model.attention_regions(list(cams), image_size)
    finally:
        model.t = previous


def _pixels(images: Any) -> np.ndarray:
    """``(B, 3, H, W)`` uint8 or float-in-[0, 1] tensor -> float ``(B, H, W, 3)`` in [0, 1]."""
    x = torch.as_tensor(images).detach().cpu()
    if x.ndim != 4 or x.shape[1] != 3:
        raise FGVCError(f"expected images (B, 3, H, W), got shape {tuple(x.shape)}",
                        "pass the uint8 batch of box_batches or crops of it")
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    else:
        x = x.float()
        if x.numel() and (x.min() < -1e-3 or x.max() > 1 + 1e-3):
            raise FGVCError(f"float images span [{x.min():.2f}, {x.max():.2f}], not [0, 1]",
                            "crop the uint8 (or [0, 1]) images, not the normalised ones")
    return x.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def show_attention_regions(images: Any, boxes: Mapping[str, Any], crops: Mapping[str, Any],
                           titles: Sequence[str] | None = None,
                           cell_size: float = 2.0) -> Figure:
    """Fig. 5: per row, the input with every box drawn (one colour per region),
    then the crop of each region, framed in its box's colour.

    images: ``(B, 3, H, W)`` uint8 or float in [0, 1]; boxes: name ->
    ``(B, 4)`` in input pixels (``x0, y0, x1, y1``); crops: name ->
    ``(B, 3, h, w)`` (a name without a box is drawn without frame).
    """
    pictures = _pixels(images)
    batch = len(pictures)
    crop_pixels = {name: _pixels(c) for name, c in crops.items()}
    box_arrays = {name: torch.as_tensor(b).detach().float().cpu().numpy().reshape(-1, 4)
                  for name, b in boxes.items()}
    for kind, stacks in (("crops", crop_pixels), ("boxes", box_arrays)):
        wrong = {name: len(s) for name, s in stacks.items() if len(s) != batch}
        if wrong:
            raise FGVCError(f"{kind} {wrong} do not have one entry per image ({batch} images)",
                            "pass one box and one crop per image for every region")
    if titles is not None and len(titles) != batch:
        raise FGVCError(f"got {len(titles)} row titles for {batch} images",
                        "pass one title per image")
    names = list(dict.fromkeys([*boxes, *crops]))
    colors = {name: _REGION_COLORS[i % len(_REGION_COLORS)] for i, name in enumerate(names)}
    columns = ["input + boxes", *crop_pixels]
    fig = Figure(figsize=(cell_size * len(columns), cell_size * batch), layout="constrained")
    axes = fig.subplots(batch, len(columns), squeeze=False)
    for row in range(batch):
        ax = axes[row, 0]
        ax.imshow(pictures[row])
        for name, arr in box_arrays.items():
            x0, y0, x1, y1 = arr[row]
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                   edgecolor=colors[name], linewidth=1.5, label=name))
        if titles is not None:
            ax.set_ylabel(titles[row], fontsize=8)
        for col, name in enumerate(crop_pixels, start=1):
            axes[row, col].imshow(crop_pixels[name][row])
            if name in box_arrays:
                for spine in axes[row, col].spines.values():
                    spine.set_edgecolor(colors[name])
                    spine.set_linewidth(2.5)
        for col, name in enumerate(columns):
            axes[row, col].set_xticks([])
            axes[row, col].set_yticks([])
            if row == 0:
                axes[row, col].set_title(name, fontsize=9)
    if box_arrays:
        axes[0, 0].legend(fontsize=6, loc="lower left", framealpha=0.6)
    return fig


# ---------------------------------------------------------------- runs


def _history_value(entry: Mapping[str, Any], key: str) -> float:
    value: Any = entry
    for part in key.split("/"):
        if not isinstance(value, Mapping) or part not in value:
            return float("nan")
        value = value[part]
    return float(value) if isinstance(value, (int, float)) else float("nan")


def plot_val_curves(records: Mapping[str, Mapping[str, Any]], key: str = "val/top1",
                    title: str | None = None,
                    cell_size: tuple[float, float] = (5.5, 3.4)) -> Figure:
    """One line per run: ``key`` (a ``/`` path into each history entry) per epoch.
    A run whose status is not ``finished`` is labelled with its status and the
    epochs it completed of those planned."""
    if not records:
        raise FGVCError("plot_val_curves got no runs", "pass {label: results.json record}")
    fig = Figure(figsize=cell_size, layout="constrained")
    ax = fig.subplots()
    for label, rec in records.items():
        history = rec.get("history") or []
        if not history:
            raise FGVCError(f"run {label!r} has no history", "pass records of runs that trained")
        epochs = [entry.get("epoch", i + 1) for i, entry in enumerate(history)]
        values = [_history_value(entry, key) for entry in history]
        if all(math.isnan(v) for v in values):
            raise FGVCError(f"run {label!r} records no {key!r}", "use e.g. key='val/top1'")
        status = rec.get("status", "finished")
        if status != "finished":
            planned = rec.get("config", {}).get("epochs", "?")
            label = f"{label} ({status}: {len(history)} of {planned} epochs)"
        ax.plot(epochs, values, marker="o", markersize=3,
                linestyle="-" if status == "finished" else "--", label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(key)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def _batches_per_epoch(train_size: int, batch_size: int) -> int:
    # The trainer drops the last partial batch when there are at least two (note 2).
    if train_size >= 2 * batch_size:
        return train_size // batch_size
    return math.ceil(train_size / batch_size)


def training_budget(records: Mapping[str, Mapping[str, Any]]):
    """One row per run: status, backbone, image size, epochs done / planned,
    batch size, optimiser steps per batch and in total, backbone passes with
    gradients per training image, last-epoch training speed and test top-1."""
    import pandas as pd

    rows = {}
    for label, rec in records.items():
        cfg = rec.get("config", {})
        history = rec.get("history") or []
        if not cfg or not history or "dataset" not in rec:
            raise FGVCError(f"run {label!r} lacks its config, history or dataset record",
                            "pass results.json records of runs that trained at least one epoch")
        steps_per_batch = float(history[-1].get("optimizer_steps_per_batch", 1.0))
        world = int(rec.get("world_size", 1))
        batches = _batches_per_epoch(int(rec["dataset"]["train_size"]) // world,
                                     int(cfg["batch_size"]) // world)
        test = rec.get("metrics", {}).get("test", {}).get("final", {}).get("top1")
        rows[label] = {
            "status": rec.get("status", "?"),
            "backbone": cfg.get("backbone"),
            "image size": cfg.get("image_size"),
            "epochs done": len(history),
            "epochs planned": cfg.get("epochs"),
            "batch size": cfg.get("batch_size"),
            "optimizer steps / batch": steps_per_batch,
            "optimizer steps": int(round(len(history) * batches * steps_per_batch)),
            "backbone passes / image": int(round(len(history) * steps_per_batch)),
            "train img/s (last epoch)": history[-1].get("train_images_per_s"),
            "test top-1 (final)": test,
        }
    return pd.DataFrame(rows).T.infer_objects()


# ---------------------------------------------------------------- Tables 5-6


def attention_vs_paper(table_id: str, metric: str,
                       reports: Mapping[str, Mapping[str, Mapping[str, float]]], label: str):
    """The paper's rows of Table 5 (``metric="ACE"``) or 6 (``"ACR"``) and one row
    of ours, ``label``, read from ``reports`` = ``{"baseline": attention_report(...),
    "cmal": attention_report(...)}`` through :data:`ATTENTION_COLUMNS`."""
    import pandas as pd

    from fgvc_lib.reports import get_table

    table = get_table(table_id)
    unknown = [c for c in table.columns if c not in ATTENTION_COLUMNS]
    if unknown:
        raise FGVCError(f"{table_id} has columns {unknown} with no attention map of ours",
                        f"use cmal.table5 or cmal.table6 (columns {list(ATTENTION_COLUMNS)})")
    rows = {f"{row.label} (paper)": {c: row.paper.get(c) for c in table.columns}
            for row in table.rows}
    ours = {}
    for column in table.columns:
        model, name = ATTENTION_COLUMNS[column]
        if model not in reports or name not in reports[model]:
            raise FGVCError(f"no {model!r} report with map {name!r} for column {column}",
                            f"run attention_report on the {model} with maps including {name!r}")
        if metric not in reports[model][name]:
            raise FGVCError(f"the {model} report of {name!r} has no {metric!r}",
                            f"use one of {sorted(reports[model][name])}")
        ours[column] = reports[model][name][metric]
    rows[label] = ours
    df = pd.DataFrame(rows).T.astype(float)
    df.attrs["caption"] = (f"{table.caption}, % ({table.paper} {table.source}: {table.dataset}, "
                           f"{table.backbone}). Ours: {label}.")
    return df


# ---------------------------------------------------------------- Table 9 and speed


def _bench_device(bench: Mapping[str, Any]) -> str:
    prov = bench.get("provenance", {})
    return prov.get("device", {}).get("name") or prov.get("device_name") or "unknown device"


def _bench_measures(bench: Mapping[str, Any], needed: Sequence[str]) -> Mapping[str, Any]:
    measures = bench.get("measures")
    if not isinstance(measures, Mapping):
        raise FGVCError("the benchmark record has no 'measures'",
                        "pass the JSON written by benchmarks/bench_model.py --json")
    missing = [k for k in needed if k not in measures]
    if missing:
        raise FGVCError(f"the benchmark record lacks {missing}",
                        "re-run benchmarks/bench_model.py with --mode both --reference")
    return measures


def inference_cost_table(bench: Mapping[str, Any], baseline_params_m: float | None = None,
                         table_id: str = "cmal.table9"):
    """Table 9's ResNet-50 and CMAL-Net rows (paper) beside a CMAL-Net benchmark record.

    ``baseline_params_m`` fills our parameter count of the original network
    (the record does not measure it). Missing measurements stay NaN.
    """
    import pandas as pd

    from fgvc_lib.reports import get_table

    m = _bench_measures(bench, ("params_m", "macs_g", "macs_g_raw", "infer_bs1_ms",
                                "infer_ms_per_img", "infer_raw_img_s"))
    cfg = bench.get("config", {})
    if cfg.get("method") not in (None, "cmal"):
        raise FGVCError(f"the benchmark record is of {cfg.get('method')!r}, not CMAL-Net",
                        "pass results/gpu/bench/cmal_*.json")
    table = get_table(table_id)
    paper = {row.label: row.paper for row in table.rows}
    missing = [label for label in TABLE9_ROWS.values() if label not in paper]
    if missing:
        raise FGVCError(f"{table_id} lacks the rows {missing}", "check fgvc_lib/reports/cmal.json")
    batch = cfg.get("batch_size", "?")
    nan = float("nan")
    ours = {
        TABLE9_ROWS["original"]: (baseline_params_m if baseline_params_m is not None else nan,
                                  nan, nan, nan),
        TABLE9_ROWS["raw"]: (m["params_m"], m["macs_g_raw"], nan, 1000.0 / m["infer_raw_img_s"]),
        TABLE9_ROWS["raw+oval"]: (m["params_m"], m["macs_g"], m["infer_bs1_ms"],
                                  m["infer_ms_per_img"]),
    }
    rows = {}
    for key in ("original", "raw", "raw+oval"):
        label = TABLE9_ROWS[key]
        params, macs, ms1, ms_batch = ours[label]
        rows[label] = {
            "params (M), paper": paper[label].get("Parameters (M)"),
            "params (M), ours": params,
            "MACs (G), paper": paper[label].get("MACs (G)"),
            "MACs (G), ours": macs,
            "ms / image, paper (batch 1)": paper[label].get("Inference time (ms)"),
            "ms / image, ours (batch 1)": ms1,
            f"ms / image, ours (batch {batch})": ms_batch,
        }
    df = pd.DataFrame(rows).T.astype(float)
    precision = "bf16 autocast" if cfg.get("amp") else "float32"
    layout = ", channels_last" if cfg.get("channels_last") else ""
    mode = "compiled" if cfg.get("compile") else "eager"
    df.attrs["caption"] = (
        f"{table.caption}. Paper: {table.paper} {table.source}, {table.notes.split(';')[0]}. "
        f"Ours: {_bench_device(bench)}, {cfg.get('backbone', '?')}, "
        f"{cfg.get('image_size', '?')} px, "
        f"K = {cfg.get('num_classes', '?')} classes, {precision}{layout}, {mode} "
        f"(benchmarks/bench_model.py); a missing value was not measured.")
    return df


def throughput_check(bench: Mapping[str, Any]):
    """The two CMAL-Net speed targets of ``benchmarks/README.md`` against a
    benchmark record: training images/s (>= 3 x the released loop) and the
    per-backbone-pass ratio to a compiled plain ResNet-50 (>= 0.85)."""
    import pandas as pd

    m = _bench_measures(bench, ("train_img_s", "reference_pass_ratio", "train_backbone_passes"))
    raw = bench.get("raw", {})
    compiled_reference = bool(raw.get("reference_compiled", False))
    speed = float(m["train_img_s"])
    ratio = float(m["reference_pass_ratio"])
    target_speed = TRAIN_SPEEDUP_TARGET * RELEASED_LOOP_TRAIN_IMG_S
    if ratio < PASS_RATIO_TARGET:
        ratio_met = "no"
    elif compiled_reference:
        ratio_met = "yes"
    else:
        ratio_met = "not shown (eager reference)"
    rows = {
        "training images/s": {
            "measured": speed,
            "target": f">= {target_speed:.0f} ({TRAIN_SPEEDUP_TARGET:g} x the released loop's "
                      f"{RELEASED_LOOP_TRAIN_IMG_S:g})",
            "measured / released loop": speed / RELEASED_LOOP_TRAIN_IMG_S,
            "met": "yes" if speed >= target_speed else "no",
        },
        "per-pass ratio to plain ResNet-50": {
            "measured": ratio,
            "target": f">= {PASS_RATIO_TARGET:g} vs a compiled ResNet-50 "
                      f"(measured vs {'a compiled' if compiled_reference else 'an eager'} one)",
            "measured / released loop": float("nan"),
            "met": ratio_met,
        },
    }
    df = pd.DataFrame(rows).T.infer_objects()
    cfg = bench.get("config", {})
    df.attrs["caption"] = (
        f"Training speed of CMAL-Net: {_bench_device(bench)}, {cfg.get('backbone', '?')}, "
        f"{cfg.get('image_size', '?')} px, batch {cfg.get('batch_size', '?')}, "
        f"{int(m['train_backbone_passes'])} backbone passes per batch; released loop measured on "
        f"an H100 at batch 16, 448 px.")
    return df


__all__ = [
    "ATTENTION_COLUMNS", "PASS_RATIO_TARGET", "RELEASED_LOOP_TRAIN_IMG_S", "TABLE9_ROWS",
    "TRAIN_SPEEDUP_TARGET", "attention_vs_paper", "inference_cost_table", "plot_val_curves",
    "regions_at_threshold", "show_attention_regions", "throughput_check", "training_budget",
]
