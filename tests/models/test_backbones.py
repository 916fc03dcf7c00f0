"""Backbones return four stage maps at strides 4..32 that the stage taps can reach, and carry
the input normalisation their weights expect."""
from __future__ import annotations

import pytest
import torch

from fgvc_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fgvc_lib.errors import FGVCError
from fgvc_lib.models.backbones import (BACKBONES, Backbone, available_backbones, build_backbone,
                                       input_normalization)

EXPECTED_CHANNELS = {
    "resnet18": [64, 128, 256, 512],
    "resnet50": [256, 512, 1024, 2048],
    "seresnet50": [256, 512, 1024, 2048],
    "efficientnet_lite0": [24, 40, 112, 1280],  # the last stage runs through conv_head
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


# -- input normalisation, decided by the weights' source ------------------------------
@pytest.mark.lite0
def test_pretrained_lite0_from_the_package_normalises_with_one_half() -> None:
    net = Backbone("efficientnet_lite0", pretrained=True)
    assert net.normalization == ((0.5,) * 3, (0.5,) * 3)
    assert input_normalization(net) == net.normalization


def test_local_resnet_weights_get_the_pretrained_weights_normalisation(tmp_path) -> None:
    """ResNet weights cannot be downloaded here: a local file decides the same way as the hub would."""
    import timm

    torch.manual_seed(0)
    path = tmp_path / "resnet18.pth"
    torch.save(Backbone("resnet18").body.state_dict(), path)
    net = Backbone("resnet18", weights=path)
    cfg = timm.get_pretrained_cfg("resnet18")
    assert net.normalization == (tuple(cfg.mean), tuple(cfg.std)) == (IMAGENET_MEAN, IMAGENET_STD)


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_random_init_keeps_the_imagenet_statistics(name: str) -> None:
    # What the library always used from scratch: smoke-run numbers must not move.
    assert Backbone(name).normalization == (IMAGENET_MEAN, IMAGENET_STD)


def test_input_normalization_reads_a_models_backbone() -> None:
    from fgvc_lib import build_model

    model = build_model("baseline", 3, backbone="resnet18")
    model.backbone.normalization = ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    assert input_normalization(model) == ((0.1, 0.2, 0.3), (0.4, 0.5, 0.6))
    with pytest.raises(FGVCError, match="no fgvc Backbone"):
        input_normalization(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("name", ["resnet18", "efficientnet_lite0"])
def test_a_shallow_forward_returns_the_same_maps_and_skips_the_deeper_stages(name):
    """``depth=d`` gives stages 0..d exactly as the full pass does, without running stage 3."""
    torch.manual_seed(0)
    backbone = build_backbone(name).eval()
    ran = []
    backbone.stage_module(3).register_forward_hook(lambda *_: ran.append(True))
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        full = backbone(x)
        assert ran == [True]
        for depth in (0, 1, 2):
            part = backbone(x, depth=depth)
            assert len(part) == depth + 1
            assert all(torch.equal(a, b) for a, b in zip(part, full))
    assert ran == [True]  # only the full pass ran the last stage
    with pytest.raises(FGVCError, match="depth must be a stage index"):
        backbone(x, depth=4)


def test_the_half_width_output_stride_8_resnet18_keeps_8x8_maps_at_64_px() -> None:
    """Layers 3 and 4 dilated instead of strided: the last three stages stay at stride 8, so a
    64-px image gives 8x8 attention maps, and the reductions say so."""
    torch.manual_seed(0)
    net = build_backbone("resnet18_half_os8").eval()
    assert net.channels == [32, 64, 128, 256]
    assert net.reductions == [4, 8, 8, 8]
    with torch.no_grad():
        maps = net(torch.randn(2, 3, 64, 64))
    assert [tuple(m.shape) for m in maps] == [(2, 32, 16, 16), (2, 64, 8, 8), (2, 128, 8, 8),
                                              (2, 256, 8, 8)]
    # A quarter of ResNet-18's parameters (half the widths of every convolution).
    full = sum(p.numel() for p in build_backbone("resnet18").parameters())
    assert sum(p.numel() for p in net.parameters()) == pytest.approx(full / 4, rel=0.01)


def test_no_pretrained_weights_fit_a_changed_architecture(tmp_path) -> None:
    with pytest.raises(FGVCError, match="no pretrained weights fit it.*from scratch"):
        build_backbone("resnet18_half_os8", pretrained=True)
    with pytest.raises(FGVCError, match="no pretrained weights fit it"):
        build_backbone("resnet18_half_os8", weights=tmp_path / "any.pt")
