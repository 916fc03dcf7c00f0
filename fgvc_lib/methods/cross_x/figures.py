"""Measures and figures for the Cross-X chapter (Luo et al., ICCV 2019).

* :func:`similarity_matrices` -- the ``P x P`` matrix ``S`` of Eq. (3) per
  level (``L-1``, ``L``, ``G``), as the C3S loss of Eq. (4) sees it, over a
  dataset; :func:`plot_similarity` draws it before / after training.
* :func:`part_cams` -- a class activation map (CAM, the paper's ref. [43], used
  for its Fig. 5) per excitation and level.
* :func:`excitation_report` -- how much the ``P`` excitations of one level
  overlap (IoU of their thresholded maps, correlation of the raw maps) and,
  with part boxes (the synthetic data), which part slot each excitation's
  peak falls in, beside the chance level of a uniformly drawn cell
  (the quantitative side of Fig. 5).

Per-head tables and curves of recorded runs are
:func:`fgvc_lib.reports.records.runs_table` (``columns=("run", "heads")``) and
:func:`fgvc_lib.reports.plots.plot_curves` (``panels=``); the cost per
component is :func:`fgvc_lib.reports.cost.cost_breakdown` (``split=("merge",)``).

Implementation notes
--------------------
* ``S`` is computed with :func:`fgvc_lib.methods.cross_x.losses.c3s_similarity` on batches of
  ``batch_size`` images (the loss's own ``N``) and averaged over batches.
  ``batch_statistics=True`` runs a copy of the model in training mode, so the
  BatchNorm after Eq. (5) normalises with the batch's own statistics, as in a
  training step (the model passed in is left untouched); the default uses the
  running statistics (evaluation mode).
* Overlap: maps are up-sampled bilinearly to the input size and min-max
  normalised (as every attention map in the library), a pixel is "on" above
  ``t``; IoU = on in both / on in either. An image where neither map has an
  "on" pixel (constant maps) is left out of the mean. The correlation is
  Pearson's over the cells of the raw maps at their own resolution; a
  constant map gives none and is left out too. With ``P > 2`` both measures
  are averaged over all pairs ``p < q``.
* Pointing per part slot: the peak is the arg-max **cell** of the raw map at
  its own resolution (up-sampling a 2 x 2 map would turn each cell into a
  plateau whose first pixel sits at the image border). The cell is assigned
  to the part box it overlaps most; "none" when it overlaps no box. The
  chance row applies the same rule to every cell of the grid and averages,
  i.e. where a peak drawn uniformly over the cells would land.
* CAM per excitation: forward hooks on ``model.cam_layers()[level]`` (the OSME
  blocks and the merge) capture the concatenated part maps; each part's
  channel block is weighted by the same block of the level's classifier row.
  With GAP their spatial means add up to the head's logit minus its bias
  (a test checks it); with GMP on ``U^{L-1}`` the map is the same weighted
  sum, but the head pools by max.
"""
from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from matplotlib.figure import Figure

from fgvc_lib.errors import FGVCError
from fgvc_lib.reports.diagrams import draw_arrow, draw_box

#: The order of Fig. 5's columns: (b) stage L-1, (c) stage L, (d) merged maps.
LEVEL_ORDER = ("L-1", "L", "G")
NONE_SLOT = "none"


def _ordered_levels(names: Iterable[str]) -> list[str]:
    present = list(dict.fromkeys(names))
    return [lv for lv in LEVEL_ORDER if lv in present] + [lv for lv in present
                                                           if lv not in LEVEL_ORDER]


def _levels_and_parts(attention: Mapping[str, torch.Tensor]) -> dict[str, list[str]]:
    """``{"L": ["L/p1", "L/p2"], ...}`` from Cross-X attention keys ``<level>/p<k>``."""
    groups: dict[str, list[str]] = {}
    for name in attention:
        level, sep, part = name.rpartition("/")
        if not sep or not part.startswith("p"):
            continue
        groups.setdefault(level, []).append(name)
    if not groups:
        raise FGVCError(f"no per-excitation maps '<level>/p<k>' among {sorted(attention)}",
                        "pass a Cross-X model (build_model('cross_x', ...))")
    return {lv: groups[lv] for lv in _ordered_levels(groups)}


