"""A compiled training step does not recompile once warmed up (issue: --compile slower than eager).

The trainer wraps the model in ``torch.compile``; a graph rebuilt every step would make
a compiled run slower than an eager one. The warm-up here is what a run does before its
steady state: training steps, one evaluation forward (train/eval is a guarded flag, so it
builds a second graph), then training again. After that, ``error_on_recompile`` turns any
further compilation into an error. The ``eager`` backend keeps dynamo's tracing, guards
and graph cache (what decides recompiles) without inductor's code generation, so the test
runs on the CPU in seconds.
"""
from __future__ import annotations

import pytest
import torch

from fgvc_lib.methods import available_methods, build_model, get_spec
from fgvc_lib.models.step import StepContext

pytestmark = pytest.mark.usefixtures("one_thread")
SIZE = 32


@pytest.mark.parametrize("method", available_methods())
def test_compiled_step_does_not_recompile_after_warmup(method):
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    torch.manual_seed(0)
    model = build_model(method, 4, backbone="resnet18",
                        **get_spec(method).profile_options.get("smoke", {}))  # CPU scale
    forward = torch.compile(model, backend="eager")
    ctx = StepContext(forward=forward, optimizer=torch.optim.SGD(model.parameters(), lr=0.01),
                      generator=torch.Generator().manual_seed(0))
    images, targets = torch.randn(4, 3, SIZE, SIZE), torch.tensor([0, 1, 2, 3])

    def epoch() -> None:
        model.train()
        for _ in range(2):
            model.training_step(ctx, images, targets)
        model.eval()
        with torch.no_grad():
            forward(images)

    epoch()  # warm-up: the training and the evaluation graphs
    warm = counters["stats"]["unique_graphs"]
    assert warm >= 1, "nothing was compiled: the test would pass vacuously"
    with torch._dynamo.config.patch(error_on_recompile=True):
        epoch()
    assert counters["stats"]["unique_graphs"] == warm
