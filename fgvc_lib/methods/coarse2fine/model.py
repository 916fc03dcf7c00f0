"""Coarse2Fine (Eshratifar et al.): the network and its training step.

Paper: "Coarse2Fine: A Two-stage Training Method for Fine-grained Visual
Classification". No code was released; WS-DAN (Hu and Qi, 2019) is the
nearest public relative and decides several of the choices below.

The network (Figs. 3 and 5, Algorithm 1):

* coarse pass: feature maps ``x`` from one backbone stage, attention maps
  ``a = ReLU(W x)`` (1x1 conv, ``W`` is ``M x C``), bilinear attention pooling
  (Eq. (1), :mod:`.bap`) to a part-feature matrix, a linear head -> ``"coarse"``;
* the attention maps are lifted to image size by an up-sampler
  (:mod:`.upsampler`); training draws one map per image at random, inference
  averages all maps; the map, min-max normalised to [0, 1], multiplies the image;
* fine pass: the masked image through the same backbone, its own attention
  conv and BAP, its own head -> ``"fine"``;
* objective Eq. (4): ``CE(coarse) + CE(fine) + lambda (L_att(coarse) + L_att(fine))``
  with the center loss of Eqs. (2)-(3) (:mod:`.center`).

Implementation notes
--------------------
Choices the paper leaves open (there is no released code to differ from):

1. **BAP.** ``bap="wsdan"`` (default) pools the per-position outer products over
   positions, giving one N-vector per attention map (``M x N``); ``"paper"``
   pools over the channels at each position (``M x H*W``), as the text under
   Eq. (1) and Fig. 4 describe. The default follows Eq. (1) as printed (the pool
   runs over the positions ``i = 1..H*W``) and WS-DAN, whose numbers the paper
   improves by 0.1-0.8 points: a part feature that does not depend on where the
   part is in the image is what the center loss can pull to one center per class
   despite pose changes; the ``M x H*W`` reading ties the feature to positions
   and, with average pooling over channels, each row is only the attention map
   times one channel-mean map. Both are followed by signed square root and L2
   normalisation of the whole flattened matrix (WS-DAN's). ``"paper"`` pools its
   ``M x H x W`` maps to ``paper_grid x paper_grid`` so the head's size does not
   depend on the input size.
2. **Attention conv.** 1x1, no bias, then ReLU (non-negative maps, so they can
   be masks); no BatchNorm (WS-DAN has one), so the orthogonal rows of note 3
   act on the maps directly.
3. **Orthogonal init** (Algorithm 1, lines 2-3). The conv weight ``W`` (``M x C``)
   starts from PyTorch's default, then ``W = U S V^T`` (reduced SVD) and ``W``
   becomes the first ``M`` rows of ``V^T``: ``W W^T = I``. The paper's "take the
   matrix V" read as the first ``M`` right singular vectors (``V`` itself is
   ``C x M`` or ``C x C``). ``orthogonal_init=False`` keeps PyTorch's default.
4. **Which stage.** ``feature_stage=None``: the stride-16 stage (Inception-v3
   ``Mixed_6e``, 768 channels, as the paper; ResNet ``layer3``), except
   EfficientNet-Lite0, which uses its whole pretrained extractor (stage 3,
   ``conv_head``, 1280 channels at stride 32): its stride-16 stage has only 112
   channels from the middle of the pretrained network. Later stages are not
   run and are frozen (no parameter without a gradient).
5. **Center loss.** One center bank per pass (coarse, fine: the masked image's
   part features are not the full image's), zeros at the start, buffers moved
   only by Eq. (3) with the detached batch mean of each class present
   (``center_beta=0.05``, WS-DAN's; the paper gives no value); absent classes
   keep their centers. Eq. (2) is the squared Frobenius distance averaged over
   the batch (``center_reduction="batch"``; ``"classes"`` averages per class
   first). ``normalize_centers=True``: the loss compares with the unit-norm
   center, since the features have unit norm (reported to matter for WS-DAN).
   The loss uses the centers from before the step's update.
6. **Up-sampler.** ``log2(stride)`` transposed convolutions (kernel 4, stride 2,
   widths 32, 16, 8, ... , 1; ReLU between), each map up-sampled on its own,
   then a bilinear resize to the exact image size if the strides do not tile it.
   Maps are scaled to a maximum of 1 first (the range of the pre-training inputs).
   ``upsampler="bilinear"`` replaces it by a fixed bilinear interpolation.
7. **Up-sampler pre-training.** ``pretrain_pairs`` synthetic pairs (blob maps at
   ``pretrain_size`` px; targets from bilinear, bicubic and nearest interpolation
   in turn), L2, Adam (lr 0.01), ``pretrain_epochs`` epochs, at the start of the
   first training step (so ``fgvc eval`` and checkpoint loading never repeat it;
   a buffer records that it was done). The L2 optimum is the mean of the three
   interpolations (see :mod:`.upsampler`).
8. **Mask.** The up-sampled map is min-max normalised per image to [0, 1] (a
   constant map gives an all-ones mask: the fine pass then sees the whole image)
   and multiplies the *normalised* image tensor, so masked-out pixels become the
   dataset mean colour (zero input). The gradient of the fine CE flows through
   the mask, the up-sampler and the attention conv into the coarse backbone
   (``mask_grad=False`` detaches the mask).
9. **Fine pass.** Same backbone (shared weights and BatchNorm statistics, which
   therefore also see masked images), its own attention conv
   (``fine_attention="own"``: the only way the fine error reaches the coarse
   attention conv is then the mask, the paper's feedback path) and its own head.
10. **Heads and inference.** ``heads`` always hold ``"coarse"``, ``"fine"`` and
    ``"average"`` (log of the mean of the two softmaxes); ``inference`` picks the
    final ``logits`` (default ``"average"``, the paper's best). At inference the
    mask comes from the mean of the ``M`` up-sampled maps, so a prediction is
    deterministic.
11. **Classifier input.** ``feature_scale`` x the unit-norm matrix: a unit-norm
    input gives a linear head logits too small to learn from. WS-DAN's public
    code multiplies by 100 and trains at lr 0.001; at the learning rates of our
    profiles (0.05 smoke, 0.01 transfer) 100 diverged in a short smoke run
    (cross-entropy 87 after three epochs) while 10 trained, so the default is 10.
12. **Recipe** (``full``): Inception-v3, M = 8, lambda = 1, SGD momentum 0.9,
    200 epochs, weight decay 1e-5, batch 64 (the paper's); 448 px, lr 0.005 with
    per-step cosine, no warm-up, one lr for all layers (ours: the paper gives
    none of these).
13. **Parameters.** The paper counts only ``W`` (8 x 768 = 6144 on Inception-v3);
    the heads (``2 x (M*C*K + K)``), the fine attention conv and the up-sampler
    (~11k parameters at stride 16) come on top (see
    :func:`fgvc_lib.methods.coarse2fine.figures.parameter_table`).
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.methods.coarse2fine.bap import AttentionConv, bap_paper, bap_wsdan
from fgvc_lib.methods.coarse2fine.center import center_loss, update_centers
from fgvc_lib.methods.coarse2fine.options import Coarse2FineOptions
from fgvc_lib.methods.coarse2fine.upsampler import (BilinearUpsampler, TransposedConvUpsampler,
                                                    pretrain_upsampler)
from fgvc_lib.models.base import FGVCModel
from fgvc_lib.models.output import ModelOutput

if TYPE_CHECKING:
    from fgvc_lib.models.step import StepContext

#: ``feature_stage=None``: the stage each backbone uses (default: the stride-16 one, 2).
DEFAULT_STAGE = {"efficientnet_lite0": 3}


def mask_from_maps(maps: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Min-max normalise each ``(B, H, W)`` map to [0, 1]; a constant map gives ones."""
    flat = maps.flatten(1)
    lo = flat.min(1, keepdim=True).values
    hi = flat.max(1, keepdim=True).values
    span = hi - lo
    norm = (flat - lo) / span.clamp_min(eps)
    norm = torch.where(span > eps, norm, torch.ones_like(norm))
    return norm.view_as(maps)


