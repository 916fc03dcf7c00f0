"""The recipe sweep selects on the validation split only."""
from __future__ import annotations

import pytest

import fgvc_lib.engine.trainer as trainer
from fgvc_lib.config import TrainConfig
from fgvc_lib.engine.sweep import grid_points, select_on_validation, sweep
from fgvc_lib.errors import FGVCError


def _record(val: float, test: float) -> dict:
    return {"best": {"epoch": 3, "val_top1": val},
            "metrics": {"test": {"final": {"top1": test}}}}


def test_selection_follows_validation_even_when_the_test_set_disagrees():
    runs = [_record(val=70.0, test=90.0), _record(val=80.0, test=60.0), _record(val=75.0, test=95.0)]
    assert select_on_validation(runs) is runs[1]


def test_a_run_without_validation_cannot_be_selected():
    with pytest.raises(FGVCError, match="no validation score"):
        select_on_validation([{"best": {"epoch": -1, "val_top1": -1.0}}])


def test_the_grid_is_every_combination_and_each_point_trains_its_own_config(tmp_path, monkeypatch):
    assert grid_points({"lr": [0.1, 0.01], "weight_decay": [0.0]}) == [
        {"lr": 0.1, "weight_decay": 0.0}, {"lr": 0.01, "weight_decay": 0.0}]
    seen = []

    def fake_train_or_load(cfg, out_dir, **kwargs):
        seen.append((cfg.lr, cfg.backbone_lr_mult, out_dir.name))
        return _record(val=100 * cfg.lr, test=0.0)

    monkeypatch.setattr(trainer, "train_or_load", fake_train_or_load)
    records = sweep(TrainConfig(), {"lr": [0.1, 0.2], "backbone_lr_mult": [1.0]}, tmp_path,
                    progress=False)
    assert seen == [(0.1, 1.0, "lr=0.1,backbone_lr_mult=1.0"), (0.2, 1.0, "lr=0.2,backbone_lr_mult=1.0")]
    assert select_on_validation(records)["sweep_point"] == {"lr": 0.2, "backbone_lr_mult": 1.0}
    with pytest.raises(FGVCError, match="lr=-1"):
        sweep(TrainConfig(), {"lr": [-1.0]}, tmp_path, progress=False)
    with pytest.raises(FGVCError, match="unknown settings"):
        sweep(TrainConfig(), {"learning_rate": [0.1]}, tmp_path, progress=False)
