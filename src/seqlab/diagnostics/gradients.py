r"""Gradient flow through time and the step Jacobians of a recurrent state.

Backpropagation through time multiplies the gradient by one step Jacobian per
step on its way back:

    dL_T/dh_t = dL_T/dh_T  J_T J_{T-1} ... J_{t+1},    J_k = dh_k/dh_{k-1}

so ||dL_T/dh_t|| shrinks geometrically when the J_k are contractions (tanh with
small weights) and grows when they expand. :func:`gradient_flow` measures
||dL/dh_t|| for every t; :func:`step_jacobian` computes J_t and :func:`jacobian_norms`
measures ||J_t|| along a sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn
from torch.nn import functional as F

from .reading import add_to_last_hidden, flatten_state, is_recurrent, state_parts, unflatten_state

LOSSES = ("last", "sum")


@dataclass
class GradientFlow:
    """||dL/dv_t|| for t = 1 .. T.

    quantity: ``"hidden"``: v_t = h_t, the last layer's hidden state (recurrent backbones);
        ``"embedding"``: v_t = x_t, the input embedding at position t (every other backbone,
        whose state is not one vector per step).
    loss: ``"last"``: L = the cross-entropy at position T alone, so the curve is the
        gradient that travels back through time; ``"sum"``: L = the sum over all positions.
    norms: (T,) Euclidean norms.
    """

    quantity: str
    loss: str
    norms: np.ndarray

    def to_json(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "loss": self.loss, "norms": self.norms.tolist()}


def _loss(logits: Tensor, targets: Tensor, loss: str) -> Tensor:
    """logits (T, V), targets (T,) -> the cross-entropy at the last position, or summed over all."""
    if loss == "last":
        return F.cross_entropy(logits[-1:], targets[-1:])
    return F.cross_entropy(logits, targets, reduction="sum")


def gradient_flow(model: nn.Module, tokens: Tensor, *, loss: str = "last") -> GradientFlow:
    r"""||dL/dh_t|| along a sequence for a recurrent backbone; ||dL/dx_t|| for the others.

    tokens (T + 1,): the model reads tokens[:-1] and predicts tokens[1:].

    Recurrent backbones are stepped through ``step``. h_t reaches the loss by two
    paths, the head at t (y_t = h_t) and the next step (through the state), so a
    zero probe p_t (1, H) is added to both, y_t + p_t and the state's last-layer
    h + p_t; then dL/dp_t = dL/dh_t with both paths, exactly as BPTT's
    dh_from_output + dh_from_next. This needs no change to any backbone.

    Other backbones (Transformer, linear attention, TCN) run ``forward`` once on
    the embeddings x (1, T, E) and report ||dL/dx_t||: how strongly the loss
    depends on the token at each position, the attention analogue of the curve.
    """
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    inputs, targets = tokens[:-1], tokens[1:]
    backbone = model.backbone
    with torch.enable_grad():
        if not is_recurrent(backbone):
            embedded = model.embedding(inputs.unsqueeze(0)).detach().requires_grad_(True)  # (1, T, E)
            hidden, _ = backbone(embedded)  # (1, T, H)
            (gradient,) = torch.autograd.grad(_loss(model.head(hidden[0]), targets, loss), embedded)
            return GradientFlow(quantity="embedding", loss=loss, norms=gradient[0].norm(dim=-1).double().cpu().numpy())
        embedded = model.embedding(inputs)  # (T, E)
        state = backbone.init_state(1)
        probes, logits = [], []
        for t in range(inputs.shape[0]):
            y_t, state = backbone.step(embedded[t:t + 1], state)  # (1, H)
            probe = torch.zeros_like(y_t, requires_grad=True)
            probes.append(probe)
            state = add_to_last_hidden(state, probe)
            logits.append(model.head(y_t + probe)[0])
        gradients = torch.autograd.grad(_loss(torch.stack(logits), targets, loss), probes)
    norms = torch.stack([gradient[0] for gradient in gradients]).norm(dim=-1)  # (T,)
    return GradientFlow(quantity="hidden", loss=loss, norms=norms.double().cpu().numpy())


def step_jacobian(backbone: nn.Module, x_t: Tensor, state: Any) -> Tensor:
    """J_t = ds_t/ds_{t-1}, (S, S), of one step from a batch-1 recurrent ``state`` on input x_t (1, E).

    s is every state tensor of every layer flattened: h for RNN, GRU, minGRU and
    minLSTM, [h; c] for the LSTM, layer 0 first within each, so S = parts * L * H;
    for a one-layer RNN or GRU J_t is dh_t/dh_{t-1}. Row i, column j is ds_t[i]/ds_{t-1}[j].

    A step is row-wise in the batch, so all S rows come from one batched step: S
    copies of s_{t-1}, each row's output dotted with its own unit vector e_i, one
    backward pass. That is ``torch.autograd.functional.jacobian``'s answer for one
    forward and one backward of batch S, and it works for steps built from custom
    autograd functions, which ``vmap`` cannot batch.
    """
    parts = state_parts(state)
    previous = flatten_state(state).detach()  # (1, S)
    size = previous.shape[1]
    with torch.enable_grad():
        copies = previous.expand(size, -1).clone().requires_grad_(True)  # (S, S)
        _, new_state = backbone.step(x_t.expand(size, -1), unflatten_state(copies, parts=len(parts), layers=parts[0].shape[0]))
        selected = (flatten_state(new_state) * torch.eye(size, dtype=copies.dtype, device=copies.device)).sum()
        (rows,) = torch.autograd.grad(selected, copies)  # row i = ds_t[i]/ds_{t-1}
    return rows


def spectral_norm(matrix: Tensor, *, tolerance: float = 1e-12, max_iterations: int = 2000) -> float:
    """||A||_2, the largest singular value, by power iteration on A^T A from a fixed random start.

    sigma^2 = ||A v||^2 for the unit v that maximises it; each iteration v <- A^T A v / ||.||
    brings ||A v|| closer from below, the error in sigma^2 shrinking like (sigma_2/sigma_1)^(2k).
    For S in the thousands this costs milliseconds where an SVD costs seconds.
    """
    matrix = matrix.double().cpu()
    vector = torch.randn(matrix.shape[1], dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    vector /= vector.norm()
    estimate = 0.0
    for _ in range(max_iterations):
        image = matrix @ vector  # (S,)
        previous, estimate = estimate, float(image.norm())
        if estimate == 0.0 or abs(estimate - previous) <= tolerance * estimate:
            break
        vector = matrix.T @ image
        vector /= vector.norm()
    return estimate


@dataclass
class JacobianNorms:
    """Norms of the step Jacobians J_t = ds_t/ds_{t-1} along a sequence (see :func:`step_jacobian`).

    spectral: (T,) ||J_t||_2, the most any direction of the state grows in one step;
        a gradient crossing the step shrinks or grows by at most this factor.
    frobenius: (T,) ||J_t||_F = sqrt(sum of squares), between ||J_t||_2 and sqrt(S) ||J_t||_2.
    state_size: S.
    """

    spectral: np.ndarray
    frobenius: np.ndarray
    state_size: int

    def to_json(self) -> dict[str, Any]:
        return {"state_size": self.state_size, "spectral": self.spectral.tolist(), "frobenius": self.frobenius.tolist()}


def jacobian_norms(backbone: nn.Module, inputs: Tensor, states: list[Any]) -> JacobianNorms:
    """||J_t||_2 and ||J_t||_F at each step of a reading: inputs (T, E), states s_0 .. s_T (batch 1).

    Each J_t is (S, S) and is dropped once measured: keeping all T would cost T S^2 numbers.
    """
    spectral, frobenius = [], []
    for t in range(inputs.shape[0]):
        jacobian = step_jacobian(backbone, inputs[t:t + 1], states[t])
        spectral.append(spectral_norm(jacobian))
        frobenius.append(float(jacobian.double().norm()))
    return JacobianNorms(spectral=np.array(spectral), frobenius=np.array(frobenius), state_size=flatten_state(states[0]).shape[1])


def plot_gradient_flow(flows: list[GradientFlow], path: Path) -> None:
    """One log-scale curve per loss: ||dL/dv_t|| against t."""
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.add_subplot()
    for flow in flows:
        positions = np.arange(1, len(flow.norms) + 1)
        label = "L = loss at the last position" if flow.loss == "last" else "L = loss summed over positions"
        axes.plot(positions, np.maximum(flow.norms, 1e-30), marker=".", label=label)  # log axes cannot show an exact 0
    symbol = "h_t" if flows[0].quantity == "hidden" else "x_t"
    axes.set_yscale("log")
    axes.set_xlabel("position t")
    axes.set_ylabel(f"||dL/d{symbol}||")
    axes.set_title("gradient flow through time" if flows[0].quantity == "hidden" else "gradient at each input embedding")
    axes.legend()
    figure.savefig(path, dpi=110)


def plot_jacobians(result: JacobianNorms, path: Path) -> None:
    """Spectral and Frobenius norms of J_t against t, with the line ||J|| = 1 where gradients neither shrink nor grow."""
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.add_subplot()
    positions = np.arange(1, len(result.spectral) + 1)
    axes.plot(positions, result.spectral, marker=".", label="spectral ||J_t||_2")
    axes.plot(positions, result.frobenius, marker=".", alpha=0.6, label="Frobenius ||J_t||_F")
    axes.axhline(1.0, color="grey", linestyle="--", linewidth=1)
    axes.set_xlabel("position t")
    axes.set_ylabel("norm of ds_t/ds_{t-1}")
    axes.set_title(f"step Jacobians of the state (S = {result.state_size})")
    axes.legend()
    figure.savefig(path, dpi=110)
