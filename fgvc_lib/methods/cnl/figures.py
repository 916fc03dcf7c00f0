"""The CNL chapter's analysis and figure helpers.

* :func:`plot_cnl_diagram`: the method drawn as boxes and arrows.
* :func:`receptive_fields`: theoretical receptive field and stride of any backbone block
  (Fig. 1 as numbers), :func:`plot_receptive_fields` draws them on an image.
* :func:`attention_shapes`, :func:`memory_table`, :func:`plot_attention_shapes`: the
  attention-map sizes of NL and CNL at each layer (Fig. 2, Sec. 2.2's memory argument);
  :func:`paper_memory_example` recomputes the paper's "about 99.4%".
* :func:`training_memory`: bytes a training forward keeps for the backward pass (measured,
  on any device), and the CUDA peak where there is one.
* :func:`cost_table`: parameters and MACs of baseline, +5NL and +5CNL (Table 2's cost
  columns), counted on the meta device (no arithmetic is done).
* :func:`attention_rows`, :func:`plot_attention_rows`: Fig. 3, one query cell's attention
  over each response layer; :func:`part_mass_shares`: how much of that attention falls in
  each part box of the synthetic birds.
* :func:`table2_frame`, :func:`paper_table_frame`: the paper's tables beside ours.

Figures are built with :class:`matplotlib.figure.Figure` (never pyplot's global state), so a
notebook shows them by returning them and the library never touches the backend.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch, Rectangle

from fgvc_lib.methods.cnl.model import PLACEMENTS, placement

NOT_RUN = "not run"


# -- the diagram ------------------------------------------------------------------
def plot_cnl_diagram(num_responses: int = 5) -> Figure:
    """The cross-layer non-local module on a ResNet: five response taps in res3/res4, the
    query in res5, shared ``theta`` and ``z``, per-response ``phi_i``, ``g_i``.

    Drawn at the book's text width (7.2 in) in inch coordinates with 9 pt text, so nothing
    is shrunk on the page: one column per response (``phi_i``, ``g_i``, its attention ``f``
    and product), the shared ``theta`` in a column of its own on the right, the sum and
    the residual below."""
    width, height = 7.2, 6.0
    fig = Figure(figsize=(width, height))
    # One axes over the whole figure, one data unit per inch: positions below are inches and
    # the title is a text inside the canvas (a set_title above a full-figure axes is cut off).
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    size = 9
    query_c, resp_c, g_c = "#b2182b", "#2166ac", "#4d9221"

    def box(x: float, y: float, w: float, h: float, text: str, color: str) -> None:
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.03", fc=color,
                                    ec="0.25", lw=1))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=size)

    def arrow(p, q, color="0.2", style="-|>", lw=1.0, ls="-") -> None:
        ax.add_patch(FancyArrowPatch(p, q, arrowstyle=style, mutation_scale=9, color=color,
                                     lw=lw, linestyle=ls, shrinkA=1, shrinkB=1))

    ax.text(width / 2, height - 0.08, "Cross-layer non-local module (CNL) on a ResNet",
            fontsize=11, ha="center", va="top")
    # Backbone row (y 4.95-5.45): the stages, left to right.
    y_bb, h_bb = 4.95, 0.5
    stages = [("stem\n+res2", 0.08, 0.6), ("res3", 0.88, 1.6), ("res4", 2.68, 2.4),
              ("res5", 5.28, 1.82)]
    for name, x, w in stages:
        box(x, y_bb, w, h_bb, name, "#dde7f2")
    for (_, xa, wa), (_, xb, _) in zip(stages, stages[1:]):
        arrow((xa + wa + 0.04, y_bb + h_bb / 2), (xb - 0.04, y_bb + h_bb / 2))
    # Taps: 2 in res3, 3 in res4 (shallow to deep); the query at the end of res5.
    taps = [1.25, 2.1, 3.1, 3.9, 4.7][:num_responses]
    qx = 6.0
    ax.plot([qx], [y_bb], marker="v", color=query_c, ms=8)
    ax.text(qx + 0.16, y_bb - 0.12, r"query $X^q$", color=query_c, fontsize=size, va="top")
    # One column per response: phi_i and g_i, then f (phi_i meets theta), then the product.
    col_w, col_step, col_x0 = 1.04, 1.14, 0.08
    y_pg, h_pg = 3.55, 0.4          # phi_i, g_i
    y_bus = 3.27                    # theta's line to every f
    y_f, h_f, w_f = 2.5, 0.55, 0.8  # f: narrower than the column, g_i's line passes beside it
    y_p, h_p = 1.65, 0.55           # the product
    y_sum, h_sum = 0.9, 0.45
    sum_x, sum_w = 2.9, 1.0
    for i, x in enumerate(taps, start=1):
        ax.plot([x], [y_bb], marker="v", color=resp_c, ms=7)
        ax.text(x, y_bb - 0.1, rf"$X^{{r_{i}}}$", color=resp_c, fontsize=size, ha="center",
                va="top")
        bx = col_x0 + (i - 1) * col_step
        phi_x, g_x = bx + 0.235, bx + 0.805
        box(bx, y_pg, 0.47, h_pg, rf"$\phi_{i}$", "#fde0c5")
        box(bx + 0.57, y_pg, 0.47, h_pg, rf"$g_{i}$", "#d9f0d3")
        arrow((x, 4.6), (phi_x, y_pg + h_pg + 0.03), color=resp_c, lw=0.8)
        arrow((x, 4.6), (g_x, y_pg + h_pg + 0.03), color=resp_c, lw=0.8)
        box(bx, y_f, w_f, h_f, rf"$f$: $[H^qW^q,$" "\n" rf"$H^{{r_{i}}}W^{{r_{i}}}]$", "#f7f7f7")
        arrow((phi_x, y_pg - 0.03), (phi_x, y_f + h_f + 0.03), lw=0.8)
        # theta's dotted line enters f right of phi_i's arrow.
        arrow((bx + 0.6, y_bus), (bx + 0.6, y_f + h_f + 0.03), color=query_c, lw=0.7, ls=":")
        box(bx, y_p, col_w, h_p, rf"$\otimes\ g_{i} \to z$" "\n" rf"$\to$ BN$_{i}$", "#f7f7f7")
        arrow((bx + 0.4, y_f - 0.03), (bx + 0.4, y_p + h_p + 0.03), lw=0.8)
        # g_i skips f: straight down beside it into the product.
        arrow((bx + 0.95, y_pg - 0.03), (bx + 0.95, y_p + h_p + 0.03), color=g_c, lw=0.8,
              ls="--")
        arrow((bx + col_w / 2, y_p - 0.03), (sum_x + sum_w / 2, y_sum + h_sum + 0.03), lw=0.6,
              color="0.45")
    # theta, shared by all responses, in the column right of them; one dotted line carries
    # it to every f.
    th_x, th_w = 5.78, 0.64
    box(th_x, y_pg - 0.05, th_w, h_pg + 0.1, "$\\theta$\n(shared)", "#fde0c5")
    arrow((qx, y_bb - 0.05), (qx, y_pg + h_pg + 0.08), color=query_c)
    ax.plot([th_x + 0.1, th_x + 0.1, col_x0 + 0.6], [y_pg - 0.08, y_bus, y_bus], color=query_c,
            lw=0.7, ls=":")
    # The sum of the responses, the residual with the query, the rest of the network.
    box(sum_x, y_sum, sum_w, h_sum, r"$\sum_i Z^{r_i}$", "#fee8c8")
    out_x, out_w = 5.9, 1.2
    box(out_x, y_sum, out_w, h_sum, r"$X^q + \sum_i Z^{r_i}$", "#fddbc7")
    arrow((sum_x + sum_w + 0.04, y_sum + h_sum / 2), (out_x - 0.04, y_sum + h_sum / 2))
    # The residual: the query itself branches off right of theta and runs down the edge.
    y_branch = 4.42
    ax.plot([qx, 6.95], [y_branch, y_branch], color=query_c, lw=0.9)
    ax.plot([qx], [y_branch], marker="o", color=query_c, ms=3)
    arrow((6.95, y_branch), (6.95, y_sum + h_sum + 0.04), color=query_c, lw=0.9)
    box(5.62, 0.1, 1.48, 0.45, "rest of res5 (if any)\nGAP, FC", "#dde7f2")
    arrow((out_x + out_w / 2, y_sum - 0.04), (out_x + out_w / 2, 0.59))
    ax.text(0.12, 0.42, "NL (Eq. 1): one block per layer,\n"
            r"attention $[HW, HW]$ inside that layer" "\n"
            "CNL (Eq. 3): one module, the query\n"
            r"attends to every response, $[H^qW^q, H^rW^r]$", fontsize=size, va="center",
            bbox=dict(fc="white", ec="0.6"))
    return fig


# -- receptive fields -------------------------------------------------------------
_POOLS = (nn.MaxPool2d, nn.AvgPool2d)


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def receptive_fields(backbone, names: Sequence[str], image_size: int = 224) -> dict[str, dict]:
    """Theoretical receptive field (px) and stride of the output of each named block.

    ``backbone``: a :class:`~fgvc_lib.models.Backbone`; ``names``: modules inside its
    ``body`` (``"layer2.1"``, ``"bn2"``). The convolutions and poolings of the main path run
    in one forward (on the meta device, nothing is computed); each adds ``(k - 1) x
    dilation x jump`` to the field and multiplies the jump by its stride. Shortcut
    projections (``downsample``) are 1x1 and skipped: their stride is already counted on
    the main path. Returns ``name -> {"rf", "stride", "grid"}`` (``grid`` at
    ``image_size``).
    """
    body = backbone.body
    ops: list[tuple[int, int, int]] = []
    marks: dict[str, tuple[int, tuple]] = {}
    handles = []
    for name, module in body.named_modules():
        if isinstance(module, (nn.Conv2d, *_POOLS)) and "downsample" not in name:
            def record(m, _a, _o):
                k = _pair(m.kernel_size)[0]
                s = _pair(m.stride)[0]
                d = _pair(getattr(m, "dilation", 1))[0]
                ops.append((k, s, d))
            handles.append(module.register_forward_hook(record))
    for name in names:
        handles.append(body.get_submodule(name).register_forward_hook(
            lambda _m, _a, out, n=name: marks.__setitem__(n, (len(ops), tuple(out.shape[-2:])))))
    try:
        _meta_forward(backbone, image_size)
    finally:
        for h in handles:
            h.remove()
    out = {}
    for name in names:
        count, grid = marks[name]
        rf, jump = 1, 1
        for k, s, d in ops[:count]:
            rf += (k - 1) * d * jump
            jump *= s
        out[name] = {"rf": rf, "stride": jump, "grid": grid}
    return out


def _meta_forward(module: nn.Module, image_size: int) -> None:
    """One evaluation forward of a meta-device copy of ``module`` (shapes only)."""
    import copy

    on_meta = next(module.parameters()).is_meta
    meta = module if on_meta else copy.deepcopy(module).to("meta")
    was_training = meta.training
    meta.eval()
    try:
        with torch.no_grad():
            meta(torch.zeros(1, 3, image_size, image_size, device="meta"))
    finally:
        meta.train(was_training)


def plot_receptive_fields(image: Any, fields: Mapping[str, Mapping[str, Any]],
                          image_size: int, centre: tuple[float, float] | None = None,
                          labels: Mapping[str, str] | None = None) -> Figure:
    """Fig. 1 as computed: one square per layer, the theoretical receptive field of the
    unit at ``centre`` (default: the image centre), clipped to the image."""
    from matplotlib import colormaps

    img = image
    if isinstance(img, torch.Tensor):
        img = img.detach().cpu()
        img = (img.permute(1, 2, 0).numpy() if img.ndim == 3 else img.numpy())
        if img.dtype != np.uint8 and img.max() > 1.0:
            img = img / 255.0
    fig = Figure(figsize=(5.6, 4.6), layout="constrained")
    ax = fig.add_subplot()
    ax.imshow(img, extent=(0, image_size, image_size, 0))
    cx, cy = centre if centre is not None else (image_size / 2, image_size / 2)
    cmap = colormaps["viridis"]
    for i, (name, info) in enumerate(fields.items()):
        r = info["rf"]
        color = cmap(i / max(1, len(fields) - 1))
        ax.add_patch(Rectangle((cx - r / 2, cy - r / 2), r, r, fill=False, edgecolor=color,
                               linewidth=2))
        label = (labels or {}).get(name, name)
        ax.plot([], [], color=color, lw=2, label=f"{label}: {r} px (stride {info['stride']})")
    ax.set_xlim(0, image_size)
    ax.set_ylim(image_size, 0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("theoretical receptive field of the centre unit", fontsize=10)
    return fig


# -- attention shapes and memory ------------------------------------------------------
def attention_shapes(backbone, responses: Sequence[str], query: str,
                     image_sizes: Sequence[int] = (224, 448)) -> "Any":
    """Per layer and image size: the grid ``H x W``, NL's attention elements ``(HW)^2`` and
    CNL's ``H^qW^q x HW`` (the query at ``query``), and the share CNL saves."""
    import pandas as pd

    rows = []
    for size in image_sizes:
        grids = receptive_fields(backbone, [*responses, query], size)
        hq, wq = grids[query]["grid"]
        for name in responses:
            h, w = grids[name]["grid"]
            nl, cnl = (h * w) ** 2, (hq * wq) * (h * w)
            rows.append({"image": size, "layer": name, "grid": f"{h}x{w}",
                         "NL [HW, HW]": f"[{h * w}, {h * w}]",
                         "CNL [HqWq, HW]": f"[{hq * wq}, {h * w}]",
                         "NL elements": nl, "CNL elements": cnl,
                         "saving (%)": 100 * (1 - cnl / nl)})
    return pd.DataFrame(rows).set_index(["image", "layer"])


