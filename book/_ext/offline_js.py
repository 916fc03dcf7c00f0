"""Serve vendored MathJax and widget JavaScript with the book, when present.

``book/vendor_js.py`` fetches pinned MathJax 3, RequireJS and the ipywidgets
HTML manager into ``book/_vendor_js/vendor/`` (git-ignored). When that folder
is complete, this extension (on ``config-inited``, before anything reads
these settings):

* adds ``book/_vendor_js`` to ``html_extra_path``, so the site gets a
  ``vendor/`` folder at its root (not ``_static/``: Jupyter Book 1.x would
  inject every .js found there into every page);
* points ``mathjax_path`` and ``nb_ipywidgets_js`` at it. Sphinx resolves
  both relative to ``_static/``, hence the ``../vendor/`` prefix.

Without the folder nothing changes: the pages use the CDN defaults and the
build still succeeds (an info line says so). A half-present folder is a
warning (a ``-W`` build fails): re-run ``book/vendor_js.py --force``.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXTRA_PATH_DIR = Path(__file__).resolve().parents[1] / "_vendor_js"
VENDOR_DIR = EXTRA_PATH_DIR / "vendor"
# Kept in step with ENTRY_FILES in book/vendor_js.py (checked by tests/test_book.py).
ENTRY_FILES: tuple[str, ...] = (
    "mathjax/es5/tex-mml-chtml.js",
    "requirejs/require.js",
    "html-manager/dist/embed-amd.js",
)
# Site-relative URLs seen from _static/ (where Sphinx anchors relative JS paths).
FROM_STATIC = "../vendor/"
# Widgets outside ipywidgets' own set would still come from this CDN.
THIRD_PARTY_WIDGET_CDN = "https://cdn.jsdelivr.net/npm/"


def offline_settings() -> dict[str, Any]:
    """The Sphinx settings that make pages load the vendored files."""
    return {
        "mathjax_path": FROM_STATIC + "mathjax/es5/tex-mml-chtml.js",
        "nb_ipywidgets_js": {
            FROM_STATIC + "requirejs/require.js": {},
            FROM_STATIC + "html-manager/dist/embed-amd.js": {
                "data-jupyter-widgets-cdn": THIRD_PARTY_WIDGET_CDN,
            },
        },
    }


def _use_vendored_js(app: Any, config: Any) -> None:
    from sphinx.util import logging as sphinx_logging

    logger = sphinx_logging.getLogger(__name__)
    present = [entry for entry in ENTRY_FILES if (VENDOR_DIR / entry).is_file()]
    if not present and not VENDOR_DIR.exists():
        logger.info("[offline_js] no vendored JS (run book/vendor_js.py): pages load "
                    "MathJax and the widget JS from CDNs")
        return
    if len(present) != len(ENTRY_FILES):
        missing = sorted(set(ENTRY_FILES) - set(present))
        logger.warning(f"[offline_js] {VENDOR_DIR} is incomplete (missing {missing}); "
                       "run `python book/vendor_js.py --force` or delete the folder")
        return
    config.html_extra_path = [*config.html_extra_path, str(EXTRA_PATH_DIR)]
    for name, value in offline_settings().items():
        config[name] = value
    versions = json.loads((VENDOR_DIR / "VERSIONS.json").read_text())
    logger.info(f"[offline_js] serving vendored JS from {VENDOR_DIR}: {versions}")


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _use_vendored_js)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
