r"""The vanilla (Elman) RNN with a softmax output, forward and hand-derived BPTT in NumPy.

Forward, for t = 1 .. T (torch's names; the lectures' W_xh is W_ih and their
single bias b_h is b_ih + b_hh):

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        (H,)
    h_t = phi(a_t)                                      phi: tanh, relu or identity
    z_t = W_hy h_t + b_hy,  p_t = softmax(z_t)
    L   = sum over scored t of -log p_t[y_t]

Unfolded over T steps this is a T-layer feed-forward network whose layers all
use the same W_ih, W_hh and W_hy; backpropagation through time is the chain
rule on that unfolded graph (derived in :func:`backward`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .common import (
    LossAt,
    Parameters,
    as_sequence,
    init_recurrent_params,
    logit_gradients,
    output_loss,
    scored_steps,
)

ACTIVATIONS: tuple[str, ...] = ("tanh", "relu", "identity")


@dataclass
class RNNCache:
    """What the backward pass reads, kept by :func:`forward`."""

    inputs: np.ndarray  # (T, D), row t-1 is x_t
    states: np.ndarray  # (T + 1, H), row t is h_t; row 0 is h_0
    probabilities: np.ndarray  # (T, O), row t-1 is p_t
    targets: np.ndarray  # (T,) classes
    scored: np.ndarray  # (T,) bool: which steps carry a loss
    activation: str


def init_params(input_size: int, hidden_size: int, output_size: int, rng: np.random.Generator) -> Parameters:
    """weight_ih (H, D), weight_hh (H, H), bias_ih (H,), bias_hh (H,), weight_hy (O, H), bias_hy (O,)."""
    return init_recurrent_params(1, input_size, hidden_size, output_size, rng)


def activate(pre_activation: np.ndarray, activation: str) -> np.ndarray:
    if activation == "tanh":
        return np.tanh(pre_activation)
    if activation == "relu":
        return np.maximum(pre_activation, 0.0)
    return pre_activation.copy()


def activation_slope(h: np.ndarray, activation: str) -> np.ndarray:
    """phi'(a_t), read from h_t = phi(a_t) alone: tanh' = 1 - h^2, relu' = [h > 0] (0 at the kink, as torch)."""
    if activation == "tanh":
        return 1.0 - h * h
    if activation == "relu":
        return (h > 0).astype(np.float64)
    return np.ones_like(h)


def forward(
    params: Parameters,
    inputs: np.ndarray,
    targets: np.ndarray,
    h0: np.ndarray,
    *,
    activation: str = "tanh",
    loss_at: LossAt = "every",
) -> tuple[float, RNNCache]:
    """Run the RNN over one sequence and score it.

    Args:
        params: see :func:`init_params`.
        inputs: (T, D).
        targets: (T,) integer classes; with ``loss_at="last"`` only ``targets[-1]`` counts.
        h0: (H,) the initial state.
        activation: ``"tanh"``, ``"relu"`` or ``"identity"`` (a linear RNN).
        loss_at: ``"every"`` step (many-to-many) or only the ``"last"`` (many-to-one).

    Returns:
        The summed cross-entropy L and the cache for :func:`backward`.
    """
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {activation!r}")
    inputs, targets = as_sequence(inputs, targets)
    time_steps = inputs.shape[0]
    states = np.empty((time_steps + 1, params["weight_hh"].shape[1]))
    states[0] = h0
    for t in range(time_steps):
        pre_activation = params["weight_ih"] @ inputs[t] + params["bias_ih"] + params["weight_hh"] @ states[t] + params["bias_hh"]
        states[t + 1] = activate(pre_activation, activation)
    scored = scored_steps(time_steps, loss_at)
    loss, probabilities = output_loss(params, states[1:], targets, scored)
    return loss, RNNCache(inputs, states, probabilities, targets, scored, activation)


def backward(params: Parameters, cache: RNNCache) -> Parameters:
    r"""Backpropagation through time: the gradient of L with respect to every parameter.

    Softmax with cross-entropy gives dL/dz_t = p_t - onehot(y_t) on a scored
    step, 0 elsewhere. In the unfolded graph h_t feeds two nodes, z_t and
    a_{t+1}, so its gradient is the sum of two paths:

        dL/dh_t = W_hy^T dL/dz_t  +  W_hh^T dL/da_{t+1}
                  dh_from_output      dh_from_next (0 at t = T: nothing follows h_T)
        dL/da_t = dL/dh_t * phi'(a_t)                     (elementwise; tanh' = 1 - h_t^2)

    Each step uses its own copy of the shared weights; a weight's gradient is
    the sum over the copies, one outer product per step:

        dL/dW_hy = sum_t dL/dz_t h_t^T           dL/db_hy = sum_t dL/dz_t
        dL/dW_ih = sum_t dL/da_t x_t^T           dL/db_ih = dL/db_hh = sum_t dL/da_t
        dL/dW_hh = sum_t dL/da_t h_{t-1}^T
        dL/dh_0  = W_hh^T dL/da_1                 (dh_from_next at t = 0)

    Unrolling dh_from_next: the loss at step k reaches h_t (t < k) through
    dh_k/dh_t = J_k J_{k-1} ... J_{t+1}, with J_j = dh_j/dh_{j-1} = diag(phi'(a_j)) W_hh
    (:func:`step_jacobians`): a product that shrinks or grows geometrically with
    the size of W_hh and the slopes phi'.

    Returns:
        The gradient of every key of ``params``, plus ``"h0"``: dL/dh_0 (H,), and
        ``"h"``: dL/dh_t for t = 0 .. T, (T + 1, H), both paths included, for
        diagnostics (row 0 equals ``"h0"``).
    """
    gradients = {name: np.zeros_like(value) for name, value in params.items()}
    states = cache.states
    time_steps = len(cache.inputs)
    hidden_gradients = np.zeros_like(states)  # (T + 1, H)
    slopes = activation_slope(states[1:], cache.activation)  # (T, H), row t-1 is phi'(a_t)
    dlogits = logit_gradients(cache.probabilities, cache.targets, cache.scored)  # (T, O)
    dh_from_next = np.zeros(states.shape[1])  # nothing after h_T
    for t in reversed(range(time_steps)):  # this step computes h_{t+1} from x_{t+1} and h_t
        gradients["weight_hy"] += np.outer(dlogits[t], states[t + 1])
        gradients["bias_hy"] += dlogits[t]
        dh_from_output = params["weight_hy"].T @ dlogits[t]
        dh = dh_from_output + dh_from_next
        hidden_gradients[t + 1] = dh
        dpre_activation = dh * slopes[t]  # (H,)
        gradients["weight_ih"] += np.outer(dpre_activation, cache.inputs[t])
        gradients["weight_hh"] += np.outer(dpre_activation, states[t])
        gradients["bias_ih"] += dpre_activation
        gradients["bias_hh"] += dpre_activation
        dh_from_next = params["weight_hh"].T @ dpre_activation  # h_t's path through a_{t+1}
    hidden_gradients[0] = dh_from_next
    gradients["h0"] = dh_from_next
    gradients["h"] = hidden_gradients
    return gradients


def step_jacobians(params: Parameters, cache: RNNCache) -> np.ndarray:
    """(T, H, H): entry t-1 is J_t = dh_t/dh_{t-1} = diag(phi'(a_t)) W_hh, row i column j dh_t[i]/dh_{t-1}[j]."""
    slopes = activation_slope(cache.states[1:], cache.activation)  # (T, H)
    return slopes[:, :, None] * params["weight_hh"][None, :, :]
