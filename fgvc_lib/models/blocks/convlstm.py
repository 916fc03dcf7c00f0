"""A convolutional LSTM cell (Shi et al., NeurIPS 2015, without peephole terms).

One step maps an input map ``x`` ``(B, C_in, H, W)`` and the state ``(h, c)``,
each ``(B, C_h, H, W)``, to the next state::

    i = sigmoid(W_xi * x + W_hi * h + b_i)      input gate
    f = sigmoid(W_xf * x + W_hf * h + b_f)      forget gate
    o = sigmoid(W_xo * x + W_ho * h + b_o)      output gate
    g = tanh   (W_xg * x + W_hg * h + b_g)      candidate
    c' = f (.) c + i (.) g
    h' = o (.) tanh(c')

``*`` is a ``k x k`` convolution with "same" padding, ``(.)`` the element-wise
product. All eight convolutions are one ``Conv2d`` on the channel
concatenation ``[x, h]`` with ``4 * C_h`` output channels, in the gate order
``i, f, o, g`` (:data:`GATES`); :meth:`ConvLSTMCell.gate_weights` names the
slices. The sequence axis can be anything ordered: time in the original
paper, the levels of a feature pyramid in CN-CNN.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn

#: Order of the gates along the output channels of :attr:`ConvLSTMCell.conv`.
GATES = ("i", "f", "o", "g")


class ConvLSTMCell(nn.Module):
    """One ConvLSTM step (module docstring); ``forward(x, state) -> (h, c)``.

    Parameters
    ----------
    in_channels: ``C_in`` of the input maps.
    hidden_channels: ``C_h`` of the hidden and cell states.
    kernel_size: odd side ``k`` of every convolution ("same" padding).
    bias: learn ``b_i, b_f, b_o, b_g``.
    """

    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3,
                 bias: bool = True) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        self.in_channels = in_channels
        self.hidden_channels = hidden_channels
        self.conv = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, kernel_size,
                              padding=kernel_size // 2, bias=bias)

    def gate_weights(self, gate: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Views ``(W_x, W_h, b)`` of one gate's weights (``"i"``, ``"f"``, ``"o"``, ``"g"``):
        ``W_x`` ``(C_h, C_in, k, k)``, ``W_h`` ``(C_h, C_h, k, k)``, ``b`` ``(C_h,)``."""
        k = GATES.index(gate)
        rows = slice(k * self.hidden_channels, (k + 1) * self.hidden_channels)
        w = self.conv.weight[rows]
        b = self.conv.bias[rows] if self.conv.bias is not None else None
        return w[:, :self.in_channels], w[:, self.in_channels:], b

    def initial_state(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``h_0 = c_0 = 0`` with the batch, size, dtype and device of ``x``."""
        shape = (x.shape[0], self.hidden_channels, *x.shape[-2:])
        zeros = x.new_zeros(shape)
        return zeros, zeros.clone()

    def forward(self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        h, c = self.initial_state(x) if state is None else state
        i, f, o, g = self.conv(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        return h, c


def run_convlstm(cell: ConvLSTMCell, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """The hidden state after each step of ``inputs`` (in the order given), from a zero
    state: ``[h_1, ..., h_T]``. Step ``t`` sees ``inputs[:t]`` and nothing later."""
    state = None
    hidden = []
    for x in inputs:
        state = cell(x, state)
        hidden.append(state[0])
    return hidden


__all__ = ["ConvLSTMCell", "GATES", "run_convlstm"]
