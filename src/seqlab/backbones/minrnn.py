r"""minGRU and minLSTM (Feng et al. 2024, "Were RNNs All We Needed?").

Take the GRU and the LSTM, and let the gates and the candidate read x_t only,
never h_{t-1}. Then every step is an elementwise affine map of the state,

    h_t = a_t * h_{t-1} + b_t,    (a_t, b_t) functions of x_t alone,

so a whole sequence is one matrix product for all (a_t, b_t) at once and one
parallel scan (``scan.linear_scan``) instead of T dependent steps; ``step`` runs
the same recurrence one position at a time, which is all generation needs.
Depth is what lets the gates see the past: layer k reads layer k-1's states.

Nearly all of the arithmetic is the input projection, so on a CPU in float32
its three products (u, dL/dx, dL/dW) run on oneDNN (``PositionwiseLinear``);
each model's gate arithmetic is one autograd function with a hand-written
backward pass (``MinGRUCoefficients``, ``MinLSTMCoefficients``), a few memory
passes each way; the scan's backward is the reverse scan. benchmarks/bench_scan.py
times the result against ``nn.GRU``.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.autograd.function import once_differentiable
from torch.nn import functional as F

from ..registry import register_backbone
from .base import Backbone, State, check_lengths, lengths_mask
from .recurrent import check_initial_state, linear, register_initial_state, uses_onednn
from .scan import linear_scan


def positive_activation(x: Tensor) -> Tensor:
    r"""The paper's g: x + 1/2 for x >= 0, sigmoid(x) below; continuous, positive, linear for large x.

    Computed as max(x + 1/2, sigmoid(x)), the same function (the two meet at
    x = 0 and x + 1/2 rises faster on both sides) in three cheap passes;
    ``torch.where`` measured several times slower on CPU. Keeping the candidate
    positive is what lets the paper run the scan in log space; our scan does
    not need it, but the models keep the paper's equations.
    """
    return torch.maximum(torch.sigmoid(x), x + 0.5)


def positive_activation_slope(x: Tensor, activated: Tensor) -> Tensor:
    """g'(x) from x and g(x): g (1 - g) = sigmoid'(x) where x < 0, and 1 where x >= 0.

    There g >= 1/2, so g (1 - g) <= 1/4 and max(g (1 - g), [x >= 0]) picks the branch
    in three passes, no ``torch.where``.
    """
    slope = torch.addcmul(activated, activated, activated, value=-1.0)  # g - g^2
    nonnegative = torch.ge(x, 0.0, out=torch.empty_like(slope))  # 1.0 / 0.0 in the slope's dtype
    return torch.maximum(slope, nonnegative, out=slope)


class MinGRUCoefficients(torch.autograd.Function):
    """(a, b) = (1 - z, z g(c)) from u = (z logits, c), with a hand-written backward pass.

    Autograd would record eight elementwise nodes and a concatenation; this
    is a few passes each way. With z = sigmoid(u_z):
    dL/du_z = (dL/db g(c) - dL/da) z (1 - z),  dL/du_c = dL/db z g'(c).
    """

    @staticmethod
    def forward(ctx, projected: Tensor) -> tuple[Tensor, Tensor]:
        gate, candidate = projected.chunk(2, dim=-1)  # (..., H) each
        update = torch.sigmoid(gate)
        activated = positive_activation(candidate)
        ctx.save_for_backward(candidate, update, activated)
        return torch.rsub(update, 1.0), update * activated

    @staticmethod
    @once_differentiable
    def backward(ctx, a_gradient: Tensor, b_gradient: Tensor) -> Tensor:
        candidate, update, activated = ctx.saved_tensors
        projected_gradient = b_gradient.new_empty(*update.shape[:-1], 2 * update.shape[-1])  # (..., 2H)
        gate_gradient, candidate_gradient = projected_gradient.chunk(2, dim=-1)
        # dL/du_z = -(dL/da - dL/db g) z (1 - z): sigmoid's own backward kernel, then the sign
        negated_update_gradient = torch.addcmul(a_gradient, b_gradient, activated, value=-1.0)
        torch.ops.aten.sigmoid_backward.grad_input(negated_update_gradient, update, grad_input=gate_gradient).neg_()
        torch.mul(b_gradient, update, out=candidate_gradient).mul_(positive_activation_slope(candidate, activated))
        return projected_gradient


class MinLSTMCoefficients(torch.autograd.Function):
    """(a, b) = (f', i' g(c)) from u = (f logits, i logits, c), with a hand-written backward pass.

    f = sigmoid(u_f), i = sigmoid(u_i), f' = f / (f + i), i' = 1 - f'. The sum
    f + i is floored at the smallest normal float: it only reaches it when
    both logits are below about -87 (float32), where f / (f + i) is 0/0.
    Backward, with d = log f - log i so that f' = sigmoid(d):
    dL/dd = (dL/da - dL/db g(c)) f' i', dL/du_f = dL/dd (1 - f),
    dL/du_i = -dL/dd (1 - i), dL/du_c = dL/db i' g'(c).
    """

    @staticmethod
    def forward(ctx, projected: Tensor) -> tuple[Tensor, Tensor]:
        forget_gate, input_gate, candidate = projected.chunk(3, dim=-1)  # (..., H) each
        forget_raw = torch.sigmoid(forget_gate)  # f
        input_raw = torch.sigmoid(input_gate)  # i
        total = torch.add(forget_raw, input_raw).clamp_(min=torch.finfo(projected.dtype).tiny)
        forget = torch.div(forget_raw, total)  # f'
        remember = torch.rsub(forget, 1.0)  # i'
        activated = positive_activation(candidate)
        ctx.save_for_backward(candidate, forget_raw, input_raw, forget, remember, activated)
        return forget, remember * activated

    @staticmethod
    @once_differentiable
    def backward(ctx, a_gradient: Tensor, b_gradient: Tensor) -> Tensor:
        candidate, forget_raw, input_raw, forget, remember, activated = ctx.saved_tensors
        projected_gradient = b_gradient.new_empty(*forget.shape[:-1], 3 * forget.shape[-1])  # (..., 3H)
        forget_gate_gradient, input_gate_gradient, candidate_gradient = projected_gradient.chunk(3, dim=-1)
        ratio_gradient = torch.addcmul(a_gradient, b_gradient, activated, value=-1.0)
        torch.ops.aten.sigmoid_backward.grad_input(ratio_gradient, forget, grad_input=ratio_gradient)  # times f' i'
        torch.addcmul(ratio_gradient, ratio_gradient, forget_raw, value=-1.0, out=forget_gate_gradient)
        torch.mul(ratio_gradient, input_raw, out=input_gate_gradient).sub_(ratio_gradient)
        torch.mul(b_gradient, remember, out=candidate_gradient).mul_(positive_activation_slope(candidate, activated))
        return projected_gradient


class PositionwiseLinear(torch.autograd.Function):
    """u = x W^T + c for every position at once, with all three products on oneDNN.

    The products are nearly all of a minimal RNN's arithmetic. On a CPU in
    float32 ``recurrent.linear`` runs them on oneDNN, which the BLAS behind
    F.linear's own backward does not use; elsewhere it is F.linear. Backward:
    dL/dx = dL/du W, dL/dc = the column sums of dL/du, and
    dL/dW = (x^T dL/du)^T: oneDNN reads the wide dL/du through a transposed
    view at no extra cost, so only x^T is copied out, never (dL/du)^T.
    """

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
        rows = x.reshape(-1, x.shape[-1])  # (N, D)
        ctx.save_for_backward(rows, weight)
        ctx.input_shape = x.shape
        return linear(rows, weight, bias=bias).view(*x.shape[:-1], weight.shape[0])  # (..., M)

    @staticmethod
    @once_differentiable
    def backward(ctx, projected_gradient: Tensor) -> tuple[Tensor | None, Tensor, Tensor]:
        rows, weight = ctx.saved_tensors
        gradient_rows = projected_gradient.reshape(-1, weight.shape[0])  # (N, M)
        x_gradient = None
        if ctx.needs_input_grad[0]:
            x_gradient = linear(gradient_rows, weight.t().contiguous()).view(ctx.input_shape)
        weight_gradient = linear(rows.t().contiguous(), gradient_rows.t()).t().contiguous()  # (M, D)
        return x_gradient, weight_gradient, gradient_rows.sum(0)


def project(projection: nn.Linear, x: Tensor) -> Tensor:
    """projection(x), through ``PositionwiseLinear`` where that reaches oneDNN."""
    if uses_onednn(x):
        return PositionwiseLinear.apply(x, projection.weight, projection.bias)
    return projection(x)


class MinimalRecurrentBackbone(Backbone):
    r"""A stack of minimal recurrent layers: h^k_t = a^k_t * h^k_{t-1} + b^k_t, (a^k_t, b^k_t) from h^{k-1}_t.

    Layer k projects its input once, u = W_k h^{k-1}_t + c_k with
    W_k: (G*H, D_k), and a subclass turns u into (a_t, b_t) in
    ``coefficients``; h^0_t = x_t. ``forward`` runs the projection for every
    position in one product and the recurrence by parallel scan; ``step`` runs
    the recurrence directly. The output is the last layer's h_t. A plain stack,
    as the paper's minimal models are: no residual, norm or MLP between layers.

    Args:
        input_size: D, features per position.
        hidden_size: H.
        num_layers: stacked layers; layer k > 0 reads layer k-1's h_t.
        dropout: dropout on the outputs of every layer but the last (training only).
        initial_state: ``"zeros"``; ``"random"`` (drawn once, saved with the model,
            never trained); ``"learned"`` (a parameter trained with the rest).

    Inputs/outputs: x (B, T, D) -> y (B, T, H); state h (num_layers, B, H).
    With ``lengths``, steps past a sequence's length are identity steps
    (a = 1, b = 0), so the final state is the state at its own last position,
    and padded outputs are zero.
    """

    gates: int = 1  # H-wide blocks of the projection

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        dropout: float = 0.0,
        initial_state: str = "zeros",
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers=num_layers, dropout=dropout)
        check_initial_state(initial_state)
        self.initial_state = initial_state
        self.projections = nn.ModuleList(
            nn.Linear(input_size if layer == 0 else hidden_size, self.gates * hidden_size) for layer in range(num_layers)
        )
        shape = (num_layers, 1, hidden_size)
        register_initial_state(self, initial_state, shape)

    def coefficients(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        """(..., G*H) projected input -> (a, b), (..., H) each."""
        raise NotImplementedError

    def init_state(self, batch_size: int) -> State:
        weight = self.projections[0].weight
        if self.initial_state == "zeros":
            return torch.zeros(self.num_layers, batch_size, self.hidden_size, device=weight.device, dtype=weight.dtype)
        return self.initial_hidden.expand(-1, batch_size, -1)  # (num_layers, B, H)

    def forward(self, x: Tensor, state: State = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        """x (B, T, D) -> y (B, T, H) = the last layer's h_t, and the final state (num_layers, B, H)."""
        batch, time_steps, _ = x.shape
        hidden = self.init_state(batch) if state is None else state  # (num_layers, B, H)
        padding = None
        if lengths is not None:
            lengths = check_lengths(lengths, batch, time_steps).to(x.device)
            if not bool((lengths == time_steps).all()):
                padding = ~lengths_mask(lengths, time_steps).unsqueeze(-1)  # (B, T, 1)
        layer_input = x
        finals = []
        for layer, projection in enumerate(self.projections):
            a, b = self.coefficients(project(projection, layer_input))  # (B, T, H) each
            if padding is not None:
                a = a.masked_fill(padding, 1.0)
                b = b.masked_fill(padding, 0.0)
            h = linear_scan(a, b, hidden[layer])  # (B, T, H)
            finals.append(h[:, -1])
            if padding is not None:
                h = h.masked_fill(padding, 0.0)
            layer_input = self._between_layers(h, layer)
        return layer_input, torch.stack(finals)

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        """x_t (B, D) -> y_t (B, H), the new state (num_layers, B, H)."""
        layer_input = x_t
        new_hidden = []
        for layer, projection in enumerate(self.projections):
            a, b = self.coefficients(projection(layer_input))  # (B, H) each
            h = torch.addcmul(b, a, state[layer])
            new_hidden.append(h)
            layer_input = self._between_layers(h, layer)
        return layer_input, torch.stack(new_hidden)

    def _between_layers(self, h: Tensor, layer: int) -> Tensor:
        if layer < self.num_layers - 1 and self.dropout > 0:
            return F.dropout(h, self.dropout, self.training)
        return h

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, initial_state={self.initial_state!r}"


