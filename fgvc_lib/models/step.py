"""What a method's training step gets from the trainer.

A method decides how one batch trains (one optimiser step for most papers,
N+2 for CMAL-Net); the trainer owns everything else (devices, autocast,
DDP, schedules, checkpoints). The contract between them is
:class:`StepContext`.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Callable, ContextManager

import torch

from fgvc_lib.models.output import ModelOutput


@dataclass
class StepContext:
    """Handed to ``model.training_step(ctx, images, targets)``.

    Attributes
    ----------
    forward: call this, not the model, to run a forward pass: it is the
        compiled and/or DDP-wrapped model, so gradients get synchronised.
    optimizer: the one optimiser (parameter groups carry their own lrs).
    generator: seeded per epoch; use it for every random choice a method
        makes (e.g. CMAL's mutual data augmentation) so resume is exact.
    autocast: context manager factory for the forward pass (bf16 on CUDA).
    """

    forward: Callable[[torch.Tensor], ModelOutput]
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    autocast: Callable[[], ContextManager] = contextlib.nullcontext
    grad_clip_norm: float | None = None
    params: list[torch.nn.Parameter] = field(default_factory=list)
    optimizer_steps: int = 0

    def step(self, loss: torch.Tensor) -> None:
        """One optimiser step on ``loss``: zero grads, backward, clip, step.

        Gradients are zeroed with ``set_to_none`` so heads outside ``loss``
        get no update at all (SGD skips parameters whose grad is None, so
        neither weight decay nor momentum moves them in that step).
        """
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip_norm:
            torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip_norm)
        self.optimizer.step()
        self.optimizer_steps += 1