def _batches(dataset, image_size: int, batch_size: int, max_images: int | None):
    from fgvc_lib.attention.report import box_batches

    return box_batches(dataset, image_size, batch_size, max_images)


def _plain_batches(dataset, image_size: int, batch_size: int, max_images: int | None):
    """uint8 square inputs of any dataset (boxes not needed)."""
    from fgvc_lib.data.transforms import box_preserving_transform

    transform = box_preserving_transform(image_size)
    n = len(dataset) if max_images is None else min(len(dataset), max_images)
    for start in range(0, n, batch_size):
        yield torch.stack([transform(dataset.load_image(i))
                           for i in range(start, min(n, start + batch_size))])


def similarity_matrices(model: nn.Module, dataset, image_size: int, normalizer: nn.Module,
                        batch_size: int = 32, max_images: int | None = None,
                        batch_statistics: bool = False) -> dict[str, np.ndarray]:
    """``S`` of Eq. (3) per level, averaged over batches of ``batch_size`` images.

    Returns ``{level: (P, P) float array}`` in the order ``L-1``, ``L``,
    ``G``. ``batch_statistics``: see the module notes (BatchNorm in training
    mode on a copy of the model).
    """
    if batch_size < 2:
        raise FGVCError(f"batch_size={batch_size}: S compares images with each other",
                        "use batch_size >= 2 (the paper's N is 32)")
    net = copy.deepcopy(model).train() if batch_statistics else model
    was_training = model.training
    if not batch_statistics:
        model.eval()
    device = next(net.parameters()).device
    sums: dict[str, torch.Tensor] = {}
    count = 0
    try:
        for images in _plain_batches(dataset, image_size, batch_size, max_images):
            if len(images) < 2:
                continue  # a last batch of one image has no pair of different images
            with torch.no_grad():
                out = net(normalizer(images.to(device)))
            if "S" not in out.extras:
                raise FGVCError(f"{type(model).__name__} returns no extras['S']",
                                "pass a Cross-X model (build_model('cross_x', ...))")
            for level, s in out.extras["S"].items():
                sums[level] = sums.get(level, 0) + s.detach().float().cpu()
            count += 1
    finally:
        model.train(was_training)
    if count == 0:
        raise FGVCError("no batch of at least 2 images to compute S on",
                        "pass a dataset with at least 2 images")
    return {lv: (sums[lv] / count).numpy() for lv in _ordered_levels(sums)}


def plot_similarity(matrices: Mapping[str, Mapping[str, np.ndarray]],
                    cell_size: float = 2.4) -> Figure:
    """Heat maps of ``S``: one row per entry of ``matrices`` (e.g. "untrained",
    "trained"), one column per level; each panel is titled with its Eq. (4) value."""
    from fgvc_lib.methods.cross_x.losses import c3s_loss

    if not matrices:
        raise FGVCError("plot_similarity got no matrices",
                        "pass {label: similarity_matrices(...)}")
    levels = _ordered_levels(lv for per_level in matrices.values() for lv in per_level)
    fig = Figure(figsize=(cell_size * len(levels) + 0.8, cell_size * len(matrices)),
                 layout="constrained")
    axes = fig.subplots(len(matrices), len(levels), squeeze=False)
    image = None
    for row, (label, per_level) in enumerate(matrices.items()):
        for col, level in enumerate(levels):
            ax = axes[row, col]
            if level not in per_level:
                ax.axis("off")
                continue
            s = np.asarray(per_level[level], dtype=np.float32)
            p = s.shape[0]
            image = ax.imshow(s, cmap="RdBu_r", vmin=-1, vmax=1)
            for i in range(p):
                for j in range(p):
                    ax.text(j, i, f"{s[i, j]:.2f}", ha="center", va="center", fontsize=9,
                            color="white" if abs(s[i, j]) > 0.6 else "black")
            ticks = [f"p{k + 1}" for k in range(p)]
            ax.set_xticks(range(p), ticks)
            ax.set_yticks(range(p), ticks)
            loss = c3s_loss(torch.from_numpy(s)).item()
            ax.set_title(f"{label}, {level}: Eq. (4) = {loss:.2f}", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="S")
    return fig


