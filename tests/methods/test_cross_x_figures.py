"""Cross-X chapter measures: S of Eq. (3) over a dataset, per-excitation CAMs,
excitation overlap and pointing per part slot, the cost of the merged maps."""
from __future__ import annotations

import numpy as np
import pytest
import torch


from fgvc_lib.data.synthetic import SyntheticFGVC
from fgvc_lib.data.transforms import DeviceNormalize
from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.cross_x.losses import c3s_similarity
from fgvc_lib.methods import build_model
from fgvc_lib.methods.cross_x.figures import (chance_slot_shares, excitation_report,
                                              part_cams, peak_part_slots, plot_similarity,
                                              similarity_matrices)
from fgvc_lib.reports.cost import cost_breakdown

SIZE = 64  # resnet18 at 64 px: U^{L-1} and U^G 4x4, U^L 2x2


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("cross_x", 3, backbone="resnet18").eval()


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return SyntheticFGVC(root=tmp_path_factory.mktemp("synthetic"), split="test",
                         num_classes=3, per_class=2, image_size=SIZE)


def test_peak_cell_goes_to_the_part_box_it_overlaps_most():
    maps = torch.zeros(3, 4, 4)
    maps[0, 2, 3] = 1.0  # cell x 48-64, y 32-48
    maps[1, 3, 0] = 1.0  # cell x 0-16, y 48-64: no box there
    maps[2, 0, 0] = 1.0  # cell x 0-16, y 0-16
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [40.0, 40.0, 60.0, 60.0],
                          [float("nan")] * 4]).expand(3, 3, 4)
    assert peak_part_slots(maps, boxes, SIZE).tolist() == [1, -1, 0]
    # Box 1 grown to cover more of cell (0, 0) than box 0 does: the larger overlap wins.
    boxes2 = boxes.clone()
    boxes2[:, 1] = torch.tensor([2.0, 0.0, 30.0, 30.0])
    assert peak_part_slots(maps[2:], boxes2[2:], SIZE).tolist() == [1]


def test_chance_is_the_share_of_cells_each_box_covers():
    # 2 x 2 grid on 64 px; slot 0 touches only the top-left cell, slot 1 is absent.
    boxes = torch.tensor([[[4.0, 4.0, 20.0, 20.0], [float("nan")] * 4]])
    shares = chance_slot_shares((2, 2), boxes, SIZE)
    np.testing.assert_allclose(shares, [25.0, 0.0, 75.0])


