"""CMAL-Net: heads, Eqs. (4)-(7), Algorithm 1's N+2 steps, baselines, options.

Small on purpose: ResNet-18, C_v = 16, 32-64 px images, batches of 4-8.
"""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch


from fgvc_lib.config import TrainConfig
from fgvc_lib.models.step import StepContext
from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.cmal import augment
from fgvc_lib.methods.cmal import AUGMENTATIONS
from fgvc_lib.methods.cmal.model import CMALNet, _draw_from_pool, _second_order_cam
from fgvc_lib.methods import available_methods as available_models, build_model, get_spec

K = 4


def _model(seed: int = 0, **options) -> CMALNet:
    torch.manual_seed(seed)
    options.setdefault("cv", 16)
    return build_model("cmal", num_classes=K, backbone="resnet18", **options)


def _batch(size: int = 4, px: int = 64, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(size, 3, px, px, generator=g), torch.arange(size) % K


def _ctx(model: torch.nn.Module, seed: int = 0, lr: float = 0.01, cls=StepContext) -> StepContext:
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    return cls(forward=model, optimizer=optimizer, generator=torch.Generator().manual_seed(seed))


# -- registration and recipe -------------------------------------------------------
def test_registered_with_the_papers_recipe():
    assert "cmal" in available_models()
    recipe = dict(get_spec("cmal").paper_recipe)
    assert set(recipe) <= {f.name for f in dataclasses.fields(TrainConfig)}
    assert recipe["lr"] == 0.002 and recipe["batch_size"] == 16 and recipe["epochs"] == 200
    assert recipe["weight_decay"] == 5e-4 and recipe["image_size"] == 448
    assert recipe["backbone_lr_mult"] == 0.1 and recipe["scheduler"] == "cosine"


def test_resnet50_parameter_count_matches_table_9():
    torch.manual_seed(0)
    model = build_model("cmal", num_classes=100, backbone="resnet50")  # Aircraft: K = 100
    n = sum(p.numel() for p in model.parameters())
    assert 42.5e6 < n < 43.5e6  # Table 9: 43M


# -- forward -------------------------------------------------------------------------
def test_train_forward_gives_raw_heads_and_expert_cams():
    model = _model().train()
    images, _ = _batch()
    out = model(images)
    assert set(out.heads) == {"p1", "p2", "p3", "p_oval", "avg_raw"}
    assert all(v.shape == (4, K) for v in out.heads.values())
    # One CAM per expert at that expert's resolution: strides 8, 16, 32 of 64 px.
    assert {k: tuple(v.shape) for k, v in out.attention.items()} == {
        "expert1": (4, 8, 8), "expert2": (4, 4, 4), "expert3": (4, 2, 2)}
    raw = torch.stack([out.heads[k] for k in ("p1", "p2", "p3", "p_oval")])
    assert torch.allclose(out.logits, raw.mean(0))


def test_eval_forward_fills_every_table_2_column():
    model = _model().eval()
    images, _ = _batch()
    with torch.no_grad():
        out = model(images)
    raw = ["p1", "p2", "p3", "p_oval"]
    crop = ["p1_A", "p2_A", "p3_A", "p_oval_A"]
    assert set(out.heads) == set(raw + crop + ["avg_raw", "avg_A", "fusion"])
    mean = lambda names: torch.stack([out.heads[n] for n in names]).mean(0)  # noqa: E731
    assert torch.allclose(out.heads["avg_raw"], mean(raw))
    assert torch.allclose(out.heads["avg_A"], mean(crop))
    assert torch.allclose(out.logits, mean(raw + crop)) and out.logits is out.heads["fusion"]
    assert out.attention["oval"].shape == (4, 64, 64)
    assert set(out.extras["boxes"]) == {"expert1", "expert2", "expert3", "oval"}


def test_probability_fusion_averages_softmax():
    model = _model(fusion="probs").eval()
    images, _ = _batch()
    with torch.no_grad():
        out = model(images)
    names = ["p1", "p2", "p3", "p_oval", "p1_A", "p2_A", "p3_A", "p_oval_A"]
    probs = torch.stack([out.heads[n].softmax(-1) for n in names]).mean(0)
    assert torch.allclose(out.logits.softmax(-1), probs, atol=1e-6)


def test_raw_only_evaluation_skips_the_crop_pass():
    model = _model(test_on_oval=False).eval()
    with torch.no_grad():
        out = model(_batch()[0])
    assert "fusion" not in out.heads and out.logits is out.heads["avg_raw"]


def test_crop_pad_grows_the_boxes():
    images, _ = _batch(seed=4)
    tight, padded = _model(seed=3).eval(), _model(seed=3, crop_pad=0.1).eval()
    with torch.no_grad():
        a, b = tight(images).extras["boxes"]["oval"], padded(images).extras["boxes"]["oval"]
    grow = torch.tensor([-6.4, -6.4, 6.4, 6.4])
    assert torch.allclose(b, (a + grow).clamp(0, 64))


# -- Eq. (4) -----------------------------------------------------------------------------
def _expert_maps(model: CMALNet, images: torch.Tensor) -> list[torch.Tensor]:
    maps: list[torch.Tensor] = []
    hooks = [m.register_forward_hook(lambda _m, _i, o: maps.append(o))
             for m in model.cam_layers().values()]
    with torch.no_grad():
        out = model(images)
    for h in hooks:
        h.remove()
    return out, maps


def test_cam_uses_the_product_of_the_two_linear_maps():
    model = _model().eval()
    model.test_on_oval = False
    out, maps = _expert_maps(model, _batch()[0])
    clf = model.classifiers[0]
    weights = clf.net[4].weight @ clf.net[1].weight  # W2 W1: (K, C_v)
    pred = out.heads["p1"].argmax(1)
    expected = torch.einsum("bc,bchw->bhw", weights[pred], maps[0])
    assert torch.allclose(out.attention["expert1"], expected, atol=1e-5)


def test_linear_classifier_with_average_pooling_gives_the_exact_cam():
    """With GAP and one linear layer, the CAM's mean plus the bias is the class score."""
    model = _model(classifier="linear", pooling="avg").eval()
    model.test_on_oval = False
    with torch.no_grad():
        out = model(_batch()[0])
    for i in (1, 2, 3):
        pred = out.heads[f"p{i}"].argmax(1)
        bias = model.classifiers[i - 1].net.bias[pred]
        score = out.heads[f"p{i}"].gather(1, pred[:, None]).squeeze(1)
        assert torch.allclose(out.attention[f"expert{i}"].mean((1, 2)) + bias, score, atol=1e-4)


@pytest.mark.parametrize("kind", ["bilinear", "covariance"])
def test_second_order_cam_splits_the_linear_score_over_positions(kind):
    torch.manual_seed(0)
    b, r, h, w = 2, 3, 4, 5
    feats = torch.randn(b, r, h, w)
    flat = feats.reshape(b, r, h * w)
    if kind == "covariance":
        flat = flat - flat.mean(2, keepdim=True)
    second = flat @ flat.transpose(1, 2) / (h * w)  # un-normalised gram / covariance
    if kind == "bilinear":
        descriptor = second.reshape(b, r * r)
    else:
        rows, cols = torch.triu_indices(r, r)
        descriptor = second[:, rows, cols]
    weights = torch.randn(b, descriptor.shape[1])
    cam = _second_order_cam(feats, weights, kind)
    assert torch.allclose(cam.mean((1, 2)), (weights * descriptor).sum(1), atol=1e-5)


@pytest.mark.parametrize("pooling", ["bilinear", "covariance"])
def test_second_order_pooling_models_run(pooling):
    model = _model(pooling=pooling, second_order_dim=6).eval()
    with torch.no_grad():
        out = model(_batch(px=32)[0])
    assert out.logits.shape == (4, K) and torch.isfinite(out.logits).all()
    assert model.experts[0].out_dim == (36 if pooling == "bilinear" else 21)


def test_cam_layers_name_each_experts_last_block():
    model = _model()
    layers = model.cam_layers()
    assert list(layers) == ["expert1", "expert2", "expert3"]
    assert all(layers[f"expert{i + 1}"] is model.experts[i].expand for i in range(3))


# -- Algorithm 1 --------------------------------------------------------------------------
@dataclasses.dataclass
class RecordingContext(StepContext):
    """Records each step's input images and which parameters the step moved."""

    model: torch.nn.Module | None = None

    def __post_init__(self) -> None:
        self.inputs: list[torch.Tensor] = []
        self.outputs: list = []
        self.moved: list[set[str]] = []
        inner = self.forward

        def forward(x, **kwargs):
            self.inputs.append(x.clone())
            out = inner(x, **kwargs)
            self.outputs.append(out)
            return out

        self.forward = forward

    def step(self, loss: torch.Tensor) -> None:
        before = {n: p.detach().clone() for n, p in self.model.named_parameters()}
        super().step(loss)
        self.moved.append({n for n, p in self.model.named_parameters()
                           if not torch.equal(p.detach(), before[n])})


def _groups(moved: set[str]) -> set[str]:
    """Parameter names -> parts: stem, layer1..4, head_i, clf_i, concat."""
    parts = set()
    for name in moved:
        if name.startswith("backbone.body.layer"):
            parts.add(name.split(".")[2])
        elif name.startswith("backbone."):
            parts.add("stem")
        elif name.startswith("experts."):
            parts.add(f"head{int(name.split('.')[1]) + 1}")
        elif name.startswith("classifiers."):
            parts.add(f"clf{int(name.split('.')[1]) + 1}")
        else:
            parts.add("concat")
    return parts


@pytest.fixture(scope="module")
def recorded_step():
    # t = 0.7 gives real (not whole-image) crops for this untrained model and batch.
    model = _model(t=0.7).train()
    images, targets = _batch(px=64)
    ctx = _ctx(model, cls=RecordingContext)
    ctx.model = model
    # Step 1's forward, before any update: the source of A_1..A_3 and A_oval.
    losses = model.training_step(ctx, images, targets)
    return model, ctx, images, targets, losses


def test_algorithm_1_takes_n_plus_2_steps_and_returns_fig_3_losses(recorded_step):
    _, ctx, _, _, losses = recorded_step
    assert ctx.optimizer_steps == 5 and len(ctx.inputs) == 5
    assert set(losses) == {"loss", "loss_1", "loss_2", "loss_3", "loss_4", "loss_5"}
    assert all(not v.requires_grad and torch.isfinite(v) for v in losses.values())


def test_each_step_moves_only_its_own_parts(recorded_step):
    _, ctx, _, _, _ = recorded_step
    backbone_all = {"stem", "layer1", "layer2", "layer3", "layer4"}
    heads = {"head1", "head2", "head3"}
    clfs = {"clf1", "clf2", "clf3"}
    expected = [
        {"stem", "layer1", "layer2", "layer3", "layer4", "head3", "clf3"},  # 1: expert 3, raw
        {"stem", "layer1", "layer2", "layer3", "head2", "clf2"},            # 2: expert 2
        {"stem", "layer1", "layer2", "head1", "clf1"},                      # 3: expert 1
        backbone_all | heads | clfs | {"concat"},                           # 4: all, on A_oval
        backbone_all | heads | {"concat"},                                  # 5: concat, raw
    ]
    assert [_groups(m) for m in ctx.moved] == expected


def _bn_modules(model: torch.nn.Module) -> dict[str, torch.nn.Module]:
    return {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)}