def memory_table(backbone, responses: Sequence[str], query: str,
                 image_sizes: Sequence[int] = (224, 448), batch: int = 1,
                 bytes_per_element: int = 4) -> "Any":
    """Sec. 2.2 in numbers: attention elements of five NL blocks against one CNL module
    (per image unless ``batch``), and the float32 megabytes they take, per image size."""
    import pandas as pd

    shapes = attention_shapes(backbone, responses, query, image_sizes)
    rows = {}
    for size in image_sizes:
        part = shapes.loc[size]
        nl, cnl = int(part["NL elements"].sum()), int(part["CNL elements"].sum())
        rows[f"{size} px"] = {"NL elements": nl * batch, "CNL elements": cnl * batch,
                              "NL MB": nl * batch * bytes_per_element / 2**20,
                              "CNL MB": cnl * batch * bytes_per_element / 2**20,
                              "saving (%)": 100 * (1 - cnl / nl)}
    return pd.DataFrame(rows).T


def paper_memory_example(first_layer: int = 112, query: int = 7) -> dict[str, float]:
    """Sec. 2.2's example: NL after ResNet-50's first layer (112 x 112 at 224 px) against CNL
    with the 7 x 7 query of the last layer. The saving is ``1 - 7^2 / 112^2``."""
    n_r, n_q = first_layer ** 2, query ** 2
    nl, cnl = n_r ** 2, n_q * n_r
    return {"NL elements": nl, "CNL elements": cnl, "CNL / NL": cnl / nl,
            "saving (%)": 100 * (1 - cnl / nl)}


