"""The linear probe: a logistic regression on frozen pooled features, chosen on validation."""
from __future__ import annotations

import json

import pytest
import torch

from fgvc_lib.config import resolve_config
from fgvc_lib.engine.probe import PROBE_KIND, run_probe, select_and_fit

pytestmark = pytest.mark.usefixtures("one_thread")


def test_separable_features_are_learnt_and_the_folded_classifier_takes_raw_features():
    torch.manual_seed(0)
    centres = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0], [0.0, 0.0, 5.0]]) + 10.0
    y = torch.arange(3).repeat(20)
    x = centres[y] + 0.3 * torch.randn(60, 3)
    clf, selection = select_and_fit((x[:45], y[:45]), (x[45:], y[45:]), 3,
                                    weight_decays=(1e-3, 1e-1))
    assert (clf(x).argmax(1) == y).all(), "raw (unstandardised) features classify"
    assert [r["weight_decay"] for r in selection["sweep"]] == [1e-3, 1e-1]
    # Both reach 100% on validation: the tie goes to the stronger weight decay.
    assert selection["weight_decay"] == 1e-1


def test_selection_reads_validation_not_the_training_fit():
    torch.manual_seed(0)
    y = torch.arange(2).repeat(30)
    x = torch.randn(60, 20)
    x[:, 0] += 2.0 * y  # one weak real signal among 19 noise features
    clf, selection = select_and_fit((x[:40], y[:40]), (x[40:], y[40:]), 2,
                                    weight_decays=(1e-6, 1.0))
    val_scores = {r["weight_decay"]: r["val_top1"] for r in selection["sweep"]}
    assert selection["weight_decay"] == max(val_scores, key=lambda wd: (val_scores[wd], wd))


def test_a_probe_run_is_recorded_like_a_run(tmp_path):
    cfg = resolve_config("baseline", "synthetic", "smoke", synthetic_classes=3,
                         synthetic_train_per_class=10, synthetic_test_per_class=4, image_size=32)
    record = run_probe(cfg, tmp_path, progress=False)
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["kind"] == PROBE_KIND and on_disk["status"] == "finished"
    assert on_disk["probe"]["feature_dim"] == 512  # ResNet-18's last stage
    assert set(on_disk["metrics"]) == {"val", "test"}
    assert on_disk["metrics"]["test"]["final"]["n"] == 12
    assert record["provenance"]["git"] and record["dataset"]["num_classes"] == 3
