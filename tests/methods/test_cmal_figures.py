"""CMAL-Net chapter helpers: boxes at another threshold, Fig. 5 regions, Tables 5-6
beside ours, Table 9 and the speed targets."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from matplotlib.patches import Rectangle

from fgvc_lib.errors import FGVCError
from fgvc_lib.methods import build_model
from fgvc_lib.methods.cmal.figures import (TABLE9_ROWS, attention_vs_paper,
                                           inference_cost_table, regions_at_threshold,
                                           show_attention_regions)
from fgvc_lib.reports.speed import speed_targets, throughput_check

SIZE = 32


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("cmal", 3, backbone="resnet18", cv=16).eval()


def _peaked_cams() -> list[torch.Tensor]:
    """Three 4x4 CAMs for one image, each a ramp peaking in the top-left cell."""
    ramp = torch.tensor([[4.0, 3.0, 2.0, 1.0], [3.0, 2.0, 1.0, 0.0],
                         [2.0, 1.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    return [ramp[None].clone() for _ in range(3)]


def _area(box: torch.Tensor) -> float:
    return float((box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1]))


def test_a_higher_threshold_gives_a_smaller_nested_box_and_restores_t(model):
    cams = _peaked_cams()
    loose = regions_at_threshold(model, cams, SIZE, 0.1)
    tight = regions_at_threshold(model, cams, (SIZE, SIZE), 0.8)
    for lo, hi in zip([*loose.experts, loose.oval], [*tight.experts, tight.oval]):
        assert _area(hi[0]) < _area(lo[0])
        assert (hi[0, :2] >= lo[0, :2]).all() and (hi[0, 2:] <= lo[0, 2:]).all()
    # The peak is top-left: the tight box starts at the image corner.
    assert tight.oval[0, :2].tolist() == [0.0, 0.0]
    assert model.t == 0.5
    # Same boxes as the model's own call at its own t.
    own = model.attention_regions(cams, (SIZE, SIZE))
    assert torch.equal(regions_at_threshold(model, cams, SIZE, 0.5).oval, own.oval)


def test_regions_at_threshold_rejects_bad_input_and_keeps_t(model):
    with pytest.raises(FGVCError, match="threshold t"):
        regions_at_threshold(model, _peaked_cams(), SIZE, 1.5)
    with pytest.raises(FGVCError, match="no CMAL-Net attention regions"):
        regions_at_threshold(torch.nn.Linear(2, 2), _peaked_cams(), SIZE, 0.5)
    with pytest.raises(ValueError):   # fails inside the model's own call: t is restored
        regions_at_threshold(model, [torch.zeros(1, 2)], SIZE, 0.3)
    assert model.t == 0.5


def test_region_figure_has_a_row_per_image_and_a_box_per_region():
    images = torch.randint(0, 256, (2, 3, SIZE, SIZE), dtype=torch.uint8)
    boxes = {"A_1": torch.tensor([[0, 0, 16, 16], [4, 4, 20, 20]]),
             "A_oval": torch.tensor([[2, 2, 30, 30], [0, 0, 32, 32]])}
    crops = {name: torch.rand(2, 3, SIZE, SIZE) for name in boxes}
    fig = show_attention_regions(images, boxes, crops, titles=["a", "b"])
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_title() for ax in axes[0]] == ["input + boxes", "A_1", "A_oval"]
    rects = [p for p in axes[1, 0].patches if isinstance(p, Rectangle)]
    assert len(rects) == 2 and rects[0].get_width() == 16
    # A crop is framed in its box's colour.
    assert axes[0, 1].spines["top"].get_edgecolor() == rects[0].get_edgecolor()


def test_region_figure_errors_name_the_fix():
    images = torch.rand(2, 3, SIZE, SIZE)
    with pytest.raises(FGVCError, match="one entry per image"):
        show_attention_regions(images, {"A_1": torch.zeros(1, 4)}, {})
    with pytest.raises(FGVCError, match="not \\[0, 1\\]"):
        show_attention_regions(images * 4 - 2, {}, {"A_1": torch.rand(2, 3, 8, 8)})


def test_attention_tables_put_our_maps_under_the_papers_columns():
    reports = {"baseline": {"cam": {"ACE": 50.0, "ACR": 40.0}},
               "cmal": {f"expert{i}": {"ACE": 10.0 * i, "ACR": 90.0 - i} for i in (1, 2, 3)}}
    reports["cmal"]["oval"] = {"ACE": 5.0, "ACR": 95.0}
    ace = attention_vs_paper("cmal.table5", "ACE", reports, "ours")
    assert ace.loc["FGVC-Aircraft (paper)", "Omega_ori"] == 42.4   # the paper's Table 5
    assert ace.loc["ours"].tolist() == [50.0, 10.0, 20.0, 30.0, 5.0]
    acr = attention_vs_paper("cmal.table6", "ACR", reports, "ours")
    assert acr.loc["Stanford Cars (paper)", "Omega_oval"] == 94.0  # the paper's Table 6
    assert acr.loc["ours", "Omega_2"] == 88.0
    del reports["cmal"]["oval"]
    with pytest.raises(FGVCError, match="'oval'"):
        attention_vs_paper("cmal.table5", "ACE", reports, "ours")
    with pytest.raises(FGVCError, match="no attention map of ours"):
        attention_vs_paper("cmal.table3", "ACE", reports, "ours")


def _bench(**measures):
    base = {"params_m": 43.0, "macs_g": 74.7, "macs_g_raw": 37.5, "infer_bs1_ms": 18.0,
            "infer_ms_per_img": 1.0, "infer_raw_img_s": 2000.0, "train_img_s": 124.0,
            "reference_pass_ratio": 0.83, "train_backbone_passes": 5}
    base.update(measures)
    return {"measures": base, "raw": {"reference_compiled": False},
            "config": {"method": "cmal", "backbone": "resnet50", "image_size": 448,
                       "batch_size": 16, "num_classes": 200, "amp": True},
            "provenance": {"device": {"name": "NVIDIA H100 80GB HBM3"}}}


def test_inference_cost_table_puts_measurements_beside_table9():
    table = inference_cost_table(_bench(), baseline_params_m=25.5)
    raw, full = TABLE9_ROWS["raw"], TABLE9_ROWS["raw+oval"]
    assert table.loc[full, "ms / image, paper (batch 1)"] == 12.68
    assert table.loc[raw, "MACs (G), paper"] == 37.4
    assert table.loc[raw, "MACs (G), ours"] == 37.5
    assert table.loc[raw, "ms / image, ours (batch 16)"] == pytest.approx(0.5)
    assert math.isnan(table.loc[raw, "ms / image, ours (batch 1)"])   # not measured
    assert table.loc[TABLE9_ROWS["original"], "params (M), ours"] == 25.5
    assert "H100" in table.attrs["caption"] and "RTX 3080 Ti" in table.attrs["caption"]
    with pytest.raises(FGVCError, match="lacks"):
        inference_cost_table({"measures": {"params_m": 1.0}, "config": {}})
    wrong = _bench()
    wrong["config"]["method"] = "cross_x"
    with pytest.raises(FGVCError, match="not CMAL-Net"):
        inference_cost_table(wrong)


def test_throughput_targets_are_met_only_when_measured_as_specified():
    check = throughput_check(_bench())
    assert check.loc["training images/s", "met"] == "no"
    assert check.loc["training images/s", "measured / released loop"] == pytest.approx(124 / 54)
    assert check.loc["per-pass ratio to plain ResNet-50", "met"] == "no"
    fast = _bench(train_img_s=speed_targets()["cmal"]["target_img_s"] + 1,
                  reference_pass_ratio=0.9)
    check = throughput_check(fast)
    assert check.loc["training images/s", "met"] == "yes"
    assert check.loc["per-pass ratio to plain ResNet-50", "met"] == "not shown (eager reference)"
    fast["raw"]["reference_compiled"] = True
    assert throughput_check(fast).loc["per-pass ratio to plain ResNet-50", "met"] == "yes"


def test_method_diagram_has_the_experts_and_readable_type():
    from fgvc_lib.methods.cmal.figures import method_diagram

    fig = method_diagram()
    texts = [t for t in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
             if t.get_text().strip()]
    words = " ".join(t.get_text() for t in texts)
    for part in ("stage 5", "$p_1$", "$p_3$", "$p_{oval}$", "MDA", "optimiser steps"):
        assert part in words
    assert min(t.get_fontsize() for t in texts) >= 9


def test_head_breakdown_counts_steps_and_lists_every_head():
    from fgvc_lib.methods.cmal.figures import head_breakdown

    def record(method, heads, batch):
        return {"status": "finished", "method": method,
                "config": {"method": method, "image_size": 64, "epochs": 2, "batch_size": batch,
                           "dataset": "synthetic", "profile": "smoke", "backbone": "resnet18"},
                "dataset": {"train_size": 40},
                "history": [{"epoch": e, "optimizer_steps_per_batch": 5 if method == "cmal" else 1}
                            for e in (1, 2)],
                "metrics": {"test": {h: {"top1": v} for h, v in heads.items()}},
                "provenance": {"device": {"name": "cpu"}}}
    cmal = record("cmal", {"final": 80.0, "p1": 50.0, "p2": 60.0, "p3": 70.0, "p_oval": 75.0,
                           "fusion": 80.0}, 8)
    base = record("baseline", {"final": 65.0, "fc": 65.0}, 8)
    df = head_breakdown({"cmal": cmal, "baseline": base})
    # 40 images / batch 8 = 5 batches; x 5 steps per batch x 2 epochs for CMAL-Net
    assert df.loc["cmal", "steps"] == "50" and df.loc["baseline", "steps"] == "10"
    assert df.loc["cmal", "p3"] == 70.0 and df.loc["baseline", "p3"] == "-"
    assert df.loc["baseline", "final"] == 65.0
