"""plot_curves: the one learning-curve plotter, for one run, several on one axis, or per head."""
from __future__ import annotations


import numpy as np
import pytest
from matplotlib.figure import Figure

from fgvc_lib.config import resolve_config
from fgvc_lib.errors import FGVCError
from fgvc_lib.reports.plots import plot_curves
from fgvc_lib.reports.records import RunRecord


pytestmark = pytest.mark.usefixtures("backend_untouched")


def _history(epochs=3):
    return [{"epoch": e, "train": {"loss": 2.0 / e, "top1": 10.0 * e}, "val": {"top1": 8.0 * e},
             "lr": 0.1 / e} for e in range(1, epochs + 1)]


def _labels(ax):
    return [line.get_label() for line in ax.get_lines()]


def test_one_run_gets_a_loss_and_an_accuracy_panel():
    fig = plot_curves({"history": _history()})
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2  # losses, accuracies (lr only when asked)
    loss_ax, acc_ax = fig.axes
    assert _labels(acc_ax) == ["train/top1", "val/top1"]
    assert list(loss_ax.get_lines()[0].get_xdata()) == [1, 2, 3]
    assert len(plot_curves({"history": _history()}, keys=["train/loss", "lr"]).axes) == 2
    with pytest.raises(FGVCError, match="no run records \\['val/loss'\\]"):
        plot_curves({"history": _history()}, keys=["val/loss"])


def test_runs_on_one_axis_label_an_unfinished_run_with_its_progress():
    def record(status="finished", epochs=3, planned=3):
        return {"status": status, "history": [{"epoch": e + 1, "val": {"top1": 10.0 * (e + 1)}}
                                              for e in range(epochs)],
                "config": {"epochs": planned}}

    fig = plot_curves({"done": record(), "cut": record("running", 2, 5)}, keys=["val/top1"],
                      overlay=True)
    assert len(fig.axes) == 1
    lines = fig.axes[0].get_lines()
    assert lines[0].get_ydata().tolist() == [10.0, 20.0, 30.0]
    assert lines[1].get_label() == "cut (running: 2 of 5 epochs)"
    assert lines[1].get_linestyle() == "--" and lines[0].get_linestyle() == "-"
    assert fig.axes[0].get_ylabel() == "val/top1"


def test_named_panels_per_run_draw_every_head_and_loss_term():
    history = [{"epoch": e, "train": {"loss": 1.0 / e, "ce": 2.0 / e, "c3s": -1.0, "cl": 0.1},
                "val_heads": {"final": 10.0 * e, "L": 8.0 * e, "L-1": 2.0 * e}} for e in (1, 2, 3)]
    panels = {"validation top-1 per head": ["val_heads/*"], "training loss terms": ["train/*"]}
    fig = plot_curves({"a": {"history": history}, "b": {"history": history[:2]}}, panels=panels)
    assert len(fig.axes) == 4  # two runs, a row each
    acc, loss = fig.axes[:2]
    assert _labels(acc) == ["final", "L", "L-1"]
    assert _labels(loss) == ["loss", "ce", "c3s", "cl"]
    assert acc.get_title() == "a: validation top-1 per head"
    np.testing.assert_allclose(acc.get_lines()[2].get_ydata(), [2.0, 4.0, 6.0])
    assert len(fig.axes[2].get_lines()[0].get_xdata()) == 2
    with pytest.raises(FGVCError, match="no history"):
        plot_curves({"empty": {"history": []}}, panels=panels)


def test_run_records_and_lists_of_them_work_too():
    cfg = resolve_config("baseline", "synthetic", "smoke")
    recs = [RunRecord.from_dict({"config": cfg.to_dict(), "status": "finished",
                                 "history": _history(), "path": f"/runs/{name}"})
            for name in ("one", "two")]
    fig = plot_curves(recs, keys=["val/top1"], overlay=True)
    assert _labels(fig.axes[0]) == ["one", "two"]
    with pytest.raises(FGVCError, match="no runs"):
        plot_curves({})
    with pytest.raises(FGVCError, match="both keys= and panels="):
        plot_curves(recs, keys=["val/top1"], panels={"x": ["val/top1"]})
