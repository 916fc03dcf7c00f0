"""Cross-X loss terms: C3S (Eqs. (3)-(4)) and the cross-layer KL (Eq. (6))."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.cross_x.losses import c3s_loss, c3s_similarity, cross_layer_kl


def _numpy_s_and_loss(features: np.ndarray) -> tuple[np.ndarray, float]:
    """Eqs. (3)-(4) the long way: F_p is C x N, S_pq = mean of the N x N matrix F_p^T F_q."""
    n, p, _ = features.shape
    normed = features / np.linalg.norm(features, axis=2, keepdims=True)
    s = np.zeros((p, p))
    for i in range(p):
        for j in range(p):
            f_i = normed[:, i, :].T  # C x N
            f_j = normed[:, j, :].T
            pair_matrix = f_i.T @ f_j  # N x N: image n's excitation i vs image m's excitation j
            assert pair_matrix.shape == (n, n)
            s[i, j] = pair_matrix.mean()
    loss = 0.5 * (s ** 2).sum() - 2.0 * (np.diag(s) ** 2).sum()
    return s, float(loss)


# N = 3 images, P = 2 excitations, C = 3 channels, small integers (normalised inside).
HAND_BATCH = np.array([
    [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]],
    [[3.0, 4.0, 0.0], [0.0, 1.0, 1.0]],
    [[1.0, 0.0, 1.0], [0.0, 0.0, 5.0]],
])


def test_c3s_similarity_and_loss_match_a_direct_computation():
    s_ref, loss_ref = _numpy_s_and_loss(HAND_BATCH)
    s = c3s_similarity(torch.tensor(HAND_BATCH, dtype=torch.float32))
    assert s.shape == (2, 2) and s.dtype == torch.float32
    np.testing.assert_allclose(s.numpy(), s_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c3s_loss(s).item(), loss_ref, rtol=1e-5)
    # One entry by hand: excitation 1 of image 0 is e1; of image 1 (0.6, 0.8, 0);
    # of image 2 (1, 0, 1)/sqrt(2). Their batch mean g_1 = (a, b, c), S_11 = |g_1|^2.
    g1 = np.array([1 + 0.6 + 2 ** -0.5, 0.8, 2 ** -0.5]) / 3
    np.testing.assert_allclose(s[0, 0].item(), g1 @ g1, rtol=1e-5)


def test_c3s_is_lowest_when_excitations_agree_across_images_and_differ_from_each_other():
    n, c = 4, 3
    e = torch.eye(c)
    ideal = torch.stack([torch.stack([e[0], e[1]])] * n)  # every image: part 1 = e1, part 2 = e2
    same_parts = torch.stack([torch.stack([e[0], e[0]])] * n)  # both excitations identical
    images_disagree = torch.stack([torch.stack([e[k % c], e[(k + 1) % c]]) for k in range(n)])
    losses = {name: c3s_loss(c3s_similarity(f)).item()
              for name, f in [("ideal", ideal), ("same_parts", same_parts),
                              ("images_disagree", images_disagree)]}
    # Ideal: S = I -> 1/2 * 2 - 2 * 2 = -3 = -3P/2, the lower bound.
    assert losses["ideal"] == pytest.approx(-3.0)
    assert losses["same_parts"] == pytest.approx(0.5 * 4 - 2 * 2)  # S = all ones -> -2
    assert losses["ideal"] < losses["same_parts"]
    assert losses["ideal"] < losses["images_disagree"]
    # No batch of non-negative features does better than the ideal one.
    gen = torch.Generator().manual_seed(0)
    random = torch.rand(500, n, 2, c, generator=gen)
    worst_case = min(c3s_loss(c3s_similarity(f)).item() for f in random)
    assert worst_case > losses["ideal"] + 1e-3


def test_c3s_gradient_descent_separates_excitations_and_aligns_images():
    gen = torch.Generator().manual_seed(1)
    feats = torch.rand(6, 2, 4, generator=gen).requires_grad_(True)
    opt = torch.optim.SGD([feats], lr=2.0)
    start = c3s_loss(c3s_similarity(feats)).item()
    for _ in range(300):
        opt.zero_grad()
        c3s_loss(c3s_similarity(feats)).backward()
        opt.step()
    s = c3s_similarity(feats).detach()
    assert c3s_loss(s).item() < start
    assert torch.diagonal(s).min() > 0.95  # each excitation agrees across the six images
    assert s[0, 1].abs() < 0.1  # the two excitations decorrelate


def test_c3s_computes_in_float32_from_bfloat16_and_under_autocast():
    s = c3s_similarity(torch.tensor(HAND_BATCH).to(torch.bfloat16))
    assert s.dtype == torch.float32
    assert c3s_loss(s.to(torch.bfloat16)).dtype == torch.float32
    feats = torch.tensor(HAND_BATCH, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        s_autocast = c3s_similarity(feats)
    assert s_autocast.dtype == torch.float32
    torch.testing.assert_close(s_autocast, c3s_similarity(feats), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("bad", [torch.ones(3, 4), torch.ones(2, 3, 4, 5)])
def test_c3s_similarity_rejects_wrong_shapes(bad):
    with pytest.raises(FGVCError, match=r"\(N, P, C\)"):
        c3s_similarity(bad)


def test_c3s_loss_rejects_non_square_matrix():
    with pytest.raises(FGVCError, match="square"):
        c3s_loss(torch.ones(2, 3))


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def test_cross_layer_kl_matches_a_direct_computation_and_its_direction():
    top = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0]])
    mid = np.array([[0.0, 1.0, 0.0], [1.0, -2.0, 0.0]])
    p, q = _softmax(top), _softmax(mid)
    expected = (p * np.log(p / q)).sum(axis=1).mean()  # 1/N sum_n sum_k p log(p/q)
    got = cross_layer_kl(torch.tensor(top), torch.tensor(mid))
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.item(), expected, rtol=1e-5)
    reverse = (q * np.log(q / p)).sum(axis=1).mean()
    assert abs(expected - reverse) > 1e-2  # so the test tells KL(P^L||P^x) from KL(P^x||P^L)


def test_cross_layer_kl_is_zero_when_the_distributions_match():
    z = torch.tensor([[1.0, -3.0, 0.5], [0.0, 0.0, 9.0]])
    assert cross_layer_kl(z, z).item() == pytest.approx(0.0, abs=1e-6)
    # Logits that differ by a per-image constant give the same softmax.
    shifted = z + torch.tensor([[4.0], [-2.0]])
    assert cross_layer_kl(z, shifted).item() == pytest.approx(0.0, abs=1e-6)
    assert cross_layer_kl(z, z.flip(1)).item() > 0.1


def test_cross_layer_kl_detach_target_stops_the_gradient_to_the_top_layer():
    top = torch.tensor([[2.0, 0.0, -1.0]], requires_grad=True)
    mid = torch.tensor([[0.0, 1.0, 0.0]], requires_grad=True)
    cross_layer_kl(top, mid).backward()
    assert top.grad.abs().sum() > 0 and mid.grad.abs().sum() > 0
    top.grad = mid.grad = None
    cross_layer_kl(top, mid, detach_target=True).backward()
    assert top.grad is None and mid.grad.abs().sum() > 0


def test_cross_layer_kl_rejects_mismatched_shapes():
    with pytest.raises(FGVCError, match="equal shape"):
        cross_layer_kl(torch.zeros(2, 3), torch.zeros(2, 4))
