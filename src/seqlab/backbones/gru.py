"""The gated recurrent unit (Cho et al. 2014), in torch's formulation."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from ..registry import register_backbone
from .recurrent import RecurrentBackbone


@register_backbone("gru")
class GRU(RecurrentBackbone):
    r"""Stacked GRU, exactly torch's ``nn.GRU``.

    .. math::
        r_t &= \sigma(W_{ir} x_t + b_{ir} + W_{hr} h_{t-1} + b_{hr}) \\
        z_t &= \sigma(W_{iz} x_t + b_{iz} + W_{hz} h_{t-1} + b_{hz}) \\
        n_t &= \tanh(W_{in} x_t + b_{in} + r_t \odot (W_{hn} h_{t-1} + b_{hn})) \\
        h_t &= (1 - z_t) \odot n_t + z_t \odot h_{t-1}

    The reset gate multiplies ``W_hn h + b_hn`` after the product (torch's and
    cuDNN's convention), not h before it (the 2014 paper's). Gate blocks in W are
    ordered r, z, n. ``fused=True`` runs torch's kernel in ``forward``;
    ``fused=False`` runs this cell in our own traversal.

    Inputs/outputs: x (B, T, D) -> y (B, T, H); state h (num_layers, B, H).
    """

    gates = 3
    state_names = ("h",)
    fused_kernel = torch.gru

    def cell(self, gates_x: Tensor, state: tuple[Tensor, ...], layer: int) -> tuple[Tensor, ...]:
        (h,) = state
        _, w_hh, _, b_hh = self.layer_weights(layer)
        x_r, x_z, x_n = gates_x.chunk(3, dim=-1)
        h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)
        reset = torch.sigmoid(x_r + h_r)
        update = torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset * h_n)
        return (candidate + update * (h - candidate),)
