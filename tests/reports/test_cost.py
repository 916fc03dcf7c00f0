"""cost_breakdown is generic: every registered method's components add up to its totals."""
from __future__ import annotations

import pytest
import torch

from fgvc_lib.methods import available_methods, build_model
from fgvc_lib.reports.cost import cost_breakdown

SIZE = 32
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("method", available_methods())
def test_components_add_up_to_the_totals_for_every_method(method):
    torch.manual_seed(0)
    model = build_model(method, 3, backbone="resnet18").train()
    table = cost_breakdown(model, SIZE)
    total_params = sum(p.numel() for p in model.parameters()) / 1e6
    assert table.loc["total", "params (M)"] == pytest.approx(total_params)
    parts = table.drop(index="total")
    assert parts["params (M)"].sum() == pytest.approx(total_params)
    assert parts["MAC share (%)"].sum() == pytest.approx(100.0)
    assert "backbone" in parts.index and table.loc["total", f"GMACs @ {SIZE}px"] > 0
    assert model.training  # put back in the mode it was in


class _TwoLayerStep(torch.nn.Module):
    """A tiny method: flatten -> Linear(D, H) -> ReLU -> Linear(H, K), one CE step."""

    def __init__(self, d: int, h: int, k: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = torch.nn.Linear(d, h), torch.nn.Linear(h, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))

    def training_step(self, ctx, images, targets):
        with ctx.autocast():
            loss = torch.nn.functional.cross_entropy(ctx.forward(images), targets)
        ctx.step(loss)
        ctx.step(loss.detach() * 0 + self.forward(images).sum())  # a second optimiser step


def test_training_step_flops_match_the_analytic_count():
    from fgvc_lib.reports.cost import training_step_flops

    b, d, h, k = 3, 2 * 4 * 4, 5, 7
    model = _TwoLayerStep(d, h, k)
    before = {n: p.clone() for n, p in model.state_dict().items()}
    flops = training_step_flops(model, torch.rand(b, 2, 4, 4), torch.tensor([0, 1, 2]))
    # Per optimiser step, by hand: forward 2BDH + 2BHK; backward: fc2's weight and input
    # gradients 2BHK each, fc1's weight gradient 2BDH (the images need no gradient).
    per_step = (2 * b * d * h + 2 * b * h * k) + (2 * b * h * k * 2 + 2 * b * d * h)
    assert flops.optimizer_steps == 2
    assert flops.total == 2 * per_step
    assert flops.per_image == 2 * per_step / b
    # The counted step ran on a copy: the model itself did not train.
    assert all(torch.equal(before[n], p) for n, p in model.state_dict().items())
