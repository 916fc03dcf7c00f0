"""The options of CMAL-Net: one frozen dataclass that checks itself (see :mod:`fgvc_lib.methods.spec`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.spec import MethodOptions

AUGMENTATIONS = ("mda", "raw", "random_crop", "pad_crop", "pad_crop_flip", "mixup", "cutmix",
                 "saliencymix", "mix_random")


@dataclass(frozen=True)
class CMALOptions(MethodOptions):
    """CMAL-Net's options (implementation notes of :mod:`fgvc_lib.methods.cmal.model`).

    cv: C_v, the width of the expert heads (Eq. (2)); 1024 in the paper.
    t: threshold of the attention boxes, Eqs. (5)-(7) (Table 3).
    pooling: the experts' global pooling, Eq. (1) (Table 2's pooling rows).
    augmentation: ``mda`` (the method) or a Table 2 baseline (note 13).
    cam_class: the class whose CAM makes the box in training (note 3).
    crop_pad: box padding as a fraction of the image side (note 5).
    classifier: two-layer (released code) or one linear layer (note 1).
    fusion: average logits or probabilities of the 2(N+1) scores (note 10).
    mda_draw: one MDA input per batch (Algorithm 1, released code) or per image (note 7).
    expert_stages: backbone maps read by the experts (1, 2, 3 = stages 3-5).
    second_order_dim: channels before bilinear / covariance pooling (note 12).
    mix_alpha: Beta parameter of the mixing baselines.
    test_on_oval: evaluate on raw + A_oval (True) or the raw image only.
    truncated_steps: each optimiser step computes only what its loss needs (note 9);
        False runs the whole network at every step, as the released code does.
    """

    method_title: ClassVar[str] = "CMAL-Net"
    cv: int = 1024
    t: float = 0.5
    pooling: Literal["max", "avg", "bilinear", "covariance"] = "max"
    augmentation: Literal["mda", "raw", "random_crop", "pad_crop", "pad_crop_flip", "mixup",
                          "cutmix", "saliencymix", "mix_random"] = "mda"
    cam_class: Literal["prediction", "label"] = "prediction"
    crop_pad: float = 0.0
    classifier: Literal["mlp", "linear"] = "mlp"
    fusion: Literal["logits", "probs"] = "logits"
    mda_draw: Literal["sample", "batch"] = "batch"
    expert_stages: tuple[int, ...] = (1, 2, 3)
    second_order_dim: int = 128
    mix_alpha: float = 1.0
    test_on_oval: bool = True
    truncated_steps: bool = True

    def __post_init__(self) -> None:
        if self.augmentation in ("comixup", "co_mixup", "co-mixup"):
            raise FGVCError("CMAL-Net: Co-Mixup (Table 2, Baseline 8) is not implemented",
                            f"use one of: {', '.join(AUGMENTATIONS)}")
        super().__post_init__()

    def check(self) -> None:
        if self.cv < 2 or self.cv % 2:
            raise FGVCError(f"CMAL-Net: cv (C_v) must be an even integer >= 2, got {self.cv!r}",
                            "use cv=1024 (the paper) or a smaller even number for smoke runs")
        if not 0.0 <= self.t <= 1.0:
            raise FGVCError(f"CMAL-Net: threshold t must lie in [0, 1], got {self.t!r}",
                            "use t=0.5 (the paper's default, Table 3)")
        if not 0.0 <= self.crop_pad < 0.5:
            raise FGVCError(f"CMAL-Net: crop_pad must lie in [0, 0.5), got {self.crop_pad!r}",
                            "use 0 (the paper) or 0.1 (the released code)")
        stages = self.expert_stages
        if not stages or list(stages) != sorted(set(stages)) or stages[0] < 0 or stages[-1] > 3:
            raise FGVCError(f"CMAL-Net: expert_stages must be increasing backbone map indices "
                            f"in 0..3, got {stages!r}",
                            "use (1, 2, 3): stages 3, 4, 5 of the paper (ResNet layer2/3/4)")
        if self.second_order_dim < 1:
            raise FGVCError(f"CMAL-Net: second_order_dim must be a positive integer, got "
                            f"{self.second_order_dim!r}", "use e.g. 128")
        if not self.mix_alpha > 0:
            raise FGVCError(f"CMAL-Net: mix_alpha must be > 0, got {self.mix_alpha!r}",
                            "use 1.0 (uniform lam, the CutMix / SaliencyMix default)")