def _pair_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU per image of two boolean ``(B, H, W)`` masks; NaN where both are empty."""
    inter = (a & b).flatten(1).sum(1).float()
    union = (a | b).flatten(1).sum(1).float()
    return torch.where(union > 0, inter / union.clamp_min(1), torch.full_like(union, float("nan")))


def _pair_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per image of two ``(B, h, w)`` maps; NaN for a constant map."""
    x = a.flatten(1).double()
    y = b.flatten(1).double()
    x = x - x.mean(1, keepdim=True)
    y = y - y.mean(1, keepdim=True)
    den = (x.pow(2).sum(1) * y.pow(2).sum(1)).sqrt()
    return torch.where(den > 1e-12, (x * y).sum(1) / den.clamp_min(1e-12),
                       torch.full_like(den, float("nan"))).float()


def peak_part_slots(maps: torch.Tensor, part_boxes: torch.Tensor,
                    image_size: int | tuple[int, int]) -> torch.Tensor:
    """For each map, the part slot its peak cell overlaps most, ``(B,)`` long; -1: none.

    ``maps``: raw ``(B, h, w)`` maps at their own resolution; ``part_boxes``:
    ``(B, S, 4)`` in input pixels (``x0, y0, x1, y1``, exclusive ends; NaN rows
    for absent parts); ``image_size``: the input's side or ``(H, W)``.
    """
    overlap = _cell_box_overlap(maps.shape[-2:], part_boxes, image_size)  # (B, h*w, S)
    peak = maps.flatten(1).argmax(1)
    at_peak = overlap[torch.arange(len(peak)), peak]  # (B, S)
    best = at_peak.argmax(1)
    return torch.where(at_peak.max(1).values > 0, best, torch.full_like(best, -1))


def _cell_box_overlap(grid: Sequence[int], part_boxes: torch.Tensor,
                      image_size: int | tuple[int, int]) -> torch.Tensor:
    """Area of every grid cell inside every part box, ``(B, h*w, S)``."""
    h, w = int(grid[0]), int(grid[1])
    height, width = (image_size, image_size) if isinstance(image_size, int) else image_size
    boxes = torch.nan_to_num(torch.as_tensor(part_boxes, dtype=torch.float32), nan=-1.0)
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise FGVCError(f"part boxes must be (B, S, 4), got {tuple(boxes.shape)}",
                        "pass one row of x0, y0, x1, y1 per part slot and image")
    ys = torch.arange(h, dtype=torch.float32) * (height / h)
    xs = torch.arange(w, dtype=torch.float32) * (width / w)
    cy0, cx0 = torch.meshgrid(ys, xs, indexing="ij")
    cells = torch.stack([cx0, cy0, cx0 + width / w, cy0 + height / h], -1).view(1, -1, 1, 4)
    b = boxes[:, None]  # (B, 1, S, 4)
    dx = (torch.minimum(cells[..., 2], b[..., 2]) - torch.maximum(cells[..., 0], b[..., 0]))
    dy = (torch.minimum(cells[..., 3], b[..., 3]) - torch.maximum(cells[..., 1], b[..., 1]))
    return dx.clamp_min(0) * dy.clamp_min(0)


def _slot_shares(slots: torch.Tensor, num_slots: int) -> np.ndarray:
    """Share (%) of images per slot, then "none" (slot -1)."""
    counts = torch.bincount(slots.clamp_min(-1) + 1, minlength=num_slots + 1).double()
    shares = 100 * counts / max(1, len(slots))
    return np.concatenate([shares[1:].numpy(), shares[:1].numpy()])


