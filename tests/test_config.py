"""Profiles: one switch picks the scale; the paper's recipe comes with `full`."""
from __future__ import annotations

import pytest

from fgvc_lib.config import TrainConfig, current_profile, resolve_config
from fgvc_lib.errors import FGVCError


def test_profile_comes_from_environment(monkeypatch):
    monkeypatch.delenv("FGVC_PROFILE", raising=False)
    assert current_profile() == "smoke"
    monkeypatch.setenv("FGVC_PROFILE", "gpu")
    assert current_profile() == "gpu"
    assert resolve_config("baseline").image_size == 448
    assert current_profile("smoke") == "smoke"  # an explicit name wins


def test_unknown_profile_names_the_choices(monkeypatch):
    monkeypatch.setenv("FGVC_PROFILE", "huge")
    with pytest.raises(FGVCError, match="unknown profile 'huge'.*full, gpu, smoke"):
        current_profile()


def test_full_profile_uses_each_papers_recipe():
    cmal = resolve_config("cmal", "cub", "full")
    assert (cmal.lr, cmal.batch_size, cmal.epochs, cmal.weight_decay, cmal.scheduler) == \
        (0.002, 16, 200, 5e-4, "cosine")
    assert cmal.image_size == 448 and cmal.pretrained and cmal.backbone == "resnet50"
    crossx = resolve_config("cross_x", "cub", "full")
    assert (crossx.lr, crossx.batch_size, crossx.epochs, crossx.scheduler, crossx.milestones) == \
        (0.01, 32, 30, "multistep", [15])


def test_overrides_win_and_none_falls_through():
    cfg = resolve_config("baseline", "synthetic", "smoke", epochs=9, lr=None)
    assert cfg.epochs == 9
    assert cfg.lr == resolve_config("baseline", "synthetic", "smoke").lr


def test_smoke_scales_cmal_heads_but_keeps_explicit_options():
    assert resolve_config("cmal", "synthetic", "smoke").method_options == {"cv": 256}
    assert resolve_config("cmal", "synthetic", "smoke",
                          method_options={"cv": 64, "t": 0.3}).method_options == {"cv": 64, "t": 0.3}
    assert resolve_config("cmal", "synthetic", "full").method_options == {}


def test_config_round_trips_and_rejects_unknown_keys():
    cfg = resolve_config("baseline", "synthetic", "smoke")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(FGVCError, match="unknown config keys"):
        TrainConfig.from_dict({**cfg.to_dict(), "learning_rate": 1})