def plot_attention_shapes(shapes, image_size: int) -> Figure:
    """Fig. 2 as numbers: attention elements of NL and CNL at each response layer (log
    scale), labelled with the matrix shapes."""
    part = shapes.loc[image_size]
    fig = Figure(figsize=(7.0, 3.4), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(part))
    ax.bar(x - 0.2, part["NL elements"], 0.4, label="NL: [HW, HW]", color="#3b528b")
    ax.bar(x + 0.2, part["CNL elements"], 0.4, label="CNL: [HqWq, HW]", color="#5ec962")
    for i, (nl_s, cnl_s) in enumerate(zip(part["NL [HW, HW]"], part["CNL [HqWq, HW]"])):
        ax.text(i - 0.2, part["NL elements"].iloc[i] * 1.15, nl_s, ha="center", fontsize=9,
                rotation=90, va="bottom")
        ax.text(i + 0.2, part["CNL elements"].iloc[i] * 1.15, cnl_s, ha="center", fontsize=9,
                rotation=90, va="bottom")
    ax.set_yscale("log")
    ax.set_ylim(top=part["NL elements"].max() * 60)
    ax.set_xticks(x, [f"{n}\n{g}" for n, g in zip(part.index, part["grid"])], fontsize=9)
    ax.set_ylabel("attention elements per image", fontsize=9)
    ax.legend(fontsize=9)
    ax.set_title(f"attention map sizes at {image_size} px", fontsize=10)
    return fig


