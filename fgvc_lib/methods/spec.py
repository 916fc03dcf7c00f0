"""What a method package declares: typed options and one :class:`MethodSpec`.

Every method package (``fgvc_lib/methods/<name>/``) defines, in its
``__init__.py``, a frozen dataclass of options (a subclass of
:class:`MethodOptions`) and one ``SPEC = MethodSpec(...)``. The options
validate themselves when built, know their types from their annotations
(so ``--opt key=value`` strings parse without per-method code) and turn
into the JSON a record keeps. The spec carries everything else the rest of
the library needs to know about the method, so that nothing outside the
method's folder names it.
"""
from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Literal, Mapping, Sequence

import torch.nn as nn

from fgvc_lib.errors import FGVCError
from fgvc_lib.io import parse_key_value


@dataclass(frozen=True)
class MethodOptions:
    """Base of every method's options: a frozen dataclass that checks itself.

    Subclasses declare fields with annotations (``int``, ``float``, ``bool``,
    ``str``, ``Literal[...]``, ``tuple[int, ...]``, ``X | None``) and
    defaults, and may override :meth:`check` for rules between fields
    (raise :class:`FGVCError` naming the fix). Types are checked here, once
    for all methods; ints are accepted where a float is annotated.
    """

    #: Shown in error messages ("CMAL-Net option cv ...").
    method_title: ClassVar[str] = "method"

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            coerced = _coerce(value, hints[f.name])
            if coerced is _BAD:
                choices = _choices(hints[f.name])
                if choices is not None and not isinstance(value, bool):
                    raise FGVCError(f"{self.method_title}: unknown {f.name} {value!r}",
                                    f"use one of: {', '.join(map(str, choices))}")
                raise FGVCError(
                    f"{self.method_title} option {f.name}={value!r} must be "
                    f"{_describe(hints[f.name])}", f"pass e.g. {f.name}={_example(f)}")
            if coerced is not value:
                object.__setattr__(self, f.name, coerced)
        self.check()

    def check(self) -> None:
        """Rules between options; the types are already right when this runs."""

    # -- building --------------------------------------------------------------
    @classmethod
    def names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "MethodOptions":
        """Options from keyword values; an unknown key is a one-line error listing the known."""
        unknown = sorted(set(values) - set(cls.names()))
        if unknown:
            raise FGVCError(f"{cls.method_title} has no option(s) {unknown}",
                            f"use only: {', '.join(sorted(cls.names()))}")
        return cls(**dict(values))

    @classmethod
    def parse(cls, items: Sequence[str]) -> "MethodOptions":
        """Options from ``KEY=VALUE`` strings (``--opt t=0.5 --opt pooling=avg``)."""
        return cls.from_dict(dict(parse_key_value(item) for item in items))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (tuples as lists), every option included."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in dataclasses.fields(self)}

    def to_strings(self) -> list[str]:
        """``KEY=VALUE`` strings that :meth:`parse` turns back into these options."""
        return [f"{k}={json.dumps(v)}" for k, v in self.to_dict().items()]


@dataclass(frozen=True)
class ReleasedLoop:
    """The authors' released training loop, timed on the kind of GPU named: the anchor
    of the method's speed target (``benchmarks/``)."""

    img_per_s: float
    speedup_target: float
    setting: str


@dataclass(frozen=True)
class MethodSpec:
    """Everything the library needs to know about one method.

    Attributes
    ----------
    name: the id users type (``--method``), also the package name.
    title: how the book writes it (``"CMAL-Net"``).
    options: the method's :class:`MethodOptions` subclass.
    build: ``build(num_classes, backbone, pretrained, weights, options) -> nn.Module``.
    default_backbone: used when no backbone is given.
    paper_recipe: the paper's training settings (keys of ``TrainConfig``); the
        ``full`` profile uses them.
    backbone_recipe: backbone name -> settings that replace ``paper_recipe``'s for
        that backbone in the ``full`` profile (CMAL-Net trains TResNet-L at 368 px).
    profile_options: per-profile option defaults that only set the scale
        (``{"smoke": {"cv": 256}}``).
    comparison_maps: attention map label -> name in ``ModelOutput.attention``
        (or ``"gradcam:<head>"``), shown side by side in the comparison chapter.
    released_loop: the released code's training speed, where measured.
    tables_file: the paper's tables as JSON (see :mod:`fgvc_lib.reports.tables`).
    legacy_defaults: option values that were the defaults before records kept
        every option (``resolved_options``); an older record ran with these.
    chapter: the notebook that teaches the method.
    """

    name: str
    title: str
    options: type[MethodOptions]
    build: Callable[..., nn.Module]
    default_backbone: str = "resnet50"
    paper_recipe: Mapping[str, Any] = field(default_factory=dict)
    backbone_recipe: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    profile_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    comparison_maps: Mapping[str, str] = field(default_factory=dict)
    released_loop: ReleasedLoop | None = None
    tables_file: Path | None = None
    legacy_defaults: Mapping[str, Any] = field(default_factory=dict)
    chapter: str = ""

    def default_options(self, profile: str | None = None) -> dict[str, Any]:
        """Every option at its default; with ``profile``, that profile's scale defaults
        (``profile_options``) applied, as ``resolve_config`` applies them to a run."""
        return self.make_options(self.profile_options.get(profile, {}) if profile else {}).to_dict()

    def make_options(self, values: Mapping[str, Any]) -> MethodOptions:
        return self.options.from_dict(values)


# -- annotation-driven type checks -----------------------------------------------
_BAD = object()


def _coerce(value: Any, hint: Any) -> Any:
    """``value`` as the annotated type, or ``_BAD``. Lists become tuples where a tuple
    is annotated (JSON has no tuples); an int is accepted for a float."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        for arm in typing.get_args(hint):
            out = _coerce(value, arm)
            if out is not _BAD:
                return out
        return _BAD
    if hint is type(None):
        return value if value is None else _BAD
    if origin is Literal:
        # type() too, so that True does not pass for 1 nor 1 for True.
        return value if any(value == a and type(value) is type(a)
                            for a in typing.get_args(hint)) else _BAD
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            return _BAD
        args = typing.get_args(hint)
        item_hint = args[0] if len(args) == 2 and args[1] is Ellipsis else None
        if item_hint is None and len(args) != len(value):
            return _BAD
        items = [_coerce(v, item_hint if item_hint is not None else a)
                 for v, a in zip(value, [item_hint] * len(value) if item_hint is not None else args)]
        return _BAD if any(i is _BAD for i in items) else tuple(items)
    if hint is bool:
        return value if isinstance(value, bool) else _BAD
    if hint is int:
        return value if isinstance(value, int) and not isinstance(value, bool) else _BAD
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _BAD
        return float(value) if isinstance(value, int) else value
    if hint is str:
        return value if isinstance(value, str) else _BAD
    return value  # an annotation this base does not know: the subclass's check() decides


def _choices(hint: Any) -> tuple[Any, ...] | None:
    """The allowed values of a ``Literal`` annotation (``None`` for other types)."""
    return typing.get_args(hint) if typing.get_origin(hint) is Literal else None


def _describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(hint))
    if hint is type(None):
        return "null"
    if origin is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if origin is tuple:
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list, each item {_describe(args[0])}"
        return "a list (" + ", ".join(_describe(a) for a in args) + ")"
    names = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def _example(f: dataclasses.Field) -> str:
    return json.dumps(_jsonable(_default(f)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value
