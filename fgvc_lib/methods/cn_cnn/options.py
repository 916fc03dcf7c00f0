"""The options of CN-CNN: one frozen dataclass that checks itself (see :mod:`fgvc_lib.methods.spec`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from fgvc_lib.errors import FGVCError
from fgvc_lib.methods.spec import MethodOptions

#: The configurations of Tables 2-3 (the "Baseline" row of Table 2 is the plain
#: network, method ``baseline``; see the table data).
CONFIGS: dict[str, dict[str, Any]] = {
    "HL": dict(hl="add", lh="off"),
    "HL+LH": dict(hl="add", lh="on"),          # = Table 3 "w/o ConvLSTM"
    "CN-CNN": dict(hl="convlstm", lh="on"),    # = Table 3 "w/ ConvLSTM", Table 1
}

#: The low-high pathway as the authors' released code builds it: the two masks
#: added (``S*F + C*F``) and the channel masks averaged bottom-up.
RELEASED_LH: dict[str, Any] = dict(lh_combine="sum", ca_handover="average")


@dataclass(frozen=True)
class CNCNNOptions(MethodOptions):
    """CN-CNN's options (implementation notes of :mod:`fgvc_lib.methods.cn_cnn.model`).

    hl: the high-low pathway: ``"convlstm"`` (the paper), ``"add"`` (FPN-style running
        sum of the aligned levels, Table 2's "HL"), ``"none"`` (each level alone).
    lh: the low-high pathway (spatial and channel attention): ``"on"`` | ``"off"``.
    width: channels of the aligned levels and of the ConvLSTM state.
    align: the level whose resolution all three are brought to (``"s3"``: stride 8).
    lstm_kernel: side of the ConvLSTM's convolutions.
    ca_handover: how channel information goes up from lower levels: ``"concat"``
        (the lower level's hidden CA vector joins the next level's input, ours) or
        ``"average"`` (each level's channel mask is the mean of its own and the lower
        levels' masks, the released code's).
    lh_combine: ``"product"`` (one pixel-wise mask ``SA * CA``, ours) or ``"sum"``
        (``SA * F + CA * F``, the released code's).
    ca_reduction: hidden width of the channel attention = ``width // ca_reduction``.
    cls_hidden: width of the first FC layer of each classifier.
    """

    method_title: ClassVar[str] = "cn_cnn"
    hl: Literal["none", "add", "convlstm"] = "convlstm"
    lh: Literal["on", "off"] = "on"
    width: int = 256
    align: Literal["s3", "s4", "s5"] = "s3"
    lstm_kernel: int = 3
    ca_handover: Literal["concat", "average"] = "concat"
    lh_combine: Literal["product", "sum"] = "product"
    ca_reduction: int = 16
    cls_hidden: int = 512

    def check(self) -> None:
        if self.width < 1:
            raise FGVCError(f"cn_cnn option width={self.width} must be an integer >= 1",
                            "pass e.g. width=256 (the released code's)")
        if self.lstm_kernel < 1 or self.lstm_kernel % 2 == 0:
            raise FGVCError(f"cn_cnn option lstm_kernel={self.lstm_kernel} must be an odd "
                            "integer >= 1", "pass e.g. lstm_kernel=3")
        if not 1 <= self.ca_reduction <= self.width:
            raise FGVCError(f"cn_cnn option ca_reduction={self.ca_reduction} must be between 1 "
                            f"and width={self.width}", "pass e.g. ca_reduction=16")
        if self.cls_hidden < 1:
            raise FGVCError(f"cn_cnn option cls_hidden={self.cls_hidden} must be an integer >= 1",
                            "pass e.g. cls_hidden=512")
