"""Tiny run configurations shared by the engine tests."""
from __future__ import annotations

import pytest

from fgvc_lib.config import resolve_config


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # Synthetic data is cached per test session, never in the user's home.
    monkeypatch.setenv("FGVC_CACHE", str(tmp_path_factory.getbasetemp() / "fgvc_cache"))


@pytest.fixture
def tiny_cfg():
    """A run that takes a few seconds on 2 CPU cores."""

    def make(**overrides):
        values = dict(backbone="resnet18", image_size=32, batch_size=8, epochs=3, lr=0.05,
                      synthetic_classes=4, synthetic_train_per_class=10,
                      synthetic_test_per_class=4, val_fraction=0.2)
        values.update(overrides)
        return resolve_config("baseline", "synthetic", "smoke", **values)

    return make