@register_backbone("mingru")
class MinGRU(MinimalRecurrentBackbone):
    r"""minGRU: the GRU with gates that read the input only, and no reset gate.

    .. math::
        z_t &= \sigma(W_z x_t + b_z) \\
        \tilde h_t &= g(W_h x_t + b_h) \\
        h_t &= (1 - z_t) \odot h_{t-1} + z_t \odot \tilde h_t

    with the paper's positive activation g(v) = v + 1/2 for v >= 0, sigmoid(v)
    otherwise. As a scan: a_t = 1 - z_t, b_t = z_t g(W_h x_t + b_h). The
    projection of layer k is ``projections[k]``, blocks (z, h), (2H, D_k).
    See ``MinimalRecurrentBackbone`` for the stack, the options and the state.
    """

    gates = 2

    def coefficients(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        return MinGRUCoefficients.apply(projected)


@register_backbone("minlstm")
class MinLSTM(MinimalRecurrentBackbone):
    r"""minLSTM: the LSTM with gates that read the input only, no output gate, and
    forget and input gates normalised to sum to one (so the state stays on the
    scale of the candidates, independent of time).

    .. math::
        f_t &= \sigma(W_f x_t + b_f), \quad i_t = \sigma(W_i x_t + b_i) \\
        f'_t &= f_t / (f_t + i_t), \quad i'_t = i_t / (f_t + i_t) \\
        h_t &= f'_t \odot h_{t-1} + i'_t \odot g(W_h x_t + b_h)

    with g as in minGRU, and i'_t computed as 1 - f'_t. As a scan: a_t = f'_t,
    b_t = i'_t g(...). The projection of layer k is ``projections[k]``, blocks
    (f, i, h), (3H, D_k).
    See ``MinimalRecurrentBackbone`` for the stack, the options and the state.
    """

    gates = 3

    def coefficients(self, projected: Tensor) -> tuple[Tensor, Tensor]:
        return MinLSTMCoefficients.apply(projected)
