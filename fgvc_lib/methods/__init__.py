"""The methods: one package per paper, the baseline included, and the registry over them.

Layout
------
Each method lives in ``fgvc_lib/methods/<name>/``::

    __init__.py   Options (a frozen MethodOptions dataclass) and SPEC (a MethodSpec):
                  title, builder, default backbone, paper recipe, per-profile
                  option defaults, attention maps for the comparison, the
                  released-code speed anchor, the tables file
    model.py      the network and its training step
    <blocks>.py   blocks and losses that only this method uses
    figures.py    the chapter's analysis and figure helpers
    tables.json   the paper's tables as data (fgvc_lib.reports.tables)

Layering (a test checks it on the import graph): ``errors``/``io`` <- ``data``
<- ``models`` (the generic core: backbones, shared blocks, ModelOutput,
StepContext) <- ``methods`` <- ``config`` <- ``engine`` <- ``reports`` <-
``notebook``/``cli``. ``data`` imports nothing above it; the model core never
imports a method, the engine or the reports; nothing outside a method's
folder names its id except :data:`PACKAGES` below.

How to add a paper
------------------
1. Create ``fgvc_lib/methods/<name>/`` with the files above (copy the
   baseline's ``__init__.py`` as a template) and add ``"<name>"`` to
   :data:`PACKAGES`.
2. Add ``tests/methods/test_<name>.py`` and ``notebooks/NN_<name>.ipynb``.
3. Add the notebook to ``book/_toc.yml``.
The CLI (``fgvc models``), the comparison chapter and the benchmarks find
the method through this registry.
"""
from __future__ import annotations

import importlib
from functools import lru_cache
from typing import Any

import torch.nn as nn

from fgvc_lib.errors import FGVCError, unknown_name_error
from fgvc_lib.methods.spec import MethodOptions, MethodSpec, ReleasedLoop

#: The one list of method packages (in the book's order).
PACKAGES: tuple[str, ...] = ("baseline", "cmal", "cross_x", "cnl", "cn_cnn", "coarse2fine")


@lru_cache(maxsize=None)
def _specs() -> dict[str, MethodSpec]:
    specs: dict[str, MethodSpec] = {}
    for package in PACKAGES:
        module = importlib.import_module(f"{__name__}.{package}")
        spec: MethodSpec = module.SPEC
        if spec.name != package:
            raise RuntimeError(f"fgvc_lib.methods.{package} declares SPEC.name={spec.name!r}")
        specs[spec.name] = spec
    return specs


def available_methods() -> list[str]:
    """Method ids in the book's order."""
    return list(_specs())


def get_spec(name: str) -> MethodSpec:
    """The :class:`MethodSpec` of ``name``; an unknown name is a one-line error."""
    specs = _specs()
    if name not in specs:
        raise unknown_name_error("method", name, list(specs))
    return specs[name]


def build_model(name: str, num_classes: int, backbone: str | None = None,
                pretrained: bool = False, weights: str | None = None,
                **options: Any) -> nn.Module:
    """Build a registered method, in the spirit of ``timm.create_model``.

    Parameters
    ----------
    name: one of :func:`available_methods` (``"baseline"``, ``"cmal"``, ...).
    num_classes: number of classes K of the dataset.
    backbone: see :func:`fgvc_lib.models.backbones.available_backbones`;
        ``None`` picks the method's default.
    pretrained: load ImageNet weights for the backbone.
    weights: a local backbone weights file (implies pretrained weights).
    options: the method's options (fields of its ``Options`` dataclass, e.g.
        ``cv=1024`` for CMAL-Net); unknown names and wrong types are refused.
    """
    spec = get_spec(name)
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise FGVCError(f"num_classes must be an integer >= 2, got {num_classes!r}",
                        "pass the number of classes of your dataset")
    opts = spec.make_options(options)
    backbone = backbone or spec.default_backbone
    model = spec.build(num_classes, backbone, pretrained, weights, opts)
    # Recorded so checkpoints can refuse a mismatched method or class count, and so a
    # record says every option the model ran with, defaults included: a later change of
    # a default must not silently change what an old record or checkpoint means.
    model.fgvc_spec = {"method": name, "num_classes": num_classes, "backbone": backbone,
                       "options": dict(options), "resolved_options": opts.to_dict()}
    return model


def recorded_options(spec: dict[str, Any]) -> dict[str, Any]:
    """Every option the run behind ``spec`` (a record's or a checkpoint's) used.

    Newer specs say so themselves (``resolved_options``); for older ones the options
    given are completed with the defaults of that time (the method's
    ``legacy_defaults``), so that a default changed since is not mistaken for what
    the run did.
    """
    method = get_spec(spec["method"])
    if "resolved_options" in spec:
        # An option missing from a resolved record was added after the run: the run did
        # what the code did before it existed (its legacy value), else its default.
        return {**method.default_options(), **method.legacy_defaults, **spec["resolved_options"]}
    return {**method.default_options(), **method.legacy_defaults, **spec.get("options", {})}


__all__ = ["MethodOptions", "MethodSpec", "PACKAGES", "ReleasedLoop", "available_methods",
           "build_model", "get_spec", "recorded_options"]