def training_memory(model: nn.Module, images: torch.Tensor) -> dict[str, float]:
    """What one training forward keeps for the backward pass, measured.

    ``saved MB``: distinct tensor storages autograd saved (weights excluded), in MB; this
    is the activation memory of training and does not depend on the allocator.
    ``attention MB``: the attention matrices among them. ``peak MB`` (CUDA only):
    ``torch.cuda.max_memory_allocated`` over forward and backward. The model's mode is
    restored.
    """
    params = {p.data_ptr() for p in model.parameters()}
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        if t.device.type != "meta":
            storage = t.untyped_storage()
            ptr = storage.data_ptr()
            if ptr not in params:
                seen[ptr] = storage.nbytes()
        return t

    was_training = model.training
    model.train()
    cuda = images.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(images.device)
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(images)
        attention = sum(a.untyped_storage().nbytes() for a in out.extras.get("attention", {}).values())
        out.logits.float().logsumexp(1).sum().backward()
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    result = {"saved MB": sum(seen.values()) / 2**20, "attention MB": attention / 2**20}
    if cuda:
        torch.cuda.synchronize()
        result["peak MB"] = torch.cuda.max_memory_allocated(images.device) / 2**20
    return result


# -- cost -----------------------------------------------------------------------------
def _count_macs(model: nn.Module, image_size: int) -> dict[str, float]:
    from torch.utils.flop_counter import FlopCounterMode

    model = model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, 3, image_size, image_size, device="meta"))
    ops = counter.get_flop_counts().get("Global", {})
    total = sum(ops.values()) / 2
    matmul = sum(v for k, v in ops.items() if "bmm" in str(k)) / 2
    return {"total": total, "attention": matmul}


