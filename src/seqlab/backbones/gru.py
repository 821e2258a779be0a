"""The gated recurrent unit (Cho et al. 2014), in torch's formulation."""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from ..registry import register_backbone
from .recurrent import CellKernel, RecurrentBackbone, one_minus_square, tanh_into


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
    ``fused=False`` runs this cell in our own traversal; the default picks our
    traversal on CPU float32 (1.5-2x faster than torch's kernel there) and the
    kernel elsewhere (cuDNN on CUDA).

    Inputs/outputs: x (B, T, D) -> y (B, T, H); state h (num_layers, B, H).
    """

    gates = 3
    state_names = ("h",)
    fused_kernel = torch.gru
    own_cell_faster_on_cpu = True

    def cell(self, gates_x: Tensor, state: tuple[Tensor, ...], layer: int) -> tuple[Tensor, ...]:
        (h,) = state
        _, w_hh, _, b_hh = self.layer_weights(layer)
        _, h = self.equations(gates_x, F.linear(h, w_hh, b_hh), h)
        return (h,)

    @staticmethod
    def equations(gates_x: Tensor, gates_h: Tensor, h: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        """The step: W_ih x_t + b_ih and W_hh h_{t-1} + b_hh (..., 3H), h_{t-1} (..., H) -> ({"reset": r,
        "update": z}, h_t), for one step (the cell) or every step at once (the gate diagnostics)."""
        x_r, x_z, x_n = gates_x.chunk(3, dim=-1)
        h_r, h_z, h_n = gates_h.chunk(3, dim=-1)
        reset = torch.sigmoid(x_r + h_r)
        update = torch.sigmoid(x_z + h_z)
        candidate = torch.tanh(x_n + reset * h_n)
        return {"reset": reset, "update": update}, candidate + update * (h - candidate)

    def cell_kernel(self, layer: int) -> tuple[CellKernel, tuple[Tensor, ...]]:
        return GRUKernel(), ()


class GRUKernel(CellKernel):
    """The GRU's gate arithmetic. gates_x = W_ih x_t + b_ih; r_t = b_hh + h_{t-1} W_hh^T
    (blocks r, z, n), kept apart because the reset gate multiplies its n block.

    Backward, with F_n = (1 - z)(1 - n^2): dL/da_n = dL/dh_t F_n on the input side,
    and on the recurrent side dL/dr_t = dL/dh_t * (F_n (W_hn h + b_hn) r', (h_{t-1} - n) z', F_n r)
    for blocks (r, z, n); h_{t-1} also reaches h_t directly, as z h_{t-1}.
    """

    adds_input_to_recurrent = False

    def begin(self, gates_x: Tensor, extras: tuple[Tensor, ...], parameters: tuple[Tensor, ...]) -> None:
        self.hidden = gates_x.shape[-1] // 3
        self.gates_x = gates_x
        # The activations r, z, n overwrite gates_x where they came from, kept for the backward pass.
        self.reset_update = gates_x[:, :, : 2 * self.hidden]
        self.candidate = gates_x[:, :, 2 * self.hidden:]
        self.recurrent_candidates: list[Tensor] = []  # W_hn h_{t-1} + b_hn, one (B, H) per step
        # Per-step views made once: building them inside the loop costs about as much as the small ops they feed.
        self.reset_update_steps = self.reset_update.unbind(0)
        self.candidate_steps = self.candidate.unbind(0)

    def forward_step(self, t: int, recurrent: Tensor, h_previous: Tensor, h: Tensor) -> None:
        reset_update = self.reset_update_steps[t]
        reset_update.add_(recurrent[:, : 2 * self.hidden]).sigmoid_()
        candidate = self.candidate_steps[t]
        recurrent_candidate = recurrent[:, 2 * self.hidden:]
        candidate.addcmul_(reset_update[:, : self.hidden], recurrent_candidate)
        tanh_into(candidate, candidate)
        torch.lerp(candidate, h_previous, reset_update[:, self.hidden:], out=h)  # n + z (h_{t-1} - n)
        self.recurrent_candidates.append(recurrent_candidate)

    def begin_backward(self, h0: Tensor, y: Tensor, recurrent_gradient: Tensor) -> None:
        hidden = self.hidden
        reset, update = self.reset_update[:, :, :hidden], self.reset_update[:, :, hidden:]
        candidate = self.candidate
        candidate_factor = one_minus_square(candidate).mul_(1.0 - update)  # (1 - z)(1 - n^2)
        factors = y.new_empty(*y.shape[:2], 3, hidden)
        recurrent_candidate = torch.stack(self.recurrent_candidates)  # (T, B, H)
        torch.mul(candidate_factor * recurrent_candidate, reset - reset * reset, out=factors[:, :, 0])
        update_slope = update - update * update
        torch.mul(h0 - candidate[0], update_slope[0], out=factors[0, :, 1])  # (h_{t-1} - n) z', with h_{t-1} = h_0 ...
        torch.mul(y[:-1] - candidate[1:], update_slope[1:], out=factors[1:, :, 1])  # ... then the outputs
        torch.mul(candidate_factor, reset, out=factors[:, :, 2])
        self.gates_x_gradient = torch.empty_like(self.gates_x)
        self.factor_steps = factors.unbind(0)
        self.candidate_factor_steps = candidate_factor.unbind(0)
        self.update_steps = update.unbind(0)
        self.candidate_gradient_steps = self.gates_x_gradient[:, :, 2 * hidden:].unbind(0)
        self.recurrent_gradient_steps = recurrent_gradient.unflatten(-1, (3, hidden)).unbind(0)

    def backward_step(self, t: int, h_gradient: Tensor, extra_gradients: list[Tensor]) -> bool:
        torch.mul(h_gradient.unsqueeze(1), self.factor_steps[t], out=self.recurrent_gradient_steps[t])
        torch.mul(h_gradient, self.candidate_factor_steps[t], out=self.candidate_gradient_steps[t])
        h_gradient.mul_(self.update_steps[t])
        return True

    def input_gradients(self, recurrent_gradient: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        split = 2 * self.hidden
        self.gates_x_gradient[:, :, :split].copy_(recurrent_gradient[:, :, :split])  # r and z enter both sides alike
        return self.gates_x_gradient, ()
