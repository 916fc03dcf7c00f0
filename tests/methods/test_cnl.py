"""CNL: Eqs. (1)-(3) on hand-computed tensors, identity at init, shapes, invariances,
parameter counts, gradients, placement, the memory and receptive-field analysis, and a
short training that beats chance."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.errors import FGVCError
from fgvc_lib.methods import build_model, get_spec
from fgvc_lib.methods.cnl.blocks import CrossLayerNonLocal, NonLocalBi, pairwise_attention
from fgvc_lib.methods.cnl.model import placement
from fgvc_lib.methods.cnl.figures import (attention_rows, attention_shapes, box_mass,
                                          paper_memory_example, receptive_fields,
                                          training_memory)
from fgvc_lib.models.step import StepContext

pytestmark = pytest.mark.usefixtures("one_thread")

NORMS = ("dot", "softmax", "scaled_softmax")


def _identity_block(normalization: str) -> NonLocalBi:
    """theta = phi = g = z = identity (2 channels, no bias), BN the identity in eval mode."""
    block = NonLocalBi(2, embed_channels=2, normalization=normalization)
    with torch.no_grad():
        for conv in (block.theta, block.phi, block.g, block.z):
            conv.weight.copy_(torch.eye(2)[:, :, None, None])
            if conv.bias is not None:
                conv.bias.zero_()
        block.bn.weight.fill_(1.0)
        block.bn.bias.zero_()
        block.bn.eps = 0.0
    return block.eval()


# The 2 x 2 positions (row-major) of a 2-channel map: x1=(1,0), x2=(0,1), x3=(1,1), x4=(0,0).
POSITIONS = [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0), (0.0, 0.0)]


def _as_map(vectors) -> torch.Tensor:
    return torch.tensor(vectors).T.reshape(1, 2, 2, 2)


def test_eq1_dot_product_by_hand():
    # Gram rows: x1 [1,0,1,0], x2 [0,1,1,0], x3 [1,1,2,0], x4 [0,0,0,0]; /N with N = 4:
    # y1 = (x1 + x3)/4, y2 = (x2 + x3)/4, y3 = (x1 + x2 + 2 x3)/4, y4 = 0; out = x + y.
    expected = [(1.5, 0.25), (0.25, 1.5), (1.75, 1.75), (0.0, 0.0)]
    out, attention = _identity_block("dot")(_as_map(POSITIONS))
    torch.testing.assert_close(out, _as_map(expected))
    torch.testing.assert_close(attention[0, 2], torch.tensor([0.25, 0.25, 0.5, 0.0]))


@pytest.mark.parametrize("normalization", ["softmax", "scaled_softmax"])
def test_eq1_softmax_forms_by_hand(normalization):
    scale = 1.0 / math.sqrt(2) if normalization == "scaled_softmax" else 1.0
    expected = []
    for xj in POSITIONS:  # explicit loops: weights exp(<xj, xk> * scale) / sum
        scores = [scale * (xj[0] * xk[0] + xj[1] * xk[1]) for xk in POSITIONS]
        weights = [math.exp(s) for s in scores]
        total = sum(weights)
        y = [sum(w * xk[c] for w, xk in zip(weights, POSITIONS)) / total for c in range(2)]
        expected.append((xj[0] + y[0], xj[1] + y[1]))
    out, attention = _identity_block(normalization)(_as_map(POSITIONS))
    torch.testing.assert_close(out, _as_map(expected))
    torch.testing.assert_close(attention.sum(-1), torch.ones(1, 4))
    # x4 = 0 gives equal scores, so its row is uniform.
    torch.testing.assert_close(attention[0, 3], torch.full((4,), 0.25))


def _conv(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """A 1x1 convolution as an explicit matrix product over positions: (B, C_out, N)."""
    w = conv.weight[:, :, 0, 0]
    y = torch.einsum("oc,bcn->bon", w, x.flatten(2))
    return y if conv.bias is None else y + conv.bias[None, :, None]


def _eq2_by_formula(block: NonLocalBi, xq: torch.Tensor, xr: torch.Tensor) -> torch.Tensor:
    """Eq. (2) written out with explicit products, BN in eval mode."""
    t, p, g = _conv(block.theta, xq), _conv(block.phi, xr), _conv(block.g, xr)
    scores = torch.einsum("bdi,bdj->bij", t, p) / math.sqrt(t.shape[1])
    weights = scores.exp() / scores.exp().sum(-1, keepdim=True)
    y = torch.einsum("bij,bdj->bdi", weights, g)
    z = torch.einsum("cd,bdi->bci", block.z.weight[:, :, 0, 0], y)
    bn = block.bn
    z = (z - bn.running_mean[None, :, None]) / torch.sqrt(bn.running_var[None, :, None] + bn.eps)
    z = z * bn.weight[None, :, None] + bn.bias[None, :, None]
    return xq + z.reshape(xq.shape)


def _randomise_bn(bn: nn.BatchNorm2d, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.weight.copy_(torch.randn(bn.num_features, generator=gen))
        bn.bias.copy_(torch.randn(bn.num_features, generator=gen))
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=gen))
        bn.running_var.copy_(torch.rand(bn.num_features, generator=gen) + 0.5)


def test_nl_bi_of_x_and_x_is_eq1_and_matches_the_formula():
    torch.manual_seed(0)
    block = NonLocalBi(6, embed_channels=3)
    _randomise_bn(block.bn, 1)
    block.eval()
    x = torch.randn(2, 6, 3, 4)
    with torch.no_grad():
        one, _ = block(x)
        two, _ = block(x, x)
        torch.testing.assert_close(one, two)
        torch.testing.assert_close(one, _eq2_by_formula(block, x, x))
        # Two inputs of different size and width: the formula again.
        wide = NonLocalBi(6, response_channels=5, embed_channels=3)
        _randomise_bn(wide.bn, 2)
        wide.eval()
        xr = torch.randn(2, 5, 7, 2)
        out, attention = wide(x, xr)
        torch.testing.assert_close(out, _eq2_by_formula(wide, x, xr))
    assert attention.shape == (2, 12, 14) and out.shape == x.shape


def _cnl_and_copies(seed: int = 0):
    torch.manual_seed(seed)
    cnl = CrossLayerNonLocal(6, [5, 3], embed_channels=4)
    for k, bn in enumerate(cnl.bn):
        _randomise_bn(bn, 10 + k)
    copies = []
    for i, cin in enumerate((5, 3)):
        nl = NonLocalBi(6, response_channels=cin, embed_channels=4)
        nl.theta.load_state_dict(cnl.theta.state_dict())
        nl.phi.load_state_dict(cnl.phi[i].state_dict())
        nl.g.load_state_dict(cnl.g[i].state_dict())
        nl.z.load_state_dict(cnl.z.state_dict())
        nl.bn.load_state_dict(cnl.bn[i].state_dict())
        copies.append(nl.eval())
    return cnl.eval(), copies


def test_cnl_with_one_response_is_nl_bi_and_sums_the_responses():
    cnl, (nl1, nl2) = _cnl_and_copies()
    xq, xr1, xr2 = torch.randn(2, 6, 2, 3), torch.randn(2, 5, 4, 4), torch.randn(2, 3, 6, 5)
    single = CrossLayerNonLocal(6, [5], embed_channels=4)
    single.theta.load_state_dict(cnl.theta.state_dict())
    single.phi[0].load_state_dict(cnl.phi[0].state_dict())
    single.g[0].load_state_dict(cnl.g[0].state_dict())
    single.z.load_state_dict(cnl.z.state_dict())
    single.bn[0].load_state_dict(cnl.bn[0].state_dict())
    single.eval()
    with torch.no_grad():
        torch.testing.assert_close(single(xq, [xr1])[0], nl1(xq, xr1)[0])
        # Eq. (3): X^q plus each response's Z (NL_bi minus its residual).
        expected = xq + (nl1(xq, xr1)[0] - xq) + (nl2(xq, xr2)[0] - xq)
        out, attentions = cnl(xq, [xr1, xr2])
    torch.testing.assert_close(out, expected)
    assert out.shape == xq.shape  # the query's shape, whatever the responses
    assert [tuple(a.shape) for a in attentions] == [(2, 6, 16), (2, 6, 30)]


@pytest.mark.parametrize("normalization", NORMS)
def test_attention_is_hq_wq_by_hr_wr_and_softmax_rows_sum_to_one(normalization):
    torch.manual_seed(0)
    cnl = CrossLayerNonLocal(8, [4, 6, 8], embed_channels=5, normalization=normalization)
    xq = torch.randn(3, 8, 2, 3)
    responses = [torch.randn(3, 4, 8, 8), torch.randn(3, 6, 4, 5), torch.randn(3, 8, 2, 3)]
    out, attentions = cnl(xq, responses)
    assert out.shape == xq.shape
    assert [tuple(a.shape) for a in attentions] == [(3, 6, 64), (3, 6, 20), (3, 6, 6)]
    sums = torch.stack([a.sum(-1) for a in attentions])
    if normalization == "dot":
        assert not torch.allclose(sums, torch.ones_like(sums))  # signed weights / N
    else:
        torch.testing.assert_close(sums, torch.ones_like(sums))
        assert all((a >= 0).all() for a in attentions)


@pytest.mark.parametrize("normalization", NORMS)
def test_permuting_response_positions_leaves_the_output_unchanged(normalization):
    cnl, _ = _cnl_and_copies(3)
    cnl.normalization = normalization
    xq, xr1, xr2 = torch.randn(2, 6, 3, 3), torch.randn(2, 5, 4, 4), torch.randn(2, 3, 5, 2)
    perm1, perm2 = torch.randperm(16), torch.randperm(10)
    shuffled1 = xr1.flatten(2)[:, :, perm1].reshape(xr1.shape)
    shuffled2 = xr2.flatten(2)[:, :, perm2].reshape(xr2.shape)
    with torch.no_grad():
        out = cnl(xq, [xr1, xr2])[0]
        torch.testing.assert_close(cnl(xq, [shuffled1, shuffled2])[0], out)
        # Permuting the query's positions permutes the output the same way (a check
        # that the responses' invariance is not a constant output).
        pq = torch.randperm(9)
        moved = cnl(xq.flatten(2)[:, :, pq].reshape(xq.shape), [xr1, xr2])[0]
    torch.testing.assert_close(moved.flatten(2), out.flatten(2)[:, :, pq])
    assert not torch.allclose(moved, out)


def test_parameter_count_of_one_block_is_the_analytic_count():
    c, d = 16, 8  # NL: theta, phi, g with bias (C*d + d each), z without (d*C), BN (2C)
    assert sum(p.numel() for p in NonLocalBi(c).parameters()) == 3 * (c * d + d) + d * c + 2 * c
    cq, cr, d = 16, (8, 12), 4
    expected = (cq * d + d) + sum(2 * (x * d + d) for x in cr) + d * cq + 2 * (2 * cq)
    assert sum(p.numel() for p in CrossLayerNonLocal(cq, cr, d).parameters()) == expected
    shared = CrossLayerNonLocal(cq, cr, d, output_bn="shared")
    assert sum(p.numel() for p in shared.parameters()) == expected - 2 * cq


@pytest.fixture(scope="module")
def r50_meta():
    """ResNet-50 +5NL and +5CNL with 200 classes, built on the meta device (no memory)."""
    with torch.device("meta"):
        return {v: build_model("cnl", 200, backbone="resnet50", variant=v) for v in ("nl", "cnl")}


@pytest.mark.parametrize("variant", ["nl", "cnl"])
def test_resnet50_overhead_is_the_analytic_count_and_table2_total(r50_meta, variant):
    model = r50_meta[variant]
    widths = [512, 512, 1024, 1024, 1024]  # layer2.1, layer2.3, layer3.1, layer3.3, layer3.5
    if variant == "nl":  # d = C / 2 per block
        expected = sum(3 * (c * (c // 2) + c // 2) + (c // 2) * c + 2 * c for c in widths)
        table2 = 31.3
    else:  # query layer4.2, 2048 channels, d = 256
        d, cq = 256, 2048
        expected = (cq * d + d) + sum(2 * (c * d + d) for c in widths) + d * cq + 5 * 2 * cq
        table2 = 27.1
    assert sum(p.numel() for p in model.added_modules().parameters()) == expected
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == table2


@pytest.fixture(scope="module")
def small_models():
    models = {}
    for variant in ("cnl", "nl"):
        torch.manual_seed(0)
        models[variant] = build_model("cnl", 5, backbone="resnet18", variant=variant)
    return models


@pytest.mark.parametrize("variant", ["cnl", "nl"])
def test_a_fresh_model_computes_exactly_what_its_backbone_computes(small_models, variant):
    model = small_models[variant]
    plain = build_model("baseline", 5, backbone="resnet18")
    plain.load_state_dict({k: v for k, v in model.state_dict().items()
                           if k.startswith(("backbone.", "classifier."))})
    x = torch.randn(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for mode in (False, True):
            model.train(mode)
            plain.train(mode)
            assert torch.equal(model(x).logits, plain(x).logits), f"train={mode}"
        # The zero BN is what makes it so: a non-zero one changes the logits.
        bn = model.cnl.bn[0] if variant == "cnl" else model.nl[0].bn
        bn.weight.fill_(1.0)
        model.eval()
        plain.eval()
        changed = not torch.equal(model(x).logits, plain(x).logits)
        bn.weight.zero_()
    assert changed


def test_model_output_attention_shapes_and_rows(small_models):
    model = small_models["cnl"].eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert model.response_blocks == ["layer2.0", "layer2.1", "layer3.0", "layer3.1"]
    assert model.query_block == "layer4.1" and out.extras["query_grid"] == (2, 2)
    shapes = {k: tuple(v.shape) for k, v in out.extras["attention"].items()}
    assert shapes == {"r1": (2, 4, 64), "r2": (2, 4, 64), "r3": (2, 4, 16), "r4": (2, 4, 16)}
    assert out.attention["r1"].shape == (2, 8, 8) and out.attention["r_last"].shape == (2, 4, 4)
    torch.testing.assert_close(out.attention["r3"], out.extras["attention"]["r3"].mean(1).reshape(2, 4, 4))
    rows = attention_rows(out, (1, 0))  # query cell row 1, column 0 = position 2
    torch.testing.assert_close(rows["r2"][1], out.extras["attention"]["r2"][1, 2].reshape(8, 8))


def _ctx(model: nn.Module, lr: float = 0.05) -> StepContext:
    params = [p for p in model.parameters() if p.requires_grad]
    return StepContext(forward=model, optimizer=torch.optim.SGD(params, lr=lr, momentum=0.9),
                       generator=torch.Generator().manual_seed(0), params=params)


def test_gradients_reach_every_phi_and_g(small_models):
    import copy

    model = copy.deepcopy(small_models["cnl"]).train()  # the copy's hooks drive the copy
    x, y = torch.randn(4, 3, 64, 64), torch.tensor([0, 1, 2, 3])
    F.cross_entropy(model(x).logits, y).backward()
    cnl = model.cnl
    # At init only the zero BN's affine parameters get a gradient (the BN blocks the rest).
    assert all(bn.weight.grad.abs().sum() > 0 for bn in cnl.bn)
    assert all(p.grad is None or p.grad.abs().sum() == 0 for m in cnl.phi for p in m.parameters())
    model.zero_grad(set_to_none=True)
    model.training_step(_ctx(model), x, y)  # one update makes the BN weights non-zero
    F.cross_entropy(model(x).logits, y).backward()
    for name, module in [("theta", cnl.theta), ("z", cnl.z), *[(f"phi_{i}", m) for i, m in enumerate(cnl.phi)],
                         *[(f"g_{i}", m) for i, m in enumerate(cnl.g)]]:
        assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0, name


def test_new_layers_are_heads_not_backbone_and_bn_policy_leaves_them_training():
    with torch.device("meta"):
        model = build_model("cnl", 4, backbone="resnet18")
    groups = model.param_groups(lr=0.1, backbone_lr_mult=0.1)
    head_ids = {id(p) for g in groups if g["name"].startswith("head") for p in g["params"]}
    assert all(id(p) in head_ids for p in model.cnl.parameters())
    assert all(g["lr"] == pytest.approx(0.01) for g in groups if g["name"].startswith("backbone"))
    model.set_bn_policy("frozen")
    model.train()
    assert all(bn.training for bn in model.cnl.bn)
    assert not any(m.training for m in model.backbone.modules() if isinstance(m, nn.BatchNorm2d))


def test_placement_query_options_and_refusals(r50_meta):
    from fgvc_lib.models.backbones import Backbone

    with torch.device("meta"):
        r101 = Backbone("resnet101")
        lite = build_model("cnl", 10, backbone="efficientnet_lite0")
        custom = build_model("cnl", 10, backbone="resnet18", responses=["layer3.1", "layer2.0"])
    assert r50_meta["cnl"].query_block == "layer4.2"
    assert placement(r50_meta["cnl"].backbone, "released")[1] == "layer4.0"
    responses, query = placement(r101, "paper")
    assert responses == ("layer2.1", "layer2.3", "layer3.5", "layer3.12", "layer3.19")
    assert query == "layer4.2" and len(r101.body.layer3) == 23
    assert lite.response_blocks == ["blocks.2.0", "blocks.2.1", "blocks.3.1", "blocks.4.0", "blocks.4.2"]
    assert lite.query_block == "bn2" and lite.cnl.theta.in_channels == 1280
    assert custom.response_blocks == ["layer2.0", "layer3.1"]  # sorted shallow to deep
    with pytest.raises(FGVCError, match="no layer"):
        build_model("cnl", 10, backbone="resnet18", responses=["layer9.0"])
    with pytest.raises(FGVCError, match="does not come after"):
        build_model("cnl", 10, backbone="resnet18", responses=["layer4.1"])
    with pytest.raises(FGVCError, match="names a layer twice"):
        get_spec("cnl").make_options({"responses": ["layer2.0", "layer2.0"]})
    with pytest.raises(FGVCError, match="embed_channels"):
        get_spec("cnl").make_options({"embed_channels": 0})


@pytest.mark.parametrize("query", ["released", "paper"])
def test_the_released_query_feeds_the_rest_of_res5(query):
    torch.manual_seed(0)
    model = build_model("cnl", 3, backbone="resnet18", query=query).eval()
    for bn in model.cnl.bn:
        nn.init.ones_(bn.weight)
    seen = {}
    layer4 = model.backbone.body.layer4
    layer4[0].register_forward_pre_hook(lambda m, a: seen.update(block_in=a[0]))
    layer4[1].register_forward_pre_hook(lambda m, a: seen.update(next_in=a[0]))
    with torch.no_grad():
        model(torch.randn(1, 3, 64, 64))
        raw = layer4[0].forward(seen["block_in"])  # .forward: the block without its hooks
    # "released": layer4.1 receives CNL's output; "paper": the plain block output.
    assert torch.equal(seen["next_in"], raw) == (query == "paper")


def test_recipe_is_the_papers():
    recipe = get_spec("cnl").paper_recipe
    assert (recipe["image_size"], recipe["epochs"], recipe["warmup_epochs"], recipe["batch_size"],
            recipe["lr"], recipe["milestones"], recipe["gamma"]) == (448, 110, 10, 64, 0.01,
                                                                    [50, 70, 90], 0.1)


# -- analysis helpers ---------------------------------------------------------------
def test_receptive_fields_of_resnet18_by_hand():
    # conv1 7/2 -> 7 (jump 2); maxpool 3/2 -> 11 (4); layer1: four 3x3 -> 43; layer2.0:
    # 3x3/2 -> 51 (8), 3x3 -> 67; layer2.1 -> 99; layer3.0 -> 115 (16), 147; layer3.1 -> 211;
    # layer4.0 -> 243 (32), 307; layer4.1 -> 435.
    from fgvc_lib.models.backbones import Backbone

    with torch.device("meta"):
        backbone = Backbone("resnet18")
    rf = receptive_fields(backbone, ["layer2.1", "layer3.0", "layer4.1"], image_size=448)
    assert {k: (v["rf"], v["stride"], v["grid"]) for k, v in rf.items()} == {
        "layer2.1": (99, 8, (56, 56)), "layer3.0": (147, 16, (28, 28)),
        "layer4.1": (435, 32, (14, 14))}


def test_memory_saving_of_sec_2_2_by_hand(r50_meta):
    ex = paper_memory_example()
    assert ex["NL elements"] == 12544 ** 2 and ex["CNL elements"] == 49 * 12544
    assert ex["saving (%)"] == pytest.approx(100 * (1 - 49 / 12544))  # 99.61, not 99.4
    shapes = attention_shapes(r50_meta["cnl"].backbone, ["layer2.1", "layer3.1"], "layer4.2", image_sizes=(448,))
    assert shapes.loc[(448, "layer2.1"), "NL elements"] == 3136 ** 2
    assert shapes.loc[(448, "layer2.1"), "CNL elements"] == 196 * 3136
    assert shapes.loc[(448, "layer3.1"), "CNL elements"] == 196 * 784


def test_box_mass_splits_cells_by_area():
    row = torch.tensor([[0.1, 0.2], [0.3, 0.4]]).numpy()  # 2x2 cells of 8 px on 16 px
    assert box_mass(row, (0, 0, 16, 16), 16) == pytest.approx(1.0)
    assert box_mass(row, (8, 8, 16, 16), 16) == pytest.approx(0.4)
    assert box_mass(row, (4, 0, 12, 8), 16) == pytest.approx(0.5 * 0.1 + 0.5 * 0.2)


def test_training_memory_counts_the_attention_cnl_keeps(small_models):
    x = torch.randn(2, 3, 64, 64)
    nl, cnl = training_memory(small_models["nl"], x), training_memory(small_models["cnl"], x)
    # NL: 2 x (64 x 64) + 2 x (16 x 16) per image; CNL: 2 x (4 x 64) + 2 x (4 x 16); float32.
    assert nl["attention MB"] * 2**20 == pytest.approx(2 * 4 * (2 * 64 * 64 + 2 * 16 * 16))
    assert cnl["attention MB"] * 2**20 == pytest.approx(2 * 4 * (2 * 4 * 64 + 2 * 4 * 16))
    assert nl["saved MB"] > cnl["saved MB"] > 0


def _colour_patches(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic 48-px images: noise plus one 12-px patch whose colour channel is the class
    (3 classes), at a random place; learnable in a few steps from scratch."""
    gen = torch.Generator().manual_seed(seed)
    x = 0.3 * torch.randn(n, 3, 48, 48, generator=gen)
    y = torch.randint(0, 3, (n,), generator=gen)
    for i in range(n):
        r, c = torch.randint(0, 36, (2,), generator=gen).tolist()
        x[i, y[i], r:r + 12, c:c + 12] += 2.0
    return x, y


