"""Figures and small tables for the CMAL-Net chapter (Liu et al., Pattern Recognition 2023).

* :func:`regions_at_threshold` -- the attention boxes of Eqs. (5)-(7) for a
  threshold ``t`` other than the model's, from CAMs already computed (the
  chapter's widget moves ``t`` without running the network again).
* :func:`show_attention_regions` -- Fig. 5: each input with the boxes of
  ``A_1 .. A_N`` and ``A_oval`` drawn on it, and the crops beside it.
* :func:`attention_vs_paper` -- Tables 5-6: the paper's ACE / ACR rows with
  our row from :func:`fgvc_lib.attention.report.attention_report` beneath.
* :func:`inference_cost_table` -- Table 9's CMAL-Net rows beside a benchmark
  record of ``benchmarks/bench_model.py``.

Implementation notes
--------------------
* :func:`regions_at_threshold` sets the model's ``t`` for one call of
  :meth:`~fgvc_lib.methods.cmal.model.CMALNet.attention_regions` and restores it,
  so the boxes come from the model's own code path (same normalisation,
  padding and empty-mask rule), not from a copy of it.
* Table 9 times one image on the authors' GPU. The benchmark measures the
  whole ``RAW + A_oval`` forward at batch 1 and both variants per image at
  batch 16; the ``RAW`` forward at batch 1 is not measured and shows as
  missing, not as an estimate.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from fgvc_lib.errors import FGVCError
from fgvc_lib.reports.speed import bench_device, bench_measures
from fgvc_lib.reports.diagrams import draw_arrow, draw_box

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
    """Eqs. (5)-(7) with threshold ``t``: the class:`~fgvc_lib.methods.cmal.model.AttentionRegions`
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


def inference_cost_table(bench: Mapping[str, Any], baseline_params_m: float | None = None,
                         table_id: str = "cmal.table9"):
    """Table 9's ResNet-50 and CMAL-Net rows (paper) beside a CMAL-Net benchmark record.

    ``baseline_params_m`` fills our parameter count of the original network
    (the record does not measure it). Missing measurements stay NaN.
    """
    import pandas as pd

    from fgvc_lib.reports import get_table

    m = bench_measures(bench, ("params_m", "macs_g", "macs_g_raw", "infer_bs1_ms",
                                "infer_ms_per_img", "infer_raw_img_s"))
    cfg = bench.get("config", {})
    if cfg.get("method") not in (None, "cmal"):
        raise FGVCError(f"the benchmark record is of {cfg.get('method')!r}, not CMAL-Net",
                        "pass results/gpu/bench/cmal_*.json")
    table = get_table(table_id)
    paper = {row.label: row.paper for row in table.rows}
    missing = [label for label in TABLE9_ROWS.values() if label not in paper]
    if missing:
        raise FGVCError(f"{table_id} lacks the rows {missing}", "check fgvc_lib/methods/cmal/tables.json")
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
        f"Ours: {bench_device(bench)}, {cfg.get('backbone', '?')}, "
        f"{cfg.get('image_size', '?')} px, "
        f"K = {cfg.get('num_classes', '?')} classes, {precision}{layout}, {mode} "
        f"(benchmarks/bench_model.py); a missing value was not measured.")
    return df


__all__ = [
    "ATTENTION_COLUMNS", "TABLE9_ROWS", "attention_vs_paper", "inference_cost_table",
    "regions_at_threshold", "show_attention_regions",
]


# ---------------------------------------------------------------- the method, drawn



