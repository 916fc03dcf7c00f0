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


def _flops_record(method: str, options: list[str], steps: int, gflops: float, reference: float):
    return {"measures": {"params_m": 1.5, "macs_g": 2.0, "optimizer_steps_per_batch": steps,
                         "train_gflops_per_img": gflops, "reference_gflops_per_img": reference,
                         "flops_vs_reference": gflops / reference},
            "config": {"method": method, "option": options, "backbone": "resnet50",
                       "image_size": 448, "num_classes": 200},
            "provenance": {"device": {"name": "CPU (test)"}}}


def test_training_flops_table_reads_one_row_per_record(tmp_path):
    import json

    from fgvc_lib.methods import get_spec
    from fgvc_lib.reports import training_flops_table

    records = {"a.json": _flops_record("cmal", ["truncated_steps=false"], 5, 900.0, 100.0),
               "b.json": _flops_record("baseline", [], 1, 100.0, 100.0)}
    for name, record in records.items():
        (tmp_path / name).write_text(json.dumps(record))
    table = training_flops_table(tmp_path)
    cmal = f"{get_spec('cmal').title} (truncated_steps=false)"
    # Sorted by cost; the variant keeps its options in its name.
    assert list(table.index) == [get_spec("baseline").title, cmal]
    assert table.loc[cmal, "x plain ResNet-50 step"] == 9.0
    assert table.loc[cmal, "optimiser steps per batch"] == 5
    assert "resnet50, 448 px, 200 classes" in table.attrs["caption"]
    assert "CPU (test)" in table.attrs["caption"]


def test_training_flops_table_refuses_a_record_without_counts(tmp_path):
    from fgvc_lib.errors import FGVCError
    from fgvc_lib.reports import training_flops_table

    (tmp_path / "timed.json").write_text('{"measures": {"train_img_s": 10}, "config": {}}')
    with pytest.raises(FGVCError, match="bench_model.py --mode flops"):
        training_flops_table(tmp_path)


def test_training_flops_table_refuses_two_records_of_the_same_row(tmp_path):
    import json

    from fgvc_lib.errors import FGVCError
    from fgvc_lib.reports import training_flops_table

    for name, gflops in (("old.json", 900.0), ("new.json", 800.0)):
        (tmp_path / name).write_text(json.dumps(_flops_record("cmal", [], 5, gflops, 100.0)))
    with pytest.raises(FGVCError, match=r"new\.json and .*old\.json both count .*delete the stale"):
        training_flops_table(tmp_path)


def test_the_recorded_flop_counts_cover_every_method():
    from pathlib import Path

    from fgvc_lib.methods import get_spec
    from fgvc_lib.reports import training_flops_table

    table = training_flops_table(Path(__file__).parents[2] / "results" / "cpu" / "flops")
    for method in available_methods():
        title = get_spec(method).title  # e.g. "Coarse2Fine (pretrain_pairs=0)": with its options
        assert any(row == title or row.startswith(title + " (") for row in table.index), method
    assert table.loc[get_spec("baseline").title, "x plain ResNet-50 step"] == pytest.approx(1.0)
