"""Diagrams drawn with matplotlib patches: the drawing helpers every chapter's method
diagram uses, and the two diagrams that belong to no method (how the book runs, chapter 0;
how methods are compared, chapter 7).

Fonts are >= 9 pt at the figure's width (about the text column, 7 inches), so the
diagrams stay readable in the book.
"""
from __future__ import annotations

from typing import Sequence

from matplotlib.figure import Figure

#: Colours shared by the diagrams (a pale palette: text stays black and readable).
DATA, MODEL, RECORD, PAGE, NOTE = "#eeeeee", "#c6dbef", "#fdd0a2", "#d9f0d3", "#fee0d2"


def draw_box(ax, xy: Sequence[float], w: float, h: float, text: str, color: str,
             fontsize: float = 10, **patch_kwargs) -> None:
    """A rounded box with centred text; ``xy`` is the lower-left corner (data units)."""
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch(xy, w, h, boxstyle="round,pad=0.02,rounding_size=0.08",
                                facecolor=color, edgecolor="0.25", linewidth=1.0,
                                **patch_kwargs))
    ax.text(xy[0] + w / 2, xy[1] + h / 2, text, ha="center", va="center", fontsize=fontsize)


def draw_arrow(ax, start: Sequence[float], end: Sequence[float], color: str = "0.2",
               style: str = "-|>", ls: str = "-", lw: float = 1.2, rad: float = 0.0) -> None:
    """An arrow from ``start`` to ``end``; ``rad`` bends it (0: straight)."""
    from matplotlib.patches import FancyArrowPatch

    ax.add_patch(FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=11, color=color,
                                 linestyle=ls, linewidth=lw,
                                 connectionstyle=f"arc3,rad={rad}"))


def _canvas(width: float, height: float, xlim: float, ylim: float):
    fig = Figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, xlim)
    ax.set_ylim(0, ylim)
    ax.axis("off")
    return fig, ax


def pipeline_diagram() -> Figure:
    """How a chapter runs: a profile and a dataset make a config; ``train_or_load``
    trains or reuses the run folder (record, checkpoints); the chapter's tables and
    figures read the records, and the paper's numbers come from the method's tables."""
    fig, ax = _canvas(7.2, 3.3, 14.4, 6.6)
    draw_box(ax, (0.2, 4.6), 2.9, 1.5, "profile\nsmoke | transfer |\ngpu | full", NOTE, 9.5)
    draw_box(ax, (0.2, 2.4), 2.9, 1.5, "dataset\nsynthetic birds\nor CUB, Cars, ...", DATA, 9.5)
    draw_box(ax, (0.2, 0.3), 2.9, 1.4, "method + options\n(registry)", MODEL, 9.5)
    draw_box(ax, (4.2, 2.4), 2.4, 1.5, "config\n(TrainConfig)", NOTE, 10)
    for y in (5.35, 3.15, 1.0):
        draw_arrow(ax, (3.1, y), (4.2, 3.15), rad=0.0)
    draw_box(ax, (7.6, 2.4), 2.6, 1.5, "train_or_load\n(same config:\nreuse)", MODEL, 9.5)
    draw_arrow(ax, (6.6, 3.15), (7.6, 3.15))
    draw_box(ax, (7.6, 4.6), 2.6, 1.5, "results/<run>/\nresults.json,\nbest.pt", RECORD, 9.5)
    draw_arrow(ax, (8.9, 3.9), (8.9, 4.6))
    draw_box(ax, (11.2, 2.4), 3.0, 1.5, "chapter:\ntables, figures,\nattention maps", PAGE, 9.5)
    draw_arrow(ax, (10.2, 5.35), (12.7, 3.9), rad=-0.25)
    draw_box(ax, (11.2, 0.3), 3.0, 1.4, "paper's numbers\n(tables.json)", RECORD, 9.5)
    draw_arrow(ax, (12.7, 1.7), (12.7, 2.4))
    ax.text(7.6, 1.2, "one switch (the profile)\nchanges the scale,\nnothing else", fontsize=9,
            ha="left", va="center", color="0.3")
    return fig


def protocol_diagram() -> Figure:
    """The fair protocol (:mod:`fgvc_lib.reports.protocol`): one recipe for the baseline
    and the method, three seeds each, selection on validation, the probe as the floor,
    and a verdict that says whether the difference is outside the seeds' spread."""
    fig, ax = _canvas(7.2, 3.4, 14.4, 6.8)
    draw_box(ax, (0.2, 2.6), 2.8, 1.7, "same data,\ninput size, epochs,\noptimiser, seeds",
             NOTE, 9.5)
    draw_box(ax, (4.0, 4.5), 2.6, 1.3, "baseline\nseeds 0, 1, 2", MODEL, 9.5)
    draw_box(ax, (4.0, 1.1), 2.6, 1.3, "method\nseeds 0, 1, 2", MODEL, 9.5)
    draw_arrow(ax, (3.0, 3.8), (4.0, 5.15))
    draw_arrow(ax, (3.0, 3.1), (4.0, 1.75))
    draw_box(ax, (7.6, 2.6), 2.6, 1.7, "each run: epoch\nchosen on the\nvalidation split", NOTE,
             9.5)
    draw_arrow(ax, (6.6, 5.15), (7.6, 3.8))
    draw_arrow(ax, (6.6, 1.75), (7.6, 3.1))
    draw_box(ax, (11.2, 2.6), 3.0, 1.7, "test top-1:\nmean and spread\nover the seeds", RECORD,
             9.5)
    draw_arrow(ax, (10.2, 3.45), (11.2, 3.45))
    draw_box(ax, (11.2, 0.2), 3.0, 1.6, "verdict: agrees,\ndisagrees or\nwithin the spread",
             PAGE, 9.5)
    draw_arrow(ax, (12.7, 2.6), (12.7, 1.8))
    draw_box(ax, (7.6, 5.0), 2.6, 1.4, "linear probe on\nfrozen features\n(the floor)", DATA,
             9.5)
    draw_arrow(ax, (10.2, 5.7), (12.7, 4.3), rad=-0.2)
    return fig


__all__ = ["draw_arrow", "draw_box", "pipeline_diagram", "protocol_diagram"]
