"""Overlays, attention grids and learning curves: return Figures, never touch the backend."""
from __future__ import annotations


import matplotlib
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from fgvc_lib import FGVCError
from fgvc_lib.attention import denormalize, overlay, show_attention_grid
from fgvc_lib.data.transforms import IMAGENET_MEAN, IMAGENET_STD


pytestmark = pytest.mark.usefixtures("backend_untouched")


def test_overlay_blends_by_alpha_and_resizes_the_map():
    image = np.full((8, 6, 3), 200, np.uint8)
    heat = np.ones((4, 3), np.float32)  # smaller than the image: resized
    out = overlay(image, heat, alpha=0.0)
    assert out.shape == (8, 6, 3) and out.dtype == np.uint8
    assert (out == 200).all()
    red_end = overlay(image, heat, alpha=1.0, cmap="jet")
    expected = np.round(np.array(matplotlib.colormaps["jet"](1.0)[:3]) * 255)
    assert (red_end.reshape(-1, 3) == expected).all()
    half = overlay(image, heat, alpha=0.5, cmap="jet")
    assert np.abs(half.astype(int) - np.round((200 / 255 * 0.5 + expected / 255 * 0.5) * 255)).max() <= 1


def test_overlay_refuses_normalised_floats():
    with pytest.raises(FGVCError, match="denormalize"):
        overlay(np.full((4, 4, 3), -1.5, np.float32), np.zeros((4, 4)))


def test_denormalize_inverts_the_normalisation():
    pixels = torch.randint(0, 256, (2, 3, 5, 7), generator=torch.Generator().manual_seed(0))
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    normalised = (pixels / 255.0 - mean) / std
    back = denormalize(normalised)
    assert back.shape == (2, 5, 7, 3) and back.dtype == np.uint8
    assert np.array_equal(back, pixels.permute(0, 2, 3, 1).numpy())
    assert denormalize(normalised[0]).shape == (5, 7, 3)


def test_attention_grid_has_one_axis_per_image_and_column_and_draws_boxes():
    images = torch.rand(2, 3, 16, 16)
    maps = {"Grad-CAM": np.random.rand(2, 16, 16), "CAM": torch.rand(2, 4, 4)}
    fig = show_attention_grid(images, maps, boxes=[[2, 2, 10, 10], [0, 0, 8, 16]],
                              titles=["bird / bird", "car / bus"], colorbar=False)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 * 3
    assert [ax.get_title() for ax in fig.axes[:3]] == ["input", "Grad-CAM", "CAM"]
    assert all(sum(isinstance(p, Rectangle) for p in ax.patches) == 1 for ax in fig.axes)
    assert fig.axes[3].get_ylabel() == "car / bus"
    no_input = show_attention_grid(images, maps, show_input=False, colorbar=False)
    assert len(no_input.axes) == 2 * 2


def test_attention_grid_has_one_perceptual_colour_scale_from_0_to_1():
    images = torch.rand(2, 3, 16, 16)
    fig = show_attention_grid(images, {"CAM": torch.rand(2, 4, 4)})
    assert len(fig.axes) == 2 * 2 + 1          # the grid and one colour bar
    bar = fig.axes[-1]
    assert bar.get_ylabel() == "attention"
    assert bar.get_ylim() == pytest.approx((0.0, 1.0))
    assert bar._colorbar.mappable.cmap.name == "inferno"
    assert len(show_attention_grid(images, {}, colorbar=True).axes) == 2  # no maps, no scale


def test_attention_grid_denormalises_and_checks_lengths():
    normalised = torch.randn(3, 3, 8, 8)
    fig = show_attention_grid(normalised, {"m": torch.rand(3, 8, 8)}, mean=IMAGENET_MEAN,
                              std=IMAGENET_STD, colorbar=False)
    assert len(fig.axes) == 3 * 2
    with pytest.raises(FGVCError, match="has 2 entries for 3 images"):
        show_attention_grid(normalised, {"m": torch.rand(2, 8, 8)}, mean=IMAGENET_MEAN, std=IMAGENET_STD)
