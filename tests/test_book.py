"""The book's configuration, table of contents and build helpers (no book build: too slow).

What a reader or CI would otherwise discover only after a multi-minute
``jupyter-book build``: a config key Jupyter Book rejects, a toc entry without
a file, a notebook missing from the toc (or the other way round), a citation
key not in ``references.bib``, and a broken nbclient stall patch.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import re
import sys
from pathlib import Path
from queue import Empty
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

import yaml

REPO = Path(__file__).resolve().parents[1]
BOOK = REPO / "book"
NOTEBOOKS = REPO / "notebooks"
# The chapters of this edition, in reading order (the intro comes first, the
# bibliography last). CN-CNN, Coarse2Fine and CNL are announced in the intro
# and get toc entries when their notebooks exist.
EXPECTED_NOTEBOOKS = [
    "00_setup_and_data", "01_baseline", "02_cmal_net", "03_cross_x", "04_cnl", "05_cn_cnn",
    "06_coarse2fine",
    "07_comparison",
]


def _load_book_module(relative: str) -> ModuleType:
    path = BOOK / relative
    spec = importlib.util.spec_from_file_location(f"book_test_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _toc_docnames() -> list[str]:
    """Every document of book/_toc.yml in reading order (root first).

    Read with plain YAML (no Jupyter Book needed) following the jb-book
    layout: root, then parts -> chapters -> sections, depth first.
    """
    toc = yaml.safe_load((BOOK / "_toc.yml").read_text())
    assert toc.get("format") == "jb-book", "book/_toc.yml must use `format: jb-book`"
    ordered = [toc["root"]]

    def visit(entries: list[dict[str, Any]]) -> None:
        for entry in entries:
            assert "glob" not in entry and "url" not in entry, (
                f"book/_toc.yml: use explicit `file:` entries, found {entry}")
            if "file" in entry:
                ordered.append(entry["file"])
            for key in ("parts", "chapters", "sections"):
                visit(entry.get(key, []))

    visit([{key: toc[key]} for key in ("parts", "chapters") if key in toc])
    return ordered


def _source_file(docname: str) -> Path | None:
    for suffix in (".md", ".ipynb"):
        if (REPO / f"{docname}{suffix}").is_file():
            return REPO / f"{docname}{suffix}"
    return None


# ---------------------------------------------------------------- configuration


def test_config_passes_jupyter_book_validation_and_resolves():
    pytest.importorskip("jupyter_book", reason="the book extra (jupyter-book<2) is not installed")
    from jupyter_book.config import get_final_config, validate_yaml
    from sphinx_external_toc.parsing import parse_toc_yaml

    # the toc parses as the build parses it, with the same documents in the same order
    assert list(parse_toc_yaml(BOOK / "_toc.yml")) == _toc_docnames()

    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    validate_yaml(config, raise_on_errors=True)
    # what `jupyter-book build . --config book/_config.yml --toc book/_toc.yml` resolves
    cli_config = {"external_toc_path": "book/_toc.yml", "latex_individualpages": False}
    sphinx_config, _ = get_final_config(user_yaml=BOOK / "_config.yml", cli_config=cli_config,
                                        sourcedir=REPO, raise_on_invalid=True)
    assert {"nbclient_poll", "offline_js", "book_buttons", "sphinxcontrib.bibtex"} <= set(
        sphinx_config["extensions"])
    # the book's CSS/JS (wide tables scroll, captions outside, code wraps) exist and load
    for folder in sphinx_config["html_static_path"]:
        for name in sphinx_config["html_css_files"] + sphinx_config["html_js_files"]:
            assert (REPO / folder / name).is_file() or not (REPO / folder).is_dir(), name
    assert any((REPO / folder / "book.css").is_file() for folder in sphinx_config["html_static_path"])
    # notebooks train for minutes in the smoke profile: the 30 s default would kill them
    assert sphinx_config["nb_execution_timeout"] >= 600
    assert sphinx_config["nb_execution_mode"] in {"force", "cache"}
    assert sphinx_config["nb_execution_raise_on_error"] is True
    assert sphinx_config["external_toc_exclude_missing"] is True  # only toc files become pages


def test_launch_buttons_follow_the_one_repository_setting():
    pytest.importorskip("jupyter_book", reason="the book extra (jupyter-book<2) is not installed")
    from jupyter_book.config import get_final_config

    buttons = _load_book_module("_ext/book_buttons.py")
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    assert set(config["repository"]) == {"url", "path_to_book", "branch"}
    assert config["launch_buttons"]["colab_url"] and config["launch_buttons"]["binderhub_url"]
    for url in ("", "https://github.com/someone/fgvc-book"):
        config["repository"]["url"] = url
        sphinx_config, _ = get_final_config(
            user_yaml=config, cli_config={"external_toc_path": "book/_toc.yml",
                                          "latex_individualpages": False}, sourcedir=REPO)
        theme = buttons.launch_settings(sphinx_config["html_theme_options"])
        assert theme.get("repository_url", "") == url  # not Jupyter Book's own default
        assert theme.get("path_to_docs", "") == ""  # notebooks/<chapter>.ipynb from the root
        launch = theme["launch_buttons"]
        if url:
            assert launch["colab_url"] == "https://colab.research.google.com"
            assert launch["binderhub_url"] == "https://mybinder.org"
        else:  # no repository: no launch links at all (the theme would fail on them)
            assert not any(launch.get(key) for key in buttons.LAUNCH_KEYS)


def test_config_paths_exist_and_big_folders_are_excluded():
    config = yaml.safe_load((BOOK / "_config.yml").read_text())
    for bib in config["bibtex_bibfiles"]:
        assert (REPO / bib).is_file(), f"bibtex file {bib} (relative to the repository root) missing"
    for name, folder in config["sphinx"]["local_extensions"].items():
        assert (BOOK / folder / f"{name}.py").is_file(), f"local extension {name} not in book/{folder}"
    for pattern in (".*", "**/_build", "**/node_modules", "book/README.md"):
        assert pattern in config["exclude_patterns"], f"exclude_patterns lacks {pattern!r}"


# ---------------------------------------------------------------- table of contents


def test_every_toc_entry_has_a_file():
    missing = [name for name in _toc_docnames() if _source_file(name) is None]
    assert not missing, (
        f"book/_toc.yml lists documents without a .md or .ipynb file: {missing} "
        "(paths are relative to the repository root)"
    )


def test_toc_starts_with_intro_and_ends_with_bibliography():
    names = _toc_docnames()
    assert names[0] == "book/intro"
    assert names[-1] == "book/bibliography"
    assert all(name.startswith(("book/", "notebooks/")) for name in names), names


def test_toc_chapters_are_exactly_the_notebooks_in_order():
    toc_notebooks = [name.removeprefix("notebooks/") for name in _toc_docnames()
                     if name.startswith("notebooks/")]
    assert toc_notebooks == EXPECTED_NOTEBOOKS, "book/_toc.yml chapters changed: update this test"
    on_disk = sorted(path.stem for path in NOTEBOOKS.glob("*.ipynb"))
    not_written = [name for name in toc_notebooks if name not in on_disk]
    not_in_toc = [name for name in on_disk if name not in toc_notebooks]
    assert not not_written and not not_in_toc, (
        f"notebooks listed in book/_toc.yml but missing from notebooks/: {not_written}; "
        f"notebooks in notebooks/ missing from book/_toc.yml: {not_in_toc}"
    )


def test_every_registered_method_has_its_chapter_in_the_toc():
    from fgvc_lib.methods import available_methods, get_spec

    toc = _toc_docnames()
    missing = {name: get_spec(name).chapter for name in available_methods()
               if f"notebooks/{get_spec(name).chapter}" not in toc}
    assert not missing, f"methods whose chapter (SPEC.chapter) is not in book/_toc.yml: {missing}"


def test_every_cited_key_is_in_references_bib():
    keys = set(re.findall(r"^@\w+\{([^,\s]+),", (BOOK / "references.bib").read_text(), re.M))
    pages = {_source_file(name) for name in _toc_docnames()} | set(NOTEBOOKS.glob("*.ipynb"))
    sources: dict[Path, str] = {}
    for path in filter(None, pages):
        if path.suffix == ".ipynb":
            cells = json.loads(path.read_text())["cells"]
            sources[path] = "\n".join("".join(cell["source"]) for cell in cells
                                      if cell["cell_type"] == "markdown")
        else:
            sources[path] = path.read_text()
    cited: dict[str, set[str]] = {}
    for path, text in sources.items():
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", text):
            for key in group.split(","):
                cited.setdefault(key.strip(), set()).add(path.name)
    unknown = {key: sorted(files) for key, files in cited.items() if key not in keys}
    assert not unknown, f"citation keys not in book/references.bib: {unknown}"
    assert {"liu2023cmalnet", "guo2021cncnn", "eshratifar2019coarse2fine", "luo2019crossx",
            "ye2020cnl"} <= set(cited), "the intro must cite all five papers"


# ---------------------------------------------------------------- build helpers


def test_offline_js_and_vendor_script_agree_on_the_entry_files():
    offline_js = _load_book_module("_ext/offline_js.py")
    vendor_js = _load_book_module("vendor_js.py")
    assert offline_js.ENTRY_FILES == vendor_js.ENTRY_FILES
    settings = offline_js.offline_settings()
    # Sphinx anchors relative JS paths at _static/; html_extra_path puts vendor/ at the site root
    assert settings["mathjax_path"] == "../vendor/" + vendor_js.ENTRY_FILES[0]
    assert list(settings["nb_ipywidgets_js"]) == ["../vendor/" + entry
                                                 for entry in vendor_js.ENTRY_FILES[1:]]


class _FakeShellChannel:
    """Answers get_msg like jupyter_client: Empty until the reply is 'on the socket'."""

    def __init__(self, empty_polls: int, reply: dict[str, Any] | None):
        self.empty_polls = empty_polls
        self.reply = reply
        self.timeouts: list[float | None] = []

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        self.timeouts.append(timeout)
        if len(self.timeouts) <= self.empty_polls or self.reply is None:
            await asyncio.sleep(0)
            raise Empty
        return self.reply


def _fake_client(channel: _FakeShellChannel) -> Any:
    async def handle_timeout(timeout: int, cell: Any) -> dict[str, Any]:
        client.timeouts_handled += 1
        return {"content": {"status": "error", "ename": "Timeout"}}

    async def check_alive() -> None:
        return None

    client = SimpleNamespace(
        kc=SimpleNamespace(shell_channel=channel), record_timing=False, iopub_timeout=1,
        raise_on_iopub_timeout=False, log=SimpleNamespace(warning=print),
        _async_handle_timeout=handle_timeout, _async_check_alive=check_alive,
        timeouts_handled=0,
    )
    return client


async def _run_poll(module: ModuleType, channel: _FakeShellChannel, timeout: int | None) -> Any:
    client = _fake_client(channel)
    loop = asyncio.get_running_loop()
    output_done, alive = loop.create_future(), loop.create_future()
    output_done.set_result(None)
    reply = await module._sliced_poll_for_reply(client, "m-1", {"metadata": {}}, timeout,
                                                 output_done, alive)
    assert alive.cancelled()  # the kernel-liveness poller is stopped, as nbclient does
    return client, reply


def test_nbclient_patch_polls_in_short_slices_until_the_reply():
    module = _load_book_module("_ext/nbclient_poll.py")
    reply = {"parent_header": {"msg_id": "m-1"}, "content": {"status": "ok"}}
    channel = _FakeShellChannel(empty_polls=3, reply=reply)
    client, got = asyncio.run(_run_poll(module, channel, timeout=900))
    assert got is reply and client.timeouts_handled == 0
    # each wait is a short slice, never the whole 900 s cell timeout
    assert len(channel.timeouts) == 4
    assert all(t is not None and t <= module.POLL_SLICE_SECONDS for t in channel.timeouts)


def test_nbclient_patch_keeps_nbclients_timeout_handling():
    module = _load_book_module("_ext/nbclient_poll.py")
    module.POLL_SLICE_SECONDS = 0.01  # this module copy only
    channel = _FakeShellChannel(empty_polls=0, reply=None)  # the kernel never answers
    client, got = asyncio.run(_run_poll(module, channel, timeout=1))
    assert client.timeouts_handled == 1  # after the cell's 1 s, not after the first slice
    assert got["content"]["ename"] == "Timeout" and got["parent_header"]["msg_id"] == "m-1"
    assert len(channel.timeouts) > 10


def test_nbclient_patch_is_applied_in_this_pytest_process():
    # the root conftest.py applies it, so `pytest --nbmake` runs get it too
    nbclient = pytest.importorskip("nbclient")
    method = nbclient.NotebookClient._async_poll_for_reply
    assert getattr(method, "_fgvc_sliced_poll", False), "conftest.py did not apply the patch"
    module = _load_book_module("_ext/nbclient_poll.py")
    assert module.is_applied() and module.apply()  # idempotent across module copies
