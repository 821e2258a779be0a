"""The vanilla recurrent network (Elman), with tanh or ReLU, and the IRNN."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import OptionError, did_you_mean
from ..registry import register_backbone
from .recurrent import CellKernel, RecurrentBackbone, one_minus_square, tanh_into

IRNN_INPUT_STD = 0.001  # Le, Jaitly & Hinton 2015: input weights N(0, 0.001), recurrent = identity


@register_backbone("rnn")
class RNN(RecurrentBackbone):
    r"""Stacked Elman RNN.

    .. math::
        h_t = \phi(W_{ih} x_t + b_{ih} + W_{hh} h_{t-1} + b_{hh}),\quad \phi \in \{\tanh, \mathrm{ReLU}\}

    The lectures' ``W_xh`` is torch's ``W_ih``; one bias ``b_h`` is ``b_ih + b_hh``.
    ``init="identity"`` with ``nonlinearity="relu"`` is the IRNN (Le et al. 2015):
    W_hh = I, biases 0, W_ih ~ N(0, 0.001^2), so at initialisation the state is
    carried unchanged and gradients neither vanish nor explode through it.

    Args:
        nonlinearity: ``"tanh"`` (bounded state) or ``"relu"``.
        init: as :class:`RecurrentBackbone`, plus ``"identity"``.
        other arguments: see :class:`RecurrentBackbone`.

    Inputs/outputs: x (B, T, D) -> y (B, T, H); state h (num_layers, B, H).
    """

    gates = 1
    state_names = ("h",)
    init_schemes = ("default", "xavier", "orthogonal", "identity")

    def __init__(self, input_size: int, hidden_size: int, *, nonlinearity: str = "tanh", **options) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise OptionError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}{did_you_mean(nonlinearity, ('tanh', 'relu'))}")
        self.nonlinearity = nonlinearity
        self.fused_kernel = torch.rnn_tanh if nonlinearity == "tanh" else torch.rnn_relu
        super().__init__(input_size, hidden_size, **options)

    def reset_parameters(self) -> None:
        if self.init != "identity":
            super().reset_parameters()
            return
        with torch.no_grad():
            for layer in range(self.num_layers):
                w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer)
                nn.init.normal_(w_ih, std=IRNN_INPUT_STD)
                w_hh.copy_(torch.eye(self.hidden_size))
                b_ih.zero_()
                b_hh.zero_()

    def cell(self, gates_x: Tensor, state: tuple[Tensor, ...], layer: int) -> tuple[Tensor, ...]:
        _, w_hh, _, b_hh = self.layer_weights(layer)
        pre = gates_x + F.linear(state[0], w_hh, b_hh)  # (B, H)
        return (torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre),)

    def cell_kernel(self, layer: int) -> tuple[CellKernel, tuple[Tensor, ...]]:
        return ElmanKernel(self.nonlinearity), ()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, nonlinearity={self.nonlinearity!r}"


class ElmanKernel(CellKernel):
    """h_t = phi(r_t) with r_t = W_ih x_t + b_ih + b_hh + h_{t-1} W_hh^T; dL/dr_t = dL/dh_t phi'."""

    def __init__(self, nonlinearity: str) -> None:
        self.nonlinearity = nonlinearity

    def forward_step(self, t: int, recurrent: Tensor, h_previous: Tensor, h: Tensor) -> None:
        if self.nonlinearity == "tanh":
            tanh_into(recurrent, h)
        else:
            torch.clamp_min(recurrent, 0.0, out=h)

    def begin_backward(self, h0: Tensor, y: Tensor, recurrent_gradient: Tensor) -> None:
        # both slopes read from h_t alone: tanh' = 1 - h^2, relu' = [h > 0] (0 at the kink, as torch)
        slope = one_minus_square(y) if self.nonlinearity == "tanh" else (y > 0).to(y.dtype)
        self.slope_steps = slope.unbind(0)
        self.recurrent_gradient_steps = recurrent_gradient.unbind(0)

    def backward_step(self, t: int, h_gradient: Tensor, extra_gradients: list[Tensor]) -> bool:
        torch.mul(h_gradient, self.slope_steps[t], out=self.recurrent_gradient_steps[t])
        return False

