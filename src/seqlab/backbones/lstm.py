"""The LSTM (Hochreiter & Schmidhuber 1997) and its variants."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..registry import register_backbone
from .recurrent import CellKernel, RecurrentBackbone

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

    def cell_kernel(self, layer: int) -> tuple[CellKernel, tuple[Tensor, ...]]:
        if self.variant == "peephole":
            return PeepholeKernel(), (getattr(self, f"weight_ch_l{layer}"),)
        return KERNELS[self.variant](), ()

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, variant={self.variant!r}, forget_bias={self.forget_bias}"


def sigmoid_slope(gate: Tensor) -> Tensor:
    """d sigmoid(a) / da from s = sigmoid(a): s (1 - s)."""
    return gate - gate * gate


def tanh_slope(value: Tensor) -> Tensor:
    """d tanh(a) / da from v = tanh(a): 1 - v^2."""
    return 1.0 - value * value


class LSTMKernel(CellKernel):
    """The gate arithmetic shared by every LSTM variant; subclasses supply the cell update.

    Gate blocks: sigmoid gates first, then the candidate C~ (tanh), the output
    gate o last, so one kernel covers (i, f, g, o), (f, g, o) and (i, g, o).
    The backward pass uses dL/da_o = dL/dh_t * tanh(c_t) o' and, for every
    other block k, dL/da_k = dL/dc_t * F_k with F_k = dc_t/da_k, precomputed
    for all steps; dL/dc_{t-1} = dL/dc_t * f_t, or dL/dc_t where there is no
    forget gate.
    """

    extra_states = 1
    forget_block: int | None = None  # which block's activation multiplies c_{t-1}

    def begin(self, gates_x: Tensor, extras: tuple[Tensor, ...], parameters: tuple[Tensor, ...]) -> None:
        time_steps, batch, gate_width = gates_x.shape
        (c0,) = extras
        self.hidden = c0.shape[-1]
        self.blocks = gate_width // self.hidden
        self.candidate_start = (self.blocks - 2) * self.hidden
        self.output_start = self.candidate_start + self.hidden
        self.gates = gates_x.new_empty(time_steps, batch, gate_width)  # activations, for the backward pass
        self.cell = gates_x.new_empty(time_steps + 1, batch, self.hidden)  # c_0 .. c_T
        self.cell[0].copy_(c0)
        self.tanh_cell = gates_x.new_empty(time_steps, batch, self.hidden)

    def forward_step(self, t: int, recurrent: Tensor, h_previous: Tensor, h: Tensor) -> None:
        candidate_start, output_start = self.candidate_start, self.output_start
        c_previous, c = self.cell[t], self.cell[t + 1]
        gates = self.gates[t]
        self.before_activation(recurrent.view(-1, self.blocks, self.hidden), c_previous)
        torch.sigmoid(recurrent[:, :candidate_start], out=gates[:, :candidate_start])
        torch.tanh(recurrent[:, candidate_start:output_start], out=gates[:, candidate_start:output_start])
        self.update_cell(gates.view(-1, self.blocks, self.hidden), c_previous, c)
        output_preactivation = recurrent[:, output_start:]
        self.before_output_gate(output_preactivation, c)
        output_gate = gates[:, output_start:]
        torch.sigmoid(output_preactivation, out=output_gate)
        tanh_c = self.tanh_cell[t]
        torch.tanh(c, out=tanh_c)
        torch.mul(output_gate, tanh_c, out=h)

    def before_activation(self, preactivations: Tensor, c_previous: Tensor) -> None:
        """Peephole hook: the gates (B, G, H) may see c_{t-1} before they are squashed."""

    def before_output_gate(self, output_preactivation: Tensor, c: Tensor) -> None:
        """Peephole hook: the output gate may see c_t."""

    def update_cell(self, gates: Tensor, c_previous: Tensor, c: Tensor) -> None:
        """Write c_t into ``c`` from the activated gates (B, G, H) and c_{t-1}."""
        raise NotImplementedError

    def cell_factors(self, gates: Tensor, c_previous: Tensor, factors: Tensor) -> None:
        """Write dc_t/da_k for the blocks before o into ``factors`` (T, B, G-1, H)."""
        raise NotImplementedError

    def final_extras(self, lengths: Tensor | None) -> tuple[Tensor, ...]:
        if lengths is None:
            return (self.cell[-1].clone(),)
        return (self.cell[lengths, torch.arange(lengths.shape[0], device=lengths.device)],)

    def begin_backward(self, y: Tensor, h0: Tensor) -> None:
        gates = self.gates.unflatten(-1, (self.blocks, self.hidden))  # (T, B, G, H) activations
        output_gate = gates[:, :, -1]
        tanh_c = self.tanh_cell
        self.factors = torch.empty_like(gates)
        torch.mul(tanh_c, sigmoid_slope(output_gate), out=self.factors[:, :, -1])
        self.cell_factors(gates, self.cell[:-1], self.factors[:, :, :-1])
        self.output_through_tanh = output_gate * tanh_slope(tanh_c)  # dh_t/dc_t, (T, B, H)
        self.forget_gates = None if self.forget_block is None else gates[:, :, self.forget_block]

    def backward_step(self, t: int, h_gradient: Tensor, extra_gradients: list[Tensor], recurrent_gradient: Tensor) -> bool:
        (c_gradient,) = extra_gradients
        factors = self.factors[t]  # (B, G, H)
        gradient = recurrent_gradient.view(-1, self.blocks, self.hidden)
        torch.mul(h_gradient, factors[:, -1], out=gradient[:, -1])
        c_gradient.addcmul_(h_gradient, self.output_through_tanh[t])
        self.add_output_peephole(c_gradient, gradient[:, -1])
        torch.mul(c_gradient.unsqueeze(1), factors[:, :-1], out=gradient[:, :-1])
        if self.forget_gates is not None:
            c_gradient.mul_(self.forget_gates[t])
        self.add_gate_peepholes(c_gradient, gradient)
        return False

    def add_output_peephole(self, c_gradient: Tensor, output_gradient: Tensor) -> None:
        """Peephole hook: a_o also depends on c_t."""

    def add_gate_peepholes(self, c_gradient: Tensor, gradient: Tensor) -> None:
        """Peephole hook: a_i and a_f also depend on c_{t-1}."""


class VanillaKernel(LSTMKernel):
    """Blocks (i, f, g, o): c_t = f c_{t-1} + i g."""

    forget_block = 1

    def update_cell(self, gates: Tensor, c_previous: Tensor, c: Tensor) -> None:
        torch.mul(gates[:, 1], c_previous, out=c)
        c.addcmul_(gates[:, 0], gates[:, 2])

    def cell_factors(self, gates: Tensor, c_previous: Tensor, factors: Tensor) -> None:
        input_gate, forget_gate, candidate = gates[:, :, 0], gates[:, :, 1], gates[:, :, 2]
        torch.mul(candidate, sigmoid_slope(input_gate), out=factors[:, :, 0])
        torch.mul(c_previous, sigmoid_slope(forget_gate), out=factors[:, :, 1])
        torch.mul(input_gate, tanh_slope(candidate), out=factors[:, :, 2])


class PeepholeKernel(VanillaKernel):
    """Vanilla plus a_i += p_i c_{t-1}, a_f += p_f c_{t-1}, a_o += p_o c_t; parameters (p,) with p (3, H)."""

    def begin(self, gates_x: Tensor, extras: tuple[Tensor, ...], parameters: tuple[Tensor, ...]) -> None:
        super().begin(gates_x, extras, parameters)
        (self.peephole,) = parameters

    def before_activation(self, preactivations: Tensor, c_previous: Tensor) -> None:
        preactivations[:, :2].addcmul_(c_previous.unsqueeze(1), self.peephole[:2])

    def before_output_gate(self, output_preactivation: Tensor, c: Tensor) -> None:
        output_preactivation.addcmul_(c, self.peephole[2])

    def add_output_peephole(self, c_gradient: Tensor, output_gradient: Tensor) -> None:
        c_gradient.addcmul_(output_gradient, self.peephole[2])

    def add_gate_peepholes(self, c_gradient: Tensor, gradient: Tensor) -> None:
        c_gradient.addcmul_(gradient[:, 0], self.peephole[0])
        c_gradient.addcmul_(gradient[:, 1], self.peephole[1])

    def input_gradients(self, recurrent_gradient: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        gradient = recurrent_gradient.unflatten(-1, (4, self.hidden))  # (T, B, 4, H)
        peephole_gradient = torch.empty_like(self.peephole)
        # p_i and p_f saw c_{t-1}; p_o saw c_t
        torch.sum(gradient[:, :, :2] * self.cell[:-1].unsqueeze(2), dim=(0, 1), out=peephole_gradient[:2])
        torch.sum(gradient[:, :, 3] * self.cell[1:], dim=(0, 1), out=peephole_gradient[2])
        return recurrent_gradient, (peephole_gradient,)


class CoupledKernel(LSTMKernel):
    """Blocks (f, g, o): c_t = f c_{t-1} + (1 - f) g."""

    forget_block = 0

    def update_cell(self, gates: Tensor, c_previous: Tensor, c: Tensor) -> None:
        torch.lerp(gates[:, 1], c_previous, gates[:, 0], out=c)  # g + f (c_{t-1} - g)

    def cell_factors(self, gates: Tensor, c_previous: Tensor, factors: Tensor) -> None:
        forget_gate, candidate = gates[:, :, 0], gates[:, :, 1]
        torch.mul(c_previous - candidate, sigmoid_slope(forget_gate), out=factors[:, :, 0])
        torch.mul(1.0 - forget_gate, tanh_slope(candidate), out=factors[:, :, 1])


class NoForgetKernel(LSTMKernel):
    """Blocks (i, g, o): c_t = c_{t-1} + i g, so dc_t/dc_{t-1} = 1."""

    def update_cell(self, gates: Tensor, c_previous: Tensor, c: Tensor) -> None:
        torch.addcmul(c_previous, gates[:, 0], gates[:, 1], out=c)

    def cell_factors(self, gates: Tensor, c_previous: Tensor, factors: Tensor) -> None:
        input_gate, candidate = gates[:, :, 0], gates[:, :, 1]
        torch.mul(candidate, sigmoid_slope(input_gate), out=factors[:, :, 0])
        torch.mul(input_gate, tanh_slope(candidate), out=factors[:, :, 1])


KERNELS: dict[str, type[LSTMKernel]] = {"vanilla": VanillaKernel, "coupled": CoupledKernel, "no_forget": NoForgetKernel}
