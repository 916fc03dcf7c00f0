"""CN-CNN (Guo et al., 2021): cross-layer navigation with a ConvLSTM and attention.

Paper: "Cross-layer Navigation Convolutional Neural Network for Fine-grained
Visual Classification". It gives no equations; the ones below (and in the
chapter) are ours, and the code does exactly what they say.

The network (Sec. 2, Figs. 1-2), levels ``l`` in S3, S4, S5 (ResNet ``layer2..4``):

* alignment ``A_l = Up(W_l * S_l + b_l)``: 1x1 conv to ``width`` channels, bilinear
  up-sampling to S3's size (:class:`~.pathways.Alignment`);
* HL pathway ``(H_l, C_l) = ConvLSTM(A_l, (H_{l+1}, C_{l+1}))`` run S5 -> S4 -> S3 per
  image from a zero state (:class:`~.pathways.HighLowPathway`; the cell is
  :class:`fgvc_lib.models.blocks.convlstm.ConvLSTMCell`);
* LH pathway ``F_l = Down_l(H_l)`` back to level ``l``'s own size, then
  ``O_l = M^s_l M^c_l (.) F_l`` with a spatial mask (3x3 transposed conv + sigmoid) and
  a channel mask (GAP + 2 FC + sigmoid) that receives the lower levels' channel
  information (:class:`~.pathways.LowHighPathway`);
* three classifiers ``z_l = W2_l ReLU(BN(W1_l GAP(O_l)))`` -> heads ``"S3"``, ``"S4"``, ``"S5"``;
* objective ``CE(z_3) + CE(z_4) + CE(z_5)``; test-time prediction the mean of the three
  softmaxes (``ModelOutput.logits`` = its log).

Ablations (Tables 2-3, :data:`~.options.CONFIGS`): ``hl="add"`` (the running FPN sum),
``hl="none"``, ``lh="off"`` (``O_l = F_l``).

Implementation notes
--------------------
Choices where the paper is open:

1. **Levels.** Backbone stages at strides 8, 16, 32 (the library's stage indices 1-3):
   ResNet-50 ``layer2/3/4`` (512/1024/2048 channels; 56/28/14 px at 448 px input),
   ResNet-18 the same layers (128/256/512), EfficientNet-Lite0 ``blocks.2``,
   ``blocks.4`` and the pretrained extractor's end (``conv_head`` + BN, 40/112/1280).
2. **Alignment.** Resolution of S3 (stride 8; ``align="s3"``), the largest, since the paper
   says the levels are up-sampled; width 256 (the released code's). 1x1 conv with
   bias, no BN or ReLU (none is mentioned), before bilinear up-sampling
   (``align_corners=False``), which gives the same result as after it.
3. **ConvLSTM.** The standard cell without peepholes (gates ``i, f, o, g``, 3x3
   convolutions, "same" padding, zero initial state, PyTorch's default
   initialisation); hidden width = ``width``. The HL output of a level is the hidden
   state ``h`` (not the cell state), so it lies in (-1, 1).
4. **Back to each level's size.** Area averaging (S4: 2x2 blocks, S5: 4x4 blocks of the
   S3-sized map), which leaves the GAP of the map unchanged.
5. **Spatial attention.** ``ConvTranspose2d(width, 1, 3, stride=1, padding=1)``: keeps the
   size (a stride-1 transposed conv is a conv with a flipped kernel); one per level.
6. **Channel attention hand-over** (``ca_handover``). Ours, ``"concat"``: the hidden
   vector of level ``l-1``'s channel MLP is concatenated to ``GAP(F_l)`` before level
   ``l``'s first FC, so S5's mask depends on S3 and S4 and not the reverse. The
   released code's, ``"average"``: each level's own mask averaged with those below.
   Hidden width ``width // 16`` (``ca_reduction``).
7. **Combining the masks** (``lh_combine``). Ours, ``"product"``: ``M^s M^c``, one
   pixel-wise mask in [0, 1] multiplied onto ``F_l`` (the paper's wording: the masks
   are aggregated into one pixel-wise mask that multiplies the HL features). The
   released code's, ``"sum"``: ``M^s F + M^c F`` (a mask in [0, 2]).
8. **Classifiers.** GAP -> FC(``width`` -> 512) -> BN -> ReLU -> FC(-> K); the paper
   says "two FC layers" and that BN is used for regularisation, no more.
9. **Loss and prediction.** Sum of the three cross-entropies (every head is trained as a
   classifier of its own); at test time the mean of the three softmaxes. Each head's
   accuracy is recorded beside the combination.
10. **Recipe** (``full`` profile, :data:`~fgvc_lib.methods.cn_cnn.CN_CNN_RECIPE`): the
    paper's 448 px, SGD momentum 0.9, weight decay 5e-4, 300 epochs, lr 0.1 for the new
    modules and 0.001 for the backbone (``lr=0.1``, ``backbone_lr_mult=0.01``). Not
    stated, chosen: batch 16 (one 11 GB GTX 1080Ti), cosine schedule per step with no
    warm-up, the trainer's default augmentation (random resized crop from 512 px and
    flip) and test transform (resize 512, centre crop 448), best epoch on a 10%
    validation split carved from the training set. On the CPU's real-data recipe
    (EfficientNet-Lite0, 224 px) the new layers' lr 0.1 drives the spatial masks to 0 or 1
    within a few steps and the model stays at chance, so those runs select the lr on the
    validation split (``results/cpu/cn_cnn-cub100/run.sh``; 0.01 was selected).
11. **Cost.** At 448 px the ConvLSTM runs three times on 56 x 56 x 256 maps with a
    512 -> 1024, 3x3 convolution: about 4.7M parameters and 44 GMACs per image, more
    than ResNet-50 itself (about 16 GMACs at 448 px). ``align="s4"`` quarters that.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from fgvc_lib.methods.cn_cnn.options import CNCNNOptions
from fgvc_lib.methods.cn_cnn.pathways import (LEVELS, Alignment, Classifier, HighLowPathway,
                                              LowHighPathway, resize_to)
from fgvc_lib.models.base import FGVCModel
from fgvc_lib.models.output import ModelOutput

#: Backbone stage indices (of the four the library returns) used as S3, S4, S5.
STAGE_INDICES = (1, 2, 3)


class CNCNN(FGVCModel):
    """CN-CNN (module docstring). ``forward(x)`` returns a :class:`ModelOutput` with

    * ``logits``: log of the mean of the three heads' softmaxes;
    * ``heads``: ``"S3"``, ``"S4"``, ``"S5"``;
    * ``attention``: ``"LH/<level>"``, the channel L2 norm of each LH output at its
      level's size, and (with ``lh="on"``) ``"SA/<level>"``, the spatial masks;
    * ``extras``: ``"aligned"``, ``"hl"``, ``"features"`` (HL outputs at each level's size),
      ``"lh"`` (LH outputs), dicts level -> map, and ``"spatial_masks"``,
      ``"channel_masks"`` (with ``lh="on"``).
    """

    def __init__(self, num_classes: int, backbone: str = "resnet50", pretrained: bool = False,
                 weights: str | None = None, options: CNCNNOptions = CNCNNOptions()) -> None:
        super().__init__(num_classes, backbone, pretrained, weights)
        o = options
        self.options = o
        channels = [self.backbone.channels[i] for i in STAGE_INDICES]
        self.align = Alignment(channels, o.width, LEVELS.index(o.align.upper()))
        self.hl = HighLowPathway(o.hl, o.width, o.lstm_kernel)
        self.lh = (LowHighPathway(o.width, o.ca_reduction, o.ca_handover, o.lh_combine)
                   if o.lh == "on" else None)
        self.taps = nn.ModuleDict({level: nn.Identity() for level in LEVELS})
        self.classifiers = nn.ModuleDict({level: Classifier(o.width, o.cls_hidden, num_classes)
                                          for level in LEVELS})

    def pathways(self, levels: list[torch.Tensor]) -> dict[str, object]:
        """Everything after the backbone, for the stage maps ``[S3, S4, S5]``."""
        aligned = self.align(levels)
        hl = self.hl(aligned)
        features = [resize_to(h, s.shape[-2:]) for h, s in zip(hl, levels)]
        out: dict[str, object] = {"aligned": dict(zip(LEVELS, aligned)),
                                  "hl": dict(zip(LEVELS, hl)),
                                  "features": dict(zip(LEVELS, features))}
        if self.lh is not None:
            lh, spatial, channel = self.lh(features)
            out["spatial_masks"] = dict(zip(LEVELS, spatial))
            out["channel_masks"] = dict(zip(LEVELS, channel))
        else:
            lh = features
        out["lh"] = {level: self.taps[level](o) for level, o in zip(LEVELS, lh)}
        return out

    def forward(self, x: torch.Tensor) -> ModelOutput:
        stages = self.backbone(x)
        extras = self.pathways([stages[i] for i in STAGE_INDICES])
        lh: dict[str, torch.Tensor] = extras["lh"]  # type: ignore[assignment]
        heads = {level: self.classifiers[level](o) for level, o in lh.items()}
        attention = {f"LH/{level}": o.float().norm(dim=1) for level, o in lh.items()}
        for level, m in extras.get("spatial_masks", {}).items():  # type: ignore[union-attr]
            attention[f"SA/{level}"] = m[:, 0].float()
        log_probs = torch.stack([F.log_softmax(h.float(), dim=-1) for h in heads.values()])
        logits = torch.logsumexp(log_probs, dim=0) - math.log(len(heads))
        return ModelOutput(logits=logits, heads=heads, attention=attention, extras=extras)

    # -- objective ---------------------------------------------------------
    def losses(self, out: ModelOutput, targets: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"loss", "ce_S3", "ce_S4", "ce_S5"}`` in float32 (not detached)."""
        terms = {f"ce_{level}": F.cross_entropy(h.float(), targets) for level, h in out.heads.items()}
        return {"loss": sum(terms.values()), **terms}

    # -- attention ---------------------------------------------------------
    def cam_layers(self) -> dict[str, nn.Module]:
        """Grad-CAM targets: the backbone's S3-S5, then the LH output of each level
        (``"LH/S3"`` ... ``"LH/S5"``; head ``"S<k>"`` is reached from ``"LH/S<k>"``)."""
        layers = {f"stage{i + 2}": self.backbone.stage_module(i) for i in STAGE_INDICES}
        layers.update({f"LH/{level}": self.taps[level] for level in LEVELS})
        return layers


__all__ = ["CNCNN", "STAGE_INDICES"]
