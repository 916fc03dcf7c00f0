"""Runs that go wrong stop clearly: non-finite losses, data folders named relatively,
images smaller than the crop, errors inside DataLoader workers."""
from __future__ import annotations

import json
import math
import warnings

import pytest
import torch

from fgvc_lib.config import resolve_config
from fgvc_lib.engine.checkpoint import load_checkpoint
from fgvc_lib.engine.loaders import build_datasets
from fgvc_lib.engine.trainer import Trainer, config_changes
from fgvc_lib.errors import FGVCError

pytestmark = pytest.mark.usefixtures("one_thread")


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, tiny_cfg):
    out = tmp_path / "run"
    trainer = Trainer(tiny_cfg(epochs=3), out, progress=False)
    step = trainer.model.training_step

    def poisoned(ctx, images, targets):
        losses = step(ctx, images, targets)
        if trainer.history:  # from the second epoch on, the loss is NaN
            return {k: v * float("nan") for k, v in losses.items()}
        return losses

    trainer.model.training_step = poisoned
    with pytest.raises(FGVCError, match=r"training loss became non-finite in epoch 2 of 3 "
                                        r"\(loss=nan.*last good checkpoint \(epoch 1\) is kept"):
        trainer.fit()
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["epoch"] == 0 and len(ckpt["history"]) == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    rec = json.loads((out / "results.json").read_text())
    assert rec["status"] == "failed" and "non-finite" in rec["error"] and len(rec["history"]) == 1
    assert all(math.isfinite(v) for v in rec["history"][0]["train"].values())


def test_an_infinite_loss_in_the_first_epoch_leaves_no_checkpoint(tmp_path, tiny_cfg):
    trainer = Trainer(tiny_cfg(epochs=2), tmp_path / "run", progress=False)
    step = trainer.model.training_step
    trainer.model.training_step = lambda ctx, x, y: {k: v + float("inf")
                                                     for k, v in step(ctx, x, y).items()}
    with pytest.raises(FGVCError, match=r"epoch 1 of 2 \(loss=inf\).*no epoch had finished"):
        trainer.fit()
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_data_root_is_recorded_absolute_and_compared_as_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = resolve_config("baseline", "folder", "smoke", data_root="data/birds")
    assert cfg.data_root == str(tmp_path / "data" / "birds")
    from fgvc_lib.engine.trainer import same_config

    # a record written with the relative spelling is the same run
    old, new = {"data_root": "data/birds", "lr": 0.1}, {"data_root": cfg.data_root, "lr": 0.1}
    assert config_changes(old, new) == [] and same_config(old, new)
    assert config_changes({**old, "data_root": "other"}, new) == ["data_root"]


def test_an_image_smaller_than_the_crop_warns_once_per_dataset(tmp_path, folder_dataset):
    from PIL import Image

    root = folder_dataset(tmp_path / "data", ["a", "b"], per_class=3)
    Image.new("RGB", (1, 1)).save(root / "train" / "a" / "tiny.jpg")
    Image.new("RGB", (5, 3)).save(root / "test" / "b" / "tiny.jpg")
    cfg = resolve_config("baseline", "folder", "smoke", data_root=str(root), image_size=32,
                         val_fraction=0.0)
    train, _, test, _ = build_datasets(cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for ds in (train, test):
            for i in range(len(ds)):
                assert ds[i][0].shape == (3, 32, 32)
    small = [w for w in caught if "smaller than the" in str(w.message)]
    assert len(small) == 1, [str(w.message) for w in small]
    assert small[0].category.__name__ == "SmallImageWarning"
    assert "1x1 px is smaller than the 32 px crop" in str(small[0].message)
    assert str(root) in str(small[0].message)


def test_a_worker_traceback_becomes_the_one_line_error_it_carried():
    from fgvc_lib.engine.loaders import worker_error

    text = ("Caught FGVCError in DataLoader worker process 0. Original Traceback (most recent "
            "call last): File \"x.py\", line 1, in f OSError: cannot identify image file The above "
            "exception was the direct cause of the following exception: Traceback (most recent "
            "call last): fgvc_lib.errors.FGVCError: corrupt or truncated image: /d/a.jpg (cannot "
            "identify) -> fix: delete or replace this file")
    err = worker_error(FGVCError(text))
    assert str(err) == ("corrupt or truncated image: /d/a.jpg (cannot identify) -> fix: delete or "
                        "replace this file")
    err = worker_error(OSError("Caught OSError in DataLoader worker process 1.\nOriginal "
                               "Traceback (most recent call last):\n  File ...\n"
                               "PermissionError: [Errno 13] Permission denied: '/d/b.jpg'\n"))
    assert isinstance(err, FGVCError) and "Permission denied: '/d/b.jpg'" in str(err)
    plain = ValueError("not from a worker")
    assert worker_error(plain) is plain
