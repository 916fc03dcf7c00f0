"""The CN-CNN chapter's figures and analysis helpers.

* :func:`draw_diagram` -- the method as a block diagram (Figs. 1-2 of the paper redrawn);
* :func:`module_table` -- every tensor of one forward with its shape and the module that
  makes it (Figs. 1-2 as a table; at 448 px on a meta-device model it costs nothing);
* :func:`plot_level_maps` -- LH-pathway outputs per level, high to low (Fig. 3);
* :func:`map_share_in_boxes`, :func:`level_part_shares` -- how much of each level's map
  lies inside the part boxes of the synthetic birds, beside the boxes' share of the image;
* :func:`head_cams` -- Grad-CAM of each head and of the combined prediction.

No function here selects a matplotlib backend or registers a pyplot figure.
"""
from __future__ import annotations

import warnings
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from fgvc_lib.attention.gradcam import compute_cam
from fgvc_lib.attention.metrics import box_masks, box_to_input_coords, energy_in_boxes
from fgvc_lib.attention.report import box_batches
from fgvc_lib.data.transforms import DeviceNormalize, box_preserving_transform
from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.cn_cnn.model import STAGE_INDICES
from fgvc_lib.methods.cn_cnn.pathways import LEVELS

#: Heads and the combined prediction, as the chapter names them.
HEADS = ("S3", "S4", "S5", "final")


