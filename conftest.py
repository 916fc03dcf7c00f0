"""Repository-wide pytest configuration: loaded for every item under the repository
(``tests/`` and ``notebooks/``, each collected alone or both together).

The nbclient stall fix (owned by the book; keep this block self-contained): a notebook
that imports torch and shows an ipywidgets `interact` cell can make nbclient wait the
*whole* cell timeout for a reply the kernel already sent (jupyter/nbclient#312), which
`pytest --nbmake` would pay on every run. book/_ext/nbclient_poll.py (also a Sphinx
extension of the book) replaces nbclient's reply wait by short polling slices; it is
applied once for this pytest process.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path


def _apply_nbclient_poll_patch() -> None:
    if importlib.util.find_spec("nbclient") is None:
        return  # plain unit-test environments
    patch_file = Path(__file__).resolve().parent / "book" / "_ext" / "nbclient_poll.py"
    spec = importlib.util.spec_from_file_location("fgvc_book_nbclient_poll", patch_file)
    assert spec is not None and spec.loader is not None, f"cannot load {patch_file}"
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.apply()  # idempotent; warns (does not fail) if the installed nbclient changed shape


_apply_nbclient_poll_patch()