def cost_table(backbones: Sequence[str] = ("resnet50", "resnet101"), image_size: int = 448,
               num_classes: int = 200) -> "Any":
    """Parameters (M) and GMACs at ``image_size`` (one image) of the baseline, +5NL and
    +5CNL on each backbone. ``GMACs`` counts everything; ``GMACs without attention``
    leaves out the two batched matrix products of every block (``theta^T phi`` and the
    weighted sum of ``g``), which layer-based counters miss. Built and counted on the meta
    device: nothing is computed."""
    import pandas as pd

    from fgvc_lib.methods import build_model

    rows = []
    for bb in backbones:
        for label, method, opts in (("baseline", "baseline", {}), ("+5NL", "cnl", {"variant": "nl"}),
                                    ("+5CNL", "cnl", {"variant": "cnl"})):
            with torch.device("meta"):
                model = build_model(method, num_classes, backbone=bb, **opts)
            macs = _count_macs(model, image_size)
            rows.append({"backbone": bb, "model": label,
                         "params (M)": sum(p.numel() for p in model.parameters()) / 1e6,
                         f"GMACs @ {image_size}px": macs["total"] / 1e9,
                         "GMACs without attention": (macs["total"] - macs["attention"]) / 1e9})
    return pd.DataFrame(rows).set_index(["backbone", "model"])


