"""Model registry, in the spirit of ``timm.create_model``.

A model module registers a builder with :func:`register_model`; users call
:func:`build_model` with the name. Builders take ``num_classes``,
``backbone``, ``pretrained`` and any paper-specific keyword options.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable

import torch.nn as nn

from fgvc_lib.errors import FGVCError, unknown_name_error

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_DEFAULT_BACKBONES: dict[str, str] = {}
_RECIPES: dict[str, dict[str, Any]] = {}
_OPTIONS: dict[str, tuple[str, ...]] = {}


def register_model(name: str, default_backbone: str = "resnet50",
                   paper_recipe: dict[str, Any] | None = None,
                   options: tuple[str, ...] | None = None) -> Callable:
    """Decorator: register ``fn(num_classes, backbone, pretrained, **opts) -> nn.Module``.

    ``paper_recipe`` holds the paper's training settings (keys of
    :class:`fgvc_lib.config.TrainConfig`); the ``full`` profile uses them.
    ``options`` names the method's keyword options; :func:`build_model`
    refuses any other with an error that lists them.
    """

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _MODELS:
            raise RuntimeError(f"model {name!r} registered twice")
        _MODELS[name] = fn
        _DEFAULT_BACKBONES[name] = default_backbone
        _RECIPES[name] = dict(paper_recipe or {})
        if options is not None:
            _OPTIONS[name] = tuple(options)
        return fn

    return wrap


def available_models() -> list[str]:
    """Names accepted by :func:`build_model`, sorted."""
    _import_model_modules()
    return sorted(_MODELS)


def paper_recipe(name: str) -> dict[str, Any]:
    """The paper's training settings registered for method ``name``."""
    _import_model_modules()
    if name not in _MODELS:
        raise unknown_name_error("method", name, list(_MODELS))
    return dict(_RECIPES[name])


def default_backbone(name: str) -> str:
    _import_model_modules()
    if name not in _MODELS:
        raise unknown_name_error("method", name, list(_MODELS))
    return _DEFAULT_BACKBONES[name]


def build_model(
    name: str,
    num_classes: int,
    backbone: str | None = None,
    pretrained: bool = False,
    **paper_options: Any,
) -> nn.Module:
    """Build a registered model.

    Parameters
    ----------
    name: one of :func:`available_models` (``"baseline"``, ``"cmal"``, ...).
    num_classes: number of classes K of the dataset.
    backbone: backbone name (see :func:`fgvc_lib.models.backbones.available_backbones`);
        ``None`` picks the method's default.
    pretrained: load ImageNet weights for the backbone.
    paper_options: method-specific options (e.g. ``cv=1024`` for CMAL).
    """
    _import_model_modules()
    if name not in _MODELS:
        raise unknown_name_error("method", name, list(_MODELS))
    if not isinstance(num_classes, int) or num_classes < 2:
        raise FGVCError(f"num_classes must be an integer >= 2, got {num_classes!r}",
                        "pass the number of classes of your dataset")
    backbone = backbone or _DEFAULT_BACKBONES[name]
    unknown = sorted(set(paper_options) - set(_OPTIONS.get(name, paper_options)) - {"weights"})
    if unknown:
        raise FGVCError(f"method {name!r} has no option(s) {unknown}",
                        f"use only: {', '.join(sorted(_OPTIONS[name]))}")
    # A local weights file only matters at construction; it is not part of the spec.
    weights = paper_options.pop("weights", None)
    extra = {"weights": weights} if weights is not None else {}
    try:
        model = _MODELS[name](num_classes=num_classes, backbone=backbone, pretrained=pretrained,
                              **extra, **paper_options)
    except TypeError as exc:
        if "unexpected keyword argument" not in str(exc):
            raise
        raise FGVCError(f"method {name!r} has no option: {exc}",
                        f"see help(fgvc_lib.models.{name}) for the options it accepts") from exc
    # Recorded so checkpoints can refuse a mismatched method or class count, and so a
    # record says every option the model ran with, defaults included: a later change of
    # a default must not silently change what an old record or checkpoint means.
    model.fgvc_spec = {"method": name, "num_classes": num_classes, "backbone": backbone,
                       "options": dict(paper_options),
                       "resolved_options": resolved_options(name, paper_options)}
    return model


# Defaults that changed before records and checkpoints kept their resolved options
# (commit 9934820): a spec without ``resolved_options`` ran with these old values.
DEFAULTS_BEFORE_RESOLVED_OPTIONS: dict[str, dict[str, Any]] = {
    "cross_x": {"data_loss": "mixture"},   # "per_branch" since commit cdb7100
}


def default_options(name: str) -> dict[str, Any]:
    """The method options of ``name`` at their current defaults (JSON-ready: tuples as lists)."""
    _import_model_modules()
    if name not in _MODELS:
        raise unknown_name_error("method", name, list(_MODELS))
    allowed = set(_OPTIONS.get(name, ()))
    builder = inspect.signature(_MODELS[name], eval_str=True)
    # Builders pass options on to the model class they return; its __init__ holds the defaults.
    signatures = [builder]
    if inspect.isclass(builder.return_annotation):
        signatures.insert(0, inspect.signature(builder.return_annotation))
    defaults: dict[str, Any] = {}
    for signature in signatures:
        for param in signature.parameters.values():
            if param.name in allowed and param.default is not inspect.Parameter.empty:
                default = param.default
                defaults[param.name] = list(default) if isinstance(default, tuple) else default
    return defaults


def resolved_options(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """Every method option a model of ``name`` built with ``given`` runs with, defaults included."""
    return {**default_options(name), **given}


def recorded_options(spec: dict[str, Any]) -> dict[str, Any]:
    """Every option the run behind ``spec`` (a record's or a checkpoint's) used.

    Newer specs say so themselves (``resolved_options``); for older ones the options
    given are completed with the defaults of that time, so that a default changed since
    (:data:`DEFAULTS_BEFORE_RESOLVED_OPTIONS`) is not mistaken for what the run did.
    """
    if "resolved_options" in spec:
        return dict(spec["resolved_options"])
    legacy = DEFAULTS_BEFORE_RESOLVED_OPTIONS.get(spec["method"], {})
    return {**default_options(spec["method"]), **legacy, **spec.get("options", {})}


def _import_model_modules() -> None:
    # Importing registers; done lazily so `import fgvc_lib` stays cheap.
    import fgvc_lib.models  # noqa: F401