@pytest.mark.parametrize("augmentation", ["mda", "raw"])
def test_truncated_steps_train_exactly_like_full_passes(augmentation):
    """Issue: steps 2..N need the backbone only up to their expert. Cutting the passes
    short must not change a loss or a gradient: same losses, same weights after the
    N+2 steps. Only running statistics of the parts a step skips see fewer batches."""
    images, targets = _batch(px=64)
    runs = {}
    for truncated in (False, True):
        model = _model(seed=2, t=0.7, augmentation=augmentation,
                       truncated_steps=truncated).train()
        losses = model.training_step(_ctx(model, seed=3), images, targets)
        runs[truncated] = (model, losses)
    (full, l_full), (cut, l_cut) = runs[False], runs[True]
    assert l_full.keys() == l_cut.keys()
    for k in l_full:
        assert torch.allclose(l_full[k], l_cut[k], rtol=1e-5, atol=1e-6), k
    for (name, a), b in zip(full.named_parameters(), cut.parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), name
    bn_full, bn_cut = _bn_modules(full), _bn_modules(cut)
    # Counted by hand for N = 3 (steps: all, up to layer3, up to layer2, all, all; with a
    # baseline step 1 reads expert 3's branch only); batches seen by each part:
    step1_all = augmentation == "mda"
    expected = {"backbone.body.bn1": 5, "backbone.body.layer2.0.bn1": 5,
                "backbone.body.layer3.0.bn1": 4, "backbone.body.layer4.0.bn1": 3,
                "experts.0.reduce.1": 3 + step1_all, "experts.1.reduce.1": 3 + step1_all,
                "experts.2.reduce.1": 3, "classifiers.0.net.0": 2 + step1_all,
                "classifiers.2.net.0": 2, "concat_classifier.net.0": 2 + step1_all}
    assert {n: int(bn_cut[n].num_batches_tracked) for n in expected} == expected
    assert all(int(m.num_batches_tracked) == 5 for m in bn_full.values())


