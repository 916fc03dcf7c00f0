"""CAM, attention boxes and crops (CMAL-Net Eqs. (4)-(7)) and the pooling operators."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fgvc_lib.models.blocks.cam import (attention_boxes, class_activation_map, crop_and_resize,
                                        mask_to_box, minmax_normalize, pad_boxes,
                                        threshold_mask, upsample_maps)
from fgvc_lib.models.blocks.pooling import (GlobalPool, bilinear_pool, covariance_pool,
                                            global_pool, signed_sqrt_l2)


# -- Eq. (4) -------------------------------------------------------------------
def test_cam_is_class_weighted_sum_of_channels():
    features = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]],
                              [[0.0, 1.0], [0.0, -1.0]]]])  # (1, 2, 2, 2)
    weights = torch.tensor([[1.0, 0.0], [2.0, -3.0]])  # (K=2, C=2)
    cam = class_activation_map(features, weights, torch.tensor([1]))
    # Omega(a, b) = 2 * x^1(a, b) - 3 * x^2(a, b), by hand:
    assert torch.equal(cam, torch.tensor([[[2.0, 1.0], [6.0, 11.0]]]))
    cam0 = class_activation_map(features, weights, torch.tensor([0]))
    assert torch.equal(cam0, features[:, 0])


# -- Eqs. (5)-(6) on a hand-made map with a known box ---------------------------------
def _tent(n_out: int, scale: int, centre: int) -> torch.Tensor:
    """Bilinear (align_corners=False) up-sampling of a unit impulse at ``centre``, 1-D."""
    source = (torch.arange(n_out, dtype=torch.float64) + 0.5) / scale - 0.5
    return (1 - (source - centre).abs()).clamp_min(0)


def test_hot_pixel_map_gives_hand_computed_box():
    cam = torch.zeros(1, 4, 4)
    cam[0, 1, 2] = 5.0  # one hot cell: row 1, column 2 of a 4 x 4 CAM
    up = upsample_maps(cam, (16, 16))
    expected = 5.0 * _tent(16, 4, 1)[:, None] * _tent(16, 4, 2)[None, :]
    assert torch.allclose(up[0].double(), expected, atol=1e-5)
    norm = minmax_normalize(up)
    assert torch.allclose(norm[0].double(), expected / expected.max(), atol=1e-5)  # Eq. (5)
    mask = threshold_mask(norm, 0.5)                                                # Eq. (6)
    # The peak value is 0.875^2; a pixel passes when tent_y * tent_x > 0.5 * 0.875^2,
    # i.e. rows 4..7 and columns 8..11 (worked out on paper for the tent above).
    rows = mask[0].any(1).nonzero().flatten().tolist()
    cols = mask[0].any(0).nonzero().flatten().tolist()
    assert rows == [4, 5, 6, 7] and cols == [8, 9, 10, 11]
    box = mask_to_box(mask)
    assert box.tolist() == [[8.0, 4.0, 12.0, 8.0]]  # x0, y0, x1, y1 (exclusive)
    assert attention_boxes(cam, (16, 16), 0.5).tolist() == [[8.0, 4.0, 12.0, 8.0]]


def test_threshold_is_strict():
    norm = torch.tensor([[[0.0, 0.5, 0.51]]])
    assert threshold_mask(norm, 0.5).tolist() == [[[False, False, True]]]


def test_box_covers_all_positive_pixels_of_several_blobs():
    mask = torch.zeros(2, 10, 12, dtype=torch.bool)
    mask[0, 2, 3] = True
    mask[0, 7, 9] = True  # two separate blobs: one box over both
    mask[1, 5:7, 0:2] = True
    assert mask_to_box(mask).tolist() == [[3.0, 2.0, 10.0, 8.0], [0.0, 5.0, 2.0, 7.0]]


def test_flat_map_keeps_the_whole_image():
    norm = minmax_normalize(torch.full((1, 6, 8), 3.0))
    assert torch.equal(norm, torch.zeros(1, 6, 8))  # no NaN from 0 / 0
    assert mask_to_box(threshold_mask(norm, 0.5)).tolist() == [[0.0, 0.0, 8.0, 6.0]]


def test_pad_boxes_grows_by_image_fraction_and_clips():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 40.0], [0.0, 0.0, 95.0, 50.0]])
    padded = pad_boxes(boxes, 0.1, (50, 100))  # (H, W): 10 px in x, 5 px in y
    assert padded.tolist() == [[0.0, 15.0, 40.0, 45.0], [0.0, 0.0, 100.0, 50.0]]


# -- crop and resize ---------------------------------------------------------------------
def test_full_box_crop_is_exactly_the_image():
    images = torch.randn(3, 2, 9, 13)
    boxes = torch.tensor([[0.0, 0.0, 13.0, 9.0]]).expand(3, 4)
    assert torch.allclose(crop_and_resize(images, boxes), images, atol=1e-6)


def test_integer_box_at_its_own_size_gives_the_exact_pixels():
    images = torch.randn(2, 3, 12, 16)
    boxes = torch.tensor([[2.0, 3.0, 9.0, 8.0], [5.0, 0.0, 12.0, 5.0]])
    crops = crop_and_resize(images, boxes, out_size=(5, 7))
    assert torch.allclose(crops[0], images[0, :, 3:8, 2:9], atol=1e-6)
    assert torch.allclose(crops[1], images[1, :, 0:5, 5:12], atol=1e-6)


def test_upscaled_crop_matches_bilinear_resize_inside_the_border():
    images = torch.randn(1, 2, 12, 12)
    crop = crop_and_resize(images, torch.tensor([[2.0, 3.0, 8.0, 9.0]]), out_size=(12, 12))
    resized = F.interpolate(images[:, :, 3:9, 2:8], size=(12, 12), mode="bilinear",
                            align_corners=False)
    assert torch.allclose(crop[..., 1:-1, 1:-1], resized[..., 1:-1, 1:-1], atol=1e-5)


def test_bfloat16_images_keep_exact_box_positions():
    # 301 is not a bfloat16 number: boxes must stay float32 inside.
    images = torch.arange(448, dtype=torch.float32).repeat(1, 1, 4, 1).to(torch.bfloat16)
    crop = crop_and_resize(images, torch.tensor([[301.0, 0.0, 309.0, 4.0]]), out_size=(4, 8))
    assert crop.dtype == torch.bfloat16
    assert torch.equal(crop, images[..., 301:309])


# -- pooling -------------------------------------------------------------------------------
def test_global_max_and_average_pooling_values():
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.0]], [[-1.0, -1.0], [-1.0, -5.0]]]])
    assert global_pool(x, "max").flatten().tolist() == [3.0, -1.0]
    assert global_pool(x, "avg").flatten().tolist() == [0.5, -2.0]
    assert GlobalPool("max")(x).shape == (1, 2)


def test_max_pool_gradient_goes_to_the_saved_argmax():
    # Index-based backward (not amax's "x == max" test, which turns into 0/0 = NaN
    # under torch.compile + bf16 when the recomputed x differs from the saved max).
    x = torch.tensor([[[[1.0, 4.0], [4.0, 2.0]]]], requires_grad=True)  # a tie at the max
    GlobalPool("max")(x).sum().backward()
    assert x.grad.sum() == 1.0 and x.grad.max() == 1.0  # one location, not split 0.5 / 0.5
    assert x.grad[0, 0].flatten().tolist() in ([0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize("kind,dim", [("max", 6), ("avg", 6), ("bilinear", 36), ("covariance", 21)])
def test_global_pool_output_dimension(kind, dim):
    pool = GlobalPool(kind)
    out = pool(torch.randn(4, 6, 5, 3))
    assert pool.out_dim(6) == dim and out.shape == (4, dim)
    assert torch.isfinite(out).all()


def test_bilinear_pool_is_normalised_mean_outer_product():
    x = torch.tensor([[[[1.0, 3.0]], [[2.0, -1.0]]]])  # C=2, two positions
    # mean of x x^T over the two positions: [[5, -0.5], [-0.5, 2.5]]
    gram = torch.tensor([[5.0, -0.5, -0.5, 2.5]])
    expected = torch.sign(gram) * gram.abs().sqrt()
    expected = expected / expected.norm()
    assert torch.allclose(bilinear_pool(x), expected, atol=1e-6)
    assert torch.allclose(signed_sqrt_l2(gram, eps=0.0), expected, atol=1e-6)


def test_covariance_pool_is_the_matrix_square_root_of_the_covariance():
    torch.manual_seed(0)
    c = 4
    x = torch.randn(2, c, 6, 6) * torch.tensor([1.0, 1.3, 0.8, 1.1]).view(1, c, 1, 1)
    out = covariance_pool(x, iterations=5)
    flat = x.reshape(2, c, -1)
    centred = flat - flat.mean(2, keepdim=True)
    cov = centred @ centred.transpose(1, 2) / flat.shape[2]
    rows, cols = torch.triu_indices(c, c)
    root = torch.zeros(2, c, c)
    root[:, rows, cols] = out
    root = root + root.triu(1).transpose(1, 2)  # symmetric from the upper triangle
    assert torch.allclose(root @ root, cov, rtol=0.05, atol=0.02)


def test_unknown_pooling_is_rejected():
    with pytest.raises(ValueError, match="unknown pooling"):
        GlobalPool("median")
