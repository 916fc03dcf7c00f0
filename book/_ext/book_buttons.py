"""The pages' header buttons: launch (Colab, Binder) from one setting, and
"download .ipynb" with the executed notebook.

* **Launch buttons** need the public repository: ``repository.url`` in
  ``book/_config.yml`` (the only setting to change; ``launch_buttons`` names the
  services). While it is empty, this extension switches the launch buttons off
  on ``config-inited``: sphinx-book-theme would otherwise fail on a missing
  repository (or Jupyter Book would point at its own).
* **Download**: sphinx-book-theme's download menu links ``_sources/<page>.ipynb``,
  which Sphinx copies from the source, and the committed notebooks have their
  outputs cleared. myst-nb writes the executed notebooks (outputs and widget
  state included) to ``<build>/jupyter_execute/``; on ``build-finished`` each
  is copied over its ``_sources`` copy in the HTML output.
* **Execution times**: on ``build-finished`` the seconds myst-nb took to
  execute each notebook are written to ``<build>/execution_times.json``
  (``book/check_html.py`` prints them; on a busy machine they are wall times
  inflated by the wait for a core, so the build reports them and CI's
  ``pytest --nbmake`` enforces the budget).
"""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

LAUNCH_KEYS = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "jupyterlite_url")


def launch_settings(theme_options: dict[str, Any]) -> dict[str, Any]:
    """``theme_options`` with the launch services removed when no repository URL is set."""
    options = dict(theme_options)
    if str(options.get("repository_url") or "").strip():
        return options
    launch = dict(options.get("launch_buttons") or {})
    for key in LAUNCH_KEYS:
        launch.pop(key, None)
    launch["thebe"] = False
    options["launch_buttons"] = launch
    return options


def _configure_launch(app: Any, config: Any) -> None:
    from sphinx.util import logging as sphinx_logging

    before = config.html_theme_options or {}
    after = launch_settings(before)
    if after != before:
        sphinx_logging.getLogger(__name__).info(
            "[book_buttons] repository.url is empty in book/_config.yml: no launch buttons")
    config.html_theme_options = after


def copy_executed(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    from sphinx.util import logging as sphinx_logging

    executed = Path(app.outdir).parent / "jupyter_execute"
    sources = Path(app.outdir) / "_sources"
    copied = 0
    for notebook in executed.rglob("*.ipynb"):
        target = sources / notebook.relative_to(executed)
        if target.is_file():
            shutil.copyfile(notebook, target)
            copied += 1
    sphinx_logging.getLogger(__name__).info(
        f"[book_buttons] {copied} executed notebook(s) offered for download")


def write_execution_times(app: Any, exception: Exception | None) -> None:
    if exception is not None:
        return
    import json

    try:
        from myst_nb.sphinx_ import NbMetadataCollector
    except ImportError:  # pragma: no cover - myst-nb comes with Jupyter Book
        return
    times = {}
    for docname in sorted(app.env.found_docs):
        data = NbMetadataCollector.get_exec_data(app.env, docname)
        if data and data.get("runtime") is not None:
            times[docname] = {"seconds": round(float(data["runtime"]), 1),
                              "succeeded": bool(data.get("succeeded")), "method": data.get("method")}
    if times:
        (Path(app.outdir).parent / "execution_times.json").write_text(json.dumps(times, indent=2) + "\n")


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _configure_launch)
    app.connect("build-finished", copy_executed)
    app.connect("build-finished", write_execution_times)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
