"""The LSTM (Hochreiter & Schmidhuber 1997) and its variants."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..registry import register_backbone
from .recurrent import RecurrentBackbone

VARIANTS = ("vanilla", "peephole", "coupled", "no_forget")
GATE_COUNT = {"vanilla": 4, "peephole": 4, "coupled": 3, "no_forget": 3}


@register_backbone("lstm")
class LSTM(RecurrentBackbone):
    r"""Stacked LSTM with the forget gate (Gers et al. 2000) and three variants.

    ``variant="vanilla"`` is exactly torch's ``nn.LSTM`` (gate blocks i, f, g, o):

    .. math::
        i_t &= \sigma(a_i),\ f_t = \sigma(a_f),\ \tilde c_t = \tanh(a_g),\ o_t = \sigma(a_o),
              \quad a = W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh} \\
        c_t &= f_t \odot c_{t-1} + i_t \odot \tilde c_t \\
        h_t &= o_t \odot \tanh(c_t)

    The lectures' F, I, C~, O are f, i, g, o here. Along c the step Jacobian is
    dc_t/dc_{t-1} = diag(f_t): no squashing, so the gradient survives while f ~ 1.

    Variants (own cells; the vanilla ``forward`` runs torch's fused kernel):

    - ``"peephole"`` (Gers & Schmidhuber 2000): the gates also see the cell,
      diagonally: a_i += p_i * c_{t-1}, a_f += p_f * c_{t-1}, a_o += p_o * c_t.
      Peephole weights ``weight_ch_l{k}`` (3, H) rows p_i, p_f, p_o, start at 0.
    - ``"coupled"``: one gate erases and adds, i_t = 1 - f_t (blocks f, g, o).
    - ``"no_forget"``: the 1997 cell, c_t = c_{t-1} + i_t * C~_t (blocks i, g, o).

    Args:
        variant: one of ``vanilla``, ``peephole``, ``coupled``, ``no_forget``.
        forget_bias: if given, the forget gate's bias starts at this value
            (b_ih's forget block = forget_bias, b_hh's = 0); 1.0 is the usual
            remedy for early forgetting (Jozefowicz et al. 2015).
        other arguments: see :class:`RecurrentBackbone`.

    Inputs/outputs: x (B, T, D) -> y (B, T, H); state (h, c), each (num_layers, B, H).
    """

    state_names = ("h", "c")

    def __init__(self, input_size: int, hidden_size: int, *, variant: str = "vanilla", forget_bias: float | None = None, **options) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
        if variant == "no_forget" and forget_bias is not None:
            raise ValueError("variant 'no_forget' has no forget gate, so forget_bias does not apply")
        self.variant = variant
        self.forget_bias = forget_bias
        self.gates = GATE_COUNT[variant]
        self.fused_kernel = torch.lstm if variant == "vanilla" else None
        super().__init__(input_size, hidden_size, **options)
        if variant == "peephole":
            for layer in range(self.num_layers):
                self.register_parameter(f"weight_ch_l{layer}", nn.Parameter(torch.zeros(3, hidden_size)))

    def reset_parameters(self) -> None:
        super().reset_parameters()
        with torch.no_grad():
            for layer in range(self.num_layers):
                peephole = getattr(self, f"weight_ch_l{layer}", None)
                if peephole is not None:
                    peephole.zero_()
                if self.forget_bias is not None:
                    block = 1 if self.variant in ("vanilla", "peephole") else 0  # where f sits among the gate blocks
                    rows = slice(block * self.hidden_size, (block + 1) * self.hidden_size)
                    _, _, b_ih, b_hh = self.layer_weights(layer)
                    b_ih[rows] = self.forget_bias
                    b_hh[rows] = 0.0

    def cell(self, gates_x: Tensor, state: tuple[Tensor, ...], layer: int) -> tuple[Tensor, ...]:
        h, c = state
        _, w_hh, _, b_hh = self.layer_weights(layer)
        gates = gates_x + F.linear(h, w_hh, b_hh)  # (B, G*H)
        if self.variant == "vanilla":
            a_i, a_f, a_g, a_o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_g)
            return torch.sigmoid(a_o) * torch.tanh(c), c
        if self.variant == "peephole":
            p_i, p_f, p_o = getattr(self, f"weight_ch_l{layer}")
            a_i, a_f, a_g, a_o = gates.chunk(4, dim=-1)
            c = torch.sigmoid(a_f + p_f * c) * c + torch.sigmoid(a_i + p_i * c) * torch.tanh(a_g)
            return torch.sigmoid(a_o + p_o * c) * torch.tanh(c), c
        if self.variant == "coupled":
            a_f, a_g, a_o = gates.chunk(3, dim=-1)
            forget = torch.sigmoid(a_f)
            candidate = torch.tanh(a_g)
            c = candidate + forget * (c - candidate)  # f * c + (1 - f) * C~
            return torch.sigmoid(a_o) * torch.tanh(c), c
        a_i, a_g, a_o = gates.chunk(3, dim=-1)  # no_forget
        c = c + torch.sigmoid(a_i) * torch.tanh(a_g)
        return torch.sigmoid(a_o) * torch.tanh(c), c

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, variant={self.variant!r}, forget_bias={self.forget_bias}"