class Coarse2Fine(FGVCModel):
    """Coarse2Fine: BAP + center loss, a learned up-sampler and a fine pass on the masked image.

    ``forward(x)`` returns a :class:`ModelOutput` with

    * ``logits``: the head named by ``inference`` (coarse without the cascade);
    * ``heads``: ``"coarse"`` and, with the cascade, ``"fine"`` and ``"average"``;
    * ``attention``: ``"mean"`` (mean of the M maps, feature resolution),
      ``"a1"`` ... ``"aM"``, and with the cascade ``"mask"`` (image size);
    * ``extras``: ``"coarse_features"`` / ``"fine_features"`` ``(B, M, D)`` float32
      (unit norm), ``"attention_maps"`` ``(B, M, h, w)``, ``"map_index"`` (training).
    """

    def __init__(self, num_classes: int, backbone: str = "inception_v3", pretrained: bool = False,
                 weights: str | None = None,
                 options: Coarse2FineOptions = Coarse2FineOptions()) -> None:
        super().__init__(num_classes, backbone, pretrained, weights)
        o = options
        self.options = o
        stage = o.feature_stage if o.feature_stage is not None else DEFAULT_STAGE.get(backbone, 2)
        self.feature_stage = stage
        self.stride = int(self.backbone.reductions[stage])
        channels = int(self.backbone.channels[stage])
        self.channels = channels
        self.num_maps = o.num_maps
        self._truncate = self._freeze_later_stages(stage)
        self.use_bap = o.bap != "none"
        self.cascade = o.cascade and self.use_bap
        if self.use_bap:
            if o.num_maps > channels:
                from fgvc_lib.errors import FGVCError

                raise FGVCError(f"coarse2fine: num_maps={o.num_maps} orthogonal maps need at "
                                f"least as many channels, stage {stage} has {channels}",
                                f"pass num_maps <= {channels}")
            self.attention = AttentionConv(channels, o.num_maps, o.orthogonal_init)
            dim = o.num_maps * (channels if o.bap == "wsdan" else o.paper_grid ** 2)
            self.feature_dim = dim
            self.fc_coarse = nn.Linear(dim, num_classes)
            self.register_buffer("centers_coarse",
                                 torch.zeros(num_classes, o.num_maps, dim // o.num_maps))
        else:
            self.attention = None
            self.feature_dim = channels
            self.fc_coarse = nn.Linear(channels, num_classes)
        self.fine_attention: AttentionConv | None = None
        self.upsampler: nn.Module | None = None
        if self.cascade:
            if o.fine_attention == "own":
                self.fine_attention = AttentionConv(channels, o.num_maps, o.orthogonal_init)
            self.upsampler = (TransposedConvUpsampler(self.stride, o.upsampler_width)
                              if o.upsampler == "learned" else BilinearUpsampler(self.stride))
            self.fc_fine = nn.Linear(self.feature_dim, num_classes)
            if not o.mask_grad and o.upsampler == "learned":
                self.ddp_find_unused_parameters = True  # the up-sampler then gets no gradient
            self.register_buffer("centers_fine", torch.zeros_like(self.centers_coarse))
        self.register_buffer("upsampler_pretrained", torch.tensor(
            not (self.cascade and o.upsampler == "learned" and o.pretrain_pairs > 0
                 and o.pretrain_epochs > 0)))
        self._map_choice: torch.Tensor | None = None
        self.pretraining_history: dict | None = None
        # A Python copy of the flag, so that a training step does not read the buffer
        # from the device (a host sync) once pre-training is known to be done.
        self._pretrained_seen = False

    # -- construction helpers ----------------------------------------------
    def _freeze_later_stages(self, stage: int) -> bool:
        """Whether the backbone can stop at ``stage`` (a timm feature net run module by
        module); if so, freeze what comes after it (it never gets a gradient)."""
        body = self.backbone.body
        name = self.backbone.stage_names[stage]
        if stage == 3 or not isinstance(body, nn.ModuleDict) or name not in dict(body.named_children()):
            if stage < 3:
                self.ddp_find_unused_parameters = True
            return False
        after = False
        for child, module in body.named_children():
            if after:
                module.requires_grad_(False)
            after = after or child == name
        return True

    # -- forward -----------------------------------------------------------
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature maps of the chosen stage, ``(B, C, h, w)``."""
        if not self._truncate:
            return self.backbone(x)[self.feature_stage]
        name = self.backbone.stage_names[self.feature_stage]
        for child, module in self.backbone.body.named_children():
            x = module(x)
            if child == name:
                return x
        raise RuntimeError(f"stage {name!r} not found")  # pragma: no cover

    def pool(self, feats: torch.Tensor, maps: torch.Tensor) -> torch.Tensor:
        """The unit-norm part-feature matrix ``(B, M, D)`` of the chosen BAP."""
        if self.options.bap == "wsdan":
            return bap_wsdan(feats, maps)
        return bap_paper(feats, maps, self.options.paper_pool, self.options.paper_grid)

    def upsample(self, maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """``(B, k, h, w)`` maps -> ``(B, k, H, W)``, each scaled to a maximum of 1 first."""
        peak = maps.flatten(2).amax(2).clamp_min(1e-6)[..., None, None]
        return self.upsampler(maps / peak, size)

    def forward(self, x: torch.Tensor) -> ModelOutput:
        feats = self.features(x)
        if not self.use_bap:
            logits = self.fc_coarse(feats.mean((2, 3)))
            return ModelOutput(logits=logits, heads={"coarse": logits})
        scale = self.options.feature_scale
        maps = self.attention(feats)  # (B, M, h, w)
        coarse = self.pool(feats, maps)
        coarse_logits = self.fc_coarse(scale * coarse.flatten(1))
        attention = {"mean": maps.mean(1)}
        attention.update({f"a{k + 1}": maps[:, k] for k in range(self.num_maps)})
        extras: dict[str, object] = {"coarse_features": coarse, "attention_maps": maps}
        if not self.cascade:
            return ModelOutput(logits=coarse_logits, heads={"coarse": coarse_logits},
                               attention=attention, extras=extras)

        size = (x.shape[-2], x.shape[-1])
        b = x.shape[0]
        if self.training:
            choice = self._map_choice
            if choice is None or choice.shape[0] != b:
                choice = torch.randint(self.num_maps, (b,), device=x.device)
            choice = choice.to(x.device)
            picked = maps[torch.arange(b, device=x.device), choice][:, None]
            up = self.upsample(picked, size)[:, 0]
            extras["map_index"] = choice
        else:
            up = self.upsample(maps, size).mean(1)
        mask = mask_from_maps(up.float())
        if not self.options.mask_grad:
            mask = mask.detach()
        fine_input = x * mask[:, None].to(x.dtype)
        fine_feats = self.features(fine_input)
        fine_maps = (self.fine_attention or self.attention)(fine_feats)
        fine = self.pool(fine_feats, fine_maps)
        fine_logits = self.fc_fine(scale * fine.flatten(1))
        # The two heads' probabilities averaged, as a log-distribution.
        log_probs = torch.stack([F.log_softmax(coarse_logits.float(), -1),
                                 F.log_softmax(fine_logits.float(), -1)])
        average = torch.logsumexp(log_probs, 0) - math.log(2.0)
        heads = {"coarse": coarse_logits, "fine": fine_logits, "average": average}
        attention["mask"] = mask
        extras.update(fine_features=fine, fine_attention_maps=fine_maps, upsampled=up)
        return ModelOutput(logits=heads[self.options.inference], heads=heads,
                           attention=attention, extras=extras)

    # -- objective ---------------------------------------------------------
    def losses(self, out: ModelOutput, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eq. (4) in float32: ``{"loss", "ce_coarse", "ce_fine", "center"}`` (not detached)."""
        o = self.options
        ce_coarse = F.cross_entropy(out.heads["coarse"].float(), targets)
        zero = ce_coarse.new_zeros(())
        terms = {"ce_coarse": ce_coarse, "ce_fine": zero, "center": zero}
        if "fine" in out.heads:
            terms["ce_fine"] = F.cross_entropy(out.heads["fine"].float(), targets)
        if self.use_bap:
            center = center_loss(out.extras["coarse_features"], targets, self.centers_coarse,
                                 o.center_reduction, o.normalize_centers)
            if "fine_features" in out.extras:
                center = center + center_loss(out.extras["fine_features"], targets,
                                              self.centers_fine, o.center_reduction,
                                              o.normalize_centers)
            terms["center"] = center
        terms["loss"] = terms["ce_coarse"] + terms["ce_fine"] + o.center_lambda * terms["center"]
        return terms

    @torch.no_grad()
    def update_centers(self, out: ModelOutput, targets: torch.Tensor) -> None:
        """Eq. (3) for both banks (after the step's loss was computed)."""
        if not self.use_bap:
            return
        beta = self.options.center_beta
        update_centers(self.centers_coarse, out.extras["coarse_features"], targets, beta)
        if "fine_features" in out.extras:
            update_centers(self.centers_fine, out.extras["fine_features"], targets, beta)

    def pretrain(self) -> dict | None:
        """Pre-train the learned up-sampler once (note 7); returns its history, or ``None``
        when there is nothing to do (already done, bilinear, no cascade, no pairs)."""
        if self._pretrained_seen:
            return None
        if bool(self.upsampler_pretrained):   # read once (e.g. after loading a checkpoint)
            self._pretrained_seen = True
            return None
        o = self.options
        batch = min(256, max(32, o.pretrain_pairs // 200))
        with torch.enable_grad():
            history = pretrain_upsampler(self.upsampler, o.pretrain_pairs, o.pretrain_epochs,
                                         size=o.pretrain_size, batch_size=batch)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            for p in self.upsampler.parameters():  # every process starts from rank 0's
                torch.distributed.broadcast(p.data, 0)
        self.upsampler_pretrained.fill_(True)
        self._pretrained_seen = True
        self.pretraining_history = history
        return history

    def training_step(self, ctx: "StepContext", images: torch.Tensor,
                      targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Algorithm 1, lines 5-14: one forward of both passes, Eq. (4), one optimiser step,
        then Eq. (3). The random map of each image comes from ``ctx.generator``."""
        self.pretrain()
        if self.cascade:
            gen = ctx.generator
            self._map_choice = torch.randint(self.num_maps, (images.shape[0],), generator=gen,
                                             device=gen.device).to(images.device)
        try:
            with ctx.autocast():
                out = ctx.forward(images)
        finally:
            self._map_choice = None
        terms = self.losses(out, targets)
        ctx.step(terms["loss"])
        self.update_centers(out, targets)
        return {k: v.detach() for k, v in terms.items()}

    # -- attention ---------------------------------------------------------
    def cam_layers(self) -> dict[str, nn.Module]:
        """Grad-CAM targets: the stages up to the chosen one, then the attention conv."""
        layers = {f"stage{i + 2}": self.backbone.stage_module(i)
                  for i in range(self.feature_stage + 1)}
        if self.attention is not None:
            layers["attention"] = self.attention
        return layers


__all__ = ["Coarse2Fine", "DEFAULT_STAGE", "mask_from_maps"]