def chance_slot_shares(grid: Sequence[int], part_boxes: torch.Tensor,
                       image_size: int | tuple[int, int]) -> np.ndarray:
    """Chance level of :func:`peak_part_slots`: % of peaks per slot (then "none",
    last) for a peak cell drawn uniformly over an ``(h, w)`` grid, averaged over images."""
    overlap = _cell_box_overlap(grid, part_boxes, image_size)  # (B, n_cells, S)
    num_slots = overlap.shape[-1]
    hit = overlap.max(-1).values > 0
    slot = torch.where(hit, overlap.argmax(-1), torch.full_like(hit, -1, dtype=torch.long))
    onehot = torch.nn.functional.one_hot(slot + 1, num_slots + 1).double().mean(1).mean(0)
    shares = 100 * onehot
    return np.concatenate([shares[1:].numpy(), shares[:1].numpy()])


def part_cams(model: nn.Module, images: torch.Tensor,
              targets: torch.Tensor | None = None) -> tuple[Any, dict[str, torch.Tensor]]:
    """Class activation maps (CAM, the paper's ref. [43]) of every excitation.

    For level ``l`` and excitation ``p`` the map is ``sum_c w^l_{k,(p,c)} U^l_p[c]``:
    the part's channel block of ``U^l`` weighted by the same block of that
    level's classifier row for class ``k`` (the final prediction, or
    ``targets``). Returns ``(output, {"<level>/p<k>": (B, h, w) float32})`` at
    each map's own resolution; ``images`` must already be normalised. Runs
    one forward without gradients in the model's current mode.
    """
    from fgvc_lib.methods.cross_x.osme import split_parts

    classifiers = {"L": getattr(model, "fc_top", None), "L-1": getattr(model, "fc_mid", None),
                   "G": getattr(model, "fc_merged", None)}
    if classifiers["L"] is None or not hasattr(model, "cam_layers"):
        raise FGVCError(f"{type(model).__name__} has no Cross-X classifiers per level",
                        "pass a Cross-X model (build_model('cross_x', ...))")
    layers = model.cam_layers()
    captured: dict[str, torch.Tensor] = {}
    hooks = [layers[lv].register_forward_hook(
        lambda _m, _i, out, lv=lv: captured.__setitem__(lv, out.detach()))
        for lv, fc in classifiers.items() if fc is not None and lv in layers]
    try:
        with torch.no_grad():
            output = model(images)
    finally:
        for hook in hooks:
            hook.remove()
    classes = output.logits.argmax(1) if targets is None else torch.as_tensor(
        targets, device=output.logits.device).long()
    num_parts = int(getattr(model, "num_parts", 1))
    cams: dict[str, torch.Tensor] = {}
    for level in _ordered_levels(captured):
        parts = split_parts(captured[level].float(), num_parts)  # (B, P, C, h, w)
        weights = classifiers[level].weight.detach().float()[classes]
        weights = weights.view(len(classes), num_parts, -1)  # (B, P, C)
        maps = torch.einsum("bpchw,bpc->bphw", parts, weights).cpu()
        for k in range(num_parts):
            cams[f"{level}/p{k + 1}"] = maps[:, k]
    return output, cams