def test_truncated_steps_save_work_and_old_records_read_as_full_passes():
    from fgvc_lib.methods import recorded_options
    from fgvc_lib.reports.cost import training_step_flops

    from torch.utils.flop_counter import FlopCounterMode

    images, targets = _batch(px=64)
    flops = {t: training_step_flops(_model(truncated_steps=t), images, targets).total
             for t in (False, True)}
    # Autograd already skips the backward of what a loss does not read; the saving is
    # the forward of the deeper stages and the other heads (at C_v = 16 and 64 px, ~5%;
    # results/cpu/flops has ResNet-50 at 448 px).
    assert flops[True] < flops[False]

    def forward_flops(model, **kwargs) -> int:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(images, **kwargs)
        return counter.get_total_flops()

    model = _model().train()
    whole = forward_flops(model)
    # ResNet-18's four stages cost about the same: expert 1 (layer2) reads ~3/5 of the
    # network, expert 2 (layer3) ~4/5.
    assert forward_flops(model, only="p1") < 0.65 * whole
    assert forward_flops(model, only="p2") < 0.85 * whole
    assert get_spec("cmal").options().truncated_steps is True
    spec = _model().fgvc_spec
    old = {**spec, "resolved_options": {k: v for k, v in spec["resolved_options"].items()
                                        if k != "truncated_steps"}}
    assert recorded_options(old)["truncated_steps"] is False
    assert recorded_options(spec)["truncated_steps"] is True


