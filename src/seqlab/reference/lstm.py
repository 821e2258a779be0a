r"""The LSTM with a forget gate and a softmax output, forward and hand-derived BPTT in NumPy.

Forward, for t = 1 .. T, in torch's layout (gate blocks i, f, g, o of H rows each):

    a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh        (4H,), split into a_i, a_f, a_g, a_o
    i_t = sigmoid(a_i)    input gate: how much to add
    f_t = sigmoid(a_f)    forget gate: how much of c_{t-1} to keep
    g_t = tanh(a_g)       candidate: what to add
    o_t = sigmoid(a_o)    output gate
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)
    z_t = W_hy h_t + b_hy,  p_t = softmax(z_t),  L = sum over scored t of -log p_t[y_t]

Mapping to the lectures: their a = W [h_{t-1}, x_t] + b is ours with
W = [W_hh  W_ih] side by side and b = b_ih + b_hh; their F, I, C~, O are f, i, g, o,
and their blocks come in the order F, I, C, O where torch's are i, f, g, o.
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
class LSTMCache:
    """What the backward pass reads, kept by :func:`forward`."""

    inputs: np.ndarray  # (T, D), row t-1 is x_t
    states: np.ndarray  # (T + 1, H), row t is h_t; row 0 is h_0
    cells: np.ndarray  # (T + 1, H), row t is c_t; row 0 is c_0
    gates: np.ndarray  # (T, 4H), row t-1 is [i_t, f_t, g_t, o_t] after their squashing functions
    probabilities: np.ndarray  # (T, O)
    targets: np.ndarray  # (T,)
    scored: np.ndarray  # (T,) bool


def init_params(input_size: int, hidden_size: int, output_size: int, rng: np.random.Generator) -> Parameters:
    """weight_ih (4H, D), weight_hh (4H, H), bias_ih (4H,), bias_hh (4H,), weight_hy (O, H), bias_hy (O,)."""
    return init_recurrent_params(4, input_size, hidden_size, output_size, rng)


def split_gates(gates: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(..., 4H) -> i, f, g, o, each (..., H)."""
    input_gate, forget_gate, candidate, output_gate = np.split(gates, 4, axis=-1)
    return input_gate, forget_gate, candidate, output_gate


def forward(
    params: Parameters,
    inputs: np.ndarray,
    targets: np.ndarray,
    h0: np.ndarray,
    c0: np.ndarray,
    *,
    loss_at: LossAt = "every",
) -> tuple[float, LSTMCache]:
    """Run the LSTM over one sequence and score it.

    Args:
        params: see :func:`init_params`.
        inputs: (T, D).
        targets: (T,) integer classes; with ``loss_at="last"`` only ``targets[-1]`` counts.
        h0, c0: (H,) the initial state.
        loss_at: ``"every"`` step (many-to-many) or only the ``"last"`` (many-to-one).

    Returns:
        The summed cross-entropy L and the cache for :func:`backward`.
    """
    inputs, targets = as_sequence(inputs, targets)
    time_steps = inputs.shape[0]
    hidden_size = params["weight_hh"].shape[1]
    states = np.empty((time_steps + 1, hidden_size))
    cells = np.empty((time_steps + 1, hidden_size))
    gates = np.empty((time_steps, 4 * hidden_size))
    states[0] = h0
    cells[0] = c0
    for t in range(time_steps):
        pre_activation = params["weight_ih"] @ inputs[t] + params["bias_ih"] + params["weight_hh"] @ states[t] + params["bias_hh"]
        a_input, a_forget, a_candidate, a_output = split_gates(pre_activation)
        gates[t] = np.concatenate([sigmoid(a_input), sigmoid(a_forget), np.tanh(a_candidate), sigmoid(a_output)])
        input_gate, forget_gate, candidate, output_gate = split_gates(gates[t])
        cells[t + 1] = forget_gate * cells[t] + input_gate * candidate
        states[t + 1] = output_gate * np.tanh(cells[t + 1])
    scored = scored_steps(time_steps, loss_at)
    loss, probabilities = output_loss(params, states[1:], targets, scored)
    return loss, LSTMCache(inputs, states, cells, gates, probabilities, targets, scored)