def excitation_report(model: nn.Module, dataset, image_size: int, normalizer: nn.Module,
                      kind: str = "mean", t: float = 0.5, batch_size: int = 32,
                      max_images: int | None = None, slot_names: Sequence[str] | None = None):
    """How the excitations of each level differ, over a dataset with boxes.

    ``kind``: ``"mean"`` scores the model's own maps (``ModelOutput.attention``,
    the channel mean of each ``U_p``); ``"cam"`` the class activation maps of
    :func:`part_cams` for the predicted class.

    Returns ``(overlap, pointing)``, two DataFrames:

    * ``overlap``: one row per level, columns ``"IoU (t=..)"`` and
      ``"correlation"`` (means over images and pairs of excitations);
    * ``pointing``: rows ``"<level>/p<k>"`` and ``"<level>/chance"``, columns
      the part slots and ``"none"``: % of images whose peak cell falls in each
      slot (empty if the dataset has no part boxes).
    """
    import pandas as pd

    from fgvc_lib.models.blocks.cam import minmax_normalize, upsample_maps

    if kind not in ("mean", "cam"):
        raise FGVCError(f"unknown excitation map kind {kind!r}",
                        "use kind='mean' (the model's own maps) or kind='cam'")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    ious: dict[str, list[torch.Tensor]] = {}
    corrs: dict[str, list[torch.Tensor]] = {}
    slots: dict[str, list[torch.Tensor]] = {}
    raw_shapes: dict[str, tuple[int, int]] = {}
    boxes: list[torch.Tensor] = []
    groups: dict[str, list[str]] = {}
    try:
        for batch in _batches(dataset, image_size, batch_size, max_images):
            x = normalizer(batch["images"].to(device))
            if kind == "cam":
                _, maps = part_cams(model, x)
            else:
                with torch.no_grad():
                    maps = model(x).attention
            groups = _levels_and_parts(maps)
            parts = batch.get("part_boxes")
            if parts is not None:
                boxes.append(parts)
            for level, names in groups.items():
                raw = {n: maps[n].detach().float().cpu() for n in names}
                masks = {n: minmax_normalize(upsample_maps(raw[n], image_size)) > t
                         for n in names}
                for i, a in enumerate(names):
                    for b in names[i + 1:]:
                        ious.setdefault(level, []).append(_pair_iou(masks[a], masks[b]))
                        corrs.setdefault(level, []).append(_pair_correlation(raw[a], raw[b]))
                    if parts is not None:
                        slots.setdefault(a, []).append(peak_part_slots(raw[a], parts, image_size))
                raw_shapes[level] = tuple(raw[names[0]].shape[-2:])
    finally:
        model.train(was_training)
    if not groups:
        raise FGVCError("the dataset gave no images", "pass a dataset with at least one image")
    overlap = pd.DataFrame({
        f"IoU (t={t:g})": {lv: 100 * float(np.nanmean(torch.cat(ious[lv]).numpy()))
                           for lv in groups if lv in ious},
        "correlation": {lv: float(np.nanmean(torch.cat(corrs[lv]).numpy()))
                        for lv in groups if lv in corrs},
    }).rename_axis("level")
    if not boxes:
        return overlap, pd.DataFrame()
    all_boxes = torch.cat(boxes)
    num_slots = all_boxes.shape[1]
    names = list(slot_names) if slot_names is not None else [f"slot {k + 1}"
                                                             for k in range(num_slots)]
    if len(names) != num_slots:
        raise FGVCError(f"{len(names)} slot names for {num_slots} part boxes",
                        "pass one name per part slot (e.g. dataset.part_names)")
    rows = {}
    for level, parts in groups.items():
        for name in parts:
            rows[name] = _slot_shares(torch.cat(slots[name]), num_slots)
        rows[f"{level}/chance"] = chance_slot_shares(raw_shapes[level], all_boxes, image_size)
    pointing = pd.DataFrame(rows, index=[*names, NONE_SLOT]).T.rename_axis("map (% of images)")
    return overlap, pointing


# ---------------------------------------------------------------- the method, drawn



