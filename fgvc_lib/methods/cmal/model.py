"""CMAL-Net (Liu et al., Pattern Recognition 140, 2023): the network and its training step.

Experts sit on stages 3, 4 and 5 of the backbone (``Backbone`` maps 1, 2, 3:
ResNet ``layer2/3/4``). Each expert compresses its stage map with the head
of Eqs. (1)-(3) and classifies the descriptor (``p_1 .. p_N``); a further
classifier reads the concatenated descriptors (``p_oval``). Each expert's
class activation map (Eq. (4)) gives an attention box (Eqs. (5)-(6)); the
mean of the experts' normalised maps gives the overall box (Eq. (7)). The
crops are the "mutual data augmentation" (MDA) of Algorithm 1, trained in
N+2 optimiser steps per batch (:meth:`CMALNet.training_step`). At test time
the raw image and its overall attention crop ``A_oval`` each give N+1
scores, and the prediction fuses all 2(N+1).

Use it through the registry::

    model = build_model("cmal", num_classes=100, backbone="resnet50", cv=1024)

Options (keywords of ``build_model``): ``cv`` (C_v, default 1024), ``t``
(threshold, 0.5), ``pooling`` (``max`` | ``avg`` | ``bilinear`` |
``covariance``, Table 2), ``augmentation`` (``mda`` or a Table 2 baseline),
``cam_class`` (``prediction`` | ``label``), ``crop_pad`` (box padding as a
fraction of the image side, 0), ``classifier`` (``mlp`` | ``linear``),
``fusion`` (``logits`` | ``probs``), ``mda_draw`` (``batch`` | ``sample``),
``expert_stages`` (backbone maps, ``(1, 2, 3)``), ``second_order_dim``
(channels before bilinear / covariance pooling, 128), ``mix_alpha``
(Beta parameter of the mixing baselines, 1.0), ``test_on_oval`` (evaluate on
raw + ``A_oval``, True), ``truncated_steps`` (each step computes only what its
loss needs, True).

Implementation notes
--------------------
Where the paper leaves a choice open, this implementation decides as follows.

1. **Classifier depth.** The paper says "a fully connected layer-based
   classifier". We default to the released code's two-layer classifier
   (``classifier="mlp"``: BN1d - Linear(D, C_v/2) - BN1d - ELU - Linear(K)),
   for the experts and for the concatenation alike. With ResNet-50, C_v = 1024
   and K = 100 this gives 42.9M parameters, matching the 43M of Table 9
   (a single linear layer gives 40.1M). ``classifier="linear"`` is the
   literal one-layer reading.
2. **CAM with a two-layer classifier (Eq. (4)).** The class weights ``p_n``
   of Eq. (4) are the rows of ``W2 @ W1``, the product of the two linear
   maps, with both BatchNorms and the ELU ignored, as the released code
   does; with ``classifier="linear"`` they are the layer's weights exactly.
   The expert heads' convolutions use ELU as Eqs. (2)-(3) say (the released
   code uses ReLU there).
3. **Which class the CAM shows.** The class predicted by that expert
   (``cam_class="prediction"``, the paper's k_n and the released code's
   choice); ``cam_class="label"`` uses the ground truth during training.
   Evaluation always uses the prediction (no labels at test time).
4. **Eq. (7) averages the normalised maps.** The equation writes the
   up-sampled maps before normalisation, the text says "averaging the
   normalized attention maps"; we follow the text so that no expert
   dominates by the scale of its CAM. The mean is min-max normalised and
   thresholded with the same t.
5. **Crop padding.** None by default (``crop_pad=0``, the paper's
   description). The released code grows each box by 10% of the image side
   on every side (``crop_pad=0.1`` reproduces that). An empty mask (a flat
   CAM) keeps the whole image.
6. **Crops are inputs, not a differentiable path.** Boxes and crops are
   computed from detached maps under ``torch.no_grad()``; gradients never
   flow through the box or the crop, as the paper uses the regions as new
   input images.
7. **MDA draw (Algorithm 1, line 11).** ``mda_draw="batch"`` (default)
   draws one input for the whole batch uniformly from {raw, A_m : m != n},
   with the trainer's generator: Algorithm 1 applies
   ``Randomly_choose_from`` to the batch ``input``, and the released code
   draws once per batch. ``"sample"`` draws per *image* (the default before
   this change, used by every GPU record); it mixes crops and raw images in
   one BatchNorm batch.
8. **Step losses.** Steps 1..N: CE of the trained expert's score; step N+1:
   ``sum_n CE(p_n^A) + CE(p_oval^A)``; step N+2: ``CE(p_oval)``, all in
   float32, as Algorithm 1 writes them. (The released code weighs the
   concatenation twice in steps N+1 and N+2.)
9. **Each step computes what its loss needs** (``truncated_steps=True``,
   default). Steps 2..N train expert n alone: their forward runs the backbone
   only up to expert n's stage, then expert n's head and classifier
   (``forward(x, only="p<n>")``); step N+1 skips the CAMs; step N+2 (the
   concatenation) skips the expert classifiers and the CAMs; step 1 runs
   everything, because its CAMs make the crops (with a Table 2 baseline,
   which needs no crops, it runs expert N's branch only). Losses and gradients
   are exactly those of the full pass; what changes is that BatchNorm running
   statistics of the parts a step skips are refreshed in fewer steps (e.g.
   ResNet ``layer4`` in three of five steps). ``truncated_steps=False`` runs
   the whole network at every step, as the released code does.
   ``StepContext.step`` zeroes gradients with ``set_to_none``, so parameters
   outside the step's loss have no gradient and SGD leaves them untouched that
   step: no momentum and no weight-decay update either (e.g. step 1 moves
   neither the heads of experts 1..N-1 nor the concatenation classifier; step
   N+2 does not move the expert classifiers). Under DDP this needs
   ``find_unused_parameters=True`` (``ddp_find_unused_parameters``).
10. **Score fusion.** The paper "averages" the 2(N+1) prediction scores; the
    released code sums logits. ``fusion="logits"`` (default) averages logits
    (same argmax as the sum); ``fusion="probs"`` averages softmax
    probabilities and returns their log, so that ``softmax(logits)`` is the
    averaged probability. ``heads`` carries every single score so all of
    Table 2's columns come from one evaluation.
11. **Backbone learning rate.** The paper gives one learning rate (0.002);
    the released code trains the backbone at a tenth of it. The registered
    recipe uses ``backbone_lr_mult=0.1``. "Cosine annealing [23]" cites SGDR
    (warm restarts) while the released code decays once over all epochs;
    the recipe uses one cosine decay (``scheduler="cosine"``).
12. **Second-order pooling (Table 2, BP and GCP).** C_v x C_v descriptors
    are intractable at C_v = 1024, so a 1x1 conv - BN - ELU first reduces
    x_n'' to ``second_order_dim`` channels (128: 16,384-d bilinear,
    8,256-d covariance descriptors). Eq. (4) is extended to the per-position
    term of the classifier's linear part acting on the un-normalised second-
    order matrix: ``Omega(a, b) = z(a, b)^T M_k z(a, b)`` with ``M_k`` the
    class weights folded into a symmetric matrix and ``z`` the reduced map
    (centred for covariance); the signed square root, the L2 normalisation
    and the matrix square root are ignored like the classifier's BN and ELU.
13. **Baselines (Table 2).** ``augmentation`` replaces the attention crops
    of steps 2..N+1 by a fresh augmentation of the raw batch at each step
    (same steps, order and trained parts): ``raw`` (Baseline 1),
    ``random_crop`` (2: a box of half the image area with the image's
    aspect, resized back), ``pad_crop`` (3: zero-pad 16, random crop),
    ``pad_crop_flip`` (4), ``mixup`` (5), ``cutmix`` (6), ``saliencymix``
    (7, spectral-residual saliency) and ``mix_random`` (one of the three
    mixing methods per step). Co-Mixup (Baseline 8, and part of 9's pool)
    is not implemented. Mixing methods train with
    ``lam * CE(y_a) + (1 - lam) * CE(y_b)``. Evaluation is unchanged
    (raw + A_oval); Table 2's "Aug." test rows are the raw heads evaluated
    on augmented test images.
14. **Losses reported.** ``training_step`` returns ``loss_1 .. loss_N`` (expert
    n's loss in its own step), ``loss_{N+1}`` (``CE(p_oval^A)`` in step N+1)
    and ``loss_{N+2}`` (``CE(p_oval)`` on the raw input), the five curves of
    Fig. 3 for N = 3, plus ``loss``: the sum of the N+2 optimised objectives.
15. **Cost (ResNet-50, C_v = 1024, 448 px).** 42.9M parameters for K = 100
    (Table 9: 43M), 43.1M for K = 200; 37.5 GMACs on the raw image and 74.7
    GMACs with the A_oval pass (``FlopCounterMode``; Table 9: 37.4G / 74.8G).
    The benchmark record ``results/gpu/bench/cmal_r50_b16.json`` (one H100,
    K = 200, bf16 + channels_last, eager) measured 124 training images/s at
    batch 16 (five forward/backward passes per batch) and 977 images/s of
    evaluation (two passes per image).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.cmal import augment
from fgvc_lib.methods.cmal.options import CMALOptions
from fgvc_lib.models.base import FGVCModel
from fgvc_lib.models.blocks.cam import (class_activation_map, crop_and_resize, mask_to_box,
                                        minmax_normalize, pad_boxes, threshold_mask,
                                        upsample_maps)
from fgvc_lib.models.blocks.pooling import GlobalPool
from fgvc_lib.models.output import ModelOutput

if TYPE_CHECKING:
    from fgvc_lib.models.step import StepContext

SECOND_ORDER = ("bilinear", "covariance")
MIXING = ("mixup", "cutmix", "saliencymix")


def _conv_bn_elu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ELU(),
    )


class ExpertHead(nn.Module):
    """``F_n`` of Eqs. (1)-(3): 1x1 conv to C_v/2 - BN - ELU (Eq. (3)), 3x3 conv to
    C_v - BN - ELU (Eq. (2)), global pooling (Eq. (1); max in the paper).

    For second-order pooling a 1x1 conv - BN - ELU first reduces x_n'' to
    ``second_order_dim`` channels (implementation note 12).

    ``forward`` returns ``(v_n, cam_map)``: the descriptor and the map the CAM is
    computed on (x_n'', or its reduction).
    """

    def __init__(self, in_channels: int, cv: int, pooling: str = "max",
                 second_order_dim: int = 128) -> None:
        super().__init__()
        self.reduce = _conv_bn_elu(in_channels, cv // 2, 1)   # Eq. (3): x_n'
        self.expand = _conv_bn_elu(cv // 2, cv, 3)            # Eq. (2): x_n''
        self.project: nn.Module | None = None
        map_channels = cv
        if pooling in SECOND_ORDER:
            self.project = _conv_bn_elu(cv, second_order_dim, 1)
            map_channels = second_order_dim
        self.pooling = pooling
        self.map_channels = map_channels
        self.pool = GlobalPool(pooling)                        # Eq. (1)
        self.out_dim = self.pool.out_dim(map_channels)

    @property
    def cam_block(self) -> nn.Module:
        """The last conv block: the map the CAM and Grad-CAM look at."""
        return self.project if self.project is not None else self.expand

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cam_map = self.expand(self.reduce(x))
        if self.project is not None:
            cam_map = self.project(cam_map)
        return self.pool(cam_map), cam_map


class ScoreClassifier(nn.Module):
    """``f^clf``: BN1d - Linear(D, hidden) - BN1d - ELU - Linear(K), or one Linear(D, K)."""

    def __init__(self, in_dim: int, num_classes: int, hidden: int | None) -> None:
        super().__init__()
        if hidden:
            self.net: nn.Module = nn.Sequential(
                nn.BatchNorm1d(in_dim), nn.Linear(in_dim, hidden), nn.BatchNorm1d(hidden),
                nn.ELU(), nn.Linear(hidden, num_classes))
            self.linears = (self.net[1], self.net[4])
        else:
            self.net = nn.Linear(in_dim, num_classes)
            self.linears = (self.net,)

    def class_weights(self) -> torch.Tensor:
        """``(K, D)`` per-class weights for Eq. (4): ``W2 @ W1`` (BN and ELU ignored)
        for the two-layer classifier, ``W`` for the linear one. Detached."""
        weights = self.linears[-1].weight.detach().float()
        for layer in reversed(self.linears[:-1]):
            weights = weights @ layer.weight.detach().float()
        return weights

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.net(v)


@dataclass
class AttentionRegions:
    """Boxes of Eqs. (5)-(7) in input pixels (``x0, y0, x1, y1``, float, ``(B, 4)``).

    experts: one box per expert (A_1 .. A_N before cropping).
    oval: the overall box (A_oval).
    oval_map: ``(B, H, W)`` min-max normalised mean of the experts' normalised maps.
    """

    experts: list[torch.Tensor]
    oval: torch.Tensor
    oval_map: torch.Tensor


def _ce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits.float(), targets)


@dataclass
class _StepInput:
    """The images of one step and how to score them (plain or mixed labels)."""

    images: torch.Tensor
    targets: torch.Tensor
    mixed: augment.MixedBatch | None = None

    def loss(self, logits: torch.Tensor) -> torch.Tensor:
        return self.mixed.loss(logits) if self.mixed is not None else _ce(logits, self.targets)


class CMALNet(FGVCModel):
    """CMAL-Net (see the module docstring for the method and its options)."""

    #: Every step leaves some heads out of its loss (implementation note 9).
    ddp_find_unused_parameters = True

    def __init__(self, num_classes: int, backbone: str = "resnet50", pretrained: bool = False,
                 weights: str | None = None, options: CMALOptions = CMALOptions()) -> None:
        super().__init__(num_classes, backbone, pretrained, weights)
        cv, classifier, pooling, second_order_dim = (options.cv, options.classifier,
                                                     options.pooling, options.second_order_dim)
        self.cv = cv
        self.t = options.t
        self.pooling = pooling
        self.augmentation = options.augmentation
        self.cam_class = options.cam_class
        self.crop_pad = options.crop_pad
        self.fusion = options.fusion
        self.mda_draw = options.mda_draw
        expert_stages = self.expert_stages = options.expert_stages
        self.mix_alpha = options.mix_alpha
        #: Evaluate on raw + A_oval (True) or on the raw image only (Table 9 "RAW";
        #: also what Grad-CAM wants: one pass through every layer).
        self.test_on_oval = options.test_on_oval
        self.truncated_steps = options.truncated_steps
        hidden = cv // 2 if classifier == "mlp" else None
        channels = self.backbone.channels
        self.experts = nn.ModuleList(
            ExpertHead(channels[s], cv, pooling, second_order_dim) for s in expert_stages)
        self.classifiers = nn.ModuleList(
            ScoreClassifier(head.out_dim, num_classes, hidden) for head in self.experts)
        self.concat_classifier = ScoreClassifier(sum(h.out_dim for h in self.experts),
                                                 num_classes, hidden)

    @property
    def num_experts(self) -> int:
        return len(self.experts)

    # -- the network -------------------------------------------------------------
    def expert_pass(self, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor,
                                                    list[torch.Tensor]]:
        """One pass: expert scores ``[p_1 .. p_N]``, ``p_oval`` and the CAM maps ``x_n''``."""
        stages = self.backbone(x)
        descriptors, maps = [], []
        for head, stage in zip(self.experts, self.expert_stages):
            v, cam_map = head(stages[stage])
            descriptors.append(v)
            maps.append(cam_map)
        scores = [clf(v) for clf, v in zip(self.classifiers, descriptors)]
        oval = self.concat_classifier(torch.cat(descriptors, dim=1))
        return scores, oval, maps

    def expert_cams(self, maps: Sequence[torch.Tensor],
                    classes: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Eq. (4) for every expert: ``(B, h_n, w_n)`` CAMs of ``classes[n]`` (one label
        per image), in float32, detached (second-order form: note 12)."""
        cams = []
        with torch.autocast(device_type=maps[0].device.type, enabled=False):
            for head, clf, cam_map, cls in zip(self.experts, self.classifiers, maps, classes):
                feats = cam_map.detach().float()
                weights = clf.class_weights()
                if head.pooling in SECOND_ORDER:
                    cams.append(_second_order_cam(feats, weights[cls], head.pooling))
                else:
                    cams.append(class_activation_map(feats, weights, cls))
        return cams

    @torch.no_grad()
    def attention_regions(self, cams: Sequence[torch.Tensor],
                          image_size: Sequence[int]) -> AttentionRegions:
        """Eqs. (5)-(7): up-sample each CAM bilinearly to the input size, min-max
        normalise, threshold at ``t``, box; the mean of the normalised maps,
        normalised and thresholded again, gives the overall box."""
        size = (int(image_size[0]), int(image_size[1]))
        norms = [minmax_normalize(upsample_maps(c, size)) for c in cams]       # Eq. (5)
        boxes = [mask_to_box(threshold_mask(n, self.t)) for n in norms]        # Eq. (6)
        oval_map = minmax_normalize(torch.stack(norms).mean(dim=0))            # Eq. (7)
        oval_box = mask_to_box(threshold_mask(oval_map, self.t))
        if self.crop_pad > 0:
            boxes = [pad_boxes(b, self.crop_pad, size) for b in boxes]
            oval_box = pad_boxes(oval_box, self.crop_pad, size)
        return AttentionRegions(boxes, oval_box, oval_map)

    @torch.no_grad()
    def crop_regions(self, images: torch.Tensor,
                     boxes: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Crop every box from ``images`` and resize to the input size (detached)."""
        images = images.detach()
        return [crop_and_resize(images, b) for b in boxes]

    def _fuse(self, scores: Sequence[torch.Tensor]) -> torch.Tensor:
        """Average of scores (implementation note 10), float32."""
        stacked = torch.stack([s.float() for s in scores])
        if self.fusion == "logits":
            return stacked.mean(dim=0)
        return stacked.softmax(dim=-1).mean(dim=0).clamp_min(1e-12).log()

    def forward(self, x: torch.Tensor, only: str | None = None) -> ModelOutput:
        """Train mode (or ``test_on_oval=False``): the N+1 scores on ``x`` and the
        experts' CAMs. Eval mode: also the N+1 scores on the crop ``A_oval``;
        ``logits`` fuses all 2(N+1) (``heads["fusion"]``).

        ``only`` computes part of a training pass (implementation note 9):
        ``"p<n>"`` expert n's score alone (the backbone up to its stage),
        ``"scores"`` the N+1 scores without CAMs, ``"p_oval"`` the concatenation's
        score alone; ``logits`` is then that score (``"scores"``: ``p_oval``)."""
        if x.ndim != 4:
            raise FGVCError(f"CMAL-Net expects images (B, C, H, W), got shape {tuple(x.shape)}",
                            "add the batch dimension")
        if only is not None:
            return self._partial_pass(x, only)
        scores, oval, maps = self.expert_pass(x)
        cams = self.expert_cams(maps, [s.detach().argmax(dim=1) for s in scores])
        heads = {f"p{i + 1}": s for i, s in enumerate(scores)}
        heads["p_oval"] = oval
        heads["avg_raw"] = self._fuse([*scores, oval])
        attention = {f"expert{i + 1}": c for i, c in enumerate(cams)}
        if self.training or not self.test_on_oval:
            return ModelOutput(logits=heads["avg_raw"], heads=heads, attention=attention,
                               extras={"expert_maps": [m.detach() for m in maps]})
        regions = self.attention_regions(cams, x.shape[-2:])
        (crop,) = self.crop_regions(x, [regions.oval])
        scores_a, oval_a, _ = self.expert_pass(crop)
        for i, s in enumerate(scores_a):
            heads[f"p{i + 1}_A"] = s
        heads["p_oval_A"] = oval_a
        heads["avg_A"] = self._fuse([*scores_a, oval_a])
        heads["fusion"] = self._fuse([*scores, oval, *scores_a, oval_a])
        attention["oval"] = regions.oval_map
        boxes = {f"expert{i + 1}": b for i, b in enumerate(regions.experts)}
        boxes["oval"] = regions.oval
        return ModelOutput(logits=heads["fusion"], heads=heads, attention=attention,
                           extras={"boxes": boxes})

    def _partial_pass(self, x: torch.Tensor, only: str) -> ModelOutput:
        """What one training step's loss reads, and nothing else (note 9)."""
        names = [f"p{i + 1}" for i in range(self.num_experts)]
        if only in names:
            i = names.index(only)
            stage = self.expert_stages[i]
            v, _ = self.experts[i](self.backbone(x, depth=stage)[stage])
            score = self.classifiers[i](v)
            return ModelOutput(logits=score, heads={only: score})
        if only not in ("scores", "p_oval"):
            raise FGVCError(f"CMAL-Net: unknown partial pass only={only!r}",
                            f"use one of: {', '.join(names)}, scores, p_oval (or None)")
        stages = self.backbone(x)
        descriptors = [head(stages[s])[0] for head, s in zip(self.experts, self.expert_stages)]
        oval = self.concat_classifier(torch.cat(descriptors, dim=1))
        heads = {"p_oval": oval}
        if only == "scores":
            heads.update({n: clf(v) for n, clf, v in zip(names, self.classifiers, descriptors)})
        return ModelOutput(logits=oval, heads=heads)

    def _pass_for(self, loss_reads: str) -> str | None:
        """The ``only`` argument of a step whose loss reads ``loss_reads`` (None: the
        whole pass, when ``truncated_steps`` is off)."""
        return loss_reads if self.truncated_steps else None

    # -- training: Algorithm 1 ---------------------------------------------------
    def training_step(self, ctx: "StepContext", images: torch.Tensor,
                      targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """One iteration of Algorithm 1: N+2 optimiser steps on one batch.

        1. expert N on the raw input; this pass also yields A_1..A_N, A_oval;
        2..N. experts N-1 .. 1, each on an input drawn from {raw, A_m : m != n};
        N+1. all experts and the concatenation on A_oval;
        N+2. the concatenation on the raw input.

        Baselines (``augmentation != "mda"``) replace the inputs of steps 2..N+1.
        """
        if images.ndim != 4 or targets.ndim != 1 or targets.shape[0] != images.shape[0]:
            raise FGVCError(f"training_step: images {tuple(images.shape)} and targets "
                            f"{tuple(targets.shape)} do not match",
                            "pass images (B, C, H, W) and integer targets (B,)")
        n_exp = self.num_experts
        losses: dict[str, torch.Tensor] = {}
        total = torch.zeros((), device=images.device)

        # Step 1 (lines 5-9): the deepest expert on the raw input; with MDA its pass
        # also gives every expert's CAM, hence the crops.
        mda = self.augmentation == "mda"
        with ctx.autocast():
            out = ctx.forward(images, only=None if mda else self._pass_for(f"p{n_exp}"))
            loss = _ce(out.heads[f"p{n_exp}"], targets)
        crops: list[torch.Tensor] = []
        if mda:
            crops = self._mda_crops(out, images, targets)  # [A_1 .. A_N, A_oval], detached
        ctx.step(loss)
        losses[f"loss_{n_exp}"] = loss.detach()
        total = total + loss.detach()

        # Steps 2..N (lines 10-18): experts N-1 .. 1.
        for n in range(n_exp - 1, 0, -1):
            batch = self._step_input(ctx.generator, images, targets, crops, expert=n)
            with ctx.autocast():
                out = ctx.forward(batch.images, only=self._pass_for(f"p{n}"))
                loss = batch.loss(out.heads[f"p{n}"])
            ctx.step(loss)
            losses[f"loss_{n}"] = loss.detach()
            total = total + loss.detach()

        # Step N+1 (lines 20-29): every expert and the concatenation on A_oval.
        batch = self._step_input(ctx.generator, images, targets, crops, expert=None)
        with ctx.autocast():
            out = ctx.forward(batch.images, only=self._pass_for("scores"))
            loss_oval_a = batch.loss(out.heads["p_oval"])
            loss = loss_oval_a
            for i in range(n_exp):
                loss = loss + batch.loss(out.heads[f"p{i + 1}"])
        ctx.step(loss)
        losses[f"loss_{n_exp + 1}"] = loss_oval_a.detach()
        total = total + loss.detach()

        # Step N+2 (lines 30-39): the concatenation on the raw input.
        with ctx.autocast():
            out = ctx.forward(images, only=self._pass_for("p_oval"))
            loss = _ce(out.heads["p_oval"], targets)
        ctx.step(loss)
        losses[f"loss_{n_exp + 2}"] = loss.detach()
        losses["loss"] = total + loss.detach()
        return dict(sorted(losses.items(), key=lambda kv: (kv[0] != "loss", kv[0])))

    @torch.no_grad()
    def _mda_crops(self, out: ModelOutput, images: torch.Tensor,
                   targets: torch.Tensor) -> list[torch.Tensor]:
        """A_1 .. A_N and A_oval from step 1's forward (Sec. 3.2), detached."""
        if self.cam_class == "label":
            cams = self.expert_cams(out.extras["expert_maps"], [targets] * self.num_experts)
        else:
            cams = [out.attention[f"expert{i + 1}"] for i in range(self.num_experts)]
        regions = self.attention_regions(cams, images.shape[-2:])
        return self.crop_regions(images, [*regions.experts, regions.oval])

    @torch.no_grad()
    def _step_input(self, generator: torch.Generator, images: torch.Tensor,
                    targets: torch.Tensor, crops: list[torch.Tensor],
                    expert: int | None) -> _StepInput:
        """The input of step "train expert ``expert``" (or of step N+1 when ``None``)."""
        images = images.detach()
        kind = self.augmentation
        if kind == "mda":
            if expert is None:
                return _StepInput(crops[-1], targets)
            # The pool of Algorithm 1, line 11: the raw input and A_m for m != n.
            pool = [images] + [crops[m] for m in range(self.num_experts) if m != expert - 1]
            return _StepInput(_draw_from_pool(pool, generator, self.mda_draw), targets)
        if kind == "raw":
            return _StepInput(images, targets)
        if kind == "random_crop":
            h, w = images.shape[-2:]
            return _StepInput(augment.random_resized_crop(
                images, generator, scale=(0.5, 0.5), ratio=(w / h, w / h)), targets)
        if kind in ("pad_crop", "pad_crop_flip"):
            out = augment.pad_crop(images, generator, padding=16)
            if kind == "pad_crop_flip":
                out = augment.random_flip(out, generator)
            return _StepInput(out, targets)
        if kind == "mix_random":
            source = generator.device
            kind = MIXING[int(torch.randint(0, len(MIXING), (1,), generator=generator,
                                            device=source).cpu()[0])]
        mixer = {"mixup": augment.mixup, "cutmix": augment.cutmix,
                 "saliencymix": augment.saliencymix}[kind]
        mixed = mixer(images, targets, generator, alpha=self.mix_alpha)
        return _StepInput(mixed.images, targets, mixed)

    # -- attention ---------------------------------------------------------------
    def cam_layers(self) -> dict[str, nn.Module]:
        """Each expert's last conv block (the map behind its CAM), shallow to deep.

        Grad-CAM hooks fire on every pass: set ``test_on_oval = False`` so an
        evaluation forward runs each layer once.
        """
        return {f"expert{i + 1}": head.cam_block for i, head in enumerate(self.experts)}


def _draw_from_pool(pool: Sequence[torch.Tensor], generator: torch.Generator,
                    mode: str) -> torch.Tensor:
    """Pick, per image (``"sample"``) or for the batch (``"batch"``), one of the
    same-shaped tensors in ``pool`` uniformly with ``generator``."""
    b = pool[0].shape[0]
    device = pool[0].device
    shape = (b,) if mode == "sample" else (1,)
    choice = torch.randint(0, len(pool), shape, generator=generator,
                           device=generator.device).to(device).expand(b)
    stacked = torch.stack(list(pool))  # (P, B, C, H, W)
    return stacked[choice, torch.arange(b, device=device)]


def _second_order_cam(feats: torch.Tensor, class_weights: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-position share of a linear score on a second-order descriptor (note 12).

    feats ``(B, r, h, w)``; class_weights ``(B, D)`` of each image's class with
    ``D = r * r`` (bilinear, row-major gram) or ``r (r + 1) / 2`` (covariance,
    upper triangle). Returns ``(B, h, w)``.
    """
    b, r = feats.shape[:2]
    if kind == "bilinear":
        matrix = class_weights.view(b, r, r)
    else:
        rows, cols = torch.triu_indices(r, r, device=feats.device)
        upper = feats.new_zeros(b, r, r)
        upper[:, rows, cols] = class_weights
        # Off-diagonal weights are shared by (i, j) and (j, i) of the symmetric matrix.
        matrix = (upper + upper.transpose(1, 2)) / 2
        feats = feats - feats.mean(dim=(2, 3), keepdim=True)
    return torch.einsum("bihw,bij,bjhw->bhw", feats, matrix, feats)


__all__ = ["AttentionRegions", "CMALNet", "ExpertHead", "ScoreClassifier"]
