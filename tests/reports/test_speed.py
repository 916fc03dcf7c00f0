"""throughput_check reads the FLOP-rate ratio when a benchmark record has it."""
from __future__ import annotations

import pytest

from fgvc_lib.reports.speed import TFLOPS_RATIO_TARGET, throughput_check


def _bench(**measures):
    base = {"train_img_s": 100.0, "reference_pass_ratio": 0.95, "train_backbone_passes": 1}
    return {"measures": {**base, **measures},
            "config": {"method": "baseline", "backbone": "resnet50", "image_size": 448,
                       "batch_size": 32},
            "raw": {"reference_compiled": True}, "provenance": {"device": {"name": "GPU"}}}


def test_flop_rate_row_only_for_records_that_count_flops():
    assert "FLOP-rate ratio to plain ResNet-50" not in throughput_check(_bench()).index
    row = throughput_check(_bench(tflops_ratio=TFLOPS_RATIO_TARGET - 0.01)).loc[
        "FLOP-rate ratio to plain ResNet-50"]
    assert row["met"] == "no" and row["measured"] == pytest.approx(0.89)
    assert "compiled" in row["target"]
    ok = throughput_check(_bench(tflops_ratio=TFLOPS_RATIO_TARGET))
    assert ok.loc["FLOP-rate ratio to plain ResNet-50", "met"] == "yes"
