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