def backward(params: Parameters, cache: LSTMCache) -> Parameters:
    r"""Backpropagation through time: the gradient of L with respect to every parameter.

    dL/dz_t = p_t - onehot(y_t) on a scored step, 0 elsewhere. h_t feeds z_t and
    a_{t+1}; c_t feeds h_t and c_{t+1}. So each gathers two paths:

        dL/dh_t = W_hy^T dL/dz_t  +  W_hh^T dL/da_{t+1}
                  dh_from_output      dh_from_next
        dL/dc_t = dL/dh_t * o_t * (1 - tanh(c_t)^2)  +  dL/dc_{t+1} * f_{t+1}
                  dc_from_h                              dc_from_next

    (both "from next" terms are 0 at t = T). The second line is the memory lane:
    dc_t/dc_{t-1} = diag(f_t) passes through no squashing function, so along c
    the gradient survives as long as the forget gates stay near 1.

    Through the gates, with sigmoid' = s (1 - s) and tanh' = 1 - v^2 read from
    the activations s, v:

        dL/da_i = dL/dc_t * g_t     * i_t (1 - i_t)
        dL/da_f = dL/dc_t * c_{t-1} * f_t (1 - f_t)
        dL/da_g = dL/dc_t * i_t     * (1 - g_t^2)
        dL/da_o = dL/dh_t * tanh(c_t) * o_t (1 - o_t)

    and the shared weights sum one outer product per step:

        dL/dW_hy = sum_t dL/dz_t h_t^T           dL/db_hy = sum_t dL/dz_t
        dL/dW_ih = sum_t dL/da_t x_t^T           dL/db_ih = dL/db_hh = sum_t dL/da_t
        dL/dW_hh = sum_t dL/da_t h_{t-1}^T
        dL/dh_0  = W_hh^T dL/da_1                 dL/dc_0 = dL/dc_1 * f_1

    Returns:
        The gradient of every key of ``params``, plus ``"h0"`` and ``"c0"`` (H,),
        and for diagnostics ``"h"`` and ``"c"``, (T + 1, H), the gradients with
        respect to the state (h_t, c_t) for t = 0 .. T, the two halves taken as
        separate variables as at t = 0 and as in :func:`step_jacobians`: row t of
        ``"h"`` is dL/dh_t, and row t of ``"c"`` is dc_from_next, what reaches c_t
        along the memory lane (its path through h_t is already in dL/dh_t).
    """
    gradients = {name: np.zeros_like(value) for name, value in params.items()}
    states, cells = cache.states, cache.cells
    time_steps = len(cache.inputs)
    hidden_gradients = np.zeros_like(states)  # (T + 1, H)
    cell_gradients = np.zeros_like(cells)  # (T + 1, H)
    dlogits = logit_gradients(cache.probabilities, cache.targets, cache.scored)  # (T, O)
    dh_from_next = np.zeros(states.shape[1])  # nothing after h_T or c_T
    dc_from_next = np.zeros(states.shape[1])
    for t in reversed(range(time_steps)):  # this step computes (h_{t+1}, c_{t+1}) from x_{t+1}, h_t, c_t
        input_gate, forget_gate, candidate, output_gate = split_gates(cache.gates[t])
        tanh_cell = np.tanh(cells[t + 1])
        gradients["weight_hy"] += np.outer(dlogits[t], states[t + 1])
        gradients["bias_hy"] += dlogits[t]
        dh_from_output = params["weight_hy"].T @ dlogits[t]
        dh = dh_from_output + dh_from_next
        hidden_gradients[t + 1] = dh
        cell_gradients[t + 1] = dc_from_next
        dc_from_h = dh * output_gate * (1.0 - tanh_cell**2)
        dc = dc_from_h + dc_from_next
        dpre_activation = np.concatenate([
            dc * candidate * input_gate * (1.0 - input_gate),
            dc * cells[t] * forget_gate * (1.0 - forget_gate),
            dc * input_gate * (1.0 - candidate**2),
            dh * tanh_cell * output_gate * (1.0 - output_gate),
        ])  # (4H,)
        gradients["weight_ih"] += np.outer(dpre_activation, cache.inputs[t])
        gradients["weight_hh"] += np.outer(dpre_activation, states[t])
        gradients["bias_ih"] += dpre_activation
        gradients["bias_hh"] += dpre_activation
        dh_from_next = params["weight_hh"].T @ dpre_activation  # h_t's path through a_{t+1}
        dc_from_next = dc * forget_gate  # c_t's path through c_{t+1}
    hidden_gradients[0] = dh_from_next
    cell_gradients[0] = dc_from_next
    gradients["h0"] = dh_from_next
    gradients["c0"] = dc_from_next
    gradients["h"] = hidden_gradients
    gradients["c"] = cell_gradients
    return gradients


def step_jacobians(params: Parameters, cache: LSTMCache) -> np.ndarray:
    r"""(T, 2H, 2H): entry t-1 is d(h_t, c_t)/d(h_{t-1}, c_{t-1}), the state stacked as [h; c].

    With W_k the H-row block of W_hh for gate k and primes the activation slopes:

        dc_t/dh_{t-1} = diag(g i') W_i + diag(c_{t-1} f') W_f + diag(i g') W_g
        dc_t/dc_{t-1} = diag(f_t)
        dh_t/dh_{t-1} = diag(tanh(c_t) o') W_o + diag(o_t (1 - tanh(c_t)^2)) dc_t/dh_{t-1}
        dh_t/dc_{t-1} = diag(o_t (1 - tanh(c_t)^2) f_t)
    """
    hidden_size = cache.states.shape[1]
    weight_input, weight_forget, weight_candidate, weight_output = np.split(params["weight_hh"], 4, axis=0)  # (H, H) each
    input_gate, forget_gate, candidate, output_gate = split_gates(cache.gates)  # (T, H) each
    tanh_cell = np.tanh(cache.cells[1:])  # (T, H)
    cell_from_h = (
        (candidate * input_gate * (1.0 - input_gate))[:, :, None] * weight_input
        + (cache.cells[:-1] * forget_gate * (1.0 - forget_gate))[:, :, None] * weight_forget
        + (input_gate * (1.0 - candidate**2))[:, :, None] * weight_candidate
    )  # (T, H, H)
    h_through_cell = output_gate * (1.0 - tanh_cell**2)  # dh_t/dc_t, (T, H)
    jacobians = np.zeros((len(cache.gates), 2 * hidden_size, 2 * hidden_size))
    top, bottom = slice(0, hidden_size), slice(hidden_size, 2 * hidden_size)
    identity = np.eye(hidden_size)  # (T, H, 1) * I = a stack of diagonal matrices
    jacobians[:, top, top] = (tanh_cell * output_gate * (1.0 - output_gate))[:, :, None] * weight_output + h_through_cell[:, :, None] * cell_from_h
    jacobians[:, top, bottom] = (h_through_cell * forget_gate)[:, :, None] * identity
    jacobians[:, bottom, top] = cell_from_h
    jacobians[:, bottom, bottom] = forget_gate[:, :, None] * identity
    return jacobians
