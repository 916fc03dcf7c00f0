"""Every registered method is one package with the same parts, and typed options.

What a reader or a new paper's author relies on: ``fgvc_lib/methods/<name>/`` holds
the model, the options, the paper's tables and the chapter's figures; the options
round-trip through ``--opt KEY=VALUE`` strings and refuse a wrong key or type with
one line that names the fix.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import typing
from pathlib import Path

import pytest

from fgvc_lib.errors import FGVCError
from fgvc_lib.methods import PACKAGES, MethodOptions, available_methods, build_model, get_spec

METHODS_DIR = Path(__file__).resolve().parents[2] / "fgvc_lib" / "methods"


def test_the_registry_lists_exactly_the_packages_in_the_book_order():
    assert available_methods() == list(PACKAGES)
    folders = sorted(p.name for p in METHODS_DIR.iterdir()
                     if p.is_dir() and (p / "__init__.py").exists())
    assert folders == sorted(PACKAGES), "a method folder that is not registered, or vice versa"


@pytest.mark.parametrize("name", PACKAGES)
def test_a_method_folder_holds_model_options_tables_and_figures(name):
    folder = METHODS_DIR / name
    for part in ("__init__.py", "model.py", "options.py", "figures.py", "tables.json"):
        assert (folder / part).is_file(), f"{name}/{part} is missing"
    spec = get_spec(name)
    assert spec.name == name and spec.title
    assert issubclass(spec.options, MethodOptions)
    assert dataclasses.is_dataclass(spec.options) and spec.options.__dataclass_params__.frozen
    assert Path(spec.tables_file) == folder / "tables.json"
    tables = json.loads((folder / "tables.json").read_text())
    assert set(tables) == {"paper", "tables"}
    assert all(t["id"].startswith(f"{name}.") for t in tables["tables"])
    importlib.import_module(f"fgvc_lib.methods.{name}.figures")
    assert (Path(__file__).parent / f"test_{name}.py").is_file(), "one test file per method"


@pytest.mark.parametrize("name", PACKAGES)
def test_options_round_trip_through_opt_strings(name):
    spec = get_spec(name)
    for values in ({}, *spec.profile_options.values()):
        options = spec.options.from_dict(values)
        strings = options.to_strings()
        assert all("=" in s for s in strings) and len(strings) == len(spec.options.names())
        assert spec.options.parse(strings) == options
        assert json.loads(json.dumps(options.to_dict())) == options.to_dict()


def _wrong_value(hint) -> object:
    """A value of the wrong type for an annotation: a string where a number or flag
    is expected, a number where a string or a choice is."""
    origin = typing.get_origin(hint)
    if origin is typing.Literal or hint is str:
        return 12345
    if origin is tuple:
        return 5
    return "not-a-number"


@pytest.mark.parametrize("name", PACKAGES)
def test_a_wrong_type_or_unknown_key_is_refused_in_one_line(name):
    spec = get_spec(name)
    hints = typing.get_type_hints(spec.options)
    for field in dataclasses.fields(spec.options):
        bad = _wrong_value(hints[field.name])
        with pytest.raises(FGVCError) as info:
            spec.options.from_dict({field.name: bad})
        message = str(info.value)
        assert "\n" not in message and "-> fix:" in message and field.name in message
    with pytest.raises(FGVCError, match="has no option") as info:
        spec.options.parse(["no_such_option=1"])
    assert "\n" not in str(info.value)
    with pytest.raises(FGVCError, match="KEY=VALUE"):
        spec.options.parse(["justakey"])


def test_opt_strings_parse_as_json_or_plain_text():
    opts = get_spec("cmal").options.parse(["t=0.3", "pooling=avg", "expert_stages=[2, 3]",
                                           "test_on_oval=false", "cv=16"])
    assert (opts.t, opts.pooling, opts.expert_stages, opts.test_on_oval, opts.cv) == (
        0.3, "avg", (2, 3), False, 16)
    assert isinstance(get_spec("cmal").options.parse(["t=1"]).t, float), "an int is a float"
    with pytest.raises(FGVCError, match="true or false"):
        get_spec("cmal").options.parse(["test_on_oval=1"])


def test_build_model_refuses_what_the_options_refuse():
    with pytest.raises(FGVCError, match="has no option"):
        build_model("baseline", 3, backbone="resnet18", t=0.5)
    with pytest.raises(FGVCError, match="unknown pooling"):
        build_model("baseline", 3, backbone="resnet18", pooling="median")
