"""No method's training step copies a value from the device to the host.

On a GPU every ``.item()``, ``.cpu()``, ``.tolist()``, ``.numpy()`` or Python
conditional on a tensor (``if t:``, ``float(t)``, ``int(t)``) inside a step waits for
the device to finish, so the next step cannot be queued behind it. The CPU has no such
wait, so this test counts the calls themselves: it wraps those Tensor methods during
one training step of every registered method (the optimiser's step included). On a GPU,
``torch.cuda.set_sync_debug_mode("error")`` around a step checks the same thing
(``benchmarks/bench_model.py --sync-check``).
"""
from __future__ import annotations

import contextlib
import traceback

import pytest
import torch

from fgvc_lib.methods import available_methods, build_model, get_spec
from fgvc_lib.models.step import StepContext

pytestmark = pytest.mark.usefixtures("one_thread")
HOST_COPIES = ("item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")


@contextlib.contextmanager
def count_host_copies():
    calls: list[str] = []
    originals = {name: getattr(torch.Tensor, name) for name in HOST_COPIES}

    def wrap(name, original):
        def counted(self, *args, **kwargs):
            where = traceback.extract_stack(limit=3)[0]
            calls.append(f"Tensor.{name} at {where.filename}:{where.lineno}")
            return original(self, *args, **kwargs)
        return counted

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        yield calls
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def test_the_counter_sees_a_host_copy():
    with count_host_copies() as calls:
        torch.ones(1).sum().item()
        if torch.ones(1):
            pass
    assert len(calls) == 2


@pytest.mark.parametrize("method", available_methods())
def test_training_step_makes_no_host_copies(method):
    torch.manual_seed(0)
    model = build_model(method, 4, backbone="resnet18",
                        **get_spec(method).profile_options.get("smoke", {})).train()  # CPU scale
    ctx = StepContext(forward=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01,
                                                               momentum=0.9),
                      generator=torch.Generator().manual_seed(0))
    images, targets = torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 3])
    model.training_step(ctx, images, targets)      # first step: lazy state is built
    with count_host_copies() as calls:
        model.training_step(ctx, images, targets)
    assert not calls, f"{method}: device-to-host copies in a training step: {calls}"
