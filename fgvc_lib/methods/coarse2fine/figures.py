"""The Coarse2Fine chapter's analysis and figure helpers.

* :func:`method_diagram`: the cascade of Fig. 5 with the feedback path drawn;
* :func:`bap_worked_example`: Fig. 4's N = M = 2 case in numbers, both readings;
* :func:`pretraining_curve`: the up-sampler's L2 loss per epoch beside the fixed
  interpolators;
* :func:`parameter_table`: what the model adds to its backbone, part by part;
* :func:`localization_report` / :func:`fig6_grid`: Table 7's error on a dataset
  with boxes, and Fig. 6-style maps, masks and boxes;

The real-data table uses the book's protocol (:mod:`fgvc_lib.reports.protocol`).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np
import torch

from fgvc_lib.methods.coarse2fine.bap import bap_paper_raw, bap_wsdan_raw
from fgvc_lib.methods.coarse2fine.localization import (attention_box, box_iou,
                                                       localization_correct)

FONT = 10


# -- the diagram --------------------------------------------------------------
def method_diagram(fontsize: float = FONT):
    """Fig. 5 redrawn: coarse pass, up-sampler and mask, fine pass, losses, feedback path.

    Drawn at the book's text width (7.2 in) in inch coordinates, so ``fontsize`` is the size
    on the page. Made with pyplot (unlike the library's other diagrams) because the chapter
    assigns the figure and relies on the inline backend to show it."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    width, height = 7.2, 4.6
    fig = plt.figure(figsize=(width, height))
    # One axes over the whole figure, one data unit per inch: positions below are inches and
    # the title is a text inside the canvas (a set_title above a full-figure axes is cut off).
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.axis("off")
    # Five columns of 1.16 in, 0.28 in apart; three rows: coarse pass, mask, fine pass.
    col = [0.14 + 1.44 * i for i in range(5)]
    row = [3.35, 2.1, 0.85]
    w, h = 1.16, 0.8
    boxes = {
        "image": (col[0], row[0], "image"),
        "net1": (col[1], row[0], "feature\nnetwork"),
        "att": (col[2], row[0], "1x1 attention\nconv (M maps)"),
        "bap1": (col[3], row[0], "BAP +\ncenter loss"),
        "head1": (col[4], row[0], "coarse\nhead"),
        "up": (col[2], row[1], "learned\nup-sampler"),
        "pick": (col[1], row[1], "one random\nmap\n(mean at test)"),
        "mask": (col[0], row[1], "image x\nmask"),
        "net2": (col[1], row[2], "feature\nnetwork\n(same weights)"),
        "bap2": (col[2], row[2], "own attention\nconv + BAP"),
        "head2": (col[3], row[2], "fine\nhead"),
        "avg": (col[4], row[2], "average of\nprobabilities"),
    }
    colors = {"image": "#dddddd", "mask": "#dddddd", "net1": "#9ecae1", "net2": "#9ecae1",
              "att": "#fdd0a2", "bap1": "#fdd0a2", "bap2": "#fdd0a2", "up": "#c7e9c0",
              "pick": "#c7e9c0", "head1": "#dadaeb", "head2": "#dadaeb", "avg": "#dadaeb"}
    for key, (x, y, text) in boxes.items():
        ax.add_patch(FancyBboxPatch((x, y - h / 2), w, h, boxstyle="round,pad=0.03",
                                    fc=colors[key], ec="black", lw=1))
        ax.text(x + w / 2, y, text, ha="center", va="center", fontsize=fontsize)

    def side(key: str, where: str, shift: float = 0.0) -> tuple[float, float]:
        """A point on a box's right/left/top/bottom edge, ``shift`` inches along it."""
        x, y, _ = boxes[key]
        return {"r": (x + w, y + shift), "l": (x, y + shift), "t": (x + w / 2 + shift, y + h / 2),
                "b": (x + w / 2 + shift, y - h / 2)}[where]

    def arrow(a, b, color="black", ls="-", rad=0.0, lw=1.3):
        ax.add_patch(FancyArrowPatch(a, b, arrowstyle="-|>", mutation_scale=12, color=color,
                                     lw=lw, ls=ls, shrinkA=2, shrinkB=2,
                                     connectionstyle=f"arc3,rad={rad}"))

    for a, b in [("image", "net1"), ("net1", "att"), ("att", "bap1"), ("bap1", "head1"),
                 ("net2", "bap2"), ("bap2", "head2"), ("head2", "avg")]:
        arrow(side(a, "r"), side(b, "l"))
    arrow(side("att", "b"), side("up", "t"))
    arrow(side("up", "l"), side("pick", "r"))
    arrow(side("pick", "l"), side("mask", "r"))
    arrow(side("image", "b"), side("mask", "t"))
    arrow(side("mask", "b"), side("net2", "l"), rad=0.3)
    # The coarse probabilities drop straight into the average, right of the box centres so
    # that the feedback path's label has the middle of the figure to itself.
    arrow(side("head1", "b", 0.3), side("avg", "t", 0.3))
    # The feedback path: the fine cross-entropy back to the attention conv, passing right of
    # the up-sampler and left of its label.
    arrow(side("head2", "t", -0.2), side("att", "b", 0.35), color="#cb181d", ls="--",
          rad=-0.1, lw=1.7)
    ax.text(col[3] + 0.5, row[1], "fine CE gradient\nthrough mask and\nup-sampler\n"
            "(the feedback path)", color="#cb181d", fontsize=fontsize, ha="left", va="center")
    ax.text(col[4] + w, 0.1, "L = CE(coarse) + CE(fine) + lambda (center losses)",
            fontsize=fontsize, ha="right", va="bottom")
    ax.text(width / 2, height - 0.08, "Coarse2Fine: the coarse pass builds the mask,\n"
            "the fine pass classifies the masked image", fontsize=fontsize + 1, ha="center",
            va="top")
    return fig


# -- BAP, Fig. 4 ----------------------------------------------------------------
def bap_worked_example() -> dict[str, Any]:
    """The N = M = 2 example: two 2x2 feature maps, two 2x2 attention maps.

    Returns the inputs, the four products, the paper reading (average over channels
    at each position: ``M x H*W``) and the WS-DAN reading (average over positions:
    ``M x N``), all before normalisation, as nested lists.
    """
    f = torch.tensor([[[1.0, 2.0], [0.0, 3.0]],
                      [[4.0, 0.0], [2.0, 2.0]]])          # N = 2 feature maps
    a = torch.tensor([[[1.0, 0.0], [0.0, 1.0]],
                      [[0.0, 0.5], [1.0, 0.0]]])          # M = 2 attention maps
    products = torch.einsum("mhw,nhw->mnhw", a, f)
    paper = bap_paper_raw(f[None], a[None], "avg")[0]    # (M, H, W)
    wsdan = bap_wsdan_raw(f[None], a[None])[0]           # (M, N)
    return {"features": f.tolist(), "attention": a.tolist(), "products": products.tolist(),
            "paper": paper.flatten(1).tolist(), "wsdan": wsdan.tolist()}


def bap_example_figure(example: Mapping[str, Any] | None = None):
    """The worked example as a picture: inputs, products, and the two pooled matrices."""
    import matplotlib.pyplot as plt

    ex = example or bap_worked_example()
    f, a, p = (np.asarray(ex[k]) for k in ("features", "attention", "products"))
    fig, axes = plt.subplots(2, 6, figsize=(12, 4.4))
    vmax = float(max(f.max(), p.max()))

    def show(ax, m, title, cmap="viridis", vmax_=vmax):
        im = ax.imshow(m, cmap=cmap, vmin=0, vmax=vmax_)
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, f"{v:g}", ha="center", va="center", fontsize=FONT,
                    color="white" if v < 0.6 * vmax_ else "black")
        ax.set_title(title, fontsize=FONT)
        ax.set_xticks([])
        ax.set_yticks([])
        return im

    for n in range(2):
        show(axes[n, 0], f[n], f"feature map f{n + 1}")
        show(axes[n, 1], a[n], f"attention a{n + 1}")
    for m in range(2):
        for n in range(2):
            im = show(axes[m, 2 + n], p[m, n], f"a{m + 1} * f{n + 1}")
    paper = np.asarray(ex["paper"])
    wsdan = np.asarray(ex["wsdan"])
    show(axes[0, 4], paper, "paper: mean over\nchannels (M x HW)")
    show(axes[0, 5], wsdan, "WS-DAN: mean over\npositions (M x N)")
    axes[1, 4].axis("off")
    axes[1, 5].axis("off")
    axes[1, 4].text(0, 0.5, "rows = attention maps\npaper columns = positions\n"
                    "WS-DAN columns = channels", fontsize=FONT, va="center")
    fig.colorbar(im, ax=axes[:, :4].ravel().tolist(), shrink=0.7, label="value")
    fig.suptitle("Bilinear attention pooling with N = M = 2 (Fig. 4), both readings",
                 fontsize=FONT + 1)
    return fig


