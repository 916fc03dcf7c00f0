"""Interactive figures that also work in the static book (no kernel).

An ``ipywidgets.interact`` cell calls Python each time a control moves, so in
the built HTML book, which has no kernel, its controls move and the picture
stays the same. :func:`frame_explorer` instead renders **every** combination
of the controls' values once, when the notebook runs, and puts the pictures
in nested :class:`ipywidgets.Stack` widgets whose ``selected_index`` is linked
to the controls in the browser (:func:`ipywidgets.jslink`). The links and the
pictures are saved with the notebook's widget state, so the book's pages
switch pictures with no Python behind them; in a live notebook the same
widget works too. :func:`live_explorer` is the ordinary ``interact`` version,
for readers with a kernel who want values outside the precomputed grid.

How to use it in a chapter
--------------------------
Write a function that draws one picture from keyword arguments, and give the
values each control may take::

    from fgvc_lib.reports.widgets import frame_explorer, live_explorer

    def draw(image=0, layer="stage4"):        # returns a matplotlib Figure
        return show_attention_grid(images[image:image + 1], {layer: maps[layer][image:image + 1]})

    frame_explorer(draw, {"image": range(6), "layer": ["stage3", "stage4", "stage5"]},
                   caption="LayerCAM per stage, smoke profile, synthetic data")
    # live_explorer(draw, image=(0, 5), layer=["stage3", "stage4", "stage5"])  # needs a kernel

* The cell's **last expression** must be the widget (or ``display(...)`` it).
* ``draw`` may return a matplotlib :class:`~matplotlib.figure.Figure`, a PIL
  image, an ``(H, W, 3)`` array, or PNG bytes. Figures are saved at ``dpi``
  (default 80) and then closed, so they are not also shown as static output.
* **Keep the grid small**: every frame is stored in the page (a few tens of kB
  each). ``max_frames`` (default 48) guards against an accidental product of
  long lists; 6 images x 3 layers is 18 frames.
* Controls: ``range(n)`` (e.g. image indices) becomes a slider (``IntSlider``),
  any other list of up to four values toggle buttons, a longer list a dropdown.
  (A ``SelectionSlider`` linked to a ``Stack`` of ``Stack``s failed to render in
  the offline widget manager, html-manager 1.0.15; these three work.) Give
  ``labels={"image": "test image"}`` to rename a control.
* All pictures of one explorer should have the same size (draw them with the
  same ``figsize``), or the page jumps while the slider moves.
* Under ``pytest --nbmake`` and in the book build the frames are computed
  like any other cell: count their time in the chapter's budget.
"""
from __future__ import annotations

import io
import itertools
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from fgvc_lib.errors import FGVCError

MAX_FRAMES = 48


def _png_bytes(picture: Any, dpi: int) -> bytes:
    """PNG bytes of a Figure, PIL image, array or PNG bytes."""
    if isinstance(picture, (bytes, bytearray)):
        return bytes(picture)
    if hasattr(picture, "savefig"):  # a matplotlib Figure
        buffer = io.BytesIO()
        picture.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
        pyplot = sys.modules.get("matplotlib.pyplot")
        number = getattr(picture, "number", None)
        if pyplot is not None and number is not None and pyplot.fignum_exists(number):
            pyplot.close(picture)  # a pyplot figure would also show up as static output
        return buffer.getvalue()
    from PIL import Image
    import numpy as np

    if not isinstance(picture, Image.Image):
        array = np.asarray(picture)
        if array.dtype != np.uint8:
            array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
        picture = Image.fromarray(array)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def _control(name: str, values: Sequence[Any], label: str):
    import ipywidgets as widgets

    options = [(str(value), i) for i, value in enumerate(values)]
    if list(values) == list(range(len(values))) and len(values) > 1:
        # 0, 1, ..., n-1 (image indices): a slider whose value is the index itself
        control = widgets.IntSlider(value=0, min=0, max=len(values) - 1, description=label)
    elif len(values) <= 4:
        control = widgets.ToggleButtons(options=options, value=0, description=label)
    else:
        control = widgets.Dropdown(options=options, value=0, description=label)
    control.style.description_width = "initial"
    return control


def frame_grid(render: Callable[..., Any], controls: Mapping[str, Iterable[Any]],
               dpi: int = 80, max_frames: int = MAX_FRAMES) -> tuple[dict[str, list[Any]],
                                                                   dict[tuple[int, ...], bytes]]:
    """Render every combination of the controls' values: ``(values per control,
    {index tuple: PNG bytes})``. The widget-free part of :func:`frame_explorer`."""
    values = {name: list(choices) for name, choices in controls.items()}
    if not values or any(not choices for choices in values.values()):
        raise FGVCError("frame_explorer needs at least one control with at least one value",
                        "pass controls={'name': [value, ...], ...}")
    count = 1
    for choices in values.values():
        count *= len(choices)
    if count > max_frames:
        raise FGVCError(f"frame_explorer would render {count} frames (more than max_frames="
                        f"{max_frames}); every frame is stored in the page",
                        "use fewer values per control, or raise max_frames knowingly")
    frames: dict[tuple[int, ...], bytes] = {}
    names = list(values)
    for index in itertools.product(*(range(len(values[name])) for name in names)):
        choice = {name: values[name][i] for name, i in zip(names, index)}
        frames[index] = _png_bytes(render(**choice), dpi)
    return values, frames


def frame_explorer(render: Callable[..., Any], controls: Mapping[str, Iterable[Any]],
                   caption: str | None = None, labels: Mapping[str, str] | None = None,
                   dpi: int = 80, max_frames: int = MAX_FRAMES):
    """A widget whose controls switch between precomputed pictures in the browser.

    ``render(**choice)`` draws one picture for one value of every control;
    ``controls`` maps each keyword of ``render`` to the values it may take (the
    first value is shown first). Returns an :class:`ipywidgets.VBox` (controls,
    pictures, optional caption). See the module docstring for the rules.
    """
    import ipywidgets as widgets

    values, frames = frame_grid(render, controls, dpi=dpi, max_frames=max_frames)
    names = list(values)
    labels = dict(labels or {})
    widgets_by_name = {name: _control(name, values[name], labels.get(name, name))
                       for name in names}

    def build(level: int, prefix: tuple[int, ...]):
        if level == len(names):
            return widgets.Image(value=frames[prefix], format="png")
        children = [build(level + 1, (*prefix, i)) for i in range(len(values[names[level]]))]
        stack = widgets.Stack(children=children, selected_index=0)
        # in the browser, with no kernel: the control's index picks the stack's child
        control = widgets_by_name[names[level]]
        trait = "value" if isinstance(control, widgets.IntSlider) else "index"
        widgets.jslink((control, trait), (stack, "selected_index"))
        return stack

    parts: list[Any] = [widgets.HBox(list(widgets_by_name.values())), build(0, ())]
    if caption:
        parts.append(widgets.HTML(f"<p style='font-size:0.9em;margin:0'>{caption}</p>"))
    return widgets.VBox(parts)


def live_explorer(render: Callable[..., Any], **controls: Any):
    """The live version: ``ipywidgets.interact`` over ``render`` (needs a running kernel;
    in the static book its picture does not change). ``controls`` as for ``interact``
    (``image=(0, 5)``, ``layer=["stage3", "stage4"]``). A Figure returned by ``render``
    is displayed."""
    import ipywidgets as widgets
    from IPython.display import display

    def show(**choice: Any) -> None:
        picture = render(**choice)
        if picture is not None:
            display(picture)

    return widgets.interact(show, **controls)


__all__ = ["MAX_FRAMES", "frame_explorer", "frame_grid", "live_explorer"]
