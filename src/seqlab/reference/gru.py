r"""The GRU in torch's formulation with a softmax output, forward and hand-derived BPTT in NumPy.

Forward, for t = 1 .. T, gate blocks r, z, n of H rows each in W_ih, W_hh, b_ih, b_hh:

    r_t = sigmoid(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)     reset gate
    u_t = sigmoid(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)     update gate (torch's z)
    m_t = W_hn h_{t-1} + b_hn                                the recurrent part of the candidate
    n_t = tanh(W_in x_t + b_in + r_t * m_t)                  candidate
    h_t = (1 - u_t) * n_t + u_t * h_{t-1}
    z_t = W_hy h_t + b_hy,  p_t = softmax(z_t),  L = sum over scored t of -log p_t[y_t]

(The update gate is u here so that z stays the logits, as in the other cells.)
The reset gate multiplies W_hn h_{t-1} + b_hn after the product, as torch and
cuDNN do, not h_{t-1} before it as the 2014 paper does; that is why b_hn cannot
be folded into b_in.
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
    sigmoid,
)


@dataclass
class GRUCache:
    """What the backward pass reads, kept by :func:`forward`."""

    inputs: np.ndarray  # (T, D), row t-1 is x_t
    states: np.ndarray  # (T + 1, H), row t is h_t; row 0 is h_0
    gates: np.ndarray  # (T, 3H), row t-1 is [r_t, u_t, n_t] after their squashing functions
    recurrent_candidates: np.ndarray  # (T, H), row t-1 is m_t = W_hn h_{t-1} + b_hn
    probabilities: np.ndarray  # (T, O)
    targets: np.ndarray  # (T,)
    scored: np.ndarray  # (T,) bool


def init_params(input_size: int, hidden_size: int, output_size: int, rng: np.random.Generator) -> Parameters:
    """weight_ih (3H, D), weight_hh (3H, H), bias_ih (3H,), bias_hh (3H,), weight_hy (O, H), bias_hy (O,)."""
    return init_recurrent_params(3, input_size, hidden_size, output_size, rng)


def forward(
    params: Parameters,
    inputs: np.ndarray,
    targets: np.ndarray,
    h0: np.ndarray,
    *,
    loss_at: LossAt = "every",
) -> tuple[float, GRUCache]:
    """Run the GRU over one sequence and score it.

    Args:
        params: see :func:`init_params`.
        inputs: (T, D).
        targets: (T,) integer classes; with ``loss_at="last"`` only ``targets[-1]`` counts.
        h0: (H,) the initial state.
        loss_at: ``"every"`` step (many-to-many) or only the ``"last"`` (many-to-one).

    Returns:
        The summed cross-entropy L and the cache for :func:`backward`.
    """
    inputs, targets = as_sequence(inputs, targets)
    time_steps = inputs.shape[0]
    hidden_size = params["weight_hh"].shape[1]
    states = np.empty((time_steps + 1, hidden_size))
    gates = np.empty((time_steps, 3 * hidden_size))
    recurrent_candidates = np.empty((time_steps, hidden_size))
    states[0] = h0
    for t in range(time_steps):
        from_input = params["weight_ih"] @ inputs[t] + params["bias_ih"]  # (3H,)
        from_state = params["weight_hh"] @ states[t] + params["bias_hh"]  # (3H,)
        input_reset, input_update, input_candidate = np.split(from_input, 3)
        state_reset, state_update, recurrent_candidates[t] = np.split(from_state, 3)
        reset = sigmoid(input_reset + state_reset)
        update = sigmoid(input_update + state_update)
        candidate = np.tanh(input_candidate + reset * recurrent_candidates[t])
        gates[t] = np.concatenate([reset, update, candidate])
        states[t + 1] = (1.0 - update) * candidate + update * states[t]
    scored = scored_steps(time_steps, loss_at)
    loss, probabilities = output_loss(params, states[1:], targets, scored)
    return loss, GRUCache(inputs, states, gates, recurrent_candidates, probabilities, targets, scored)


def backward(params: Parameters, cache: GRUCache) -> Parameters:
    r"""Backpropagation through time: the gradient of L with respect to every parameter.

    dL/dz_t = p_t - onehot(y_t) on a scored step, 0 elsewhere. h_t feeds z_t and
    step t+1, where it enters three ways: directly (u_{t+1} h_t) and through
    the pre-activations of r, u and the recurrent candidate m. So

        dL/dh_t = W_hy^T dL/dz_t  +  [dL/dh_{t+1} * u_{t+1}  +  W_hh^T dL/d(W_hh h_t + b_hh)]
                  dh_from_output      dh_from_next (0 at t = T)

    Within a step, with sigmoid' = s (1 - s) and tanh' = 1 - v^2 read from the
    activations:

        dL/dn_t   = dL/dh_t * (1 - u_t)
        dL/du_t   = dL/dh_t * (h_{t-1} - n_t)
        dL/da_n   = dL/dn_t * (1 - n_t^2)          a_n = W_in x_t + b_in + r_t * m_t
        dL/dm_t   = dL/da_n * r_t
        dL/da_r   = dL/da_n * m_t * r_t (1 - r_t)
        dL/da_u   = dL/du_t * u_t (1 - u_t)

    r and u see the input side and the state side alike, while the candidate's
    input side receives dL/da_n and its state side dL/dm_t:

        dL/d(W_ih x_t + b_ih) = [dL/da_r, dL/da_u, dL/da_n]
        dL/d(W_hh h_{t-1} + b_hh) = [dL/da_r, dL/da_u, dL/dm_t]

    and the shared weights sum one outer product of these per step:

        dL/dW_ih = sum_t dL/d(W_ih x_t + b_ih) x_t^T            dL/db_ih = sum_t dL/d(W_ih x_t + b_ih)
        dL/dW_hh = sum_t dL/d(W_hh h_{t-1} + b_hh) h_{t-1}^T    dL/db_hh = sum_t dL/d(W_hh h_{t-1} + b_hh)
        dL/dW_hy = sum_t dL/dz_t h_t^T                          dL/db_hy = sum_t dL/dz_t

    Returns:
        The gradient of every key of ``params``, plus ``"h0"``: dL/dh_0 (H,), and
        ``"h"``: dL/dh_t for t = 0 .. T, (T + 1, H), both paths included.
    """
    gradients = {name: np.zeros_like(value) for name, value in params.items()}
    states = cache.states
    time_steps = len(cache.inputs)
    hidden_gradients = np.zeros_like(states)  # (T + 1, H)
    dlogits = logit_gradients(cache.probabilities, cache.targets, cache.scored)  # (T, O)
    dh_from_next = np.zeros(states.shape[1])  # nothing after h_T
    for t in reversed(range(time_steps)):  # this step computes h_{t+1} from x_{t+1} and h_t
        reset, update, candidate = np.split(cache.gates[t], 3)
        gradients["weight_hy"] += np.outer(dlogits[t], states[t + 1])
        gradients["bias_hy"] += dlogits[t]
        dh_from_output = params["weight_hy"].T @ dlogits[t]
        dh = dh_from_output + dh_from_next
        hidden_gradients[t + 1] = dh
        dpre_candidate = dh * (1.0 - update) * (1.0 - candidate**2)  # (H,)
        dpre_reset = dpre_candidate * cache.recurrent_candidates[t] * reset * (1.0 - reset)
        dpre_update = dh * (states[t] - candidate) * update * (1.0 - update)
        dfrom_input = np.concatenate([dpre_reset, dpre_update, dpre_candidate])  # (3H,)
        dfrom_state = np.concatenate([dpre_reset, dpre_update, dpre_candidate * reset])  # (3H,)
        gradients["weight_ih"] += np.outer(dfrom_input, cache.inputs[t])
        gradients["bias_ih"] += dfrom_input
        gradients["weight_hh"] += np.outer(dfrom_state, states[t])
        gradients["bias_hh"] += dfrom_state
        # h_t's paths into step t+1: the direct u h_t term and the three gate pre-activations
        dh_from_next = dh * update + params["weight_hh"].T @ dfrom_state
    hidden_gradients[0] = dh_from_next
    gradients["h0"] = dh_from_next
    gradients["h"] = hidden_gradients
    return gradients


def step_jacobians(params: Parameters, cache: GRUCache) -> np.ndarray:
    r"""(T, H, H): entry t-1 is J_t = dh_t/dh_{t-1}.

    With W_r, W_z, W_n the H-row blocks of W_hh and the slopes read from the activations:

        dn_t/dh_{t-1} = diag(1 - n_t^2) [diag(r_t) W_n + diag(m_t r_t (1 - r_t)) W_r]
        J_t = diag(u_t) + diag(1 - u_t) dn_t/dh_{t-1} + diag((h_{t-1} - n_t) u_t (1 - u_t)) W_z
    """
    weight_reset, weight_update, weight_candidate = np.split(params["weight_hh"], 3, axis=0)  # (H, H) each
    reset, update, candidate = np.split(cache.gates, 3, axis=1)  # (T, H) each
    recurrent = cache.recurrent_candidates  # (T, H)
    candidate_slope = 1.0 - candidate**2
    candidate_from_h = candidate_slope[:, :, None] * (
        reset[:, :, None] * weight_candidate + (recurrent * reset * (1.0 - reset))[:, :, None] * weight_reset
    )  # (T, H, H)
    direct = update[:, :, None] * np.eye(reset.shape[1])  # (T, H, H), diagonal
    return (
        direct
        + (1.0 - update)[:, :, None] * candidate_from_h
        + ((cache.states[:-1] - candidate) * update * (1.0 - update))[:, :, None] * weight_update
    )