# -- up-sampler pre-training ----------------------------------------------------------
def pretraining_curve(history: Mapping[str, Any], title: str = ""):
    """L2 loss per epoch (training and held-out pairs) with the fixed interpolators' losses."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    ax.plot(epochs, history["train_loss"], "o-", label="learned, training pairs")
    ax.plot(epochs, history["eval_loss"], "s-", label="learned, held-out pairs")
    styles = {"bilinear": ":", "bicubic": "-.", "nearest": "--"}
    for mode, value in history["baselines"].items():
        ax.axhline(value, ls=styles.get(mode, ":"), color="gray", lw=1.2,
                   label=f"{mode} interpolation, held-out pairs")
    ax.set_yscale("log")
    ax.set_xlabel("epoch", fontsize=FONT)
    ax.set_ylabel("L2 loss (mean squared error)", fontsize=FONT)
    ax.set_title(title or "Up-sampler pre-training on synthetic pairs", fontsize=FONT + 1)
    ax.legend(fontsize=FONT)
    ax.tick_params(labelsize=FONT)
    fig.tight_layout()
    return fig


# -- parameters ---------------------------------------------------------------------
def parameter_table(model: torch.nn.Module) -> dict[str, int]:
    """Parameters by part: the backbone stages used, the attention conv (the paper's
    "6144 extra"), the fine pass's attention conv, the up-sampler, the two heads."""
    def count(module) -> int:
        return 0 if module is None else sum(p.numel() for p in module.parameters())

    used = sum(p.numel() for p in model.backbone.parameters() if p.requires_grad)
    rows = {"backbone (stages used)": used,
            "attention conv W (M x C)": count(model.attention),
            "fine attention conv": count(model.fine_attention),
            "up-sampler": count(model.upsampler),
            "coarse head": count(model.fc_coarse),
            "fine head": count(getattr(model, "fc_fine", None))}
    rows["added to the backbone"] = sum(v for k, v in rows.items() if k != "backbone (stages used)")
    return rows


