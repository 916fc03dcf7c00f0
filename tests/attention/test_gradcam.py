"""Grad-CAM / LayerCAM / FinerCAM on registered models and on a tiny two-head model."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

pytest.importorskip("pytorch_grad_cam")

from fgvc_lib import FGVCError, build_model  # noqa: E402
from fgvc_lib.attention import HeadSelector, compute_cam, model_attention  # noqa: E402
from fgvc_lib.models.output import ModelOutput  # noqa: E402


class TwoHeadNet(nn.Module):
    """Tiny ModelOutput model: head ``a`` and its negation ``b``; ``passes``
    backbone runs per forward imitate a multi-pass method (CMAL's raw + A_oval)."""

    def __init__(self, passes: int = 1) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.num_classes = 4
        self.passes = passes
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                                  nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.ReLU())
        self.fc = nn.Linear(8, 4)
        self.unused = nn.Conv2d(8, 8, 1)

    def cam_layers(self) -> dict[str, nn.Module]:
        return {"block1": self.body[2], "block2": self.body[4]}

    def forward_once(self, x: torch.Tensor) -> ModelOutput:
        feat = self.body(x)
        a = self.fc(feat.mean((2, 3)))
        constant = self.fc.bias.expand_as(a)  # a head that ignores the image
        return ModelOutput(logits=a, heads={"a": a, "b": -a, "constant": constant},
                           attention={"energy": feat.mean(1)})

    def forward(self, x: torch.Tensor) -> ModelOutput:
        if self.passes == 1:
            return self.forward_once(x)
        outs = [self.forward_once(x) for _ in range(self.passes)]
        logits = sum(o.logits for o in outs) / self.passes
        return ModelOutput(logits=logits, heads={"a": logits, "b": -logits}, attention=outs[0].attention)


@pytest.fixture(scope="module")
def baseline():
    torch.manual_seed(0)
    return build_model("baseline", num_classes=5, backbone="resnet18")


@pytest.fixture(scope="module")
def images():
    return torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("method", ["gradcam", "layercam"])
def test_cam_of_baseline_has_input_shape_and_is_not_empty(baseline, images, method):
    maps = compute_cam(baseline, images, method=method)
    assert maps.shape == (2, 64, 64) and maps.dtype == np.float32
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    # Every image gets a map with a clear peak (grad-cam normalises each to max 1).
    assert (maps.reshape(2, -1).max(1) > 0.5).all()


def test_layercam_follows_the_requested_class():
    net = TwoHeadNet()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    cam0 = compute_cam(net, x, method="layercam", layer="block1", targets=0)
    cam1 = compute_cam(net, x, method="layercam", layer="block1", targets=torch.tensor([1, 1]))
    assert cam0.shape == (2, 16, 16)
    assert not np.allclose(cam0, cam1, atol=1e-3)


def test_head_selector_returns_the_named_head():
    net = TwoHeadNet()
    x = torch.randn(2, 3, 16, 16)
    out = net(x)
    assert torch.equal(HeadSelector(net, "b")(x), out.heads["b"])
    assert torch.equal(HeadSelector(net)(x), out.logits)
    with pytest.raises(FGVCError, match="unknown head 'c'"):
        HeadSelector(net, "c")(x)


def test_cam_explains_the_selected_head():
    net = TwoHeadNet()
    x = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    cam_a = compute_cam(net, x, targets=0, head="a", layer="block1")
    cam_b = compute_cam(net, x, targets=0, head="b", layer="block1")
    # Head b is -a: Grad-CAM's channel weights change sign, so the maps differ.
    assert not np.allclose(cam_a, cam_b, atol=1e-3)


def test_misconfigured_layers_raise_instead_of_printing(capsys):
    net = TwoHeadNet()
    x = torch.randn(2, 3, 16, 16)
    with pytest.raises(FGVCError, match="unknown CAM layer 'stage9'"):
        compute_cam(net, x, layer="stage9")
    with pytest.raises(FGVCError, match="not a submodule"):
        compute_cam(net, x, layer=nn.Conv2d(8, 8, 1))
    with pytest.raises(FGVCError, match="never run"):
        compute_cam(net, x, layer=net.unused)
    with pytest.raises(FGVCError, match="no gradient reached"):
        compute_cam(net, x, head="constant", targets=0)
    # grad-cam's own context manager would swallow this IndexError and print.
    with pytest.raises(FGVCError, match="outside 0..3"):
        compute_cam(net, x, targets=[0, 7])
    assert "exception occurred" not in capsys.readouterr().out.lower()


def test_a_layer_run_twice_per_forward_is_refused_unless_one_pass_is_given():
    net = TwoHeadNet(passes=2)
    x = torch.randn(2, 3, 16, 16)
    with pytest.raises(FGVCError, match="ran 2 times"):
        compute_cam(net, x, layer="block2")
    maps = compute_cam(net, x, layer="block2", forward=net.forward_once)
    assert maps.shape == (2, 16, 16) and maps.max() > 0


def test_cam_restores_modes_and_gradients_and_works_with_a_frozen_backbone():
    net = TwoHeadNet()
    net.train()
    net.body[1].eval()  # a frozen BatchNorm must stay frozen
    for p in net.body.parameters():
        p.requires_grad_(False)
    net.fc.weight.grad = torch.full_like(net.fc.weight, 3.0)
    maps = compute_cam(net, torch.randn(2, 3, 16, 16), method="layercam", layer="block2")
    assert maps.max() > 0
    assert net.training and net.body[0].training and not net.body[1].training
    assert all(not p.requires_grad for p in net.body.parameters()) and net.fc.weight.requires_grad
    assert torch.equal(net.fc.weight.grad, torch.full_like(net.fc.weight, 3.0))


def test_finercam_and_bfloat16_weights():
    net = TwoHeadNet().to(torch.bfloat16)
    maps = compute_cam(net, torch.randn(2, 3, 16, 16), method="finercam", layer="block2")
    assert maps.shape == (2, 16, 16) and maps.max() > 0
    assert net.fc.weight.dtype == torch.bfloat16  # the CAM ran on a float32 copy


def test_model_attention_is_upsampled_and_normalised(baseline, images):
    baseline.train()
    maps = model_attention(baseline, images, "cam", size=64)
    assert maps.shape == (2, 64, 64)
    assert np.allclose(maps.reshape(2, -1).min(1), 0) and np.allclose(maps.reshape(2, -1).max(1), 1)
    assert baseline.training
    with pytest.raises(FGVCError, match="unknown attention map 'nope'"):
        model_attention(baseline, images, "nope")
