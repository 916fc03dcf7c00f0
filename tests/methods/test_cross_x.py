"""Cross-X: OSME (Eqs. (1)-(2)), merged maps (Eq. (5)), heads, losses, ablations, recipe."""
from __future__ import annotations

import math
from dataclasses import fields

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F


from fgvc_lib.config import TrainConfig, resolve_config
from fgvc_lib.models.step import StepContext
from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.cross_x.osme import (OSME, part_activation_maps, residual_block_parts,
                                         residual_block_plain)
from fgvc_lib.methods.cross_x.model import ABLATIONS, TABLE2, CrossX, MergedPartMaps
from fgvc_lib.models.output import ModelOutput
from fgvc_lib.methods import available_methods as available_models, build_model, get_spec

K = 4  # classes
SIZE = 64  # resnet18 at 64 px: U^{L-1} 4x4, U^L 2x2


def _images(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def _ctx(model: nn.Module, lr: float = 0.01) -> StepContext:
    params = [p for p in model.parameters() if p.requires_grad]
    return StepContext(forward=model, optimizer=torch.optim.SGD(params, lr=lr, momentum=0.9),
                       generator=torch.Generator().manual_seed(0), params=params)


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def full_model() -> CrossX:
    torch.manual_seed(0)
    return build_model("cross_x", K, backbone="resnet18")


# -- OSME --------------------------------------------------------------------
def test_osme_returns_p_reweighted_copies_of_the_map():
    torch.manual_seed(0)
    osme = OSME(channels=8, num_excitations=3, reduction=2)
    u = torch.randn(2, 8, 5, 5)
    parts = osme(u)
    assert parts.shape == (2, 3 * 8, 5, 5)
    gates = osme.gates(u)
    assert len(gates) == 3 and all(m.shape == (2, 8) for m in gates)
    assert all(((m > 0) & (m < 1)).all() for m in gates)  # sigmoid gates, Eq. (1)
    for p, m in enumerate(gates):  # Eq. (2): U_p = m^p (.) U, part p in channel block p
        torch.testing.assert_close(parts[:, 8 * p:8 * (p + 1)], u * m[:, :, None, None])
    assert not torch.allclose(gates[0], gates[1])  # independent excitations
    maps = part_activation_maps(parts, 3)
    assert maps.shape == (2, 3, 5, 5)
    torch.testing.assert_close(maps[:, 1], parts[:, 8:16].mean(1))
    shortcut = torch.randn_like(u)
    with_shortcut = osme(u, shortcut=shortcut)
    torch.testing.assert_close(with_shortcut[:, :8], torch.relu(u * gates[0][:, :, None, None]
                                                                + shortcut))


def _open_gates(osme: OSME) -> None:
    for excite in osme.excitations:  # sigmoid(50) == 1.0 in float32
        nn.init.zeros_(excite[2].weight)
        nn.init.constant_(excite[2].bias, 50.0)


@pytest.mark.parametrize("block_kind", ["basic", "bottleneck_se_downsample"])
def test_residual_osme_keeps_the_block_output_and_is_the_block_when_gates_are_open(block_kind):
    from timm.models.resnet import BasicBlock, Bottleneck

    torch.manual_seed(0)
    if block_kind == "basic":
        block, x = BasicBlock(8, 8), torch.randn(2, 8, 6, 6)
    else:
        down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
        block = Bottleneck(8, 4, stride=2, downsample=down, attn_layer="se")
        x = torch.randn(2, 8, 6, 6)
    block.eval()
    expected = block(x)
    torch.testing.assert_close(residual_block_plain(block, x), expected)
    osme = OSME(block.bn2.num_features if block_kind == "basic" else 16, 2, reduction=2)
    plain, parts = residual_block_parts(block, x, osme, with_plain=True)
    torch.testing.assert_close(plain, expected)  # stage L+1 still sees the original block
    assert parts.shape == (2, 2 * expected.shape[1], *expected.shape[2:])
    skipped_plain, parts_alone = residual_block_parts(block, x, osme, with_plain=False)
    assert skipped_plain is None
    torch.testing.assert_close(parts_alone, parts)
    if block_kind == "basic":  # no SE: fully open OSME gates give back the block itself
        _open_gates(osme)
        _, parts = residual_block_parts(block, x, osme)
        torch.testing.assert_close(parts, torch.cat([expected, expected], 1))


# -- shapes --------------------------------------------------------------------
def test_resnet50_channel_sizes_are_4096_2048_2048():
    torch.manual_seed(0)
    model = build_model("cross_x", 10, backbone="resnet50")
    assert (model.fc_top.in_features, model.fc_mid.in_features,
            model.fc_merged.in_features) == (4096, 2048, 2048)
    with torch.no_grad():
        out = model(torch.randn(2, 3, SIZE, SIZE))
    sizes = {lvl: f.shape[1] * f.shape[2] for lvl, f in out.extras["part_features"].items()}
    assert sizes == {"L": 4096, "L-1": 2048, "G": 2048}


def test_merged_maps_shapes_and_one_filter_set_per_part(full_model):
    model = full_model.eval()
    with torch.no_grad():
        u_mid, u_top = model._part_maps(_images(2))
        u_merged = model.merge(u_top, u_mid)
    assert u_top.shape == (2, 2 * 512, SIZE // 32, SIZE // 32)
    assert u_mid.shape == (2, 2 * 256, SIZE // 16, SIZE // 16)
    assert u_merged.shape == u_mid.shape
    # Changing part 2's inputs leaves part 1's merged map unchanged (grouped K_1, K_2, BN).
    u_top2, u_mid2 = u_top.clone(), u_mid.clone()
    u_top2[:, 512:] += 1.0
    u_mid2[:, 256:] -= 1.0
    with torch.no_grad():
        changed = model.merge(u_top2, u_mid2)
    torch.testing.assert_close(changed[:, :256], u_merged[:, :256])
    assert not torch.allclose(changed[:, 256:], u_merged[:, 256:])
    model.train()


def test_merge_orders_differ_and_eq5_applies_k2_to_the_mid_map_only():
    torch.manual_seed(0)
    eq5 = MergedPartMaps(6, 4, 2, order="eq5").eval()
    fpn = MergedPartMaps(6, 4, 2, order="fpn").eval()
    fpn.load_state_dict(eq5.state_dict())
    u_top, u_mid = torch.randn(1, 12, 2, 2), torch.randn(1, 8, 4, 4)
    up = F.interpolate(eq5.reduce(u_top), size=(4, 4), mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(eq5(u_top, u_mid), eq5.bn(eq5.antialias(u_mid) + up))
        torch.testing.assert_close(fpn(u_top, u_mid), fpn.bn(fpn.antialias(u_mid + up)))
        assert not torch.allclose(eq5(u_top, u_mid), fpn(u_top, u_mid))


# -- output contract -----------------------------------------------------------
def test_forward_output_contract(full_model):
    out = full_model(_images(3))
    assert set(out.heads) == {"L", "L-1", "G"}
    assert all(h.shape == (3, K) for h in out.heads.values())
    top, mid = (SIZE // 32,) * 2, (SIZE // 16,) * 2
    assert {k: tuple(v.shape) for k, v in out.attention.items()} == {
        "L/p1": (3, *top), "L/p2": (3, *top), "L-1/p1": (3, *mid), "L-1/p2": (3, *mid),
        "G/p1": (3, *mid), "G/p2": (3, *mid)}
    # Final prediction, Eq. (7): logits = log of the mean of the branch softmaxes.
    probs = sum(F.softmax(h, dim=-1) for h in out.heads.values())
    torch.testing.assert_close(out.logits.exp(), probs / 3)
    assert torch.equal(out.logits.argmax(1), probs.argmax(1))
    for level, feats in out.extras["part_features"].items():
        assert feats.shape[:2] == (3, 2) and feats.dtype == torch.float32
        torch.testing.assert_close(feats.norm(dim=-1), torch.ones(3, 2))
        s = out.extras["S"][level]
        assert s.shape == (2, 2)
        torch.testing.assert_close(s, s.T)


def test_data_loss_variants(full_model):
    out = full_model(_images(3))
    y = torch.tensor([0, 1, 3])
    heads = list(out.heads.values())
    expected = {
        "mixture": -torch.log(sum(F.softmax(h, -1) for h in heads) / 3)[torch.arange(3), y].mean(),
        "summed_logits": F.cross_entropy(sum(heads), y),
        "per_branch": sum(F.cross_entropy(h, y) for h in heads),
    }
    try:
        for kind, value in expected.items():
            full_model.data_loss = kind
            terms = full_model.losses(out, y)
            torch.testing.assert_close(terms["ce"], value)
            torch.testing.assert_close(terms["loss"], terms["ce"] + terms["c3s"] + terms["cl"])
    finally:
        full_model.data_loss = "per_branch"


def test_the_default_data_term_still_trains_a_confidently_wrong_branch(full_model):
    # Eq. (9) on the mixture of Eq. (7) gives such a branch (almost) no gradient, so it
    # stays wrong and then outvotes the others; one cross-entropy per branch does not.
    assert full_model.data_loss == "per_branch"
    y = torch.tensor([0, 1])
    grads = {}
    for kind in ("mixture", "per_branch"):
        right = torch.tensor([[6.0, 0.0, 0.0, 0.0], [0.0, 6.0, 0.0, 0.0]], requires_grad=True)
        wrong = torch.tensor([[0.0, 0.0, 40.0, 0.0], [0.0, 0.0, 40.0, 0.0]], requires_grad=True)
        heads = {"L": right, "L-1": wrong}
        logits = torch.logsumexp(torch.stack([F.log_softmax(h, -1) for h in heads.values()]), 0)
        out = ModelOutput(logits=logits - math.log(2), heads=heads, extras={"S": {}})
        full_model.data_loss = kind
        try:
            full_model.losses(out, y)["ce"].backward()
        finally:
            full_model.data_loss = "per_branch"
        grads[kind] = wrong.grad.norm().item()
        final = (F.softmax(right, -1) + F.softmax(wrong, -1)).argmax(1)
        assert final.tolist() == [2, 2]  # the wrong branch outvotes the right one in Eq. (7)
    assert grads["mixture"] < 1e-6 < 0.5 < grads["per_branch"]


def test_cam_layers_are_called_and_return_part_maps(full_model):
    seen: dict[str, torch.Size] = {}
    layers = full_model.cam_layers()
    assert list(layers)[-1] == "L"
    hooks = [m.register_forward_hook(lambda mod, inp, out, n=name: seen.__setitem__(n, out.shape))
             for name, m in layers.items()]
    try:
        full_model(_images(2))
    finally:
        for h in hooks:
            h.remove()
    assert set(seen) == set(layers)
    assert seen["L"][1] == 2 * 512 and seen["L-1"][1] == 2 * 256 and seen["G"][1] == 2 * 256


# -- ablations and training --------------------------------------------------------
ALL_CONFIGS = {**{f"{k} (GMP)": {**v, "pooling_mid": "max"} for k, v in ABLATIONS.items()},
               **TABLE2}


@pytest.mark.parametrize("name", list(ALL_CONFIGS))
def test_every_ablation_configuration_builds_runs_and_trains(name):
    opts = ALL_CONFIGS[name]
    torch.manual_seed(0)
    model = build_model("cross_x", K, backbone="resnet18", **opts)
    n_parts = 2 if opts["osme"] else 1
    expected_heads = ({"L"} | ({"L-1"} if opts["mid"] else set())
                      | ({"G"} if opts["merged"] else set()))
    out = model(_images(2))
    assert set(out.heads) == expected_heads
    levels = {"L"} | ({"L-1"} if opts["mid"] or opts["merged"] else set()) | (
        {"G"} if opts["merged"] else set())
    assert set(out.attention) == {f"{lvl}/p{k + 1}" for lvl in levels for k in range(n_parts)}
    stats = model.training_step(_ctx(model), _images(2), torch.tensor([0, 3]))
    assert set(stats) == {"loss", "ce", "c3s", "cl"}
    assert all(torch.isfinite(v) and not v.requires_grad for v in stats.values())
    assert (stats["c3s"] != 0) == opts["c3s"]
    assert (stats["cl"] != 0) == opts["cl"]


def test_osme_output_placement_on_resnet_and_p3():
    torch.manual_seed(0)
    model = build_model("cross_x", K, backbone="resnet18", osme_placement="output",
                        num_excitations=3)
    assert model.placement == "output"
    out = model(_images(2))
    assert out.extras["part_features"]["L"].shape == (2, 3, 512)
    assert "L/p3" in out.attention


def test_efficientnet_lite0_uses_the_output_placement_and_trains():
    torch.manual_seed(0)
    model = build_model("cross_x", K, backbone="efficientnet_lite0")
    assert model.placement == "output"
    # Stage L is the whole pretrained extractor (conv_head: 1280 channels), L-1 block 4 (112).
    assert (model.fc_top.in_features, model.fc_mid.in_features) == (2 * 1280, 2 * 112)
    stats = model.training_step(_ctx(model), _images(2), torch.tensor([1, 2]))
    assert torch.isfinite(stats["loss"])


def test_seresnet50_every_trainable_parameter_gets_a_gradient():
    # DDP refuses parameters without gradient: the SE of layer4's last block
    # (whose plain output Cross-X never uses) must be frozen, all else used.
    torch.manual_seed(0)
    model = build_model("cross_x", K)  # default backbone: seresnet50
    assert model.backbone.name == "seresnet50" and model.placement == "residual"
    assert not any(p.requires_grad for p in model.backbone.stage_module(3)[-1].se.parameters())
    out = model(torch.randn(2, 3, 32, 32))
    model.losses(out, torch.tensor([0, 1]))["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []


def test_cl_detach_target_keeps_the_kl_gradient_away_from_the_top_head(full_model):
    out = full_model(_images(2))
    full_model.zero_grad(set_to_none=True)
    try:
        full_model.cl_detach_target = True
        full_model.losses(out, torch.tensor([0, 1]))["cl"].backward(retain_graph=True)
        assert full_model.fc_top.weight.grad is None
        assert full_model.fc_mid.weight.grad.abs().sum() > 0
        full_model.cl_detach_target = False
        full_model.losses(out, torch.tensor([0, 1]))["cl"].backward()
        assert full_model.fc_top.weight.grad.abs().sum() > 0
    finally:
        full_model.cl_detach_target = False
        full_model.zero_grad(set_to_none=True)


def test_training_step_under_bf16_autocast_keeps_the_losses_in_float32(full_model):
    ctx = _ctx(full_model, lr=0.0)
    ctx.autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    with ctx.autocast():
        out = full_model(_images(2))
    assert out.logits.dtype == torch.float32
    assert all(s.dtype == torch.float32 for s in out.extras["S"].values())
    stats = full_model.training_step(ctx, _images(2), torch.tensor([0, 1]))
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in stats.values())


def test_loss_goes_down_on_a_fixed_batch():
    torch.manual_seed(0)
    model = build_model("cross_x", K, backbone="resnet18")
    ctx = _ctx(model, lr=0.01)
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    targets = torch.arange(8) % K
    steps = [model.training_step(ctx, images, targets) for _ in range(10)]
    losses = [s["loss"].item() for s in steps]
    data_terms = [s["ce"].item() for s in steps]
    assert losses[-1] < losses[0] - 0.5, losses
    assert data_terms[-1] < data_terms[0] - 0.3, data_terms  # not only the regularisers
    assert ctx.optimizer_steps == 10


# -- options, registration ------------------------------------------------------
@pytest.mark.parametrize("opts, message", [
    ({"osme": False, "c3s": True}, "c3s=True needs at least 2"),
    ({"num_excitations": 1}, "c3s=True needs at least 2"),
    ({"mid": False, "merged": False}, "cl=True needs a second branch"),
    ({"pooling_mid": "median"}, "unknown pooling_mid 'median'"),
    ({"data_loss": "focal"}, "unknown data_loss 'focal'"),
    ({"merge_order": "sideways"}, "merge_order"),
    ({"lambda2": -1.0}, "lambda2"),
    ({"lambda1": float("nan")}, "lambda1"),
    ({"osme": "yes"}, "true or false"),
    ({"num_excitations": 0}, "num_excitations"),
    ({"osme": False, "c3s": False, "num_excitations": 3}, "needs OSME"),
    ({"excitation_reduction": 0}, "excitation_reduction"),
    ({"parts": 2}, "has no option"),
])
def test_bad_options_raise_fgvc_error(opts, message):
    with pytest.raises(FGVCError, match=message):
        build_model("cross_x", K, backbone="resnet18", **opts)


def test_residual_placement_on_efficientnet_is_refused():
    with pytest.raises(FGVCError, match="osme_placement='output'"):
        build_model("cross_x", K, backbone="efficientnet_lite0", osme_placement="residual")


def test_registration_and_paper_recipe():
    assert "cross_x" in available_models()
    assert get_spec("cross_x").default_backbone == "seresnet50"
    recipe = dict(get_spec("cross_x").paper_recipe)
    assert set(recipe) <= {f.name for f in fields(TrainConfig)}
    assert (recipe["optimizer"], recipe["lr"], recipe["momentum"], recipe["batch_size"],
            recipe["epochs"], recipe["scheduler"], recipe["milestones"], recipe["gamma"],
            recipe["image_size"]) == ("sgd", 0.01, 0.9, 32, 30, "multistep", [15], 0.1, 448)
    cfg = resolve_config("cross_x", profile="full")
    assert cfg.milestones == [15] and math.isclose(cfg.lr, 0.01)


# -- independent expectations: lambda -> term mapping, pooling, linear C3S, Lite0 ------------
def _hand_c3s(features: torch.Tensor) -> float:
    """Eq. (4) on S of Eq. (3) (mean over all image pairs), by explicit loops."""
    n, p, _ = features.shape
    f = [[features[i, a] / features[i, a].norm() for a in range(p)] for i in range(n)]
    s = [[sum(float(f[i][a] @ f[j][b]) for i in range(n) for j in range(n)) / n ** 2
          for b in range(p)] for a in range(p)]
    frob = sum(s[a][b] ** 2 for a in range(p) for b in range(p))
    return 0.5 * frob - 2.0 * sum(s[a][a] ** 2 for a in range(p))


def _hand_kl(top: torch.Tensor, other: torch.Tensor) -> float:
    total = 0.0
    for zt, zo in zip(top.double().tolist(), other.double().tolist()):
        pt = [math.exp(v) / sum(math.exp(u) for u in zt) for v in zt]
        po = [math.exp(v) / sum(math.exp(u) for u in zo) for v in zo]
        total += sum(a * math.log(a / b) for a, b in zip(pt, po))
    return total / len(top)


@pytest.mark.parametrize("zeroed, c3s_levels, kl_levels", [
    ("lambda1", ("L-1", "G"), ("G",)),        # removes C3S(S^L) and KL(L || L-1) exactly
    ("lambda2", ("L", "G"), ("L-1",)),        # removes C3S(S^{L-1}) and KL(L || G)
    ("lambda3", ("L", "L-1"), ("L-1", "G")),  # removes C3S(S^G) only
])
def test_each_lambda_switches_off_exactly_its_terms_of_eqs_10_and_11(zeroed, c3s_levels, kl_levels):
    torch.manual_seed(0)
    # Eval mode: BN with its initial running statistics leaves S^G away from 0, so every
    # level's C3S term is large enough to be missed.
    model = build_model("cross_x", K, backbone="resnet18", **{zeroed: 0.0}).eval()
    with torch.no_grad():
        out = model(_images(4))
        terms = model.losses(out, torch.tensor([0, 1, 2, 3]))
    feats = out.extras["part_features"]
    heads = out.heads
    assert all(abs(_hand_c3s(feats[lv])) > 0.01 for lv in ("L", "L-1", "G"))
    assert all(_hand_kl(heads["L"], heads[lv]) > 1e-4 for lv in ("L-1", "G"))
    assert float(terms["c3s"]) == pytest.approx(sum(_hand_c3s(feats[lv].detach()) for lv in c3s_levels),
                                                rel=1e-4, abs=1e-6)
    assert float(terms["cl"]) == pytest.approx(sum(_hand_kl(heads["L"], heads[lv]) for lv in kl_levels),
                                               rel=1e-4, abs=1e-7)


def _mid_map_and_head_input(model, images):
    seen = {}
    h1 = model.osme_mid.register_forward_hook(lambda _m, _i, o: seen.__setitem__("u_mid", o))
    h2 = model.fc_mid.register_forward_hook(lambda _m, i, _o: seen.__setitem__("fc_in", i[0]))
    try:
        out = model(images)
    finally:
        h1.remove()
        h2.remove()
    return out, seen["u_mid"].detach(), seen["fc_in"].detach()


def test_gmp_head_max_pools_while_c3s_keeps_gap_features():
    torch.manual_seed(0)
    model = build_model("cross_x", K, backbone="resnet18", pooling_mid="max").eval()
    with torch.no_grad():
        out, u_mid, fc_in = _mid_map_and_head_input(model, _images(3))
    b, pc, h, w = u_mid.shape
    p, c = model.num_parts, pc // model.num_parts
    # The L-1 classifier reads the spatial maximum of every channel ...
    expected_max = torch.stack([torch.stack([u_mid[n, ch].max() for ch in range(pc)]) for n in range(b)])
    torch.testing.assert_close(fc_in, expected_max)
    # ... while C3S reads the L2-normalised spatial mean of each part.
    for n in range(b):
        for k in range(p):
            mean = u_mid[n, k * c:(k + 1) * c].mean(dim=(1, 2))
            torch.testing.assert_close(out.extras["part_features"]["L-1"][n, k], mean / mean.norm())
    gap = u_mid.mean(dim=(2, 3))
    assert not torch.allclose(fc_in, gap)   # the two poolings really differ on these maps


def test_gap_head_averages():
    torch.manual_seed(0)
    model = build_model("cross_x", K, backbone="resnet18", pooling_mid="avg").eval()
    with torch.no_grad():
        _, u_mid, fc_in = _mid_map_and_head_input(model, _images(2))
    torch.testing.assert_close(fc_in, u_mid.sum(dim=(2, 3)) / (u_mid.shape[2] * u_mid.shape[3]))


def test_linear_c3s_is_the_released_codes_form_and_has_a_gradient_at_zero():
    from fgvc_lib.methods.cross_x.losses import c3s_loss, c3s_loss_linear

    s = torch.tensor([[0.7, 0.2, -0.1], [0.2, 0.4, 0.3], [-0.1, 0.3, 0.9]])
    # Upper triangle with the diagonal replaced by 1 - S_pp, summed.
    expected = (1 - 0.7) + (1 - 0.4) + (1 - 0.9) + 0.2 - 0.1 + 0.3
    assert float(c3s_loss_linear(s)) == pytest.approx(expected)
    zero = torch.zeros(2, 2, requires_grad=True)
    c3s_loss(zero).backward()
    assert torch.equal(zero.grad, torch.zeros(2, 2))          # Eq. (4): no gradient at S = 0
    zero.grad = None
    c3s_loss_linear(zero).backward()
    assert torch.equal(zero.grad, torch.tensor([[-1.0, 1.0], [0.0, -1.0]]))


def test_c3s_form_option_selects_the_term():
    torch.manual_seed(0)
    model = build_model("cross_x", K, backbone="resnet18", c3s_form="linear").train()
    with torch.no_grad():
        out = model(_images(4))
        terms = model.losses(out, torch.tensor([0, 1, 2, 3]))
    from fgvc_lib.methods.cross_x.losses import c3s_loss_linear
    expected = sum(float(c3s_loss_linear(s)) for s in out.extras["S"].values())
    assert float(terms["c3s"]) == pytest.approx(expected, rel=1e-5)
    assert get_spec("cross_x").options().c3s_form == "eq4"


def test_fpn_merge_order_is_the_default():
    assert get_spec("cross_x").options().merge_order == "fpn"
    torch.manual_seed(0)
    model = build_model("cross_x", K, backbone="resnet18").eval()
    merge = model.merge
    u_top, u_mid = torch.randn(1, merge.reduce.in_channels, 2, 2), torch.randn(1, merge.antialias.in_channels, 4, 4)
    with torch.no_grad():
        up = F.interpolate(merge.reduce(u_top), size=(4, 4), mode="bilinear", align_corners=False)
        torch.testing.assert_close(merge(u_top, u_mid), merge.bn(merge.antialias(u_mid + up)))


def test_efficientnet_lite0_branches_read_the_gated_stride_16_and_32_maps():
    """On Lite0 ("output" placement): U^{L-1}_p = m^p * blocks.4's output (stride 16,
    112 channels), U^L_p = m^p * the extractor's output (stride 32, 1280 channels), every
    head and the shared backbone get gradients, and a few steps fit a fixed batch."""
    torch.manual_seed(0)
    model = build_model("cross_x", K, backbone="efficientnet_lite0").train()
    seen = {}
    hook = model.backbone.register_forward_hook(lambda _m, _i, o: seen.__setitem__("maps", o))
    images = _images(4)
    out = model(images)
    hook.remove()
    mid, top = seen["maps"][2], seen["maps"][3]
    assert mid.shape[1:] == (112, SIZE // 16, SIZE // 16) and top.shape[1:] == (1280, SIZE // 32, SIZE // 32)
    for osme, stage, level in ((model.osme_mid, mid, "L-1"), (model.osme_top, top, "L")):
        gates = osme.gates(stage)
        for k, m in enumerate(gates):
            expected = (m[:, :, None, None] * stage).mean(dim=1)   # channel mean of U_p
            torch.testing.assert_close(out.attention[f"{level}/p{k + 1}"], expected)
    y = torch.tensor([0, 1, 2, 3])
    model.losses(out, y)["loss"].backward()
    for name in ("fc_top", "fc_mid", "fc_merged", "osme_mid", "osme_top", "merge"):
        assert any(p.grad is not None and p.grad.abs().sum() > 0
                   for p in getattr(model, name).parameters()), name
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.backbone.parameters())
    model.zero_grad(set_to_none=True)
    ctx = _ctx(model, lr=0.05)
    first = model.training_step(ctx, images, y)["ce"]
    for _ in range(5):
        last = model.training_step(ctx, images, y)["ce"]
    assert last < 0.8 * first
