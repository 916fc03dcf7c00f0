"""CN-CNN: shapes, the ConvLSTM step by hand, order and causality of the HL pathway, the
bottom-up hand-over of the LH pathway, batch independence, masks, ablations, optimiser
groups of the paper's recipe, a short training, and the chapter's figure helpers."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.config import resolve_config
from fgvc_lib.engine.trainer import build_optimizer
from fgvc_lib.errors import FGVCError
from fgvc_lib.methods import build_model, get_spec
from fgvc_lib.methods.cn_cnn.pathways import LowHighPathway
from fgvc_lib.models.blocks.convlstm import ConvLSTMCell, run_convlstm
from fgvc_lib.models.step import StepContext
from fgvc_lib.reports.tables import get_table, row_config

pytestmark = pytest.mark.usefixtures("one_thread")

K = 4       # classes
SIZE = 64   # resnet18 at 64 px: S3 8x8, S4 4x4, S5 2x2
WIDTH = 16  # aligned width in these tests
LEVELS = ("S3", "S4", "S5")


def _model(**options) -> nn.Module:
    torch.manual_seed(0)
    # ca_reduction 4: a channel MLP 4 units wide (16 // 16 would leave one ReLU unit,
    # which may be dead for every input and then hands nothing up).
    values = dict(width=WIDTH, cls_hidden=32, ca_reduction=4)
    values.update(options)
    return build_model("cn_cnn", K, backbone="resnet18", **values)


def _images(n: int = 4, seed: int = 0, size: int = SIZE) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def full_model():
    return _model().eval()


# -- shapes ------------------------------------------------------------------------
def test_shapes_at_every_stage(full_model):
    out = full_model(_images(2))
    ex = out.extras
    # ResNet-18 layer2/3/4 at strides 8/16/32 of a 64-px input, 128/256/512 channels.
    own = {"S3": 64 // 8, "S4": 64 // 16, "S5": 64 // 32}
    for level in LEVELS:
        assert ex["aligned"][level].shape == (2, WIDTH, 8, 8)       # all at S3's size
        assert ex["hl"][level].shape == (2, WIDTH, 8, 8)
        assert ex["features"][level].shape == (2, WIDTH, own[level], own[level])
        assert ex["lh"][level].shape == (2, WIDTH, own[level], own[level])
        assert ex["spatial_masks"][level].shape == (2, 1, own[level], own[level])
        assert ex["channel_masks"][level].shape == (2, WIDTH)
        assert out.heads[level].shape == (2, K)
        assert out.attention[f"LH/{level}"].shape == (2, own[level], own[level])
        assert out.attention[f"SA/{level}"].shape == (2, own[level], own[level])
    assert out.logits.shape == (2, K)
    # Aligning at S4 instead: all three at 4x4, each back at its own size afterwards.
    with torch.no_grad():
        ex4 = _model(align="s4").eval()(_images(2)).extras
    assert all(ex4["aligned"][lv].shape == (2, WIDTH, 4, 4) for lv in LEVELS)
    assert ex4["features"]["S3"].shape == (2, WIDTH, 8, 8)


def test_alignment_is_a_1x1_conv_then_bilinear_up_sampling(full_model):
    stages = full_model.backbone(_images(1))
    levels = [stages[1], stages[2], stages[3]]
    with torch.no_grad():
        aligned = full_model.align(levels)
    for proj, s, a in zip(full_model.align.proj, levels, aligned):
        w, b = proj.weight[:, :, 0, 0], proj.bias
        conv = torch.einsum("oc,bchw->bohw", w, s) + b[None, :, None, None]   # explicit 1x1
        expected = F.interpolate(conv, size=(8, 8), mode="bilinear", align_corners=False)
        torch.testing.assert_close(a, expected, atol=1e-5, rtol=1e-5)


def test_final_prediction_is_the_mean_of_the_three_softmaxes(full_model):
    with torch.no_grad():
        out = full_model(_images(3))
    mean = sum(torch.softmax(out.heads[lv], 1) for lv in LEVELS) / 3
    torch.testing.assert_close(out.logits.exp(), mean, atol=1e-6, rtol=1e-5)


# -- the ConvLSTM ---------------------------------------------------------------------
def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def test_one_convlstm_step_against_a_hand_computation():
    # 2 input channels, 1 hidden channel, 1x1 kernel on a 1x1 map: every gate is
    # act(wx1*x1 + wx2*x2 + wh*h + b). Rows of the conv: gates i, f, o, g; columns: x then h.
    cell = ConvLSTMCell(2, 1, kernel_size=1)
    weights = {"i": (0.5, -0.25, 0.1, 0.2), "f": (-0.3, 0.4, 0.6, 1.0),
               "o": (0.2, 0.2, -0.5, 0.0), "g": (1.0, -1.0, 0.3, -0.1)}
    with torch.no_grad():
        for row, gate in enumerate("ifog"):
            wx1, wx2, wh, b = weights[gate]
            cell.conv.weight[row, :, 0, 0] = torch.tensor([wx1, wx2, wh])
            cell.conv.bias[row] = b
    xs = [(1.0, 2.0), (-0.5, 0.75)]
    h = c = 0.0
    expected = []
    for x1, x2 in xs:
        pre = {g: w[0] * x1 + w[1] * x2 + w[2] * h + w[3] for g, w in weights.items()}
        i, f, o = _sigmoid(pre["i"]), _sigmoid(pre["f"]), _sigmoid(pre["o"])
        g = math.tanh(pre["g"])
        c = f * c + i * g
        h = o * math.tanh(c)
        expected.append((h, c))
    state = None
    for (x1, x2), (h_ref, c_ref) in zip(xs, expected):
        x = torch.tensor([x1, x2]).view(1, 2, 1, 1)
        state = cell(x, state)
        assert state[0].item() == pytest.approx(h_ref, abs=1e-6)
        assert state[1].item() == pytest.approx(c_ref, abs=1e-6)
    # The first step, by hand: c1 = i*g, h1 = o*tanh(c1) (zero initial state).
    i1, g1, o1 = _sigmoid(0.5 - 0.5 + 0.2), math.tanh(1.0 - 2.0 - 0.1), _sigmoid(0.2 + 0.4)
    assert expected[0][1] == pytest.approx(i1 * g1) and expected[0][0] == pytest.approx(
        o1 * math.tanh(i1 * g1))
    # gate_weights names the same slices the test wrote.
    w_x, w_h, b = cell.gate_weights("f")
    assert w_x.flatten().tolist() == pytest.approx([-0.3, 0.4]) and w_h.item() == pytest.approx(0.6)
    assert b.item() == pytest.approx(1.0)


def test_convlstm_keeps_the_size_and_an_even_kernel_is_refused():
    cell = ConvLSTMCell(3, 5, kernel_size=3)
    h, c = cell(torch.randn(2, 3, 7, 6))
    assert h.shape == c.shape == (2, 5, 7, 6)
    assert h.abs().max() < 1
    with pytest.raises(ValueError):
        ConvLSTMCell(3, 5, kernel_size=2)


def test_hl_runs_s5_then_s4_then_s3_and_is_causal(full_model):
    g = torch.Generator().manual_seed(1)
    a3, a4, a5 = (torch.randn(1, WIDTH, 8, 8, generator=g) for _ in range(3))
    with torch.no_grad():
        h3, h4, h5 = full_model.hl([a3, a4, a5])
        # Order: S5 is the first step from a zero state, then S4, then S3.
        cell = full_model.hl.cell
        s5 = cell(a5)
        s4 = cell(a4, s5)
        s3 = cell(a3, s4)
        torch.testing.assert_close(h5, s5[0])
        torch.testing.assert_close(h4, s4[0])
        torch.testing.assert_close(h3, s3[0])
        # Causality: a change of S3 leaves S5's and S4's outputs alone ...
        b3, b4, b5 = full_model.hl([a3 + 1.0, a4, a5])
        torch.testing.assert_close(b5, h5, rtol=0, atol=0)
        torch.testing.assert_close(b4, h4, rtol=0, atol=0)
        assert not torch.allclose(b3, h3)
        # ... a change of S4 leaves S5's alone, and a change of S5 reaches all three.
        c3, c4, c5 = full_model.hl([a3, a4 + 1.0, a5])
        torch.testing.assert_close(c5, h5, rtol=0, atol=0)
        assert not torch.allclose(c4, h4) and not torch.allclose(c3, h3)
        d3, d4, d5 = full_model.hl([a3, a4, a5 + 1.0])
        assert not any(torch.allclose(x, y) for x, y in ((d3, h3), (d4, h4), (d5, h5)))


def test_run_convlstm_hands_the_state_on():
    cell = ConvLSTMCell(2, 2)
    xs = [torch.randn(1, 2, 3, 3) for _ in range(3)]
    hidden = run_convlstm(cell, xs)
    state = None
    for x, h in zip(xs, hidden):
        state = cell(x, state)
        torch.testing.assert_close(h, state[0])


# -- the HL ablations -------------------------------------------------------------------
def test_hl_add_equals_the_explicit_sum_of_the_aligned_levels():
    with torch.no_grad():
        ex = _model(hl="add").eval()(_images(2)).extras
    a, h = ex["aligned"], ex["hl"]
    torch.testing.assert_close(h["S5"], a["S5"])
    torch.testing.assert_close(h["S4"], a["S5"] + a["S4"])
    torch.testing.assert_close(h["S3"], a["S5"] + a["S4"] + a["S3"])
    with torch.no_grad():
        ex = _model(hl="none").eval()(_images(2)).extras
    for level in LEVELS:
        torch.testing.assert_close(ex["hl"][level], ex["aligned"][level])


def test_lh_off_passes_the_resized_hl_outputs_to_the_classifiers():
    model = _model(hl="add", lh="off").eval()
    with torch.no_grad():
        out = model(_images(2))
    assert model.lh is None and "spatial_masks" not in out.extras
    for level in LEVELS:
        torch.testing.assert_close(out.extras["lh"][level], out.extras["features"][level])
    # Back to each level's own size by block means: S5's 2x2 cells are means of 4x4 blocks.
    h5 = out.extras["hl"]["S5"]
    block = h5[:, :, :4, 4:].mean(dim=(2, 3))
    torch.testing.assert_close(out.extras["features"]["S5"][:, :, 0, 1], block)


# -- the LH pathway ---------------------------------------------------------------------
@pytest.mark.parametrize("handover", ["concat", "average"])
def test_bottom_up_hand_over_of_channel_information(handover):
    torch.manual_seed(0)
    lh = LowHighPathway(WIDTH, reduction=4, handover=handover).eval()
    g = torch.Generator().manual_seed(2)
    f3, f4, f5 = (torch.randn(2, WIDTH, s, s, generator=g) for s in (8, 4, 2))
    with torch.no_grad():
        m = lh.channel_masks([f3, f4, f5])
        up = lh.channel_masks([f3 * 3 + 1, f4, f5])      # S3 changes
        top = lh.channel_masks([f3, f4, f5 * 3 + 1])     # S5 changes
    assert not torch.allclose(up[2], m[2]) and not torch.allclose(up[1], m[1])   # reaches S5, S4
    torch.testing.assert_close(top[0], m[0], rtol=0, atol=0)                    # never goes down
    torch.testing.assert_close(top[1], m[1], rtol=0, atol=0)


def test_s5_channel_mask_follows_s3_through_the_lh_pathway_only(full_model):
    stages = full_model.backbone(_images(1))
    s3, s4, s5 = stages[1], stages[2], stages[3]
    with torch.no_grad():
        base = full_model.pathways([s3, s4, s5])
        moved = full_model.pathways([s3 * 2 + 0.5, s4, s5])
    # The ConvLSTM's S5 output does not see S3 (causality) ...
    torch.testing.assert_close(moved["hl"]["S5"], base["hl"]["S5"], rtol=0, atol=0)
    # ... yet S5's channel mask changes: the hand-over from below.
    assert not torch.allclose(moved["channel_masks"]["S5"], base["channel_masks"]["S5"])


@pytest.mark.parametrize("combine", ["product", "sum"])
def test_masks_lie_in_0_1_and_multiply_the_features(combine):
    model = _model(lh_combine=combine, ca_handover="average" if combine == "sum" else "concat").eval()
    with torch.no_grad():
        ex = model(_images(2) * 5).extras
    for level in LEVELS:
        s, c, f = ex["spatial_masks"][level], ex["channel_masks"][level], ex["features"][level]
        assert s.min() >= 0 and s.max() <= 1 and c.min() >= 0 and c.max() <= 1
        c = c[:, :, None, None]
        if combine == "product":
            mask = s * c
            assert mask.min() >= 0 and mask.max() <= 1
            torch.testing.assert_close(ex["lh"][level], mask * f)
        else:
            torch.testing.assert_close(ex["lh"][level], s * f + c * f)


def test_spatial_attention_is_a_3x3_transposed_conv_to_one_channel(full_model):
    t = full_model.lh.spatial[0]
    assert isinstance(t, nn.ConvTranspose2d) and t.kernel_size == (3, 3)
    assert t.out_channels == 1 and t.stride == (1, 1)


# -- the whole network ------------------------------------------------------------------
def test_one_images_outputs_do_not_depend_on_its_batch_in_eval_mode(full_model):
    x = _images(4, seed=3)
    with torch.no_grad():
        out = full_model(x)
        for i in range(4):
            alone = full_model(x[i:i + 1])
            torch.testing.assert_close(alone.logits, out.logits[i:i + 1], atol=1e-5, rtol=1e-4)
            for name, m in alone.attention.items():
                torch.testing.assert_close(m, out.attention[name][i:i + 1], atol=1e-5, rtol=1e-4)


def test_every_parameter_gets_a_gradient_from_the_sum_of_the_three_losses():
    model = _model().train()
    out = model(_images(4))
    terms = model.losses(out, torch.tensor([0, 1, 2, 3]))
    manual = sum(F.cross_entropy(out.heads[lv], torch.tensor([0, 1, 2, 3])) for lv in LEVELS)
    torch.testing.assert_close(terms["loss"], manual)
    terms["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing


def test_the_paper_recipe_puts_every_parameter_in_one_group_backbone_0_001_rest_0_1():
    cfg = resolve_config("cn_cnn", "synthetic", "full", backbone="resnet18", pretrained=False)
    assert (cfg.lr, cfg.backbone_lr_mult, cfg.momentum, cfg.weight_decay, cfg.epochs,
            cfg.image_size) == (0.1, 0.01, 0.9, 5e-4, 300, 448)
    model = build_model("cn_cnn", K, backbone="resnet18", **cfg.method_options)
    optimizer = build_optimizer(model, cfg)
    seen: dict[int, int] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            seen[id(p)] = seen.get(id(p), 0) + 1
    assert set(seen) == {id(p) for p in model.parameters()}
    assert set(seen.values()) == {1}
    backbone = {id(p) for p in model.backbone.parameters()}
    for group in optimizer.param_groups:
        in_backbone = {id(p) in backbone for p in group["params"]}
        assert len(in_backbone) == 1
        expected = 0.001 if in_backbone.pop() else 0.1
        assert group["lr"] == pytest.approx(expected)


def _quadrant_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Synthetic 32-px images: noise plus a bright 8x8 square in the quadrant of the class."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = torch.randn(n, 3, 32, 32, generator=g) * 0.5
    for i, k in enumerate(y.tolist()):
        r, c = 16 * (k // 2) + 4, 16 * (k % 2) + 4
        x[i, :, r:r + 8, c:c + 8] += 2.0
    return x, y


def test_a_short_training_on_synthetic_data_clearly_beats_chance():
    model = _model(width=16, cls_hidden=32).train()
    params = list(model.parameters())
    ctx = StepContext(forward=model, optimizer=torch.optim.SGD(params, lr=0.05, momentum=0.9),
                      generator=torch.Generator().manual_seed(0), params=params)
    x, y = _quadrant_data(256, seed=0)     # 16 steps of 16 images
    for start in range(0, 256, 16):
        model.training_step(ctx, x[start:start + 16], y[start:start + 16])
    model.eval()
    xt, yt = _quadrant_data(100, seed=1)
    with torch.no_grad():
        acc = (model(xt).logits.argmax(1) == yt).float().mean().item()
    assert acc >= 0.6, f"accuracy {acc:.2f}, chance 0.25"


# -- options, tables, registration -----------------------------------------------------------
@pytest.mark.parametrize("opts, message", [
    ({"lstm_kernel": 2}, "lstm_kernel"), ({"ca_reduction": 0}, "ca_reduction"),
    ({"width": 0}, "width"), ({"hl": "lstm"}, "hl"), ({"lh": True}, "lh"),
])
def test_bad_options_raise_one_line_errors(opts, message):
    with pytest.raises(FGVCError, match=message):
        build_model("cn_cnn", K, backbone="resnet18", **opts)


def test_table3_without_convlstm_is_table2_hl_lh_and_the_configurations():
    t2, t3 = get_table("cn_cnn.table2"), get_table("cn_cnn.table3")
    rows2 = {r.label: r for r in t2.rows}
    rows3 = {r.label: r for r in t3.rows}
    assert row_config(t3, rows3["w/o ConvLSTM"], "synthetic", "smoke") == row_config(
        t2, rows2["HL+LH"], "synthetic", "smoke")
    assert rows2["Baseline"].method == "baseline"
    assert rows2["HL"].options == {"hl": "add", "lh": "off"}
    assert rows3["w/ ConvLSTM"].options == {"hl": "convlstm", "lh": "on"}
    assert [rows2[k].paper["Accuracy"] for k in ("Baseline", "HL", "HL+LH")] == [84.1, 86.6, 87.2]
    assert [rows3[k].paper["Accuracy"] for k in ("w/o ConvLSTM", "w/ ConvLSTM")] == [87.2, 88.9]
    t1 = get_table("cn_cnn.table1")
    assert len(t1.rows) == 11
    assert t1.rows[-1].paper == {"Base": "ResNet50", "CUB-200-2011": 88.9, "Stanford Cars": 94.9,
                                 "FGVC-Aircraft": 94.1}


def test_registration():
    spec = get_spec("cn_cnn")
    assert spec.title == "CN-CNN" and spec.chapter == "05_cn_cnn"
    assert spec.profile_options["smoke"]["width"] < spec.options().width


# -- the chapter's figure helpers -----------------------------------------------------------------
def test_module_table_lists_every_stage_with_its_shape(full_model):
    from fgvc_lib.methods.cn_cnn.figures import module_table

    table = module_table(full_model, SIZE)
    shapes = dict(zip(table["tensor"], table["shape"]))
    assert shapes["S3"] == "128 x 8 x 8" and shapes["S5"] == "512 x 2 x 2"
    assert shapes["A_S5 (aligned)"] == f"{WIDTH} x 8 x 8"
    assert shapes["O_S4 (LH output)"] == f"{WIDTH} x 4 x 4"
    assert shapes["z_S3 (logits)"] == f"{K}"


def test_part_share_is_a_share_and_counts_box_area_by_hand():
    from fgvc_lib.methods.cn_cnn.figures import map_share_in_boxes

    maps = torch.zeros(1, 4, 4)
    maps[0, 0, 0] = 3.0
    maps[0, 3, 3] = 1.0
    boxes = torch.tensor([[[0.0, 0.0, 8.0, 8.0]]])     # the top-left quarter of a 16-px image
    share, area = map_share_in_boxes(maps, boxes, 16)
    assert share.item() == pytest.approx(0.75) and area.item() == pytest.approx(0.25)


def test_head_cams_give_one_non_empty_map_per_head(full_model):
    pytest.importorskip("pytorch_grad_cam")
    from fgvc_lib.methods.cn_cnn.figures import head_cams

    model = _model().eval()
    cams = head_cams(model, _images(1, size=32))
    assert set(cams) == {"S3", "S4", "S5", "final"}
    for cam in cams.values():
        assert cam.shape == (1, 32, 32) and np.isfinite(cam).all()
        assert cam.min() >= 0 and cam.max() <= 1


def test_the_diagram_draws_without_touching_the_backend(backend_untouched):
    from fgvc_lib.methods.cn_cnn.figures import draw_diagram

    fig = draw_diagram()
    assert fig.axes and len(fig.axes[0].patches) > 10


class _TinyBoxes:
    """Six 20x10 RGB images of classes 0, 1, 0, 1, 0, 1 with one part box each."""

    has_boxes = True
    targets = [0, 1, 0, 1, 0, 1]

    def load_image(self, i):
        from PIL import Image

        return Image.fromarray(np.full((10, 20, 3), 10 * i, dtype=np.uint8))

    def annotation(self, i):
        return {"size": (20, 10), "object_box": (0, 0, 20, 10), "part_boxes": [(2, 2, 12, 6)]}


def test_images_of_class_draws_one_class_and_scales_the_part_boxes():
    from fgvc_lib.methods.cn_cnn.figures import images_of_class

    batch = images_of_class(_TinyBoxes(), 16, n=2, seed=0, label=1)
    assert batch["label"] == 1 and set(batch["indices"]) <= {1, 3, 5} and len(batch["indices"]) == 2
    assert batch["targets"].tolist() == [1, 1]
    assert batch["images"].shape == (2, 3, 16, 16) and batch["images"].dtype == torch.uint8
    # x scales by 16/20, y by 16/10.
    torch.testing.assert_close(batch["part_boxes"][0, 0], torch.tensor([1.6, 3.2, 9.6, 9.6]))
    again = images_of_class(_TinyBoxes(), 16, n=2, seed=0, label=1)
    assert again["indices"] == batch["indices"]


def test_efficientnet_lite0_levels_are_strides_8_16_32_with_40_112_1280_channels():
    model = build_model("cn_cnn", K, backbone="efficientnet_lite0", width=WIDTH, cls_hidden=32,
                        ca_reduction=4).eval()
    assert [model.backbone.channels[i] for i in (1, 2, 3)] == [40, 112, 1280]
    with torch.no_grad():
        ex = model(_images(1)).extras
    assert [tuple(ex["features"][lv].shape[-2:]) for lv in LEVELS] == [(8, 8), (4, 4), (2, 2)]