# -- localisation, Table 7 and Fig. 6 -----------------------------------------------------
@torch.no_grad()
def localize_batch(model, images: torch.Tensor, normalizer) -> dict[str, torch.Tensor]:
    """Eval-mode outputs for uint8 ``images``: predictions, up-sampled mean maps, masks,
    predicted boxes (the box rule of :mod:`.localization`)."""
    was = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        x = normalizer(images.to(device))
        out = model(x)
        up = out.extras["upsampled"].float().cpu()
        boxes, thresholded = attention_box(up)
        return {"x": x.cpu(), "pred": out.logits.argmax(1).cpu(), "upsampled": up,
                "mask": out.attention["mask"].float().cpu(), "boxes": boxes,
                "thresholded": thresholded}
    finally:
        model.train(was)


def localization_report(model, dataset, image_size: int, normalizer, batch_size: int = 32,
                        max_images: int | None = None) -> dict[str, float]:
    """Table 7's localisation error (%) on a dataset with object boxes, with the mean IoU,
    the share of boxes with IoU > 0.5 whatever the label, and top-1 (the same images)."""
    from fgvc_lib.attention.report import box_batches

    correct, hit, ious, right = [], [], [], []
    for batch in box_batches(dataset, image_size, batch_size, max_images):
        res = localize_batch(model, batch["images"], normalizer)
        true = batch["object_boxes"].float()
        iou = box_iou(res["boxes"], true)
        correct.append(localization_correct(res["boxes"], true, res["pred"], batch["targets"]))
        hit.append(iou > 0.5)
        ious.append(iou)
        right.append(res["pred"] == batch["targets"])
    cat = lambda xs: torch.cat(xs).float()  # noqa: E731
    return {"localization error": 100.0 * (1 - cat(correct).mean().item()),
            "IoU > 0.5": 100.0 * cat(hit).mean().item(),
            "mean IoU": cat(ious).mean().item(), "top-1": 100.0 * cat(right).mean().item(),
            "images": int(cat(right).numel())}