# -- Fig. 3 and the part-mass measure ---------------------------------------------------
def attention_rows(output, query_cell) -> dict[str, torch.Tensor]:
    """From a CNL model's :class:`~fgvc_lib.models.ModelOutput`: the attention of a query
    cell over each response, ``name -> (B, h_r, w_r)`` (shallow to deep). ``query_cell``:
    one ``(row, col)`` of the query grid for every image, or a list with one per image."""
    hq, wq = output.extras["query_grid"]
    first = next(iter(output.extras["attention"].values()))
    cells = _cells(query_cell, first.shape[0])
    for r, c in cells:
        if not (0 <= r < hq and 0 <= c < wq):
            raise ValueError(f"query cell {(r, c)} outside the {hq}x{wq} query grid")
    index = torch.tensor([r * wq + c for r, c in cells])
    batch = torch.arange(len(cells))
    return {name: a[batch, index].reshape(len(cells), *output.extras["grids"][name])
            .detach().float().cpu() for name, a in output.extras["attention"].items()}


def _cells(query_cell, batch: int) -> list[tuple[int, int]]:
    if len(query_cell) == 2 and all(isinstance(v, (int, np.integer)) for v in query_cell):
        return [(int(query_cell[0]), int(query_cell[1]))] * batch
    cells = [(int(r), int(c)) for r, c in query_cell]
    if len(cells) != batch:
        raise ValueError(f"{len(cells)} query cells for {batch} images")
    return cells


def cell_of(point: Sequence[float], grid: tuple[int, int], image_size: int) -> tuple[int, int]:
    """The ``(row, col)`` of the ``grid`` cell that holds pixel ``(x, y)``."""
    h, w = grid
    x, y = float(point[0]), float(point[1])
    return (min(h - 1, max(0, int(y / (image_size / h)))),
            min(w - 1, max(0, int(x / (image_size / w)))))