def test_a_short_training_on_synthetic_data_beats_chance():
    torch.manual_seed(0)
    model = build_model("cnl", 3, backbone="resnet18").train()
    x, y = _colour_patches(48, seed=0)
    ctx = _ctx(model, lr=0.05)
    for step in range(12):
        batch = slice(12 * (step % 4), 12 * (step % 4) + 12)
        model.training_step(ctx, x[batch], y[batch])
    assert all(bn.weight.abs().sum() > 0 for bn in model.cnl.bn), "the module itself trained"
    x_test, y_test = _colour_patches(60, seed=1)
    # Scored with batch statistics: after 12 steps the BN running averages have not settled.
    with torch.no_grad():
        accuracy = (model(x_test).logits.argmax(1) == y_test).float().mean().item()
    assert accuracy >= 0.6, f"test accuracy {accuracy:.2f} (chance 0.33)"


def test_part_mass_shares_split_each_row_among_the_part_boxes(small_models, tmp_path):
    from fgvc_lib.data.synthetic import SyntheticFGVC
    from fgvc_lib.methods.cnl.figures import part_mass_shares

    data = SyntheticFGVC(tmp_path, split="test", num_classes=2, per_class=2, image_size=64)
    shares = part_mass_shares(small_models["cnl"], data, 64, lambda x: x.float() / 255.0,
                              part_names=data.part_names)
    assert set(shares.index.get_level_values(0)) == {"r1", "r2", "r3", "r4"}
    parts = [c for c in shares.columns if c.startswith("in ")]
    assert len(parts) == 3 and (shares["images"] == 4).all()
    assert (shares[parts].sum(axis=1) <= 100 + 1e-6).all() and (shares[parts].to_numpy() >= 0).all()
    # The uniform column is the mean area share of the query's own box, by hand:
    boxes = [data.annotation(i)["part_boxes"][0] for i in range(len(data))]
    area = sum((b[2] - b[0]) * (b[3] - b[1]) for b in boxes) / (64 * 64) / len(boxes)
    assert shares.loc[("r1", data.part_names[0]), "uniform (own box)"] == pytest.approx(100 * area)


def test_a_fresh_module_changes_nothing_and_a_trained_one_does(small_models):
    import copy

    from fgvc_lib.methods.cnl.figures import module_contribution

    x = torch.randn(2, 3, 64, 64)
    assert module_contribution(small_models["cnl"], x) == {"query": 0.0}
    assert set(module_contribution(small_models["nl"], x)) == {"nl1", "nl2", "nl3", "nl4"}
    moved = copy.deepcopy(small_models["cnl"])
    for bn in moved.cnl.bn:
        nn.init.ones_(bn.weight)
    assert module_contribution(moved, x)["query"] > 0
