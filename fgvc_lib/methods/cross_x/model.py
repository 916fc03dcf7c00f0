"""Cross-X learning (Luo et al., ICCV 2019): the network and its training step.

Paper: "Cross-X Learning for Fine-Grained Visual Categorization".

The network, Sec. 3 and Fig. 1:

* OSME blocks (Eqs. (1)-(2), :mod:`fgvc_lib.methods.cross_x.osme`) in the last
  block of stage ``L-1`` (ResNet ``layer3``) and stage ``L`` (``layer4``) give
  ``P`` attention-specific maps per stage, ``U^{L-1}_p`` and ``U^L_p``;
* merged maps ``U^G_p = BN(K_2 * U^{L-1}_p + Bilinear(K_1 * U^L_p))``, Eq. (5);
* per level (``L``, ``L-1``, ``G``): pool each part, concatenate the parts,
  one linear classifier -> heads ``"L"``, ``"L-1"``, ``"G"``;
* final prediction ``Pr = f(U^L) + f(U^{L-1}) + f(U^G)``, Eq. (7);
* objective ``L_data + L_C3S + L_CL``, Eqs. (8)-(11), with the C3S
  regulariser (Eqs. (3)-(4)) on each level's part features and the
  cross-layer KL (Eq. (6)) from ``Pr^L`` to ``Pr^{L-1}`` and ``Pr^G``.
  The loss terms live in :mod:`fgvc_lib.methods.cross_x.losses`.

Ablation switches (Figs. 3-4, Table 2) -- ready-made in :data:`ABLATIONS`
and :data:`TABLE2`: ``osme`` (OSME vs. the plain SE-/ResNet: the "SE" row),
``c3s``, ``mid`` (the ``U^{L-1}`` branch, "GxP"), ``merged`` (``U^G``,
"FP"), ``cl`` (CL), and ``pooling_mid`` (``"max"`` = GMP, ``"avg"`` = GAP on
``U^{L-1}``).

Implementation notes
--------------------
Choices the paper leaves open, and where the authors' released code differs:

1. **Backbone.** Default ``seresnet50`` = timm's SE-ResNet-50, SE reduction 16
   in every block. The released "SENet-50" uses reductions 16/32/64/128 per
   stage (24.4M instead of 26.4M backbone parameters). ``resnet50`` gives
   the "Cross-X (ResNet)" rows.
2. **Where OSME sits.** In the *last* block of ``layer3`` and ``layer4``
   ("after conv4_6 / conv5_3"). For ResNet-family blocks (default
   ``osme_placement="auto"`` -> ``"residual"``) the gates re-weight the
   residual branch before the addition, ``U_p = ReLU(m^p (.) r + shortcut)``,
   the way SE works and the way the released code does it; the squeeze is
   taken on ``r``. ``osme_placement="output"`` re-weights the block's
   output instead (``U_p = m^p (.) U``), the other reading of "after
   conv5_3".
3. **Other backbones** (e.g. ``efficientnet_lite0``, the one backbone with
   ImageNet weights offline) use the ``"output"`` placement on the maps the
   backbone returns for its stride-16 and stride-32 stages (EfficientNet-
   Lite0: ``blocks.4``, 112 channels, and ``blocks.6``, 320 channels).
4. **What stage L receives.** The plain output of ``layer3``'s last block
   (its own SE included) feeds ``layer4``; the OSME parts of ``layer3`` are
   a side output (so does the released code). In SE-ResNet the OSME gates
   *replace* the block's SE for the parts (OSME is SE with ``P`` gates).
   The plain output of ``layer4``'s last block is never used, so that
   block's own SE is frozen (``requires_grad=False``): otherwise it would
   be a parameter without gradient, which DDP rejects.
5. **Excitation width.** Each gate is ``C -> C/16 -> C`` (``excitation_reduction
   =16``, SE's default): 64 in ``layer3`` and 128 in ``layer4`` of ResNet-50.
   The paper gives none; the released code uses reduction 256 for ResNet
   (widths 4 and 8) and 64/128 for its SENet (width 16 in both).
6. **Initialisation.** New layers (OSME, merge, classifiers) start from
   PyTorch's defaults ("from scratch", Sec. 4.2).
7. **Merged maps, Eq. (5).** ``K_1`` (1x1, ``C_L -> C_{L-1}``), ``K_2`` (3x3,
   ``C_{L-1} -> C_{L-1}``) and the BN are separate for each part (grouped
   convolutions with ``groups=P``; Eq. (5) has no part index, the released
   code has one set per part), without bias (BN follows). ``K_1`` acts
   *before* the bilinear up-sampling (``align_corners=False``; the released
   code up-samples with nearest neighbour). ``merge_order="fpn"`` (default)
   applies ``K_2`` to the sum, ``BN(K_2 * (U^{L-1}_p + Bilinear(K_1 * U^L_p)))``:
   Sec. 3.3 calls ``K_2`` the anti-aliasing operation and puts BN after
   "the anti-aliasing operation on the merged feature maps", and a 3x3 conv
   can only smooth the up-sampling's aliasing if it sees the up-sampled
   term, as in FPN and the released code. ``"eq5"`` applies ``K_2`` to
   ``U^{L-1}`` only, as Eq. (5) is printed (the default before this change,
   used by every GPU and CPU record). No ReLU after the BN (none in Eq. (5)).
8. **Channel sizes.** With ``P = 2`` and ResNet-50 the pooled, concatenated
   features are 4096 (``U^L``), 2048 (``U^{L-1}``) and 2048 (``U^G``), as
   Sec. 4.2 states (checked by a test).
9. **Pooling.** GAP on ``U^L`` and ``U^G``; ``pooling_mid`` on ``U^{L-1}``
   (default ``"avg"``: the paper's final results use GAP on Cars, Dogs and
   Aircraft and GMP on the birds). The classifiers see the raw pooled
   features; the L2 normalisation of Sec. 3.2 is for C3S only.
10. **C3S features.** Always GAP-pooled (Sec. 3.2 says GAP), also when the
    ``L-1`` classifier uses GMP.
11. **What ``S_{p,q}`` is.** The mean over all ``N x N`` image pairs of
    ``f_{p,n} . f_{q,m}`` (see :mod:`fgvc_lib.methods.cross_x.losses`); the released code
    also averages over all pairs. Eq. (4) is implemented as printed
    (``c3s_form="eq4"``, default); ``c3s_form="linear"`` is the released
    code's form, the upper triangle of ``S`` with the diagonal replaced by
    ``1 - S_pp``, summed (:func:`~fgvc_lib.methods.cross_x.losses.c3s_loss_linear`),
    whose gradient does not vanish at ``S = 0`` (note 21). A third reading,
    ``1/2 (||S||_F^2 - 2 ||diag S||^2)`` (the 1/2 taken over the bracket),
    weighs the diagonal equal to the off-diagonal; the printed spacing puts
    the 1/2 on the first term only, which we follow.
12. **Where C3S applies.** To every level whose part maps exist: ``L``
    always, ``L-1`` when ``mid`` or ``merged``, ``G`` when ``merged``, with
    weights ``lambda1``, ``lambda2``, ``lambda3`` (Eq. (10)). CL uses
    ``lambda1`` for ``KL(Pr^L||Pr^{L-1})`` and ``lambda2`` for
    ``KL(Pr^L||Pr^G)``, reusing the symbols as Eq. (11) does.
13. **lambda values.** The paper gives none; default 1.0 for all three
    (Eq. (8) unweighted). The released code sets them per dataset.
14. **CL target not detached** (``cl_detach_target=False``): Eq. (8) is one
    objective minimised over all parameters, so the gradient of the KL also
    reaches ``Pr^L``; the released code, which produced the paper's
    numbers, does the same. ``True`` gives the knowledge-distillation
    reading of Sec. 3.3 (``Pr^L`` as a fixed soft target). On the CUB
    subset with EfficientNet-Lite0 at 128 px (CPU runs,
    ``results/cpu/cross_x-cub100-128px``) ``True`` was clearly better; the
    default stays with the released code until GPU runs at the paper's
    scale say the same (see the chapter notebook).
15. **Data term.** ``data_loss="per_branch"`` (default): Eq. (9) on each
    branch's own prediction ``f(U)``, summed over the branches, so that each
    term of Eq. (7) is itself a trained class distribution.
    ``"mixture"``: Eq. (9) read literally, on the prediction of Eq. (7)
    normalised to a distribution, ``-log(Pr_y / B)`` with ``B`` the number of
    branches. It lets a branch collapse: a branch whose first logits are large
    and wrong (GMP on ``U^{L-1}`` does this) gets a gradient proportional to
    the probability it gives the true class, i.e. almost none, and then
    dominates Eq. (7) with a confident wrong class. GPU runs with this
    default (until the session-C commit) ended at chance in every row with a
    GMP head on ``U^{L-1}`` and no CL, while the ``L`` head alone reached 80%.
    ``"summed_logits"``: one cross-entropy on ``z_L + z_{L-1} + z_G`` (the
    released code); no branch is then trained to be a distribution of its own.
16. **Final logits.** ``ModelOutput.logits = log(Pr / B)``, the log of the
    mean of the branch softmaxes, for every ``data_loss``: ``softmax(logits)``
    is ``Pr / B`` and ``argmax`` is Eq. (7)'s prediction. With one branch it
    is that head's log-softmax.
17. **Attention maps.** ``"L/p1"``, ``"L/p2"``, ``"L-1/p1"``, ..., ``"G/p2"``:
    the channel-mean of each ``U_p`` at its own resolution, ``(B, h, w)``,
    one class-agnostic map per excitation as Fig. 5 shows one per
    excitation (the paper cites CAM [43] for those figures; class-specific
    maps come from Grad-CAM on :meth:`CrossX.cam_layers`).
18. **The "SE" row** (``osme=False``): no OSME; each level has one "part",
    the stage output itself (``P = 1``). C3S needs ``osme=True`` and
    ``P >= 2``; CL needs a second branch (``mid`` or ``merged``).
19. **Recipe.** SGD, momentum 0.9, batch 32, lr 0.01 (the paper uses 0.001
    for Stanford Dogs; override ``lr`` there), 30 epochs, x0.1 at epoch 15,
    448 px, one learning rate for all parameters. Weight decay: the paper is
    silent and the released code uses none; we use none.
20. **Validation split.** The paper holds out 10% of each class's training
    images (the released code selects the best epoch on the test set); the
    trainer's ``val_fraction`` does the former.
21. **A property worth knowing, not a choice.** Eq. (4) has no linear term,
    so ``S = 0`` is a stationary point: C3S cannot act on features that are
    uncorrelated across images. ``U^G`` is a BN output, zero-mean per
    channel over the batch in training mode, so ``S^G`` is ~0 at the start
    and its C3S term begins with almost no gradient. In our smoke runs it
    stayed there: ``S^G`` was still ~0.00 after training, so the C3S term on
    the merged maps never acted (see the chapter notebook). The same holds for a randomly initialised EfficientNet, whose
    stage outputs are signed (linear bottleneck); with its ImageNet weights
    ``S`` is 0.4-0.6 on CUB crops.
22. **Cost.** ``K_2`` alone is ``2 x 1024 x 1024 x 3 x 3`` = 18.9M
    parameters and ~15 GMACs per 448-px image, about as much compute as
    the backbone itself. Totals for 200 classes: 49.5M parameters on
    ResNet-50, 52.1M on SE-ResNet-50 (0.5M of them the frozen SE of note 4).
    Measured on one H100 (bf16 autocast, channels_last, batch 32, SGD step):
    427 img/s, against 613 img/s for the plain SE-ResNet-50;
    ``torch.compile`` traced the forward with no graph break but was not
    faster (404 img/s).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.cross_x.options import ABLATIONS, TABLE2, CrossXOptions
from fgvc_lib.methods.cross_x.losses import c3s_loss, c3s_loss_linear, c3s_similarity, \
    cross_layer_kl
from fgvc_lib.methods.cross_x.osme import OSME, is_resnet_block, part_activation_maps, \
    residual_block_parts
from fgvc_lib.models.base import FGVCModel
from fgvc_lib.models.blocks.pooling import global_pool
from fgvc_lib.models.output import ModelOutput

#: Level names used for heads, attention maps and extras: stage L, stage L-1, merged.
TOP, MID, MERGED = "L", "L-1", "G"

class MergedPartMaps(nn.Module):
    """Merged feature maps ``U^G_p``, Eq. (5), for all ``P`` parts at once.

    Inputs and output are part maps concatenated along channels:
    ``u_top`` ``(B, P*C_L, h, w)``, ``u_mid`` ``(B, P*C_{L-1}, 2h, 2w)`` ->
    ``(B, P*C_{L-1}, 2h, 2w)``. Grouped convolutions keep one ``K_1``, one
    ``K_2`` (and one BN channel block) per part.
    """

    def __init__(self, top_channels: int, mid_channels: int, num_parts: int,
                 order: str = "fpn") -> None:
        super().__init__()
        self.order = order
        self.reduce = nn.Conv2d(num_parts * top_channels, num_parts * mid_channels, 1,
                                groups=num_parts, bias=False)  # K_1
        self.antialias = nn.Conv2d(num_parts * mid_channels, num_parts * mid_channels, 3,
                                   padding=1, groups=num_parts, bias=False)  # K_2
        self.bn = nn.BatchNorm2d(num_parts * mid_channels)

    def forward(self, u_top: torch.Tensor, u_mid: torch.Tensor) -> torch.Tensor:
        # Reducing before up-sampling (the paper's first change to FPN) does
        # the 1x1 conv on 4x fewer positions.
        top = F.interpolate(self.reduce(u_top), size=u_mid.shape[-2:], mode="bilinear",
                            align_corners=False)
        if self.order == "eq5":
            merged = self.antialias(u_mid) + top
        else:
            merged = self.antialias(u_mid + top)
        return self.bn(merged)


class CrossX(FGVCModel):
    """Cross-X: OSME part maps at two stages, merged maps, C3S and CL regularisers.

    ``forward(x)`` returns a :class:`ModelOutput` with

    * ``logits``: ``log(Pr / B)``, Eq. (7) as a log-distribution (note 16);
    * ``heads``: ``"L"``, ``"L-1"`` (if ``mid``), ``"G"`` (if ``merged``);
    * ``attention``: ``"<level>/p<k>"`` channel-mean maps of each ``U_p``;
    * ``extras["part_features"]``: ``{level: (B, P, C)}`` L2-normalised
      GAP features (float32); ``extras["S"]``: ``{level: (P, P)}`` Eq. (3).

    Parameters (besides those of :class:`FGVCModel`): see the module
    docstring and :data:`ABLATIONS`.
    """

    def __init__(self, num_classes: int, backbone: str = "seresnet50", pretrained: bool = False,
                 weights: str | None = None, options: CrossXOptions = CrossXOptions()) -> None:
        o = options
        num_parts = o.num_parts
        osme, mid, merged = o.osme, o.mid, o.merged
        osme_placement, excitation_reduction, merge_order = (
            o.osme_placement, o.excitation_reduction, o.merge_order)
        super().__init__(num_classes, backbone, pretrained, weights)
        self.num_parts = num_parts
        self.use_osme, self.use_c3s, self.use_mid, self.use_merged, self.use_cl = (
            osme, o.c3s, mid, merged, o.cl)
        self.pooling_mid = o.pooling_mid
        self.lambdas = {TOP: o.lambda1, MID: o.lambda2, MERGED: o.lambda3}
        self.cl_weights = {MID: o.lambda1, MERGED: o.lambda2}  # Eq. (11)
        self.data_loss = o.data_loss
        self.c3s_form = o.c3s_form
        self.cl_detach_target = o.cl_detach_target
        self.needs_mid_maps = mid or merged

        mid_channels, top_channels = self.backbone.channels[2], self.backbone.channels[3]
        self._mid_stage, self._top_stage = self.backbone.stage_names[2:4]
        self.placement = "none"
        self.osme_mid: OSME | None = None
        self.osme_top: OSME | None = None
        if osme:
            self.placement = self._resolve_placement(osme_placement)
            self.osme_top = OSME(top_channels, num_parts, excitation_reduction)
            if self.needs_mid_maps:
                self.osme_mid = OSME(mid_channels, num_parts, excitation_reduction)
            if self.placement == "residual":
                top_block = self.backbone.stage_module(3)[-1]
                if top_block.se is not None:
                    # Only the plain output would use it, and stage L's plain output is unused.
                    top_block.se.requires_grad_(False)

        self.merge = (MergedPartMaps(top_channels, mid_channels, num_parts, merge_order)
                      if merged else None)
        self.fc_top = nn.Linear(num_parts * top_channels, num_classes)
        self.fc_mid = nn.Linear(num_parts * mid_channels, num_classes) if mid else None
        self.fc_merged = nn.Linear(num_parts * mid_channels, num_classes) if merged else None

    # -- construction helpers ----------------------------------------------
    def _resolve_placement(self, placement: str) -> str:
        blocks = [self.backbone.stage_module(i) for i in (2, 3)]
        last_blocks_are_resnet = all(
            isinstance(stage, nn.Sequential) and len(stage) > 0 and is_resnet_block(stage[-1])
            for stage in blocks)
        if placement == "auto":
            return "residual" if last_blocks_are_resnet else "output"
        if placement == "residual" and not last_blocks_are_resnet:
            raise FGVCError(
                f"osme_placement='residual' needs ResNet-style blocks, but backbone "
                f"{self.backbone.name!r} ends its stages with "
                f"{type(blocks[-1]).__name__}",
                "use osme_placement='output' (or 'auto') for this backbone")
        return placement

    # -- forward -----------------------------------------------------------
    def _part_maps(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        """``(U^{L-1}, U^L)`` as concatenated part maps; ``U^{L-1}`` is ``None`` if unused."""
        if self.placement == "residual":
            return self._part_maps_residual(x)
        maps = self.backbone(x)
        u_mid, u_top = maps[2], maps[3]
        if self.osme_top is not None:  # "output" placement
            u_top = self.osme_top(u_top)
            u_mid = self.osme_mid(u_mid) if self.osme_mid is not None else None
        return (u_mid if self.needs_mid_maps else None), u_top

    def _part_maps_residual(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor]:
        # Run the timm feature net stage by stage so the last block of stages
        # L-1 and L can hand out their OSME parts besides their usual output.
        u_mid = None
        for name, module in self.backbone.body.items():
            if name == self._mid_stage and self.osme_mid is not None:
                for block in module[:-1]:
                    x = block(x)
                x, u_mid = residual_block_parts(module[-1], x, self.osme_mid, with_plain=True)
            elif name == self._top_stage:
                for block in module[:-1]:
                    x = block(x)
                _, u_top = residual_block_parts(module[-1], x, self.osme_top, with_plain=False)
                return u_mid, u_top
            else:
                x = module(x)
        raise RuntimeError(  # pragma: no cover - the stage names come from the backbone itself
            f"stage {self._top_stage!r} not found in the backbone")

    def forward(self, x: torch.Tensor) -> ModelOutput:
        u_mid, u_top = self._part_maps(x)
        levels: dict[str, torch.Tensor] = {TOP: u_top}
        if u_mid is not None:
            levels[MID] = u_mid
        if self.merge is not None:
            levels[MERGED] = self.merge(u_top, u_mid)

        heads: dict[str, torch.Tensor] = {}
        attention: dict[str, torch.Tensor] = {}
        part_features: dict[str, torch.Tensor] = {}
        similarities: dict[str, torch.Tensor] = {}
        classifiers = {TOP: self.fc_top, MID: self.fc_mid, MERGED: self.fc_merged}
        p = self.num_parts
        for level, u in levels.items():
            gap = u.mean(dim=(2, 3))  # (B, P*C), parts side by side
            classifier = classifiers[level]
            if classifier is not None:
                # adaptive max pooling keeps the argmax for backward (amax re-matches
                # values, which breaks under torch.compile's recomputation).
                pooled = (global_pool(u, "max").flatten(1) if level == MID and self.pooling_mid == "max"
                          else gap)
                heads[level] = classifier(pooled)
            feats = F.normalize(gap.float().unflatten(1, (p, -1)), dim=-1)
            part_features[level] = feats
            similarities[level] = c3s_similarity(feats)
            maps = part_activation_maps(u, p)
            for k in range(p):
                attention[f"{level}/p{k + 1}"] = maps[:, k]

        # Eq. (7), normalised: log of the mean of the branches' softmaxes.
        log_probs = torch.stack([F.log_softmax(h.float(), dim=-1) for h in heads.values()])
        logits = torch.logsumexp(log_probs, dim=0) - math.log(len(heads))
        return ModelOutput(logits=logits, heads=heads, attention=attention,
                           extras={"part_features": part_features, "S": similarities})

    # -- objective ---------------------------------------------------------
    def losses(self, out: ModelOutput, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """Eqs. (8)-(11) in float32: ``{"loss", "ce", "c3s", "cl"}`` (not detached)."""
        heads = {k: v.float() for k, v in out.heads.items()}
        if self.data_loss == "mixture":
            ce = F.nll_loss(out.logits.float(), targets)  # Eq. (9) with p = Pr / B
        elif self.data_loss == "summed_logits":
            ce = F.cross_entropy(torch.stack(list(heads.values())).sum(0), targets)
        else:
            ce = sum(F.cross_entropy(h, targets) for h in heads.values())
        zero = out.logits.new_zeros((), dtype=torch.float32)
        c3s = zero
        if self.use_c3s:
            form = c3s_loss if self.c3s_form == "eq4" else c3s_loss_linear
            c3s = sum(self.lambdas[level] * form(s) for level, s in out.extras["S"].items())
        cl = zero
        if self.use_cl:
            cl = sum(self.cl_weights[level] * cross_layer_kl(
                heads[TOP], heads[level], detach_target=self.cl_detach_target)
                for level in (MID, MERGED) if level in heads)
        return {"loss": ce + c3s + cl, "ce": ce, "c3s": c3s, "cl": cl}

    # -- attention ---------------------------------------------------------
    def cam_layers(self) -> dict[str, nn.Module]:
        """Grad-CAM targets, deepest last: the two early stages, then the part maps.

        ``"L-1"`` / ``"L"`` are the OSME modules (output: the concatenated
        part maps) or, without OSME, the stage modules; ``"G"`` the merge.
        With the residual placement ``layer3`` / ``layer4`` are not called
        as whole modules, so they are not offered as targets.
        """
        layers = {"stage2": self.backbone.stage_module(0), "stage3": self.backbone.stage_module(1)}
        if self.needs_mid_maps:
            layers[MID] = (self.osme_mid if self.osme_mid is not None
                           else self.backbone.stage_module(2))
        if self.merge is not None:
            layers[MERGED] = self.merge
        layers[TOP] = self.osme_top if self.osme_top is not None else self.backbone.stage_module(3)
        return layers


__all__ = ["ABLATIONS", "CrossX", "MergedPartMaps", "TABLE2"]