def test_part_cams_average_to_each_heads_logit(model):
    # CAM identity: the spatial mean of sum_p CAM_p is w_k . GAP(U) = logit_k - bias_k.
    x = torch.randn(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    out, cams = part_cams(model, x)
    assert list(cams) == ["L-1/p1", "L-1/p2", "L/p1", "L/p2", "G/p1", "G/p2"]
    assert cams["L/p1"].shape == (2, 2, 2) and cams["G/p2"].shape == (2, 4, 4)
    pred = out.logits.argmax(1)
    fcs = {"L": model.fc_top, "L-1": model.fc_mid, "G": model.fc_merged}
    for level, fc in fcs.items():  # default pooling_mid="avg": GAP on every level
        summed = (cams[f"{level}/p1"] + cams[f"{level}/p2"]).mean(dim=(1, 2))
        expected = out.heads[level].gather(1, pred[:, None])[:, 0] - fc.bias[pred]
        torch.testing.assert_close(summed, expected.detach(), rtol=1e-4, atol=1e-4)


def test_similarity_matrices_match_eq3_and_leave_the_model_alone(model, data):
    norm = DeviceNormalize()
    bn = model.merge.bn
    before = bn.running_mean.clone(), bn.num_batches_tracked.clone()
    per_level = similarity_matrices(model, data, SIZE, norm, batch_size=64,
                                    batch_statistics=True)
    assert list(per_level) == ["L-1", "L", "G"]
    assert torch.equal(bn.running_mean, before[0]) and torch.equal(bn.num_batches_tracked, before[1])
    assert not model.training
    # One batch holds the whole dataset: the result is Eq. (3) on its part features.
    images = torch.stack([torch.from_numpy(np.array(data.load_image(i))).permute(2, 0, 1)
                          for i in range(len(data))])
    with torch.no_grad():
        out = model(norm(images))
    np.testing.assert_allclose(similarity_matrices(model, data, SIZE, norm, batch_size=64)["L"],
                               c3s_similarity(out.extras["part_features"]["L"]).numpy(),
                               atol=1e-5)
    for s in per_level.values():
        assert s.shape == (2, 2)
        np.testing.assert_allclose(s, s.T, atol=1e-6)
    with pytest.raises(FGVCError, match="batch_size"):
        similarity_matrices(model, data, SIZE, norm, batch_size=1)


def test_plot_similarity_titles_carry_the_eq4_value():
    fig = plot_similarity({"ideal": {"L": np.eye(2)}, "collapsed": {"L": np.ones((2, 2))}})
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    # Eq. (4): S = I -> 1/2 * 2 - 2 * 2 = -3; S = ones -> 1/2 * 4 - 2 * 2 = -2.
    assert titles == ["ideal, L: Eq. (4) = -3.00", "collapsed, L: Eq. (4) = -2.00"]


@pytest.mark.parametrize("kind", ["mean", "cam"])
def test_excitation_report_tables(model, data, kind):
    overlap, pointing = excitation_report(model, data, SIZE, DeviceNormalize(), kind=kind,
                                          slot_names=data.part_names)
    assert list(overlap.index) == ["L-1", "L", "G"]
    assert ((overlap["IoU (t=0.5)"] >= 0) & (overlap["IoU (t=0.5)"] <= 100)).all()
    assert overlap["correlation"].between(-1, 1).all()
    assert list(pointing.columns) == [*data.part_names, "none"]
    assert "L/chance" in pointing.index and "G/p2" in pointing.index
    np.testing.assert_allclose(pointing.sum(axis=1), 100.0)
    if kind == "mean":
        # Untrained residual OSME: both parts share the shortcut, their mean maps agree.
        assert overlap.loc["L", "correlation"] > 0.9


def test_excitation_report_errors(model, data):
    with pytest.raises(FGVCError, match="kind"):
        excitation_report(model, data, SIZE, DeviceNormalize(), kind="gradcam")
    with pytest.raises(FGVCError, match="slot names"):
        excitation_report(model, data, SIZE, DeviceNormalize(), slot_names=["crest"])
    baseline = build_model("baseline", 3, backbone="resnet18")
    with pytest.raises(FGVCError, match="Cross-X"):
        part_cams(baseline, torch.zeros(1, 3, SIZE, SIZE))


def test_cost_breakdown_counts_the_merged_3x3_conv(model):
    table = cost_breakdown(model, SIZE, split=("merge",))
    total_params = sum(p.numel() for p in model.parameters()) / 1e6
    assert table.loc["total", "params (M)"] == pytest.approx(total_params)
    components = table.drop(index="total")
    assert components["params (M)"].sum() == pytest.approx(total_params)
    # K_2: P = 2 groups of 256 -> 256 3x3 filters on the 4 x 4 map of U^{L-1}.
    k2_macs = 2 * 256 * 256 * 9 * 4 * 4
    assert table.loc["merge.antialias", f"GMACs @ {SIZE}px"] * 1e9 == pytest.approx(k2_macs)
    assert components["MAC share (%)"].sum() == pytest.approx(100.0)
    assert not model.training


def _texts(fig):
    return [t for t in fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
            if t.get_text().strip()]


def test_method_diagram_names_every_part_in_readable_type():
    from fgvc_lib.methods.cross_x.figures import method_diagram

    fig = method_diagram()
    words = " ".join(t.get_text() for t in _texts(fig))
    for part in ("OSME", "Eq. (5)", "C$^3$S", "KL", "Eq. (7)"):
        assert part in words
    assert min(t.get_fontsize() for t in _texts(fig)) >= 9


def test_combined_maps_average_the_normalised_levels():
    from fgvc_lib.methods.cross_x.figures import combined_maps

    ramp = torch.arange(4.0).view(1, 2, 2)
    maps = {"L-1/p1": ramp, "L/p1": 10 * ramp, "G/p1": -ramp}   # the last one reversed
    out = combined_maps(maps, (2, 2))["combined/p1"]
    # (r + r + (1 - r)) / 3 with r the normalised ramp, then min-max again: r itself.
    r = ramp / 3
    torch.testing.assert_close(out, r)


def test_map_grid_keeps_at_most_four_panels_per_row_and_a_colorbar():
    from fgvc_lib.methods.cross_x.figures import map_grid

    maps = {f"{lv}/p{k}": torch.rand(2, 4, 4) for lv in ("L-1", "L", "G") for k in (1, 2)}
    layout = [[f"{lv}/p{k}" for lv in ("L-1", "L", "G")] for k in (1, 2)]
    fig = map_grid(torch.zeros(2, 3, 16, 16, dtype=torch.uint8), maps, layout=layout)
    grid_axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(grid_axes) == 2 * 2 * 4                # 2 images x 2 rows x (image + 3 maps)
    assert any(ax.get_label() == "<colorbar>" for ax in fig.axes)
    assert all(im.get_cmap().name == "viridis" for ax in grid_axes for im in ax.get_images()[1:])
    assert min(t.get_fontsize() for t in _texts(fig)) >= 9
    with pytest.raises(FGVCError, match="layout"):
        map_grid(torch.zeros(1, 3, 8, 8), maps, layout=[["nope"]])