def test_partial_passes_compute_the_same_scores_as_the_full_pass():
    model = _model(seed=4).eval()
    model.test_on_oval = False
    images, _ = _batch(px=64)
    with torch.no_grad():
        full = model(images).heads
        for only in ("p1", "p2", "p3", "p_oval"):
            assert set(model(images, only=only).heads) == {only}
            assert torch.allclose(model(images, only=only).heads[only], full[only], atol=1e-5)
        scores = model(images, only="scores").heads
    assert set(scores) == {"p1", "p2", "p3", "p_oval"}
    with pytest.raises(FGVCError, match="use one of: p1, p2, p3, scores, p_oval"):
        model(images, only="p9")


def test_mda_draw_picks_per_sample_or_per_batch():
    pool = [torch.full((64, 1), float(v)) for v in range(3)]
    g = torch.Generator().manual_seed(0)
    per_sample = _draw_from_pool(pool, g, "sample").flatten()
    assert set(per_sample.tolist()) == {0.0, 1.0, 2.0}
    for _ in range(5):
        per_batch = _draw_from_pool(pool, g, "batch").flatten()
        assert len(set(per_batch.tolist())) == 1


def test_two_experts_take_four_steps():
    model = _model(expert_stages=(2, 3)).train()
    ctx = _ctx(model)
    losses = model.training_step(ctx, *_batch(px=32))
    assert ctx.optimizer_steps == 4
    assert set(losses) == {"loss", "loss_1", "loss_2", "loss_3", "loss_4"}


def test_same_generator_seed_same_training():
    images, targets = _batch(px=32)
    runs = []
    for _ in range(2):
        model = _model(seed=5, expert_stages=(2, 3)).train()
        losses = model.training_step(_ctx(model, seed=7), images, targets)
        runs.append((losses, [p.detach().clone() for p in model.parameters()]))
    (l1, p1), (l2, p2) = runs
    assert all(torch.equal(l1[k], l2[k]) for k in l1)
    assert all(torch.equal(a, b) for a, b in zip(p1, p2))


# -- baselines (Table 2) -----------------------------------------------------------------
@pytest.mark.parametrize("augmentation", AUGMENTATIONS)
def test_every_augmentation_makes_a_step_input(augmentation):
    model = _model(augmentation=augmentation)
    images, targets = _batch(size=8, px=32)
    # Stand-ins for A_1, A_2, A_3, A_oval that are easy to tell apart.
    crops = [images + 10.0 * (i + 1) for i in range(4)] if augmentation == "mda" else []
    g = torch.Generator().manual_seed(0)
    mixing = augmentation in ("mixup", "cutmix", "saliencymix", "mix_random")
    for expert in (1, None):  # a step 2..N input, then the step N+1 input
        batch = model._step_input(g, images, targets, crops, expert=expert)
        assert batch.images.shape == images.shape and not batch.images.requires_grad
        assert (batch.mixed is not None) == mixing
        if mixing:
            assert ((batch.mixed.lam >= 0) & (batch.mixed.lam <= 1)).all()
            assert torch.equal(batch.mixed.targets_a, targets)
        if augmentation == "raw":
            assert torch.equal(batch.images, images)
        if augmentation == "mda" and expert == 1:  # pool {raw, A_2, A_3}, never A_1
            for i in range(8):
                assert any(torch.equal(batch.images[i], p[i]) for p in (images, crops[1], crops[2]))
        if augmentation == "mda" and expert is None:
            assert torch.equal(batch.images, crops[3])


@pytest.mark.parametrize("augmentation", ["pad_crop_flip", "mix_random"])
def test_baselines_train_with_the_same_steps(augmentation):
    model = _model(augmentation=augmentation, expert_stages=(2, 3)).train()
    ctx = _ctx(model)
    losses = model.training_step(ctx, *_batch(px=32))
    assert ctx.optimizer_steps == 4 and all(torch.isfinite(v) for v in losses.values())


