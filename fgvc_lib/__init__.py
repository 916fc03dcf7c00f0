"""fgvc_lib: fine-grained visual classification with cross-layer features.

The library behind the executable book: datasets (a synthetic fine-grained
set and loaders for the official archives), backbones with stage taps, one
model per paper behind :func:`build_model`, one trainer, attention tools.
"""
from fgvc_lib.errors import FGVCError
from fgvc_lib.models.registry import available_models, build_model

__version__ = "0.1.0"
__all__ = ["FGVCError", "__version__", "available_models", "build_model"]
