"""Loss terms shared by the paper models.

Cross-X (Luo et al., ICCV 2019):

* :func:`c3s_similarity` -- the correlation matrix ``S`` of Eq. (3);
* :func:`c3s_loss` -- the cross-category cross-semantic regulariser, Eq. (4);
* :func:`c3s_loss_linear` -- the released code's linear form of it;
* :func:`cross_layer_kl` -- the cross-layer regulariser, Eq. (6).

All three compute in float32 whatever dtype they are given (they are meant
to be called outside autocast, on the model's bf16/fp32 outputs).

How ``S_{p,q}`` becomes a number
--------------------------------
Eq. (3) writes ``S_{p,q} = F_p^T F_q / N`` with ``F_p`` a ``C x N`` matrix
of L2-normalised pooled features, one column per image. ``F_p^T F_q`` is
therefore an ``N x N`` matrix of cosine similarities between excitation
``p`` of image ``n`` and excitation ``q`` of image ``m``, while the text
calls ``S_{p,q}`` an entry of a ``P x P`` matrix. We take ``S_{p,q}`` to be
the **mean of all N x N entries** (every ordered pair of images, an image
with itself included)::

    S_{p,q} = 1/N^2 * sum_n sum_m  f_{p,n} . f_{q,m}  =  g_p . g_q,
    g_p = 1/N * sum_n f_{p,n}   (the batch mean of the normalised features).

Why: the regulariser is *cross-category* -- the same excitation must agree
across different images -- so pairs ``n != m`` have to enter ``S``; keeping
only the diagonal (``n = m``) would compare each image with itself. With
the mean ``S_{p,p}`` lies in ``[0, 1]`` and equals 1 exactly when every
image gives the same direction for excitation ``p``, which makes Eq. (4)'s
optimum independent of the batch size (``1/N`` times the *sum* of the
``N x N`` entries would grow with ``N``). The released code also averages
over all pairs of samples. The closed form ``g_p . g_q`` costs ``O(NPC)``
instead of ``O(N^2 P^2 C)``.

With this ``S``, Eq. (4) is ``1/2 sum_{p!=q} S_pq^2 - 3/2 sum_p S_pp^2``; it
is bounded below by ``-3P/2``, reached when every excitation agrees across
the batch (``S_pp = 1``) and different excitations are orthogonal
(``S_pq = 0``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from fgvc_lib.errors import FGVCError


def c3s_similarity(part_features: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """The ``P x P`` correlation matrix ``S`` of Cross-X Eq. (3).

    Parameters
    ----------
    part_features:
        ``(N, P, C)``: for each of the ``N`` images of the batch, the pooled
        feature vector of each of the ``P`` excitations (GAP of ``U_p``).
        The vectors are L2-normalised here (idempotent if they already are).

    Returns
    -------
    ``S`` of shape ``(P, P)``, float32, with ``S[p, q]`` the mean cosine
    similarity between excitation ``p`` of one image and excitation ``q`` of
    another, over all ``N x N`` ordered pairs of images (see the module
    docstring for why all pairs).
    """
    if part_features.ndim != 3 or part_features.shape[0] < 1:
        raise FGVCError(
            f"C3S expects part features of shape (N, P, C), got {tuple(part_features.shape)}",
            "pool each excitation's map to a vector and stack them as (batch, parts, channels)")
    # Inside a bf16 autocast region the matmul would silently drop to bf16.
    with torch.autocast(device_type=part_features.device.type, enabled=False):
        normalised = F.normalize(part_features.float(), dim=-1, eps=eps)
        batch_mean = normalised.mean(dim=0)  # (P, C): g_p
        return batch_mean @ batch_mean.T


def c3s_loss(similarity: torch.Tensor) -> torch.Tensor:
    """Cross-X Eq. (4): ``1/2 ||S||_F^2 - 2 ||diag(S)||_2^2``.

    The first term pushes every correlation down; the second, four times as
    strong on the diagonal, pulls each excitation's agreement across images
    up. Net effect: off-diagonal entries (different excitations) are
    minimised, diagonal entries (same excitation, different images)
    maximised. Returns a float32 scalar.
    """
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise FGVCError(f"C3S expects a square P x P matrix S, got {tuple(similarity.shape)}",
                        "compute S with c3s_similarity(part_features)")
    s = similarity.float()
    return 0.5 * s.pow(2).sum() - 2.0 * torch.diagonal(s).pow(2).sum()


def c3s_loss_linear(similarity: torch.Tensor) -> torch.Tensor:
    """The released code's form of C3S: ``sum_p (1 - S_pp) + sum_{p<q} S_pq``.

    The upper triangle of ``S`` (diagonal included) with the diagonal replaced by
    ``1 - S_pp``, summed. It is linear in ``S``, so unlike Eq. (4) its gradient is not
    zero at ``S = 0``: it pushes every ``S_pp`` up and every ``S_pq`` (``p != q``) down
    with unit strength wherever ``S`` is. It is 0 at ``S_pp = 1``, ``S_pq = 0`` and lower
    only where different excitations anti-correlate (``S_pq < 0``). Returns a float32
    scalar.
    """
    if similarity.ndim != 2 or similarity.shape[0] != similarity.shape[1]:
        raise FGVCError(f"C3S expects a square P x P matrix S, got {tuple(similarity.shape)}",
                        "compute S with c3s_similarity(part_features)")
    s = similarity.float()
    upper = torch.triu(s, diagonal=1).sum()
    return (1.0 - torch.diagonal(s)).sum() + upper


def cross_layer_kl(target_logits: torch.Tensor, logits: torch.Tensor,
                   detach_target: bool = False) -> torch.Tensor:
    """Cross-X Eq. (6): ``KL(Pr^L || Pr^x) = 1/N sum_n sum_k p^L_nk log(p^L_nk / p^x_nk)``.

    Parameters
    ----------
    target_logits:
        ``(N, K)`` logits of the top stage ``L``; ``Pr^L`` is their softmax.
    logits:
        ``(N, K)`` logits of the branch being matched (``L-1`` or ``G``).
    detach_target:
        ``False`` (default) lets the gradient reach ``Pr^L`` too, i.e. the
        KL of Eq. (8) is minimised over all parameters as written (and as
        the released code does); ``True`` treats ``Pr^L`` as a fixed soft
        target, the knowledge-distillation reading of Sec. 3.3.

    Returns a float32 scalar, 0 when both distributions agree for every image.
    Computed from log-softmaxes so that tiny probabilities do not overflow.
    """
    if target_logits.shape != logits.shape or logits.ndim != 2:
        raise FGVCError(
            f"cross-layer KL needs two (N, K) logit tensors of equal shape, got "
            f"{tuple(target_logits.shape)} and {tuple(logits.shape)}",
            "pass the logits of two heads computed on the same batch")
    log_p = F.log_softmax(target_logits.float(), dim=-1)
    if detach_target:
        log_p = log_p.detach()
    log_q = F.log_softmax(logits.float(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).mean()
