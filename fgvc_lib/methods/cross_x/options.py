"""The options of Cross-X: one frozen dataclass that checks itself (see :mod:`fgvc_lib.methods.spec`)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.spec import MethodOptions

#: The ablation rows of Figs. 3-4 (combine with ``pooling_mid="max"`` for
#: Fig. 3, ``"avg"`` for Fig. 4). "SE" is the plain backbone (SENet-50).
ABLATIONS: dict[str, dict[str, bool]] = {
    "SE": dict(osme=False, c3s=False, mid=False, merged=False, cl=False),
    "OSME": dict(osme=True, c3s=False, mid=False, merged=False, cl=False),
    "C3S": dict(osme=True, c3s=True, mid=False, merged=False, cl=False),
    "C3S+GxP": dict(osme=True, c3s=True, mid=True, merged=False, cl=False),
    "C3S+GxP+CL": dict(osme=True, c3s=True, mid=True, merged=False, cl=True),
    "C3S+GxP+FP": dict(osme=True, c3s=True, mid=True, merged=True, cl=False),
    "C3S+GxP+FP+CL": dict(osme=True, c3s=True, mid=True, merged=True, cl=True),
}

#: Table 2: GMP/GAP on U^{L-1}; "-" rows have CL and no merged maps, "+" rows
#: merged maps and no CL.
TABLE2: dict[str, dict[str, Any]] = {
    "GMP-": {**ABLATIONS["C3S+GxP+CL"], "pooling_mid": "max"},
    "GAP-": {**ABLATIONS["C3S+GxP+CL"], "pooling_mid": "avg"},
    "GMP+": {**ABLATIONS["C3S+GxP+FP"], "pooling_mid": "max"},
    "GAP+": {**ABLATIONS["C3S+GxP+FP"], "pooling_mid": "avg"},
}


@dataclass(frozen=True)
class CrossXOptions(MethodOptions):
    """Cross-X's options (implementation notes of :mod:`fgvc_lib.methods.cross_x.model`).

    num_excitations: P, OSME maps per stage (None: 2, the paper's; 1 without OSME).
    osme, c3s, mid, merged, cl: the ablation switches of Figs. 3-4 (:data:`ABLATIONS`).
    pooling_mid: GAP or GMP on U^{L-1} (Table 2).
    lambda1, lambda2, lambda3: the weights of Eqs. (10)-(11).
    data_loss: how Eq. (9) reads the prediction (note 15).
    cl_detach_target: stop the gradient through the KL target Pr^L.
    osme_placement: OSME inside the residual block or on its output (note 2).
    excitation_reduction: OSME gate width = channels // this.
    merge_order: where the anti-aliasing conv sits in Eq. (5) (note 7).
    c3s_form: Eq. (4) as printed, or the released code's linear form (note 11).
    """

    method_title: ClassVar[str] = "cross_x"
    num_excitations: int | None = None
    osme: bool = True
    c3s: bool = True
    mid: bool = True
    merged: bool = True
    cl: bool = True
    pooling_mid: Literal["max", "avg"] = "avg"
    lambda1: float = 1.0
    lambda2: float = 1.0
    lambda3: float = 1.0
    data_loss: Literal["mixture", "summed_logits", "per_branch"] = "per_branch"
    cl_detach_target: bool = False
    osme_placement: Literal["auto", "residual", "output"] = "auto"
    excitation_reduction: int = 16
    merge_order: Literal["eq5", "fpn"] = "fpn"
    c3s_form: Literal["eq4", "linear"] = "eq4"

    @property
    def num_parts(self) -> int:
        """P: OSME maps per stage."""
        if not self.osme:
            return 1
        return 2 if self.num_excitations is None else self.num_excitations

    def check(self) -> None:
        for k, lam in enumerate((self.lambda1, self.lambda2, self.lambda3), start=1):
            if not math.isfinite(lam) or lam < 0:
                raise FGVCError(f"cross_x option lambda{k}={lam!r} must be a finite number >= 0",
                                f"pass e.g. lambda{k}=1.0")
        if self.excitation_reduction < 1:
            raise FGVCError(f"excitation_reduction={self.excitation_reduction!r} must be an "
                            "integer >= 1", "pass e.g. excitation_reduction=16 "
                            "(gate width = channels // 16)")
        if self.num_excitations is not None and self.num_excitations < 1:
            raise FGVCError(f"num_excitations={self.num_excitations!r} must be an integer >= 1",
                            "pass e.g. num_excitations=2 (the paper's P)")
        if not self.osme and self.num_excitations not in (None, 1):
            raise FGVCError(f"num_excitations={self.num_excitations} needs OSME, but osme=False",
                            "set osme=True, or drop num_excitations "
                            "(osme=False has one map per stage)")
        if self.c3s and self.num_parts < 2:
            raise FGVCError(
                f"c3s=True needs at least 2 OSME excitations, got osme={self.osme}, "
                f"P={self.num_parts}", "set osme=True with num_excitations >= 2, or c3s=False")
        if self.cl and not (self.mid or self.merged):
            raise FGVCError("cl=True needs a second branch to match against U^L, but mid and "
                            "merged are both False",
                            "set mid=True and/or merged=True, or cl=False")
