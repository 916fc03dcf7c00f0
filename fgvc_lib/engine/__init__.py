"""Training engine: one loop for all methods (see :mod:`fgvc_lib.engine.trainer`)."""
from fgvc_lib.models.step import StepContext
from fgvc_lib.engine.trainer import (Trainer, evaluate, load_trained_model, train,
                                     train_or_load)

__all__ = ["StepContext", "Trainer", "evaluate", "load_trained_model", "train", "train_or_load"]