def test_loss_goes_down_on_a_fixed_batch():
    model = _model(seed=2).train()
    images, targets = _batch(size=8, px=32, seed=3)
    ctx = _ctx(model, lr=0.05)
    history = [model.training_step(ctx, images, targets) for _ in range(8)]
    first, last = history[0], history[-1]
    assert last["loss"] < 0.7 * first["loss"]
    assert last["loss_5"] < 0.5 * first["loss_5"]


# -- options -----------------------------------------------------------------------------
@pytest.mark.parametrize("options,message", [
    ({"pooling": "gem"}, "unknown pooling"),
    ({"augmentation": "comixup"}, "Co-Mixup"),
    ({"augmentation": "autoaugment"}, "unknown augmentation"),
    ({"t": 1.5}, "threshold t"),
    ({"cv": 15}, "even integer"),
    ({"cam_class": "gt"}, "unknown cam_class"),
    ({"crop_pad": 0.7}, "crop_pad"),
    ({"classifier": "deep"}, "unknown classifier"),
    ({"fusion": "max"}, "unknown fusion"),
    ({"mda_draw": "image"}, "unknown mda_draw"),
    ({"expert_stages": (3, 1)}, "expert_stages"),
    ({"second_order_dim": 0}, "second_order_dim"),
    ({"mix_alpha": 0.0}, "mix_alpha"),
    ({"threshold": 0.5}, "has no option"),
])
def test_bad_options_name_the_fix(options, message):
    with pytest.raises(FGVCError, match=message) as info:
        _model(**options)
    assert "-> fix:" in str(info.value)


def test_mismatched_targets_are_rejected():
    model = _model().train()
    images, _ = _batch()
    with pytest.raises(FGVCError, match="do not match"):
        model.training_step(_ctx(model), images, torch.zeros(3, dtype=torch.long))


# -- blocks/augment.py (the baselines' augmentations) -----------------------------------
def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_mixup_is_a_convex_combination_with_matching_loss():
    images, targets = _batch(size=6, px=8)
    mixed = augment.mixup(images, targets, _gen(), alpha=0.4)
    lam = mixed.lam[0]
    assert torch.allclose(mixed.lam, lam.expand(6)) and 0 < lam < 1
    logits = torch.randn(6, K)
    ce = torch.nn.functional.cross_entropy
    expected = (lam * ce(logits, targets, reduction="none")
                + (1 - lam) * ce(logits, mixed.targets_b, reduction="none")).mean()
    assert torch.allclose(mixed.loss(logits), expected)


def test_mixup_pixels():
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 1, 2, 2).contiguous()
    targets = torch.arange(4)
    mixed = augment.mixup(images, targets, _gen(1))
    lam = mixed.lam[0]
    partner = mixed.targets_b.float().view(4, 1, 1, 1)  # image i holds the value i
    assert torch.allclose(mixed.images, lam * images + (1 - lam) * partner)


@pytest.mark.parametrize("mixer", ["cutmix", "saliencymix"])
def test_box_mixing_keeps_lam_of_the_first_image(mixer):
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 16, 16).contiguous()
    targets = torch.arange(4)
    mixed = getattr(augment, mixer)(images, targets, _gen(2))
    own = (mixed.images[:, 0] == images[:, 0]).float().mean((1, 2))
    partner = mixed.targets_b.float().view(4, 1, 1)
    from_partner = (mixed.images[:, 0] == partner).float().mean((1, 2))
    same = mixed.targets_b == targets
    assert torch.allclose(mixed.lam[~same], own[~same])
    assert torch.allclose(own[~same] + from_partner[~same], torch.ones(int((~same).sum())))


def test_saliencymix_centres_the_box_on_the_sources_peak():
    images = torch.randn(4, 3, 32, 32, generator=_gen(3))
    saliency = torch.zeros(4, 32, 32)
    peaks = [(5, 7), (20, 25), (16, 16), (30, 2)]
    for i, (r, c) in enumerate(peaks):
        saliency[i, r, c] = 1.0
    mixed = augment.saliencymix(images, torch.arange(4), _gen(4), saliency=saliency)
    for i in range(4):
        source = int(mixed.targets_b[i])
        r, c = peaks[source]
        if source != i:  # the peak pixel of the source is pasted at the same place
            assert torch.equal(mixed.images[i, :, r, c], images[source, :, r, c])


