"""A trained model keeps the input normalisation it trained with when it is rebuilt from a checkpoint.

load_trained_model rebuilds the backbone without pretrained weights (the checkpoint brings the
weights), so without the record it would say "random init" and normalise a pretrained Lite0 run
with ImageNet's statistics instead of 0.5 / 0.5.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from fgvc_lib import build_model
from fgvc_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fgvc_lib.engine.checkpoint import atomic_torch_save
from fgvc_lib.engine.trainer import BEST_WEIGHTS, CHECKPOINT, load_trained_model
from fgvc_lib.models.backbones import input_normalization

HALF = ((0.5,) * 3, (0.5,) * 3)


def _save_run(run: Path, *, recorded: tuple | None, pretrained: bool) -> None:
    """A run folder with last and best checkpoints of a random Lite0 baseline."""
    model = build_model("baseline", 3, backbone="efficientnet_lite0")
    spec = dict(model.fgvc_spec)
    if recorded is not None:
        spec["normalization"] = recorded
    state = model.state_dict()
    atomic_torch_save({"spec": spec, "config": {"pretrained": pretrained, "weights": None},
                       "model": state}, run / CHECKPOINT)
    atomic_torch_save({"spec": spec, "model": state}, run / BEST_WEIGHTS)  # best.pt has no config


@pytest.mark.parametrize("which", ["last", "best"])
def test_recorded_normalization_is_restored(tmp_path: Path, which: str) -> None:
    _save_run(tmp_path, recorded=HALF, pretrained=True)
    assert input_normalization(load_trained_model(tmp_path, which)) == HALF


@pytest.mark.parametrize("pretrained, expected", [(True, HALF), (False, (IMAGENET_MEAN, IMAGENET_STD))])
@pytest.mark.parametrize("which", ["last", "best"])
def test_older_checkpoints_decide_from_the_runs_config(tmp_path: Path, which: str, pretrained: bool,
                                                       expected: tuple) -> None:
    _save_run(tmp_path, recorded=None, pretrained=pretrained)
    assert input_normalization(load_trained_model(tmp_path, which)) == expected


def test_a_trained_run_records_its_normalization(tmp_path: Path, tiny_cfg) -> None:
    from fgvc_lib.engine.trainer import train

    record = train(tiny_cfg(epochs=1), tmp_path / "run", device="cpu", progress=False)
    assert [list(x) for x in record["spec"]["normalization"]] == [list(IMAGENET_MEAN), list(IMAGENET_STD)]
    model = load_trained_model(tmp_path / "run")
    assert input_normalization(model) == (IMAGENET_MEAN, IMAGENET_STD)