def method_diagram(num_experts: int = 3) -> Figure:
    """CMAL-Net as a diagram: a five-stage backbone, experts on stages 3-5 (head of
    Eqs. (1)-(3), classifier p_n, CAM -> box -> crop A_n), the concatenation p_oval,
    and the N+2 optimiser steps of Algorithm 1 (the order in which the parts learn).
    Drawn with matplotlib patches only; fonts >= 9 pt at a 7-inch width."""
    if num_experts != 3:
        raise FGVCError("method_diagram draws the paper's three experts", "use num_experts=3")
    fig = Figure(figsize=(7.2, 4.6))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 14.4)
    ax.set_ylim(0, 9.2)
    ax.axis("off")
    stage_colors = ["#dfe7f2"] * 2 + ["#c6dbef", "#9ecae1", "#6baed6"]
    expert_colors = ["#fdd0a2", "#fdae6b", "#fd8d3c"]
    # input and the five stages
    draw_box(ax, (0.2, 7.2), 1.4, 1.2, "input\nimage", "#eeeeee")
    xs = [2.0 + 1.75 * i for i in range(5)]
    for i, x in enumerate(xs):
        draw_box(ax, (x, 7.2), 1.5, 1.2, f"stage {i + 1}", stage_colors[i])
        draw_arrow(ax, ((xs[i - 1] + 1.5) if i else 1.6, 7.8), (x, 7.8))
    # experts on stages 3, 4, 5
    heads_y, clf_y, cam_y = 5.4, 3.85, 2.3
    for n in range(3):
        x = xs[2 + n]
        draw_arrow(ax, (x + 0.75, 7.2), (x + 0.75, heads_y + 1.1))
        draw_box(ax, (x, heads_y), 1.5, 1.1, f"$F_{n + 1}$\nconv, BN,\nELU, GMP", expert_colors[n],
             fontsize=9)
        draw_arrow(ax, (x + 1.0, heads_y), (x + 1.0, clf_y + 0.9))
        draw_box(ax, (x + 0.55, clf_y), 0.9, 0.9, f"$p_{n + 1}$", expert_colors[n])
        draw_arrow(ax, (x + 0.3, heads_y), (x + 0.3, cam_y + 0.9), ls="--", color="tab:red")
        draw_box(ax, (x, cam_y), 1.5, 0.9, f"CAM, box\n$\\mathcal{{A}}_{n + 1}$", "#fee0d2",
             fontsize=9)
    # concatenation
    draw_box(ax, (xs[4] + 1.9, clf_y), 1.6, 0.9, "$p_{oval}$", "#fdbe85")
    draw_arrow(ax, (xs[4] + 1.5, heads_y + 0.55), (xs[4] + 2.7, clf_y + 0.9), rad=-0.2)
    ax.text(xs[4] + 2.7, heads_y + 0.75, "concat\n$v_1, v_2, v_3$", ha="center", fontsize=9)
    draw_box(ax, (xs[4] + 1.9, cam_y), 1.6, 0.9, "mean map\n$\\mathcal{A}_{oval}$", "#fcbba1", fontsize=9)
    draw_arrow(ax, (xs[4] + 1.5, cam_y + 0.45), (xs[4] + 1.9, cam_y + 0.45), color="tab:red")
    # crops go back to the input
    ax.annotate("", xy=(0.9, 7.2), xytext=(xs[2], cam_y + 0.45),
                arrowprops=dict(arrowstyle="-|>", color="tab:red", linestyle="--",
                                connectionstyle="angle,angleA=180,angleB=-90,rad=8", lw=1.2))
    ax.text(1.05, 3.9, "crops, resized:\ninputs of the\nother experts\n(MDA)", fontsize=9,
            color="tab:red", ha="left")
    # the steps
    steps = ("Each batch makes $N+2 = 5$ optimiser steps.  1: $p_3$ on the raw image (its forward gives "
             "every CAM).\n2: $p_2$ on one of raw, $\\mathcal{A}_1$, $\\mathcal{A}_3$.   "
             "3: $p_1$ on one of raw, $\\mathcal{A}_2$, $\\mathcal{A}_3$.\n"
             "4: $p_1, p_2, p_3$ and $p_{oval}$ on $\\mathcal{A}_{oval}$.   5: $p_{oval}$ on the raw image.")
    ax.text(0.2, 0.7, steps, fontsize=9, ha="left", va="center", linespacing=1.5)
    return fig


# ---------------------------------------------------------------- per-head breakdown

#: Columns of :func:`head_breakdown`: the scores of one CMAL-Net evaluation.
BREAKDOWN_HEADS = ("p1", "p2", "p3", "p_oval", "fusion")


def head_breakdown(records: Mapping[str, Any], probe: Any | None = None):
    """One row per run: input size, epochs, batch, optimiser steps (counted by
    :func:`fgvc_lib.reports.protocol.optimizer_steps`), the final prediction and every
    CMAL-Net head (``-`` where a run has no such head, e.g. a plain baseline). A linear
    probe record (frozen features) becomes the first row. Test top-1 in %."""
    import pandas as pd

    from fgvc_lib.reports.protocol import optimizer_steps
    from fgvc_lib.reports.records import as_record

    rows = {}
    if probe is not None:
        p = as_record(probe)
        rows["linear probe (frozen features)"] = {
            "px": str(p.config.image_size), "epochs": "-", "batch": "-", "steps": "-",
            "final": p.metric(), **{h: "-" for h in BREAKDOWN_HEADS}}
    for label, rec in records.items():
        r = as_record(rec)
        heads = r.head_metrics()
        rows[label] = {"px": str(r.config.image_size), "epochs": str(r.config.epochs),
                       "batch": str(r.config.batch_size), "steps": f"{int(optimizer_steps(r)):,}",
                       "final": r.metric(),
                       **{h: heads.get(h, "-") for h in BREAKDOWN_HEADS}}
    df = pd.DataFrame(rows).T
    return df.rename_axis("run (test top-1 %)")
