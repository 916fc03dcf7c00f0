"""The baseline: logits from pooled stage-5 features, and its CAM (Zhou et al.'s Eq. (2))."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fgvc_lib.methods import build_model
from fgvc_lib.methods.baseline.figures import CAM_VARIANTS, cam_variant_maps

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("baseline", 4, backbone="resnet18").eval()


@pytest.mark.parametrize("pooling", ["avg", "max"])
def test_logits_are_the_linear_head_on_pooled_stage5(pooling):
    torch.manual_seed(1)
    model = build_model("baseline", 4, backbone="resnet18", pooling=pooling).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feat = model.backbone(x)[-1]                     # (B, 512, 2, 2)
        pooled = feat.flatten(2).mean(2) if pooling == "avg" else feat.flatten(2).max(2).values
        expected = pooled @ model.classifier.weight.T + model.classifier.bias
        out = model(x)
    torch.testing.assert_close(out.logits, expected)
    assert out.heads["fc"] is out.logits


def test_the_cam_is_the_predicted_class_weights_over_positions(model):
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feat = model.backbone(x)[-1]
        out = model(x)
    cls = out.logits.argmax(1)
    for b in range(2):
        w = model.classifier.weight[cls[b]]              # (C,)
        by_hand = (w[:, None, None] * feat[b]).sum(0)    # sum_c w_c f_c(x, y)
        torch.testing.assert_close(out.attention["cam"][b], by_hand)


def test_every_cam_variant_is_an_image_sized_map_in_unit_range(model):
    x = torch.randn(3, 3, 64, 64)
    maps, pred = cam_variant_maps(model, x, 64)
    assert list(maps) == list(CAM_VARIANTS)
    for label, m in maps.items():
        assert m.shape == (3, 64, 64), label
        assert np.isfinite(m).all() and m.min() >= 0 and m.max() <= 1 + 1e-6, label
        assert m.reshape(3, -1).max(1).min() > 0, f"{label}: an all-zero map"
    assert pred.shape == (3,) and not model.training