def test_spectral_residual_saliency_finds_a_blob():
    torch.manual_seed(0)
    images = 0.2 * torch.randn(4, 3, 64, 64)
    corners = [(10, 40), (40, 10), (30, 30), (50, 50)]
    for i, (r, c) in enumerate(corners):
        images[i, :, r:r + 8, c:c + 8] += 2.0
    saliency = augment.spectral_residual_saliency(images)
    assert saliency.shape == (4, 64, 64) and saliency.min() >= 0 and saliency.max() <= 1
    peak = saliency.flatten(1).argmax(1)
    for i, (r, c) in enumerate(corners):
        assert r - 2 <= int(peak[i] // 64) < r + 10 and c - 2 <= int(peak[i] % 64) < c + 10


def test_random_resized_crop_at_full_scale_is_the_image():
    images = torch.randn(3, 2, 10, 10)
    out = augment.random_resized_crop(images, _gen(), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(out, images, atol=1e-6)
    half = augment.random_resized_crop(images, _gen(), scale=(0.5, 0.5), ratio=(1.0, 1.0))
    assert half.shape == images.shape and not torch.allclose(half, images)


def test_pad_crop_is_a_shifted_window_of_the_padded_image():
    images = torch.randn(6, 2, 5, 7)
    assert torch.equal(augment.pad_crop(images, _gen(), padding=0), images)
    out = augment.pad_crop(images, _gen(), padding=2)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2))
    for i in range(6):
        assert any(torch.equal(out[i], padded[i, :, dy:dy + 5, dx:dx + 7])
                   for dy in range(5) for dx in range(5))


def test_random_flip_probability_extremes_and_mixture():
    images = torch.randn(16, 1, 3, 4)
    assert torch.equal(augment.random_flip(images, _gen(), p=0.0), images)
    assert torch.equal(augment.random_flip(images, _gen(), p=1.0), images.flip(-1))
    out = augment.random_flip(images, _gen(), p=0.5)
    flipped = [torch.equal(out[i], images[i].flip(-1)) for i in range(16)]
    kept = [torch.equal(out[i], images[i]) for i in range(16)]
    assert all(f or k for f, k in zip(flipped, kept)) and any(flipped) and any(kept)


def test_augmentations_replay_with_the_same_seed():
    images, targets = _batch(size=4, px=16)
    for fn in (augment.cutmix, augment.saliencymix, augment.mixup):
        a, b = fn(images, targets, _gen(9)), fn(images, targets, _gen(9))
        assert torch.equal(a.images, b.images) and torch.equal(a.lam, b.lam)
    assert torch.equal(augment.pad_crop(images, _gen(9)), augment.pad_crop(images, _gen(9)))