def fig6_grid(model, dataset, image_size: int, normalizer, n: int = 8, seed: int = 0,
              class_names: Iterable[str] | None = None):
    """Fig. 6 on ``n`` random test images: the image with the true (white) and predicted
    (orange) boxes, the up-sampled mean attention map, the mask, the highlighted image."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from fgvc_lib.attention.plot import denormalize
    from fgvc_lib.attention.report import box_batches

    rng = np.random.default_rng(seed)
    chosen = sorted(rng.choice(len(dataset), size=min(n, len(dataset)), replace=False).tolist())

    class _Subset:
        has_boxes = True

        def __len__(self):
            return len(chosen)

        targets = [dataset.targets[i] for i in chosen]

        def annotation(self, i):
            return dataset.annotation(chosen[i])

        def load_image(self, i):
            return dataset.load_image(chosen[i])

    batch = next(box_batches(_Subset(), image_size, batch_size=len(chosen)))
    res = localize_batch(model, batch["images"], normalizer)
    # DeviceNormalize keeps mean and std on the 0-255 scale.
    mean = (normalizer.mean / 255.0).flatten().tolist()
    std = (normalizer.std / 255.0).flatten().tolist()
    pics = denormalize(res["x"], mean, std)
    highlighted = denormalize(res["x"] * res["mask"][:, None], mean, std)
    names = list(class_names) if class_names is not None else None
    cols = len(chosen)
    fig, axes = plt.subplots(4, cols, figsize=(1.75 * cols + 1.2, 7.6), squeeze=False)
    for j in range(cols):
        ax = axes[0, j]
        ax.imshow(pics[j])
        for box, color in ((batch["object_boxes"][j], "white"), (res["boxes"][j], "orange")):
            x0, y0, x1, y1 = box.tolist()
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                   ec=color, lw=1.6))
        t, p = int(batch["targets"][j]), int(res["pred"][j])
        label = (lambda k: names[k] if names else str(k))
        ax.set_title(f"true {label(t)}\npred {label(p)}", fontsize=FONT,
                     color="black" if t == p else "#cb181d")
        im_map = axes[1, j].imshow(res["upsampled"][j], cmap="viridis")
        im_mask = axes[2, j].imshow(res["mask"][j], cmap="magma", vmin=0, vmax=1)
        axes[3, j].imshow(highlighted[j])
        for ax in axes[:, j]:
            ax.set_xticks([])
            ax.set_yticks([])
    for i, text in enumerate(["image, boxes\n(white true,\norange ours)", "up-sampled\nmean map",
                              "mask", "highlighted\nimage"]):
        axes[i, 0].set_ylabel(text, fontsize=FONT)
    fig.colorbar(im_map, ax=axes[1, :].tolist(), shrink=0.8, label="map (last image's scale)")
    fig.colorbar(im_mask, ax=axes[2, :].tolist(), shrink=0.8, label="mask")
    return fig


__all__ = ["bap_example_figure", "bap_worked_example", "fig6_grid", "localization_report",
           "localize_batch", "method_diagram", "parameter_table", "pretraining_curve"]
