"""Attention precision, ACE, ACR (CMAL-Net Sec. 4.5), pointing game, energy: hand-made maps."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fgvc_lib import FGVCError
from fgvc_lib.attention import (attention_capturing_error, attention_capturing_recall, attention_mask,
                                attention_precision, box_masks, box_to_input_coords, energy_in_boxes,
                                pointing_game)

LEFT_HALF = [0, 0, 2, 4]  # x0, y0, x1, y1 (exclusive) on a 4 x 4 map


def hand_made_maps() -> np.ndarray:
    """Four 4x4 maps scored against the left-half box.

    0: the left half lit            -> 8 positives, 8 inside  -> precision 1.0
    1: four lit pixels, one left    -> 4 positives, 1 inside  -> 0.25
    2: constant (no positive pixel) -> 0.0 by convention
    3: four lit pixels, two left    -> 4 positives, 2 inside  -> 0.5
    """
    maps = np.zeros((4, 4, 4), np.float32)
    maps[0, :, :2] = 1.0
    for y, x in [(0, 0), (0, 3), (3, 3), (2, 3)]:
        maps[1, y, x] = 1.0
    maps[2] = 0.7
    for y, x in [(1, 0), (2, 1), (1, 2), (2, 3)]:
        maps[3, y, x] = 1.0
    return maps


BOXES = np.array([LEFT_HALF] * 4, np.float32)


def test_attention_precision_on_hand_made_maps():
    precision = attention_precision(hand_made_maps(), BOXES)
    assert precision.tolist() == pytest.approx([1.0, 0.25, 0.0, 0.5])


def test_maps_are_min_max_normalised_before_the_threshold():
    # Eq. (5) first: a map in [10, 20] whose left half is 20 behaves like map 0.
    raw = np.full((1, 4, 4), 10.0, np.float32)
    raw[0, :, :2] = 20.0
    assert attention_precision(raw, [LEFT_HALF]).item() == pytest.approx(1.0)


def test_threshold_is_strict_and_t_changes_the_mask():
    ramp = torch.tensor([[[0.0, 0.3, 0.5, 1.0]]])  # 1 x 1 x 4
    assert attention_mask(ramp, t=0.5).tolist() == [[[False, False, False, True]]]
    assert attention_mask(ramp, t=0.2).tolist() == [[[False, True, True, True]]]
    # Box over the first two columns: t = 0.2 keeps 3 pixels, 1 inside.
    assert attention_precision(ramp, [[0, 0, 2, 1]], t=0.2).item() == pytest.approx(1 / 3)


def test_ace_counts_images_below_half_precision():
    # Precisions [1, 0.25, 0, 0.5]: images 1 and 2 fail; 0.5 is not below 0.5.
    assert attention_capturing_error(hand_made_maps(), BOXES) == pytest.approx(0.5)


def test_acr_averages_per_class_not_per_image():
    targets = [0, 1, 1, 1]
    preds = [0, 1, 1, 1]
    # good = correct & precision >= 0.5 -> [1, 0, 0, 1]
    # class 0: 1/1, class 1: 1/3 -> ACR = 2/3 (a per-image share would be 1/2)
    acr = attention_capturing_recall(hand_made_maps(), BOXES, preds, targets)
    assert acr == pytest.approx(2 / 3)
    # A wrong prediction removes image 3's credit; logits are accepted too.
    logits = torch.eye(2)[[0, 1, 1, 0]]
    assert attention_capturing_recall(hand_made_maps(), BOXES, logits, targets) == pytest.approx(0.5)


def test_boxes_use_pixel_centres_and_nan_parts_cover_nothing():
    mask = box_masks([[[0, 0, 1.4, 2], [math.nan] * 4]], size=(2, 3))
    assert mask.tolist() == [[[True, False, False], [True, False, False]]]


def test_pointing_game_hits_and_tolerance():
    m = torch.zeros(1, 4, 4)
    m[0, 1, 3] = 1.0  # peak at x = 3, y = 1 (centre 3.5, 1.5)
    assert pointing_game(m, [[2, 0, 4, 2]]).tolist() == [True]
    assert pointing_game(m, [[0, 0, 2, 2]]).tolist() == [False]
    assert pointing_game(m, [[0, 0, 2, 2]], tolerance=1.5).tolist() == [False]  # 3.5 < 3.5 fails
    assert pointing_game(m, [[0, 0, 2, 2]], tolerance=2.0).tolist() == [True]
    # Several parts per image: a hit on any part counts; a NaN part never does.
    parts = [[[0, 0, 1, 1], [3, 1, 4, 2]], [[math.nan] * 4, [0, 0, 1, 1]]]
    assert pointing_game(torch.cat([m, m]), parts).tolist() == [True, False]


def test_energy_inside_part_boxes():
    m = torch.zeros(1, 4, 4)
    m[0, 0, 0] = 4.0
    m[0, 3, 3] = 6.0
    m[0, 2, 2] = -5.0  # negative evidence is clipped, not subtracted
    assert energy_in_boxes(m, [[0, 0, 2, 2]]).item() == pytest.approx(0.4)
    # Union of two parts, overlapping: each pixel counted once.
    assert energy_in_boxes(m, [[[0, 0, 2, 2], [0, 0, 1, 1], [3, 3, 4, 4]]]).item() == pytest.approx(1.0)
    assert energy_in_boxes(torch.zeros(1, 4, 4), [[0, 0, 2, 2]]).item() == 0.0


def test_box_to_input_coords_scales_each_axis():
    box = box_to_input_coords((10, 20, 110, 220), orig_size=(200, 400), input_size=100)
    assert box.tolist() == pytest.approx([5, 5, 55, 55])
    batch = box_to_input_coords(torch.tensor([[0, 0, 50, 50], [10, 10, 20, 20]]),
                                torch.tensor([[100, 50], [20, 40]]), (64, 32))
    np.testing.assert_allclose(batch.numpy(), [[0, 0, 32, 32], [32, 8, 64, 16]])
    with pytest.raises(FGVCError, match="must be positive"):
        box_to_input_coords((0, 0, 1, 1), (0, 10), 64)


def test_mismatched_inputs_are_refused():
    with pytest.raises(FGVCError, match="do not match 4 maps"):
        attention_precision(hand_made_maps(), BOXES[:3])
    with pytest.raises(FGVCError, match=r"must be \(B, H, W\)"):
        attention_precision(np.zeros((1, 1, 4, 4)), BOXES[:1])
    with pytest.raises(FGVCError, match="one prediction and one target"):
        attention_capturing_recall(hand_made_maps(), BOXES, [0, 1], [0, 1, 1, 1])