def plot_attention_rows(images: torch.Tensor, rows: Mapping[str, torch.Tensor],
                        query_cell, query_grid: tuple[int, int],
                        labels: Mapping[str, str] | None = None, boxes: Any = None,
                        cmap: str = "magma") -> Figure:
    """Fig. 3: per image, the input with the query cell (red) and, per response layer
    (shallow to deep), that cell's attention row up-sampled over the image, with a colour
    bar per map. ``images``: ``(B, 3, S, S)`` uint8 or floats in [0, 1]; ``query_cell``:
    one ``(row, col)`` or one per image."""
    import torch.nn.functional as F

    imgs = images.detach().cpu().float()
    if imgs.max() > 1.0:
        imgs = imgs / 255.0
    b, _, s, _ = imgs.shape
    names = list(rows)
    fig = Figure(figsize=(2.15 * (len(names) + 1), 2.1 * b), layout="constrained")
    axes = fig.subplots(b, len(names) + 1, squeeze=False)
    hq, wq = query_grid
    cell_h, cell_w = s / hq, s / wq
    cells = _cells(query_cell, b)
    for i in range(b):
        picture = imgs[i].permute(1, 2, 0).numpy()
        ax = axes[i, 0]
        ax.imshow(picture)
        ax.add_patch(Rectangle((cells[i][1] * cell_w - 0.5, cells[i][0] * cell_h - 0.5),
                               cell_w, cell_h, fill=False, edgecolor="red", linewidth=2))
        if i == 0:
            ax.set_title("input, query cell", fontsize=9)
        for k, name in enumerate(names, start=1):
            row = rows[name][i][None, None]
            up = F.interpolate(row, size=(s, s), mode="nearest")[0, 0].numpy()
            ax = axes[i, k]
            ax.imshow(picture)
            # Each map on its own scale (min to max of the row): a row is a distribution
            # over that layer's positions, so deep layers have larger, flatter values.
            im = ax.imshow(up, cmap=cmap, alpha=0.75)
            if boxes is not None:
                for x0, y0, x1, y1 in np.asarray(boxes[i]).reshape(-1, 4):
                    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                           edgecolor="lime", linewidth=1))
            cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
            cb.ax.tick_params(labelsize=8)
            if i == 0:
                ax.set_title((labels or {}).get(name, name), fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def box_mass(row: np.ndarray, box: Sequence[float], image_size: int) -> float:
    """The attention mass of ``row`` (``(h, w)``, one weight per cell) inside ``box``
    (``x0, y0, x1, y1`` in pixels of a ``image_size`` square): each cell counts with the
    fraction of its area inside the box (what nearest up-sampling gives)."""
    h, w = row.shape
    x0, y0, x1, y1 = (float(v) for v in box)
    cw, ch = image_size / w, image_size / h
    ox = np.clip(np.minimum(x1, (np.arange(w) + 1) * cw) - np.maximum(x0, np.arange(w) * cw), 0, None) / cw
    oy = np.clip(np.minimum(y1, (np.arange(h) + 1) * ch) - np.maximum(y0, np.arange(h) * ch), 0, None) / ch
    return float((row * oy[:, None] * ox[None, :]).sum())


def part_mass_shares(model: nn.Module, dataset, image_size: int, normalize,
                     max_images: int | None = None, batch_size: int = 32,
                     part_names: Sequence[str] | None = None) -> "Any":
    """Per response layer and query part: the share (%) of the query's attention that falls
    in each part box, over a dataset with part boxes (the synthetic birds).

    For every image and part box, the query is the query-grid cell that holds the box's
    centre; its attention row over each response layer is split among the part boxes
    (:func:`box_mass`). The ``uniform`` column is what attention spread evenly over the
    image would put in the query's own box (its area share). A CNL model is needed
    (``variant="cnl"``); the mode of the model is restored.
    """
    import pandas as pd

    from fgvc_lib.attention.report import box_batches

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    sums: dict[tuple[str, int], np.ndarray] = {}
    uniform: dict[tuple[str, int], float] = {}
    counts: dict[tuple[str, int], int] = {}
    try:
        for batch in box_batches(dataset, image_size, batch_size=batch_size, max_images=max_images):
            if "part_boxes" not in batch:
                raise ValueError("part_mass_shares needs a dataset with part boxes")
            with torch.no_grad():
                out = model(normalize(batch["images"].to(device)))
            hq, wq = out.extras["query_grid"]
            parts = batch["part_boxes"].numpy()
            for name, a in out.extras["attention"].items():
                grid = out.extras["grids"][name]
                a = a.float().cpu().numpy()
                for i in range(a.shape[0]):
                    for p, box in enumerate(parts[i]):
                        if not np.all(np.isfinite(box)):
                            continue
                        r, c = cell_of(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2),
                                       (hq, wq), image_size)
                        row = a[i, r * wq + c].reshape(grid)
                        masses = np.array([box_mass(row, q, image_size) for q in parts[i]])
                        key = (name, p)
                        sums[key] = sums.get(key, 0) + masses
                        area = (box[2] - box[0]) * (box[3] - box[1]) / image_size ** 2
                        uniform[key] = uniform.get(key, 0.0) + area
                        counts[key] = counts.get(key, 0) + 1
    finally:
        model.train(was_training)
    n_parts = len(next(iter(sums.values()))) if sums else 0
    names = list(part_names) if part_names is not None else [f"part {k + 1}" for k in range(n_parts)]
    rows = []
    for (name, p), total in sums.items():
        n = counts[(name, p)]
        entry = {"response": name, "query in": names[p], "images": n}
        entry.update({f"in {names[k]}": 100 * total[k] / n for k in range(n_parts)})
        entry["uniform (own box)"] = 100 * uniform[(name, p)] / n
        rows.append(entry)
    return pd.DataFrame(rows).set_index(["response", "query in"])


def module_contribution(model: nn.Module, images: torch.Tensor) -> dict[str, float]:
    """How much the added blocks change the features they act on: for the CNL query (or
    each NL site), ``||output - input|| / ||input||`` over ``images`` (evaluation mode).
    0 for a fresh model (zero BN); the mode of the model is restored."""
    body = model.backbone.body
    sites = [model.query_block] if getattr(model, "variant", "cnl") == "cnl" else model.response_blocks
    labels = ["query"] if model.variant == "cnl" else [f"nl{i}" for i in range(1, len(sites) + 1)]
    raw, new, handles = {}, {}, []
    for label, name in zip(labels, sites):
        module = body.get_submodule(name)
        # prepend=True: runs before the model's own hook, so it sees the block's output.
        handles.append(module.register_forward_hook(
            lambda _m, _a, o, k=label: raw.__setitem__(k, o.detach().clone()), prepend=True))
        handles.append(module.register_forward_hook(
            lambda _m, _a, o, k=label: new.__setitem__(k, o.detach())))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(images)
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return {k: float((new[k] - raw[k]).norm() / raw[k].norm().clamp_min(1e-12)) for k in labels}


