"""fgvc_lib: fine-grained visual classification with cross-layer features.

The library behind the executable book: datasets (a synthetic fine-grained
set and loaders for the official archives), backbones with stage taps, one
package per paper under :mod:`fgvc_lib.methods` behind :func:`build_model`,
one trainer, attention tools and reports.
"""
from fgvc_lib.errors import FGVCError
from fgvc_lib.methods import available_methods, build_model, get_spec

__version__ = "0.1.0"
#: timm's spelling, kept for users who know it.
available_models = available_methods
__all__ = ["FGVCError", "__version__", "available_methods", "available_models", "build_model",
           "get_spec"]
