"""The LSTM (Hochreiter & Schmidhuber 1997) and its variants."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import OptionError, did_you_mean
from ..registry import register_backbone
from .recurrent import ONE, CellKernel, RecurrentBackbone, one_minus_square, tanh_into

VARIANTS = ("vanilla", "peephole", "coupled", "no_forget")
GATE_COUNT = {"vanilla": 4, "peephole": 4, "coupled": 3, "no_forget": 3}


def lstm_equations(a_i: Tensor, a_f: Tensor, a_g: Tensor, a_o: Tensor, c: Tensor, *,
                   peepholes: tuple[Tensor, Tensor, Tensor] | None = None) -> tuple[dict[str, Tensor], Tensor, Tensor]:
    r"""The LSTM cell with a forget gate, on preactivation blocks of any one shape (vectors or feature maps):

    .. math::
        i = \sigma(a_i + p_i c_{t-1}),\ f = \sigma(a_f + p_f c_{t-1}),\
        c_t = f c_{t-1} + i \tanh(a_g),\ o = \sigma(a_o + p_o c_t),\ h_t = o \tanh(c_t)

    with the peephole weights (p_i, p_f, p_o) broadcast against c, or none. The LSTM's cells and the ConvLSTM's
    run these equations, and the gate diagnostics read their gates, so they are written here once.
    Returns ({"input": i, "forget": f, "output": o}, c_t, h_t).
    """
    if peepholes is not None:
        p_i, p_f, p_o = peepholes
        a_i, a_f = a_i + p_i * c, a_f + p_f * c
    forget, input_gate = torch.sigmoid(a_f), torch.sigmoid(a_i)
    c = forget * c + input_gate * torch.tanh(a_g)
    if peepholes is not None:
        a_o = a_o + p_o * c
    output = torch.sigmoid(a_o)
    return {"input": input_gate, "forget": forget, "output": output}, c, output * torch.tanh(c)


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
            raise OptionError(f"variant must be one of {', '.join(VARIANTS)}, got {variant!r}{did_you_mean(variant, VARIANTS)}")
        if variant == "no_forget" and forget_bias is not None:
            raise OptionError("variant 'no_forget' has no forget gate, so forget_bias does not apply")
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
        _, c, h = self.equations(gates_x + F.linear(h, w_hh, b_hh), c, layer)  # preactivations (B, G*H)
        return h, c

    def equations(self, preactivations: Tensor, c: Tensor, layer: int) -> tuple[dict[str, Tensor], Tensor, Tensor]:
        """The variant's step: a_t (..., G*H) and c_{t-1} (..., H) -> (its gates by name, c_t, h_t), for one step
        (the cell) or for every step at once (the gate diagnostics, given each step's a_t and c_{t-1})."""
        if self.variant in ("vanilla", "peephole"):
            peepholes = tuple(getattr(self, f"weight_ch_l{layer}")) if self.variant == "peephole" else None
            return lstm_equations(*preactivations.chunk(4, dim=-1), c, peepholes=peepholes)
        if self.variant == "coupled":
            a_f, a_g, a_o = preactivations.chunk(3, dim=-1)
            forget = torch.sigmoid(a_f)
            candidate = torch.tanh(a_g)
            c = candidate + forget * (c - candidate)  # f * c + (1 - f) * C~
            output = torch.sigmoid(a_o)
            return {"input": 1.0 - forget, "forget": forget, "output": output}, c, output * torch.tanh(c)
        a_i, a_g, a_o = preactivations.chunk(3, dim=-1)  # no_forget
        input_gate, output = torch.sigmoid(a_i), torch.sigmoid(a_o)
        c = c + input_gate * torch.tanh(a_g)
        return {"input": input_gate, "output": output}, c, output * torch.tanh(c)

    def cell_kernel(self, layer: int) -> tuple[CellKernel, tuple[Tensor, ...]]:
        parameters = (getattr(self, f"weight_ch_l{layer}"),) if self.variant == "peephole" else ()
        return KERNELS[self.variant](), parameters

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, variant={self.variant!r}, forget_bias={self.forget_bias}"


class LSTMKernel(CellKernel):
    """The gate arithmetic shared by every LSTM variant; subclasses supply the cell update.

    Gate blocks: sigmoid gates first, then the candidate C~ = tanh(a_g), the
    output gate o last, so one kernel covers (i, f, g, o), (f, g, o) and
    (i, g, o). One sigmoid pass squashes every block: tanh(a) = 2 sigmoid(2a) - 1.

    Backward, with every factor precomputed for all steps so that a reverse
    step is four elementwise ops: dL/da_o = dL/dh_t * tanh(c_t) o';
    dL/dc_t gains dL/dh_t * through_t (through_t = o (1 - tanh^2 c_t));
    dL/da_k = dL/dc_t * F_k, F_k = dc_t/da_k, for every other block k; and
    dL/dc_{t-1} = dL/dc_t * carry_t (carry_t = f_t, or 1 without a forget gate).
    """

    extra_states = 1
    forget_block: int | None = None  # which block's activation multiplies c_{t-1}
    output_sees_cell = False  # the peephole's o_t reads c_t, so it is squashed after the cell update

    def begin(self, gates_x: Tensor, extras: tuple[Tensor, ...], parameters: tuple[Tensor, ...]) -> None:
        time_steps, batch, gate_width = gates_x.shape
        (c0,) = extras
        self.hidden = c0.shape[-1]
        self.blocks = gate_width // self.hidden
        self.candidate = slice((self.blocks - 2) * self.hidden, (self.blocks - 1) * self.hidden)
        self.squashed_first = slice(0, self.candidate.stop if self.output_sees_cell else gate_width)
        # The activations, kept for the backward pass, overwrite gates_x: step t's part is spent once r_t exists.
        self.gates = gates_x
        self.cell = gates_x.new_empty(time_steps + 1, batch, self.hidden)  # c_0 .. c_T
        self.cell[0].copy_(c0)
        self.tanh_cell = gates_x.new_empty(time_steps, batch, self.hidden)
        # Per-step views made once: building them inside the loop costs about as much as the small ops they feed.
        blocks = self.gates.unflatten(-1, (self.blocks, self.hidden))  # (T, B, G, H)
        self.block_steps = [blocks[:, :, block].unbind(0) for block in range(self.blocks)]
        self.squashed_first_steps = self.gates[:, :, self.squashed_first].unbind(0)
        self.cell_steps = self.cell.unbind(0)
        self.tanh_cell_steps = self.tanh_cell.unbind(0)

    def forward_step(self, t: int, recurrent: Tensor, h_previous: Tensor, h: Tensor) -> None:
        c_previous, c = self.cell_steps[t], self.cell_steps[t + 1]
        gates = [steps[t] for steps in self.block_steps]  # (B, H) each
        self.before_activation(recurrent, c_previous)
        candidate_preactivation = recurrent[:, self.candidate]
        candidate_preactivation.add_(candidate_preactivation)
        torch.sigmoid(recurrent[:, self.squashed_first], out=self.squashed_first_steps[t])
        gates[-2].add_(gates[-2]).sub_(ONE)
        self.update_cell(gates, c_previous, c)
        if self.output_sees_cell:
            output_preactivation = recurrent[:, self.candidate.stop:]
            self.before_output_gate(output_preactivation, c)
            torch.sigmoid(output_preactivation, out=gates[-1])
        tanh_c = self.tanh_cell_steps[t]
        tanh_into(c, tanh_c)
        torch.mul(gates[-1], tanh_c, out=h)

    def before_activation(self, preactivations: Tensor, c_previous: Tensor) -> None:
        """Peephole hook: the gates' pre-activations (B, G*H) may see c_{t-1} before they are squashed."""

    def before_output_gate(self, output_preactivation: Tensor, c: Tensor) -> None:
        """Peephole hook: the output gate may see c_t."""

    def update_cell(self, gates: list[Tensor], c_previous: Tensor, c: Tensor) -> None:
        """Write c_t into ``c`` from the activated gates, (B, H) each, and c_{t-1}."""
        raise NotImplementedError

    def cell_factors(self, gates: Tensor, c_previous: Tensor, factors: Tensor) -> None:
        """Turn ``factors`` (T, B, G-1, H), which holds each block's activation slope, into dc_t/da_k in place."""
        raise NotImplementedError

    def final_extras(self, lengths: Tensor | None) -> tuple[Tensor, ...]:
        if lengths is None:
            return (self.cell[-1].clone(),)
        return (self.cell[lengths, torch.arange(lengths.shape[0], device=lengths.device)],)

    def begin_backward(self, h0: Tensor, y: Tensor, recurrent_gradient: Tensor) -> None:
        gates = self.gates.unflatten(-1, (self.blocks, self.hidden))  # (T, B, G, H) activations
        output_gate, candidate = gates[:, :, -1], gates[:, :, -2]
        tanh_c = self.tanh_cell
        factors = torch.addcmul(gates, gates, gates, value=-1.0)  # s (1 - s): the sigmoid blocks' slopes
        one_minus_square(candidate, out=factors[:, :, -2])  # the candidate's slope: 1 - g^2
        self.cell_factors(gates, self.cell[:-1], factors[:, :, :-1])
        factors[:, :, -1].mul_(tanh_c)
        # dL/dc_t = (what reaches it from c_{t+1}) + dL/dh_t * through_t, and dL/dc_{t-1} = dL/dc_t * carry_t
        through = one_minus_square(tanh_c).mul_(output_gate)  # dh_t/dc_t = o (1 - tanh^2 c_t)
        carry = None if self.forget_block is None else gates[:, :, self.forget_block]  # dc_t/dc_{t-1} = f
        through, carry = self.cell_paths(factors, through, carry)
        gradient = recurrent_gradient.unflatten(-1, (self.blocks, self.hidden))
        self.output_factor_steps = factors[:, :, -1].unbind(0)
        self.cell_factor_steps = factors[:, :, :-1].unbind(0)
        self.through_steps = through.unbind(0)
        self.carry_steps = None if carry is None else carry.unbind(0)
        self.output_gradient_steps = gradient[:, :, -1].unbind(0)
        self.cell_gradient_steps = gradient[:, :, :-1].unbind(0)

    def cell_paths(self, factors: Tensor, through: Tensor, carry: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """Peephole hook: further paths from c to the gates, folded into through_t and carry_t (T, B, H)."""
        return through, carry

    def backward_step(self, t: int, h_gradient: Tensor, extra_gradients: list[Tensor]) -> bool:
        (c_gradient,) = extra_gradients
        torch.mul(h_gradient, self.output_factor_steps[t], out=self.output_gradient_steps[t])
        c_gradient.addcmul_(h_gradient, self.through_steps[t])
        torch.mul(c_gradient.unsqueeze(1), self.cell_factor_steps[t], out=self.cell_gradient_steps[t])
        if self.carry_steps is not None:
            c_gradient.mul_(self.carry_steps[t])
        return False


class VanillaKernel(LSTMKernel):
    """Blocks (i, f, g, o): c_t = f c_{t-1} + i g."""

    forget_block = 1

    def update_cell(self, gates: list[Tensor], c_previous: Tensor, c: Tensor) -> None:
        input_gate, forget_gate, candidate, _ = gates
        torch.mul(forget_gate, c_previous, out=c)
        c.addcmul_(input_gate, candidate)

    def cell_factors(self, gates: Tensor, c_previous: Tensor, factors: Tensor) -> None:
        factors[:, :, 0].mul_(gates[:, :, 2])  # dc/da_i = g i'
        factors[:, :, 1].mul_(c_previous)  # dc/da_f = c_{t-1} f'
        factors[:, :, 2].mul_(gates[:, :, 0])  # dc/da_g = i g'


class PeepholeKernel(VanillaKernel):
    """Vanilla plus a_i += p_i c_{t-1}, a_f += p_f c_{t-1}, a_o += p_o c_t; parameters (p,) with p (3, H)."""

    output_sees_cell = True

    def begin(self, gates_x: Tensor, extras: tuple[Tensor, ...], parameters: tuple[Tensor, ...]) -> None:
        super().begin(gates_x, extras, parameters)
        (self.peephole,) = parameters
        self.gate_peepholes, self.output_peephole = self.peephole[:2], self.peephole[2]  # (2, H), (H,)

    def before_activation(self, preactivations: Tensor, c_previous: Tensor) -> None:
        preactivations.view(-1, 4, self.hidden)[:, :2].addcmul_(c_previous.unsqueeze(1), self.gate_peepholes)

    def before_output_gate(self, output_preactivation: Tensor, c: Tensor) -> None:
        output_preactivation.addcmul_(c, self.output_peephole)

    def cell_paths(self, factors: Tensor, through: Tensor, carry: Tensor | None) -> tuple[Tensor, Tensor | None]:
        # c_t reaches h_t also through a_o (dh/da_o p_o); c_{t-1} reaches c_t also through a_i and a_f
        p_i, p_f, p_o = self.peephole
        through.addcmul_(factors[:, :, 3], p_o)
        carry = torch.addcmul(carry, factors[:, :, 0], p_i).addcmul_(factors[:, :, 1], p_f)
        return through, carry

    def input_gradients(self, recurrent_gradient: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        rows = recurrent_gradient.shape[0] * recurrent_gradient.shape[1]
        gradient = recurrent_gradient.view(rows, 4, self.hidden)
        c_previous, c = self.cell[:-1].reshape(rows, -1), self.cell[1:].reshape(rows, -1)
        # p_i and p_f saw c_{t-1}, p_o saw c_t: each gradient is a dot product over all T*B rows
        peephole_gradient = torch.stack([
            torch.linalg.vecdot(gradient[:, 0], c_previous, dim=0),
            torch.linalg.vecdot(gradient[:, 1], c_previous, dim=0),
            torch.linalg.vecdot(gradient[:, 3], c, dim=0),
        ])
        return recurrent_gradient, (peephole_gradient,)


class CoupledKernel(LSTMKernel):
    """Blocks (f, g, o): c_t = f c_{t-1} + (1 - f) g."""

    forget_block = 0

    def update_cell(self, gates: list[Tensor], c_previous: Tensor, c: Tensor) -> None:
        forget_gate, candidate, _ = gates
        torch.lerp(candidate, c_previous, forget_gate, out=c)  # g + f (c_{t-1} - g)

    def cell_factors(self, gates: Tensor, c_previous: Tensor, factors: Tensor) -> None:
        forget_gate, candidate = gates[:, :, 0], gates[:, :, 1]
        factors[:, :, 0].mul_(c_previous - candidate)  # dc/da_f = (c_{t-1} - g) f'
        factors[:, :, 1].mul_(1.0 - forget_gate)  # dc/da_g = (1 - f) g'


class NoForgetKernel(LSTMKernel):
    """Blocks (i, g, o): c_t = c_{t-1} + i g, so dc_t/dc_{t-1} = 1."""

    def update_cell(self, gates: list[Tensor], c_previous: Tensor, c: Tensor) -> None:
        input_gate, candidate, _ = gates
        torch.addcmul(c_previous, input_gate, candidate, out=c)

    def cell_factors(self, gates: Tensor, c_previous: Tensor, factors: Tensor) -> None:
        factors[:, :, 0].mul_(gates[:, :, 1])  # dc/da_i = g i'
        factors[:, :, 1].mul_(gates[:, :, 0])  # dc/da_g = i g'


KERNELS: dict[str, type[LSTMKernel]] = {
    "vanilla": VanillaKernel, "peephole": PeepholeKernel, "coupled": CoupledKernel, "no_forget": NoForgetKernel,
}