# -- the paper's tables beside ours --------------------------------------------------------
def _fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)):
        return f"{value:.{digits}f}"
    return str(value)


def table2_frame(table_id: str, records: Mapping[str, Any] | None = None,
                 cost: "Any" = None) -> "Any":
    """Table 2 (one backbone) with the paper's numbers as printed and ours beside them:
    top-1/top-5 from ``records`` (row label -> RunRecord; a missing row says "not run"),
    parameters and GMACs from ``cost`` (:func:`cost_table`) when given."""
    import pandas as pd

    from fgvc_lib.reports.tables import get_table

    table = get_table(table_id)
    backbone = table.rows[0].config.get("backbone")
    models = ["baseline", "+5NL", "+5CNL"]
    rows = []
    for row, model in zip(table.rows, models):
        rec = (records or {}).get(row.label)
        entry = {"": row.label}
        for col in ("top1", "top5"):
            entry[f"{col} (paper)"] = _fmt(row.paper[col])
            entry[f"{col} (ours)"] = (_fmt(rec.metric(name=col), 1) if rec is not None else NOT_RUN)
        entry["params x10^7 (paper)"] = _fmt(row.paper["#param (x10^7)"])
        entry["FLOPs, printed x10^9 (paper)"] = _fmt(row.paper["Flops (x10^9)"])
        if cost is not None and (backbone, model) in cost.index:
            c = cost.loc[(backbone, model)]
            entry["params x10^7 (ours)"] = _fmt(c["params (M)"] / 10)
            entry["GMACs (ours)"] = _fmt(c.iloc[1], 1)
            entry["GMACs w/o attention (ours)"] = _fmt(c["GMACs without attention"], 1)
        rows.append(entry)
    df = pd.DataFrame(rows).set_index("")
    df.attrs["caption"] = f"{table.caption}. Paper: CNL Table 2 (CUB-200-2011, 448 px)."
    return df


def paper_table_frame(table_id: str, records: Mapping[str, Any] | None = None) -> "Any":
    """Any of the paper's tables as printed; runnable rows get an ``ours`` column (top-1 of
    the record under the row's label, else "not run")."""
    import pandas as pd

    from fgvc_lib.reports.tables import get_table

    table = get_table(table_id)
    runnable = any(r.method for r in table.rows)
    rows = []
    for row in table.rows:
        entry = {"": row.label}
        for col in table.columns:
            v = row.paper.get(col)
            entry[col] = f"{v:,}" if isinstance(v, int) else _fmt(v, 1)
        if runnable:
            rec = (records or {}).get(row.label)
            entry["top1 (ours)"] = ("-" if not row.method else
                                    _fmt(rec.metric(), 1) if rec is not None else NOT_RUN)
        rows.append(entry)
    df = pd.DataFrame(rows).set_index("")
    df.attrs["caption"] = f"{table.caption}. Paper: CNL {table.source}."
    return df


def placement_table(backbones: Sequence[str] = tuple(PLACEMENTS)) -> "Any":
    """The default response blocks and query blocks of each backbone."""
    import pandas as pd

    from fgvc_lib.models.backbones import Backbone

    rows = {}
    for bb in backbones:
        with torch.device("meta"):
            backbone = Backbone(bb)
        responses, paper = placement(backbone, "paper")
        _, released = placement(backbone, "released")
        rows[bb] = {"responses / NL sites": ", ".join(responses), "query (paper)": paper,
                    "query (released)": released}
    return pd.DataFrame(rows).T


__all__ = ["NOT_RUN", "attention_rows", "attention_shapes", "box_mass", "cell_of", "cost_table",
           "memory_table", "module_contribution", "paper_memory_example", "paper_table_frame", "part_mass_shares",
           "placement_table", "plot_attention_rows", "plot_attention_shapes",
           "plot_cnl_diagram", "plot_receptive_fields", "receptive_fields", "table2_frame",
           "training_memory"]