# -- independent expectations: hand-computed CE, boxes, crops, heads ------------------------
def _hand_ce(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Mean cross-entropy by an explicit loop over images: -(z_y - log sum_k exp z_k)."""
    total = 0.0
    z = logits.detach().double().tolist()
    for row, y in zip(z, targets.tolist()):
        top = max(row)
        log_sum = top + math.log(sum(math.exp(v - top) for v in row))
        total += log_sum - row[y]
    return total / len(z)


def _hand_minmax(m: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(m)
    for i in range(m.shape[0]):
        lo, hi = float(m[i].min()), float(m[i].max())
        out[i] = (m[i] - lo) / (hi - lo) if hi > lo else torch.zeros_like(m[i])
    return out


def _hand_box(mask: torch.Tensor) -> torch.Tensor:
    """x0, y0, x1 (exclusive), y1 (exclusive) of the positive pixels, per image; whole image
    when empty."""
    boxes = []
    for m in mask:
        ys, xs = torch.nonzero(m, as_tuple=True)
        if len(ys) == 0:
            boxes.append([0.0, 0.0, float(m.shape[1]), float(m.shape[0])])
        else:
            boxes.append([float(xs.min()), float(ys.min()), float(xs.max()) + 1, float(ys.max()) + 1])
    return torch.tensor(boxes)


def _hand_crop(images: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """Crop and resize to the input size: output pixel (i, j) samples the image bilinearly
    at the box point of its centre (pixel centres at integer + 0.5), edges clamped."""
    b, c, h, w = images.shape
    out = torch.empty_like(images)
    for n in range(b):
        x0, y0, x1, y1 = boxes[n].tolist()
        ys = (y0 + (torch.arange(h, dtype=torch.float64) + 0.5) * (y1 - y0) / h - 0.5).clamp(0, h - 1)
        xs = (x0 + (torch.arange(w, dtype=torch.float64) + 0.5) * (x1 - x0) / w - 0.5).clamp(0, w - 1)
        ylo, xlo = ys.floor().long(), xs.floor().long()
        yhi, xhi = (ylo + 1).clamp(max=h - 1), (xlo + 1).clamp(max=w - 1)
        wy, wx = (ys - ylo).float()[:, None], (xs - xlo).float()[None, :]
        img = images[n]
        top = img[:, ylo][:, :, xlo] * (1 - wx) + img[:, ylo][:, :, xhi] * wx
        bottom = img[:, yhi][:, :, xlo] * (1 - wx) + img[:, yhi][:, :, xhi] * wx
        out[n] = top * (1 - wy) + bottom * wy
    return out


def _hand_regions(cams, size, t):
    """Eqs. (5)-(7) by hand: bilinear up-sampling, min-max, threshold, box; the mean of the
    normalised maps normalised again for A_oval."""
    norms = [_hand_minmax(torch.nn.functional.interpolate(
        c[:, None].float(), size=size, mode="bilinear", align_corners=False)[:, 0]) for c in cams]
    boxes = [_hand_box(n > t) for n in norms]
    oval_map = _hand_minmax(sum(norms) / len(norms))
    return boxes, _hand_box(oval_map > t), oval_map


def _hand_cam(maps: torch.Tensor, clf, classes: torch.Tensor) -> torch.Tensor:
    """Eq. (4) with the two linear layers' product as class weights, by a loop over channels."""
    w = clf.net[4].weight.detach() @ clf.net[1].weight.detach()  # (K, C_v)
    cam = torch.zeros(maps.shape[0], *maps.shape[2:])
    for n, k in enumerate(classes.tolist()):
        for ch in range(maps.shape[1]):
            cam[n] += w[k, ch] * maps[n, ch]
    return cam


@dataclasses.dataclass
class ObjectiveContext(RecordingContext):
    """Also records the objective each optimiser step minimised."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.objectives: list[float] = []

    def step(self, loss: torch.Tensor) -> None:
        self.objectives.append(float(loss.detach()))
        super().step(loss)


def test_step_losses_are_the_hand_computed_cross_entropies():
    """Algorithm 1's five objectives from each step's own scores: CE(p3), CE(p2), CE(p1),
    CE(p1^A) + CE(p2^A) + CE(p3^A) + CE(p_oval^A), CE(p_oval). A concatenation loss counted
    twice (as in the released code) fails here."""
    model = _model(t=0.7).train()
    images, targets = _batch(px=64)
    ctx = _ctx(model, cls=ObjectiveContext)
    ctx.model = model
    losses = model.training_step(ctx, images, targets)
    heads = [o.heads for o in ctx.outputs]
    step4 = sum(_hand_ce(heads[3][k], targets) for k in ("p1", "p2", "p3", "p_oval"))
    expected = [_hand_ce(heads[0]["p3"], targets), _hand_ce(heads[1]["p2"], targets),
                _hand_ce(heads[2]["p1"], targets), step4, _hand_ce(heads[4]["p_oval"], targets)]
    assert ctx.objectives == pytest.approx(expected, rel=1e-5)
    reported = {"loss_3": expected[0], "loss_2": expected[1], "loss_1": expected[2],
                "loss_4": _hand_ce(heads[3]["p_oval"], targets), "loss_5": expected[4],
                "loss": sum(expected)}
    assert {k: float(v) for k, v in losses.items()} == pytest.approx(reported, rel=1e-5)


def test_a_oval_is_the_crop_of_the_mean_maps_box_by_hand():
    """Eq. (7) and the crop, recomputed without the library's map, box and crop functions;
    the *_A heads are the raw heads of that crop."""
    model = _model(seed=3).eval()
    images, _ = _batch(seed=4)
    with torch.no_grad():
        out = model(images)
        _, box, oval = _hand_regions([out.attention[f"expert{i}"] for i in (1, 2, 3)], (64, 64), 0.5)
        crop = _hand_crop(images, box)
        model.test_on_oval = False
        on_crop = model(crop)
    assert torch.allclose(out.attention["oval"], oval, atol=1e-5)
    assert torch.equal(out.extras["boxes"]["oval"], box)
    assert (box != torch.tensor([0.0, 0.0, 64.0, 64.0])).any()  # a real crop, not the image
    for name in ("p1", "p2", "p3", "p_oval"):
        assert torch.allclose(out.heads[f"{name}_A"], on_crop.heads[name], atol=1e-4)


def test_label_cam_crops_the_box_of_the_ground_truth_class():
    model = _model(cam_class="label", t=0.6).train()
    images, _ = _batch()
    out = model(images)
    predicted = out.heads["p1"].argmax(1)
    targets = (predicted + 1) % K                      # never the predicted class
    maps = out.extras["expert_maps"]
    cams = [_hand_cam(maps[i], model.classifiers[i], targets) for i in range(3)]
    _, box, _ = _hand_regions(cams, (64, 64), 0.6)
    crops = model._mda_crops(out, images, targets)
    assert torch.allclose(crops[-1], _hand_crop(images, box), atol=1e-5)
    # The prediction's CAM gives another crop here, so the test can tell the two apart.
    pred_cams = [_hand_cam(maps[i], model.classifiers[i], out.heads[f"p{i + 1}"].argmax(1))
                 for i in range(3)]
    _, pred_box, _ = _hand_regions(pred_cams, (64, 64), 0.6)
    assert not torch.equal(pred_box, box)


@pytest.mark.parametrize("draw", ["batch", "sample"])
def test_mda_inputs_are_the_hand_made_attention_crops(draw):
    model = _model(t=0.7, mda_draw=draw).train()
    images, targets = _batch(px=64)
    ctx = _ctx(model, cls=RecordingContext)
    ctx.model = model
    model.training_step(ctx, images, targets)
    cams = [ctx.outputs[0].attention[f"expert{i}"] for i in (1, 2, 3)]
    boxes, oval_box, _ = _hand_regions(cams, (64, 64), 0.7)
    a1, a2, a3 = (_hand_crop(images, b) for b in boxes)
    a_oval = _hand_crop(images, oval_box)
    assert torch.equal(ctx.inputs[0], images) and torch.equal(ctx.inputs[4], images)
    assert torch.allclose(ctx.inputs[3], a_oval, atol=1e-5) and not torch.allclose(a_oval, images)
    # Step 2 trains expert 2 (pool {raw, A_1, A_3}), step 3 expert 1 (pool {raw, A_2, A_3}).
    for step, pool in ((1, (images, a1, a3)), (2, (images, a2, a3))):
        if draw == "batch":   # one pool member for the whole batch
            assert any(torch.allclose(ctx.inputs[step], p, atol=1e-5) for p in pool)
        for i in range(images.shape[0]):
            assert any(torch.allclose(ctx.inputs[step][i], p[i], atol=1e-5) for p in pool)


def test_mda_draws_once_per_batch_by_default():
    assert get_spec("cmal").options().mda_draw == "batch"


def test_expert_head_is_conv1x1_bn_elu_conv3x3_bn_elu_then_global_max():
    """Eqs. (1)-(3) by hand, in eval mode (BN with its running statistics)."""
    model = _model(cv=16).eval()
    for head, c_in in zip(model.experts, (128, 256, 512)):  # ResNet-18 layer2/3/4
        conv1, bn1, act1 = head.reduce
        conv3, bn3, act3 = head.expand
        assert (conv1.in_channels, conv1.out_channels, conv1.kernel_size) == (c_in, 8, (1, 1))
        assert (conv3.in_channels, conv3.out_channels, conv3.kernel_size, conv3.padding) == (
            8, 16, (3, 3), (1, 1))
        assert isinstance(act1, torch.nn.ELU) and isinstance(act3, torch.nn.ELU)
        for bn in (bn1, bn3):  # non-trivial statistics so that BN is really checked
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.2, 0.2)
        x = torch.randn(2, c_in, 5, 6)

        def bn_eval(y, bn):
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            return (y - bn.running_mean[None, :, None, None]) * scale[None, :, None, None] \
                + bn.bias[None, :, None, None]

        def elu(y):
            return torch.where(y > 0, y, torch.exp(y) - 1)

        with torch.no_grad():
            x1 = elu(bn_eval(torch.einsum("oc,bchw->bohw", conv1.weight[:, :, 0, 0], x), bn1))
            x2 = elu(bn_eval(torch.nn.functional.conv2d(x1, conv3.weight, padding=1), bn3))
            v, cam_map = head(x)
        assert torch.allclose(cam_map, x2, atol=1e-5)
        assert torch.allclose(v, x2.flatten(2).max(dim=2).values, atol=1e-5)


def test_baseline_2_crops_half_the_area_with_the_images_aspect():
    model = _model(augmentation="random_crop")
    h, w = 40, 60
    # Channel 0 holds each pixel's x centre, channel 1 its y centre: a resized crop of this
    # ramp image shows which box it came from.
    xs = (torch.arange(w, dtype=torch.float32) + 0.5).expand(h, w)
    ys = (torch.arange(h, dtype=torch.float32) + 0.5)[:, None].expand(h, w)
    images = torch.stack([xs, ys, torch.zeros(h, w)])[None].repeat(16, 1, 1, 1)
    batch = model._step_input(torch.Generator().manual_seed(0), images, torch.zeros(16, dtype=torch.long),
                              [], expert=1)
    for crop in batch.images:
        box_w = float(crop[0].max() - crop[0].min()) * w / (w - 1)
        box_h = float(crop[1].max() - crop[1].min()) * h / (h - 1)
        assert box_w * box_h / (h * w) == pytest.approx(0.5, abs=0.03)
        assert box_w / box_h == pytest.approx(w / h, rel=0.04)


def test_full_profile_trains_tresnet_l_at_368_px_and_the_others_at_448():
    from fgvc_lib.config import resolve_config

    assert resolve_config("cmal", "cars", "full", backbone="tresnet_l").image_size == 368
    assert resolve_config("cmal", "cars", "full", backbone="resnet50").image_size == 448
    assert resolve_config("cmal", "cars", "full").image_size == 448          # default ResNet-50
    assert resolve_config("cmal", "cars", "full", backbone="tresnet_l", image_size=448).image_size == 448
