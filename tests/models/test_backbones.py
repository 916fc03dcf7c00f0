"""Backbones return four stage maps at strides 4..32 that the stage taps can reach."""
from __future__ import annotations

import pytest
import torch

from fgvc_lib.errors import FGVCError
from fgvc_lib.models.backbones import BACKBONES, Backbone, available_backbones, build_backbone

EXPECTED_CHANNELS = {
    "resnet18": [64, 128, 256, 512],
    "resnet50": [256, 512, 1024, 2048],
    "seresnet50": [256, 512, 1024, 2048],
    "efficientnet_lite0": [24, 40, 112, 320],
}
SIZE = 64


@pytest.fixture(scope="module", params=sorted(EXPECTED_CHANNELS))
def backbone(request: pytest.FixtureRequest) -> Backbone:
    torch.manual_seed(0)
    return Backbone(request.param).eval()


def test_four_maps_at_strides_4_to_32_with_declared_channels(backbone: Backbone) -> None:
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        maps = backbone(x)
    assert backbone.reductions == [4, 8, 16, 32]
    assert backbone.channels == EXPECTED_CHANNELS[backbone.name]
    assert [tuple(m.shape) for m in maps] == [
        (2, c, SIZE // s, SIZE // s) for c, s in zip(EXPECTED_CHANNELS[backbone.name], (4, 8, 16, 32))
    ]


def test_stage_modules_produce_the_returned_maps(backbone: Backbone) -> None:
    captured: dict[int, torch.Tensor] = {}
    handles = [
        backbone.stage_module(i).register_forward_hook(
            lambda _m, _inp, out, i=i: captured.__setitem__(i, out))
        for i in range(4)
    ]
    try:
        with torch.no_grad():
            maps = backbone(torch.randn(1, 3, SIZE, SIZE))
    finally:
        for h in handles:
            h.remove()
    for i in range(4):
        assert torch.equal(captured[i], maps[i]), f"stage_module({i}) is not the tap of map {i}"
    # stage 3 is what CAM / Cross-X hook: it must be the last map.
    assert captured[3] is maps[-1] or torch.equal(captured[3], maps[-1])


def test_channels_last_input_gives_the_same_maps() -> None:
    torch.manual_seed(0)
    net = Backbone("resnet18").eval()
    x = torch.randn(2, 3, SIZE, SIZE)
    with torch.no_grad():
        reference = net(x)
        net = net.to(memory_format=torch.channels_last)
        maps = net(x.contiguous(memory_format=torch.channels_last))
    for ref, out in zip(reference, maps):
        assert out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_unknown_backbone_lists_the_known_names() -> None:
    for factory in (Backbone, build_backbone):
        with pytest.raises(FGVCError) as info:
            factory("resnet_999")
        message = str(info.value)
        assert "resnet_999" in message
        for name in ("resnet18", "resnet50", "efficientnet_lite0"):
            assert name in message


def test_available_backbones_is_the_sorted_registry() -> None:
    assert available_backbones() == sorted(BACKBONES)
    assert "efficientnet_lite0" in available_backbones()
