"""Models: one module per paper, shared blocks in :mod:`fgvc_lib.models.blocks`.

Importing this package registers every model with the registry.
"""
from fgvc_lib.models import baseline, cmal, cross_x  # noqa: F401  (registers the models)
from fgvc_lib.models.backbones import Backbone, available_backbones, build_backbone
from fgvc_lib.models.output import ModelOutput
from fgvc_lib.models.registry import available_models, build_model, register_model

__all__ = ["Backbone", "ModelOutput", "available_backbones", "available_models", "build_backbone",
           "build_model", "register_model"]
