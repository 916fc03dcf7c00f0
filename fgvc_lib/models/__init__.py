"""The generic model core: backbones (each with its input normalisation), shared blocks,
:class:`ModelOutput`, the :class:`FGVCModel` base and the :class:`StepContext` a method's
training step receives. The methods themselves live in :mod:`fgvc_lib.methods`.
"""
from fgvc_lib.models.backbones import Backbone, available_backbones, build_backbone
from fgvc_lib.models.base import FGVCModel
from fgvc_lib.models.output import ModelOutput
from fgvc_lib.models.step import StepContext

__all__ = ["Backbone", "FGVCModel", "ModelOutput", "StepContext", "available_backbones",
           "build_backbone"]