def method_diagram():
    """Cross-X as a diagram: OSME (P = 2 gates) in the last block of stages L-1 and L,
    the merged maps U^G of Eq. (5), one classifier per level, C3S on each level's part
    features, the KL terms of CL from Pr^L to Pr^{L-1} and Pr^G, and Eq. (7)'s sum.
    Matplotlib patches only; fonts >= 9 pt at a 7-inch width."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, 4.4))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, 14.4)
    ax.set_ylim(0, 8.8)
    ax.axis("off")
    blue, red, orange, grey = "#c6dbef", "#fcbba1", "#fdd0a2", "#eeeeee"
    y0 = 7.2
    draw_box(ax, (0.2, y0), 1.3, 1.1, "input", grey)
    draw_box(ax, (1.9, y0), 1.9, 1.1, "stages\n1 .. L-2", "#e5e5e5")
    draw_box(ax, (4.2, y0), 2.2, 1.1, "stage L-1\n+ OSME", blue)
    draw_box(ax, (6.8, y0), 2.2, 1.1, "stage L\n+ OSME", red)
    for a, b in ((1.5, 1.9), (3.8, 4.2), (6.4, 6.8)):
        draw_arrow(ax, (a, y0 + 0.55), (b, y0 + 0.55))
    # OSME part maps
    draw_box(ax, (4.2, 5.2), 2.2, 0.9, "$U^{L-1}_1,\\ U^{L-1}_2$\nstride 16", blue, fontsize=9)
    draw_box(ax, (6.8, 5.2), 2.2, 0.9, "$U^{L}_1,\\ U^{L}_2$\nstride 32", red, fontsize=9)
    draw_arrow(ax, (5.3, y0), (5.3, 6.1))
    draw_arrow(ax, (7.9, y0), (7.9, 6.1))
    ax.text(6.6, 6.45, "$m^p \\odot U$: one squeeze,\nP = 2 excitations", ha="center", fontsize=9)
    # merge, Eq. (5)
    draw_box(ax, (4.6, 2.9), 4.0, 1.3, "merge, Eq. (5): $K_1$ (1x1) on $U^L_p$,\nup-sample, add $U^{L-1}_p$,"
         "\n$K_2$ (3x3) on the sum, BN", orange, fontsize=9)
    draw_arrow(ax, (5.3, 5.2), (5.6, 4.2))
    draw_arrow(ax, (7.9, 5.2), (7.6, 4.2))
    draw_box(ax, (5.5, 1.1), 2.2, 1.0, "$U^{G}_1,\\ U^{G}_2$", orange, fontsize=9)
    draw_arrow(ax, (6.6, 2.9), (6.6, 2.1))
    # heads
    hx = 10.3
    for y, label, color in ((5.9, "$\\mathrm{Pr}^{L-1}$", blue), (4.0, "$\\mathrm{Pr}^{L}$", red),
                            (1.1, "$\\mathrm{Pr}^{G}$", orange)):
        draw_box(ax, (hx, y), 1.6, 0.9, label, color)
    draw_arrow(ax, (6.4, 5.95), (hx, 6.5), rad=-0.12)
    ax.text(9.6, 6.95, "GAP or GMP, fc", fontsize=9, ha="center")
    draw_arrow(ax, (9.0, 5.4), (hx, 4.6))
    ax.text(9.15, 5.5, "GAP, fc", fontsize=9)
    draw_arrow(ax, (7.7, 1.6), (hx, 1.55))
    ax.text(8.9, 1.75, "GAP, fc", fontsize=9, ha="center")
    # C3S on each level
    for x, y in ((4.25, 4.85), (8.05, 4.85), (5.55, 0.65)):
        ax.text(x, y, "C$^3$S on $S$, Eqs. (3)-(4)", fontsize=9, color="tab:green")
    # CL
    draw_arrow(ax, (hx + 1.3, 4.9), (hx + 1.3, 5.9), color="tab:purple", ls="--")
    draw_arrow(ax, (hx + 1.3, 4.0), (hx + 1.3, 2.0), color="tab:purple", ls="--")
    ax.text(hx + 1.45, 3.0, "CL: KL($\\mathrm{Pr}^L \\| \\cdot$)\nEq. (6)", fontsize=9,
            color="tab:purple")
    # Eq. (7)
    draw_box(ax, (12.9, 7.2), 1.4, 1.1, "Pr, sum\nEq. (7)", "#d9d9d9", fontsize=9)
    for y in (6.35, 4.45, 1.55):
        draw_arrow(ax, (hx + 1.6, y), (13.6, 7.2), rad=0.15)
    ax.text(0.2, 0.3, "Loss, Eq. (8): data term + $\\lambda$-weighted C$^3$S (Eq. 10) + CL (Eq. 11)",
            fontsize=9)
    return fig


# ---------------------------------------------------------------- Fig. 5, readable

def combined_maps(maps: Mapping[str, torch.Tensor], size: Sequence[int],
                  levels: Sequence[str] = ("L-1", "L", "G")) -> dict[str, torch.Tensor]:
    """Fig. 5 (e): for each excitation ``p``, the mean over the levels of its maps, each
    up-sampled bilinearly to ``size`` and min-max normalised first (so no level dominates
    by its scale). ``maps``: ``"<level>/p<k>" -> (B, h, w)``; returns ``"combined/p<k>"``."""
    parts = sorted({name.split("/")[1] for name in maps})
    out = {}
    for part in parts:
        stack = [_normalised(maps[f"{lv}/{part}"], size) for lv in levels if f"{lv}/{part}" in maps]
        if not stack:
            raise FGVCError(f"no maps for excitation {part}", "pass maps named '<level>/p<k>'")
        out[f"combined/{part}"] = _minmax(torch.stack(stack).mean(0))
    return out


def _minmax(m: torch.Tensor) -> torch.Tensor:
    flat = m.flatten(1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo).clamp_min(1e-12)).view_as(m)


def _normalised(m: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    import torch.nn.functional as F

    up = F.interpolate(m.detach().float().cpu()[:, None], size=tuple(int(s) for s in size),
                       mode="bilinear", align_corners=False)[:, 0]
    return _minmax(up)


def map_grid(images: torch.Tensor, maps: Mapping[str, torch.Tensor],
             layout: Sequence[Sequence[str]] | None = None, titles: Sequence[str] | None = None,
             boxes: torch.Tensor | None = None, cmap: str = "viridis", alpha: float = 0.55,
             cell: float = 1.7) -> Figure:
    """Fig. 5 at the text width: for each image one block of rows, the image in the first
    column of the block's first row and the maps of ``layout`` (rows of map names; default
    three per row) beside it, so a row holds at most 1 + 3 panels. Every map is min-max
    normalised and overlaid in a perceptual colormap; one shared colorbar; 9 pt titles.
    ``images``: ``(B, 3, H, W)`` uint8 or float in [0, 1]; ``boxes``: optional ``(B, P, 4)``
    part boxes in pixels."""
    from matplotlib.patches import Rectangle

    names = list(maps)
    if layout is None:
        layout = [names[k:k + 3] for k in range(0, len(names), 3)]
    missing = [n for row in layout for n in row if n not in maps]
    if missing:
        raise FGVCError(f"layout names maps that are not given: {missing}", f"use names from {names}")
    imgs = images.detach().cpu()
    imgs = imgs.float() / 255 if imgs.dtype == torch.uint8 else imgs.float()
    b, _, h, w = imgs.shape
    norm = {n: _normalised(maps[n], (h, w)) for row in layout for n in row}
    columns = 1 + max(len(row) for row in layout)
    fig = Figure(figsize=(columns * cell + 0.7, b * len(layout) * (cell + 0.25)),
                 layout="constrained")
    axes = fig.subplots(b * len(layout), columns, squeeze=False)
    artist = None
    for i in range(b):
        pixels = imgs[i].permute(1, 2, 0).numpy().clip(0, 1)
        for r, row in enumerate(layout):
            line = axes[i * len(layout) + r]
            for ax in line:
                ax.set_axis_off()
            panels = [(None, line[0])] if r == 0 else []
            panels += [(name, line[1 + k]) for k, name in enumerate(row)]
            for name, ax in panels:
                ax.imshow(pixels)
                if name is None:
                    ax.set_title(titles[i] if titles is not None else f"image {i}", fontsize=9)
                else:
                    artist = ax.imshow(norm[name][i].numpy(), cmap=cmap, alpha=alpha, vmin=0, vmax=1)
                    ax.set_title(name, fontsize=9)
                if boxes is not None:
                    for x0, y0, x1, y1 in boxes[i].reshape(-1, 4).tolist():
                        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False,
                                               edgecolor="white", linewidth=0.8))
    if artist is not None:
        bar = fig.colorbar(artist, ax=axes, shrink=0.5, pad=0.01)
        bar.set_label("normalised activation", fontsize=9)
        bar.ax.tick_params(labelsize=9)
    return fig
