"""fgvc_lib.reports.widgets: precomputed frames switched in the browser (jslink + Stack)."""
from __future__ import annotations

import io

import numpy as np
import pytest

from fgvc_lib.errors import FGVCError

widgets = pytest.importorskip("ipywidgets")


def _colour(a: int, b: str) -> tuple[int, int, int]:
    return (40 * a, 200 if b == "y" else 10, 7)


def _render(a=0, b="x"):
    return np.full((4, 5, 3), _colour(a, b), dtype=np.uint8)


def _pixel(png: bytes) -> tuple[int, ...]:
    from PIL import Image

    return Image.open(io.BytesIO(png)).convert("RGB").getpixel((2, 2))


def _links_between(source, target, trait="index"):
    from ipywidgets.widgets.widget import _instances
    from ipywidgets.widgets.widget_link import Link

    return [w for w in _instances.values() if isinstance(w, Link)
            and w.source == (source, trait) and w.target == (target, "selected_index")]


def test_every_combination_is_a_frame_and_each_control_drives_its_stack_level():
    from fgvc_lib.reports.widgets import frame_explorer

    box = frame_explorer(_render, {"a": range(3), "b": ["x", "y"]}, caption="c", labels={"a": "A"})
    controls, outer, caption = box.children
    control_a, control_b = controls.children
    # range(n) -> IntSlider linked by its value (a SelectionSlider driving nested Stacks did
    # not render in the offline widget manager); other lists -> buttons linked by index
    assert isinstance(control_a, widgets.IntSlider) and control_a.description == "A"
    assert (control_a.min, control_a.max) == (0, 2)
    assert isinstance(control_b, widgets.ToggleButtons) and caption.value.count("c") >= 1
    assert isinstance(outer, widgets.Stack) and len(outer.children) == 3
    assert len(_links_between(control_a, outer, "value")) == 1
    for i, inner in enumerate(outer.children):
        assert isinstance(inner, widgets.Stack) and len(inner.children) == 2
        assert len(_links_between(control_b, inner)) == 1
        for j, b in enumerate(["x", "y"]):
            image = inner.children[j]
            assert isinstance(image, widgets.Image)
            assert _pixel(image.value) == _colour(i, b)  # frame (i, j) is render(a_i, b_j)


def test_figures_are_rendered_and_frame_count_is_guarded():
    from matplotlib.figure import Figure

    from fgvc_lib.reports.widgets import frame_explorer, frame_grid

    def draw(k=0):
        fig = Figure(figsize=(1, 1))
        fig.subplots().set_title(str(k))
        return fig

    values, frames = frame_grid(draw, {"k": range(3)})
    assert values == {"k": [0, 1, 2]} and sorted(frames) == [(0,), (1,), (2,)]
    assert all(png.startswith(b"\x89PNG") for png in frames.values())
    assert len(set(frames.values())) == 3
    with pytest.raises(FGVCError, match="max_frames"):
        frame_explorer(_render, {"a": list(range(10)), "b": ["x"] * 10}, max_frames=48)
    with pytest.raises(FGVCError):
        frame_explorer(_render, {"a": []})
    many = frame_explorer(_render, {"b": ["x", "y", "x", "y", "x"]})
    assert isinstance(many.children[0].children[0], widgets.Dropdown)
    numbers = frame_explorer(lambda a: _render(a % 5), {"a": [0, 5, 10]})
    assert isinstance(numbers.children[0].children[0], widgets.ToggleButtons)


def test_progress_bars_off_keeps_a_silent_iterator(monkeypatch):
    from fgvc_lib.engine import trainer

    monkeypatch.setenv(trainer.PROGRESS_BARS_ENV, "0")
    bar = trainer._progress([1, 2, 3], True, desc="epoch 1/1", leave=False)
    assert list(bar) == [1, 2, 3] and bar.disable
    bar.set_postfix(loss="0.1")  # what the trainer calls every ten batches
    monkeypatch.setenv(trainer.PROGRESS_BARS_ENV, "1")
    assert not trainer._progress([1], True, disable=False).disable
    assert trainer._progress([1], False) == [1]
