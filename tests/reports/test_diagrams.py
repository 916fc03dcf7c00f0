"""Every method diagram and the book's two generic diagrams: they draw, their text is at
least 9 pt on the page (a figure wider than the text column is shrunk to it, and its fonts
with it), and nothing is drawn outside the figure (a box off the canvas is cut off in the
book)."""
from __future__ import annotations

import importlib

import matplotlib
import pytest

matplotlib.use("Agg")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.patches import FancyBboxPatch  # noqa: E402

from fgvc_lib.notebook import TEXT_WIDTH_IN  # noqa: E402

DIAGRAMS = [
    ("fgvc_lib.reports.diagrams", "pipeline_diagram"),
    ("fgvc_lib.reports.diagrams", "protocol_diagram"),
    ("fgvc_lib.methods.baseline.figures", "method_diagram"),
    ("fgvc_lib.methods.cmal.figures", "method_diagram"),
    ("fgvc_lib.methods.cross_x.figures", "method_diagram"),
    ("fgvc_lib.methods.cnl.figures", "plot_cnl_diagram"),
    ("fgvc_lib.methods.cn_cnn.figures", "draw_diagram"),
    ("fgvc_lib.methods.coarse2fine.figures", "method_diagram"),
]


@pytest.mark.parametrize("module, name", DIAGRAMS)
def test_diagram_fits_its_canvas_with_readable_text(module, name):
    fig = getattr(importlib.import_module(module), name)()
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    canvas = fig.bbox
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_text().strip()]
    shrink = min(1.0, TEXT_WIDTH_IN / fig.get_figwidth())
    assert texts and min(t.get_fontsize() for t in texts) * shrink >= 9 - 1e-6
    boxes = [p for p in ax.patches if isinstance(p, FancyBboxPatch)]
    assert boxes
    for artist in [*boxes, *texts]:
        extent = artist.get_window_extent(renderer)
        assert extent.x0 >= canvas.x0 - 1 and extent.x1 <= canvas.x1 + 1, artist
        assert extent.y0 >= canvas.y0 - 1 and extent.y1 <= canvas.y1 + 1, artist