# -- the diagram ------------------------------------------------------------------------
def draw_diagram(fontsize: float = 9.0) -> Figure:
    """CN-CNN as a block diagram: backbone levels, alignment, the ConvLSTM run high to low
    (HL), the attention run low to high (LH), three classifiers and their mean.

    Drawn at the book's text width (7.2 in) in inch coordinates, so ``fontsize`` is the size
    on the page (the default, 9 pt, is the smallest the book allows; the boxes are sized
    for it)."""
    width, height = 7.2, 3.6
    fig = Figure(figsize=(width, height))
    # One axes over the whole figure, one data unit per inch: positions below are inches.
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    ys = {"S3": 0.45, "S4": 1.45, "S5": 2.45}
    h = 0.62  # box height; 1.0 between rows leaves room for the vertical arrows
    colours = {"backbone": "#d9d9d9", "align": "#c6dbef", "hl": "#fdd0a2", "resize": "#e5f5e0",
               "lh": "#dadaeb", "cls": "#fee391", "out": "#fcbba1"}
    # Columns (left edge, width) from the backbone to the classifiers; 0.22 in between two
    # columns is enough for a horizontal arrow at this scale.
    cols = {"backbone": (0.08, 0.82), "align": (1.12, 0.98), "hl": (2.32, 0.82),
            "resize": (3.36, 0.78), "lh": (4.36, 0.8), "cls": (5.38, 0.7)}
    mean_x, mean_w = 6.38, 0.74

    def box(x: float, y: float, w: float, text: str, kind: str,
            bh: float = h) -> tuple[float, float]:
        """A box of ``kind``'s colour centred on height ``y``; returns its left and right."""
        ax.add_patch(FancyBboxPatch((x, y - bh / 2), w, bh, boxstyle="round,pad=0.03",
                                    facecolor=colours[kind], edgecolor="0.3"))
        ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=fontsize)
        return x, x + w

    def arrow(x0: float, y0: float, x1: float, y1: float, colour: str = "0.25") -> None:
        ax.add_patch(FancyArrowPatch((x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=10,
                                     color=colour, linewidth=1.2, shrinkA=1, shrinkB=1))

    def centre(kind: str) -> float:
        x, w = cols[kind]
        return x + w / 2

    strides = {"S3": 8, "S4": 16, "S5": 32}
    labels = {"align": "1x1 conv\n+ up-sample", "resize": "resize to\nown size",
              "lh": "SA x CA\nmask x F", "cls": "GAP\nFC, FC"}
    mid = ys["S4"]
    for level, y in ys.items():
        step = {"S5": 1, "S4": 2, "S3": 3}[level]
        texts = {"backbone": f"{level}\nstride {strides[level]}", "hl": f"ConvLSTM\nstep {step}",
                 **labels}
        ends = [box(cols[kind][0], y, cols[kind][1], texts[kind], kind) for kind in cols]
        for (_, xa), (xb, _) in zip(ends, ends[1:]):
            arrow(xa + 0.03, y, xb - 0.03, y)
        # Each classifier's softmax goes into the mean (the arrows converge on its box).
        arrow(ends[-1][1] + 0.03, y, mean_x - 0.03, mid + (y - mid) * 0.3)
    box(mean_x, mid, mean_w, "mean\nsoft-\nmax", "out", bh=1.3)
    gap = h / 2 + 0.05
    # HL: the state goes down, S5 -> S4 -> S3.
    for hi, lo in (("S5", "S4"), ("S4", "S3")):
        arrow(centre("hl"), ys[hi] - gap, centre("hl"), ys[lo] + gap, colour="#d94801")
    # LH: channel information goes up, S3 -> S4 -> S5.
    for lo, hi in (("S3", "S4"), ("S4", "S5")):
        arrow(centre("lh"), ys[lo] + gap, centre("lh"), ys[hi] - gap, colour="#54278f")
    # The backbone itself: S3 -> S4 -> S5.
    for lo, hi in (("S3", "S4"), ("S4", "S5")):
        arrow(centre("backbone"), ys[lo] + gap, centre("backbone"), ys[hi] - gap)
    # Column headings, wrapped so that neighbouring headings do not run into each other.
    top = ys["S5"] + h / 2 + 0.1
    ax.text(centre("backbone"), top, "backbone", ha="center", va="bottom", fontsize=fontsize)
    ax.text(centre("align"), top, "alignment\n(one size,\none width)", ha="center", va="bottom",
            fontsize=fontsize)
    ax.text(centre("hl"), top, "HL pathway:\n(h, c) handed\nhigh -> low", ha="center",
            va="bottom", fontsize=fontsize, color="#d94801")
    ax.text(centre("lh"), top, "LH pathway:\nchannel info handed\nlow -> high", ha="center",
            va="bottom", fontsize=fontsize, color="#54278f")
    return fig


# -- tensors and shapes -----------------------------------------------------------------
def _shape(t: torch.Tensor) -> str:
    return " x ".join(str(s) for s in t.shape[1:])


def _params(*modules: Any) -> float:
    return sum(p.numel() for m in modules if m is not None for p in m.parameters()) / 1e6


def module_table(model: torch.nn.Module, image_size: int = 448):
    """One row per tensor of a forward of one ``image_size`` image: its name, shape
    (without the batch axis), the module that makes it and that module's parameters (M).

    The model may live on the ``meta`` device: shapes then come without any arithmetic.
    """
    import pandas as pd

    device = next(model.parameters()).device
    x = torch.zeros(1, 3, image_size, image_size, device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            stages = model.backbone(x)
            levels = [stages[i] for i in STAGE_INDICES]
            ex = model.pathways(levels)
            heads = {lv: model.classifiers[lv](ex["lh"][lv]) for lv in LEVELS}
    finally:
        model.train(was_training)
    bb = model.backbone
    rows = [("input", _shape(x), "", 0.0)]
    for k, (lv, s) in enumerate(zip(LEVELS, levels)):
        stage = bb.stage_names[STAGE_INDICES[k]]
        rows.append((lv, _shape(s), f"backbone.{stage}", _params(bb.stage_module(STAGE_INDICES[k]))))
    for k, lv in enumerate(LEVELS):
        rows.append((f"A_{lv} (aligned)", _shape(ex["aligned"][lv]),
                     f"align.proj[{k}] + bilinear", _params(model.align.proj[k])))
    step_of = {"S5": 1, "S4": 2, "S3": 3}
    hl_module = {"convlstm": "ConvLSTM step {t}", "add": "running sum, step {t}",
                 "none": "identity"}[model.hl.mode]
    for lv in reversed(LEVELS):
        rows.append((f"H_{lv} (HL output)", _shape(ex["hl"][lv]), hl_module.format(t=step_of[lv]),
                     _params(model.hl.cell) if lv == "S5" else 0.0))
    for lv in LEVELS:
        rows.append((f"F_{lv} (own size)", _shape(ex["features"][lv]), "area average", 0.0))
    if model.lh is not None:
        for k, lv in enumerate(LEVELS):
            rows.append((f"M^s_{lv} (spatial mask)", _shape(ex["spatial_masks"][lv]),
                         f"lh.spatial[{k}] + sigmoid", _params(model.lh.spatial[k])))
            rows.append((f"M^c_{lv} (channel mask)", _shape(ex["channel_masks"][lv]),
                         f"lh.fc1[{k}], lh.fc2[{k}] + sigmoid",
                         _params(model.lh.fc1[k], model.lh.fc2[k])))
    for lv in LEVELS:
        rows.append((f"O_{lv} (LH output)", _shape(ex["lh"][lv]),
                     "mask x F" if model.lh is not None else "F (lh=off)", 0.0))
    for lv in LEVELS:
        rows.append((f"z_{lv} (logits)", _shape(heads[lv]), f"classifiers.{lv}",
                     _params(model.classifiers[lv])))
    rows.append(("prediction", _shape(heads["S3"]), "mean of the softmaxes", 0.0))
    df = pd.DataFrame(rows, columns=["tensor", "shape", "module", "params (M)"])
    df.attrs["caption"] = (f"{type(model).__name__} on {bb.name}, one {image_size}-px image "
                           f"(hl={model.hl.mode}); the ConvLSTM's parameters are listed once, "
                           "at its first step.")
    return df


# -- maps per level (Fig. 3) --------------------------------------------------------------
def images_of_class(dataset, image_size: int, n: int = 3, seed: int = 0,
                    label: int | None = None) -> dict[str, Any]:
    """``n`` test images of one class drawn at random (the class too, unless ``label``
    is given), as :func:`fgvc_lib.attention.report.box_batches` yields them: ``uint8``
    square inputs, ``targets``, ``indices`` and, where the data has them, part boxes."""
    rng = np.random.default_rng(seed)
    targets = np.asarray(dataset.targets)
    label = int(rng.choice(np.unique(targets))) if label is None else int(label)
    pool = np.flatnonzero(targets == label)
    idx = sorted(int(i) for i in rng.choice(pool, size=min(n, len(pool)), replace=False))
    transform = box_preserving_transform(image_size)
    batch: dict[str, Any] = {
        "indices": idx, "label": label,
        "images": torch.stack([transform(dataset.load_image(i)) for i in idx]),
        "targets": torch.tensor([int(targets[i]) for i in idx])}
    if getattr(dataset, "has_boxes", False):
        anns = [dataset.annotation(i) for i in idx]
        if anns[0].get("part_boxes"):
            sizes = torch.tensor([a["size"] for a in anns], dtype=torch.float32)
            parts = torch.tensor([a["part_boxes"] for a in anns], dtype=torch.float32)
            batch["part_boxes"] = box_to_input_coords(parts, sizes[:, None, :], image_size)
    return batch


def level_maps(model: torch.nn.Module, images: torch.Tensor, kind: str = "LH"
               ) -> dict[str, np.ndarray]:
    """``{level: (B, h, w)}``: each level's map at its own size (``kind="LH"``: channel
    L2 norm of the LH output; ``"SA"``: the spatial mask), high level first."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            out = model(images)
    finally:
        model.train(was_training)
    return {lv: out.attention[f"{kind}/{lv}"].cpu().numpy() for lv in reversed(LEVELS)}


def plot_level_maps(images: torch.Tensor, maps: dict[str, np.ndarray],
                    titles: Sequence[str] | None = None, cmap: str = "magma",
                    cell: float = 1.9, label: str = "LH output, channel norm") -> Figure:
    """Rows: images; columns: the image, then one map per level (as given, high to low),
    each min-max normalised per image, shown at its own resolution; one colorbar."""
    pics = images.detach().cpu()
    if pics.dtype == torch.uint8:
        pics = pics.float() / 255
    n, cols = len(pics), 1 + len(maps)
    fig = Figure(figsize=(cell * cols + 0.8, cell * n), layout="constrained")
    axes = fig.subplots(n, cols, squeeze=False)
    mappable = None
    for i in range(n):
        axes[i, 0].imshow(pics[i].permute(1, 2, 0).clamp(0, 1).numpy())
        if titles is not None:
            axes[i, 0].set_ylabel(titles[i], fontsize=9)
        for j, (level, stack) in enumerate(maps.items(), start=1):
            m = stack[i].astype(np.float64)
            m = (m - m.min()) / (m.max() - m.min()) if m.max() > m.min() else np.zeros_like(m)
            mappable = axes[i, j].imshow(m, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
            if i == 0:
                axes[i, j].set_title(f"{level} ({m.shape[0]}x{m.shape[1]})", fontsize=10)
        if i == 0:
            axes[i, 0].set_title("input", fontsize=10)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, shrink=0.8, label=f"{label} (min-max per image)")
    return fig


def map_share_in_boxes(maps: torch.Tensor, boxes: torch.Tensor, image_size: int
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """For non-negative maps ``(B, h, w)`` over ``image_size``-px images: the share of each
    map's mass inside the union of its boxes ``(B, P, 4)`` (input pixels), and the share of
    the image those boxes cover (what a uniform map would score). Each map cell is spread
    evenly over the pixels it covers (nearest-neighbour up-sampling)."""
    maps = torch.as_tensor(maps).float()
    up = F.interpolate(maps[:, None], size=(image_size, image_size), mode="nearest")[:, 0]
    share = energy_in_boxes(up, boxes)
    area = box_masks(boxes, (image_size, image_size), maps.shape[0]).float().flatten(1).mean(1)
    return share, area


def level_part_shares(model: torch.nn.Module, dataset, image_size: int,
                      normalizer: DeviceNormalize | None = None, max_images: int | None = None,
                      batch_size: int = 32):
    """Mean over the test images, per level (high to low): the share of the LH output's
    channel norm and of the spatial mask inside the part boxes, beside the boxes' share
    of the image (the value of a uniform map)."""
    import pandas as pd

    device = next(model.parameters()).device
    normalizer = (normalizer or DeviceNormalize()).to(device)
    sums: dict[tuple[str, str], float] = {}
    count = 0
    was_training = model.training
    model.eval()
    try:
        for batch in box_batches(dataset, image_size, batch_size, max_images):
            if "part_boxes" not in batch:
                raise ValueError("level_part_shares needs part boxes (the synthetic data)")
            with torch.no_grad():
                out = model(normalizer(batch["images"].to(device)))
            boxes = batch["part_boxes"]
            for level in reversed(LEVELS):
                for kind in ("LH", "SA"):
                    name = f"{kind}/{level}"
                    if name in out.attention:
                        share, area = map_share_in_boxes(out.attention[name].cpu(), boxes,
                                                         image_size)
                        key = (level, f"{kind} map in parts (%)")
                        sums[key] = sums.get(key, 0.0) + share.sum().item()
                key = (level, "parts' area (%)")
                sums[key] = sums.get(key, 0.0) + area.sum().item()
            count += len(boxes)
    finally:
        model.train(was_training)
    table: dict[str, dict[str, float]] = {}
    for (level, column), total in sums.items():
        table.setdefault(level, {})[column] = 100 * total / count
    return pd.DataFrame(table).T


# -- Grad-CAM per head ----------------------------------------------------------------------
def head_cams(model: torch.nn.Module, images: torch.Tensor, method: str = "gradcam",
              layer: str = "stage3") -> dict[str, np.ndarray]:
    """``{head: (B, H, W)}`` in [0, 1]: ``method`` for each head's predicted class, all on
    one layer (default the backbone's S3, stride 8, which every head depends on), so
    that the heads' maps can be compared pixel for pixel. A head whose map cannot be
    computed (e.g. all zeros: only negative evidence at that layer) gets a zero map and a
    warning naming it, so one weak head does not hide the others."""
    out: dict[str, np.ndarray] = {}
    for head in HEADS:
        try:
            out[head] = compute_cam(model, images, method=method, layer=layer,
                                    head=None if head == "final" else head)
        except FGVCError as exc:
            warnings.warn(f"{method} of head {head} on {layer}: {exc}", stacklevel=2)
            out[head] = np.zeros((images.shape[0], *images.shape[-2:]), dtype=np.float32)
    return out


__all__ = ["HEADS", "draw_diagram", "head_cams", "images_of_class", "level_maps", "level_part_shares",
           "map_share_in_boxes", "module_table", "plot_level_maps"]
