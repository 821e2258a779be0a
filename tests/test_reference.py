"""Tests for seqlab.reference, the NumPy glass box.

The hand-derived gradients are replayed against two trusted references: central
finite differences of the NumPy forward pass, and torch autograd through
seqlab's own backbones with the same weights. Everything is float64 on tiny
sizes, so a wrong term in any derivation shows up far above the tolerances.
Then two known answers about gradient flow through time: a linear RNN with
W_hh = I carries dL/dh_t unchanged, and products of step Jacobians shrink or
grow geometrically with the size of W_hh.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from seqlab import build_backbone
from seqlab.reference import gru, jacobian_product_norms, lstm, params_from_torch, rnn
from seqlab.reference.common import logit_gradients, output_loss

TIME = 6
INPUT = 3
HIDDEN = 4
OUTPUT = 5
STEP = 1e-6  # central differences: truncation ~STEP^2, rounding ~1e-16/STEP, both far below the tolerance
FINITE_DIFFERENCE_TOLERANCE = {"rtol": 1e-6, "atol": 1e-8}
TORCH_TOLERANCE = {"rtol": 1e-6, "atol": 1e-10}  # two float64 computations of the same numbers


@dataclass(frozen=True)
class Cell:
    """One reference cell and the seqlab backbone it must agree with."""

    name: str
    module: ModuleType
    backbone: str
    backbone_options: dict[str, Any] = field(default_factory=dict)
    forward_options: dict[str, Any] = field(default_factory=dict)
    state_names: tuple[str, ...] = ("h",)


CELLS = [
    Cell("rnn-tanh", rnn, "rnn", {"nonlinearity": "tanh"}, {"activation": "tanh"}),
    Cell("rnn-relu", rnn, "rnn", {"nonlinearity": "relu"}, {"activation": "relu"}),
    Cell("lstm", lstm, "lstm", state_names=("h", "c")),
    Cell("gru", gru, "gru"),
]
CELL_IDS = [cell.name for cell in CELLS]
LOSSES = ["every", "last"]


def run(cell: Cell, params: dict[str, np.ndarray], inputs: np.ndarray, targets: np.ndarray,
        initial: dict[str, np.ndarray], loss_at: str) -> tuple[float, Any]:
    """The cell's forward pass, whichever states it has; ``initial`` maps "h0" (and "c0") to (H,)."""
    states = [initial[f"{name}0"] for name in cell.state_names]
    return cell.module.forward(params, inputs, targets, *states, loss_at=loss_at, **cell.forward_options)


def problem(cell: Cell, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Random parameters (scaled up from torch's init so every term matters), inputs, targets and initial states."""
    rng = np.random.default_rng(seed)
    params = {name: 2.0 * value for name, value in cell.module.init_params(INPUT, HIDDEN, OUTPUT, rng).items()}
    inputs = rng.normal(size=(TIME, INPUT))
    targets = rng.integers(0, OUTPUT, size=TIME)
    initial = {f"{name}0": rng.normal(scale=0.5, size=HIDDEN) for name in cell.state_names}
    return params, inputs, targets, initial


def central_difference(loss: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """d loss / d array, one entry at a time, perturbing ``array`` in place and restoring it."""
    gradient = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        original = array[index]
        array[index] = original + STEP
        above = loss()
        array[index] = original - STEP
        below = loss()
        array[index] = original
        gradient[index] = (above - below) / (2 * STEP)
    return gradient


def state_arrays(cell: Cell, cache: Any) -> dict[str, np.ndarray]:
    """The states a forward pass went through, name -> (T + 1, H): "h" and, for the LSTM, "c"."""
    arrays = {"h": cache.states, "c": getattr(cache, "cells", None)}
    return {name: arrays[name] for name in cell.state_names}


def stacked(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """The whole state per step, [h; c] or h: (T + 1, S), the layout of ``step_jacobians``."""
    return np.concatenate(list(arrays.values()), axis=1)


# ------------------------------------------------------------ finite differences
@pytest.mark.parametrize("loss_at", LOSSES)
@pytest.mark.parametrize("cell", CELLS + [Cell("rnn-identity", rnn, "rnn", forward_options={"activation": "identity"})],
                         ids=CELL_IDS + ["rnn-identity"])
def test_gradients_match_finite_differences(cell: Cell, loss_at: str) -> None:
    params, inputs, targets, initial = problem(cell, seed=1)
    _, cache = run(cell, params, inputs, targets, initial, loss_at)
    gradients = cell.module.backward(params, cache)
    for name, array in {**params, **initial}.items():
        numeric = central_difference(lambda: run(cell, params, inputs, targets, initial, loss_at)[0], array)
        assert np.abs(numeric).max() > 1e-4, f"{name}: a vanishing gradient would make this comparison empty"
        np.testing.assert_allclose(gradients[name], numeric, **FINITE_DIFFERENCE_TOLERANCE, err_msg=name)


@pytest.mark.parametrize("loss_at", LOSSES)
@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_state_gradients_match_finite_differences(cell: Cell, loss_at: str) -> None:
    """dL/dh_t (and dL/dc_t) for every t. The loss depends on the state at t through y_t
    and through the steps after t, so restarting the sequence at t from a perturbed
    state, and adding the loss of y_t read from it, differentiates it."""
    params, inputs, targets, initial = problem(cell, seed=2)
    _, cache = run(cell, params, inputs, targets, initial, loss_at)
    gradients = cell.module.backward(params, cache)

    def loss_from(t: int, restart: dict[str, np.ndarray]) -> float:
        loss = run(cell, params, inputs[t:], targets[t:], restart, loss_at)[0] if t < TIME else 0.0
        if t > 0:  # state t is the output of step t, scored against targets[t - 1]
            loss += output_loss(params, restart["h0"][None], targets[t - 1:t], cache.scored[t - 1:t])[0]
        return loss

    for t in range(TIME + 1):
        restart = {f"{name}0": states[t].copy() for name, states in state_arrays(cell, cache).items()}
        for name in cell.state_names:
            numeric = central_difference(lambda: loss_from(t, restart), restart[f"{name}0"])
            np.testing.assert_allclose(gradients[name][t], numeric, **FINITE_DIFFERENCE_TOLERANCE, err_msg=f"d{name}_{t}")


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_step_jacobians_match_finite_differences(cell: Cell) -> None:
    params, inputs, targets, initial = problem(cell, seed=3)
    _, cache = run(cell, params, inputs, targets, initial, "every")
    jacobians = cell.module.step_jacobians(params, cache)
    states = stacked(state_arrays(cell, cache))  # (T + 1, S)
    size = states.shape[1]
    assert jacobians.shape == (TIME, size, size)

    def next_state(t: int, start: np.ndarray) -> np.ndarray:
        """One step from the state ``start`` (S,) with the input of step t."""
        restart = dict(zip([f"{name}0" for name in cell.state_names], np.split(start, len(cell.state_names))))
        _, step_cache = run(cell, params, inputs[t:t + 1], targets[t:t + 1], restart, "every")
        return stacked(state_arrays(cell, step_cache))[1]

    for t in range(TIME):
        numeric = np.empty((size, size))
        for column in range(size):
            shift = np.zeros(size)
            shift[column] = STEP
            numeric[:, column] = (next_state(t, states[t] + shift) - next_state(t, states[t] - shift)) / (2 * STEP)
        np.testing.assert_allclose(jacobians[t], numeric, **FINITE_DIFFERENCE_TOLERANCE, err_msg=f"J_{t + 1}")


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_state_gradient_is_output_term_plus_jacobian_transpose_of_next(cell: Cell) -> None:
    """dL/ds_t = (the path from y_t) + J_{t+1}^T dL/ds_{t+1}: the two named terms of the backward loop."""
    params, inputs, targets, initial = problem(cell, seed=4)
    _, cache = run(cell, params, inputs, targets, initial, "every")
    gradients = cell.module.backward(params, cache)
    jacobians = cell.module.step_jacobians(params, cache)
    state_gradients = stacked({name: gradients[name] for name in cell.state_names})  # (T + 1, S)
    from_output = np.zeros_like(state_gradients)
    from_output[1:, :HIDDEN] = logit_gradients(cache.probabilities, cache.targets, cache.scored) @ params["weight_hy"]
    for t in range(TIME + 1):
        from_next = jacobians[t].T @ state_gradients[t + 1] if t < TIME else 0.0
        np.testing.assert_allclose(state_gradients[t], from_output[t] + from_next, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------- torch autograd
@pytest.mark.parametrize("fused", [True, False], ids=["fused", "own-traversal"])
@pytest.mark.parametrize("loss_at", LOSSES)
@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_matches_seqlab_autograd(cell: Cell, loss_at: str, fused: bool) -> None:
    """seqlab's backbone + nn.Linear + cross-entropy under torch autograd, with the same weights."""
    torch.manual_seed(5)
    backbone = build_backbone(cell.backbone, input_size=INPUT, hidden_size=HIDDEN, fused=fused, **cell.backbone_options).double()
    head = nn.Linear(HIDDEN, OUTPUT).double()
    params = params_from_torch(backbone, head)
    inputs = torch.randn(1, TIME, INPUT, dtype=torch.float64)
    targets = torch.randint(0, OUTPUT, (TIME,))
    initial = {f"{name}0": torch.randn(1, 1, HIDDEN, dtype=torch.float64, requires_grad=True) for name in cell.state_names}

    state = tuple(initial.values()) if len(initial) > 1 else initial["h0"]
    outputs, _ = backbone(inputs, state)  # (1, T, H)
    step_losses = F.cross_entropy(head(outputs[0]), targets, reduction="none")  # (T,)
    torch_loss = step_losses.sum() if loss_at == "every" else step_losses[-1]
    torch_loss.backward()

    loss, cache = run(cell, params, inputs[0].numpy(), targets.numpy(),
                      {name: value.detach()[0, 0].numpy() for name, value in initial.items()}, loss_at)
    gradients = cell.module.backward(params, cache)
    np.testing.assert_allclose(loss, torch_loss.item(), **TORCH_TOLERANCE)
    np.testing.assert_allclose(cache.states[1:], outputs[0].detach().numpy(), **TORCH_TOLERANCE)
    torch_gradients = {name: getattr(backbone, f"{name}_l0").grad for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    torch_gradients |= {"weight_hy": head.weight.grad, "bias_hy": head.bias.grad}
    torch_gradients |= {name: value.grad[0, 0] for name, value in initial.items()}
    for name, torch_gradient in torch_gradients.items():
        np.testing.assert_allclose(gradients[name], torch_gradient.numpy(), **TORCH_TOLERANCE, err_msg=name)


def test_params_from_torch_refuses_what_the_reference_does_not_model() -> None:
    head = nn.Linear(HIDDEN, OUTPUT)
    with pytest.raises(ValueError, match="one layer"):
        params_from_torch(build_backbone("gru", input_size=INPUT, hidden_size=HIDDEN, num_layers=2), head)
    with pytest.raises(ValueError, match="peephole"):
        params_from_torch(build_backbone("lstm", input_size=INPUT, hidden_size=HIDDEN, variant="peephole"), head)


def test_bad_options_are_refused() -> None:
    params, inputs, targets, initial = problem(CELLS[0], seed=6)
    with pytest.raises(ValueError, match="activation"):
        rnn.forward(params, inputs, targets, initial["h0"], activation="sigmoid")
    with pytest.raises(ValueError, match="loss_at"):
        rnn.forward(params, inputs, targets, initial["h0"], loss_at="first")
    with pytest.raises(ValueError, match="targets"):
        rnn.forward(params, inputs, targets[:-1], initial["h0"])


# ------------------------------------------------------- gradient flow through time
def test_identity_linear_rnn_carries_the_gradient_unchanged() -> None:
    """h_t = W_ih x_t + b + h_{t-1}: every J_t = I, so with the loss at the last step only,
    dL/dh_t = W_hy^T (p_T - onehot(y_T)) for every t, the known answer."""
    time_steps = 20
    rng = np.random.default_rng(7)
    params = rnn.init_params(INPUT, HIDDEN, OUTPUT, rng)
    params["weight_hh"] = np.eye(HIDDEN)
    inputs = rng.normal(size=(time_steps, INPUT))
    targets = rng.integers(0, OUTPUT, size=time_steps)
    h0 = rng.normal(size=HIDDEN)

    _, cache = rnn.forward(params, inputs, targets, h0, activation="identity", loss_at="last")
    hidden_gradients = rnn.backward(params, cache)["h"]  # (T + 1, H)
    last = cache.probabilities[-1].copy()
    last[targets[-1]] -= 1.0
    known = params["weight_hy"].T @ last
    np.testing.assert_allclose(hidden_gradients, np.broadcast_to(known, hidden_gradients.shape), rtol=1e-12, atol=1e-14)
    norms = np.linalg.norm(hidden_gradients, axis=1)
    assert norms.min() > 0.01 and np.ptp(norms) < 1e-12 * norms.max()

    # the same weights through tanh: the slopes below 1 make the gradient decay, so the check above has teeth
    _, cache = rnn.forward(params, inputs, targets, h0, activation="tanh", loss_at="last")
    tanh_norms = np.linalg.norm(rnn.backward(params, cache)["h"], axis=1)
    assert tanh_norms[0] < 0.5 * tanh_norms[-1]


@pytest.mark.parametrize("scale", [0.5, 1.5])
def test_rnn_jacobian_products_vanish_or_explode_geometrically(scale: float) -> None:
    """W_hh = scale * Q, Q orthogonal, tanh near 0 (slope ~ 1): ||dh_T/dh_t|| ~ scale^(T-t),
    and so does ||dL/dh_t|| with the loss at the last step."""
    time_steps = 20
    rng = np.random.default_rng(8)
    params = rnn.init_params(INPUT, HIDDEN, OUTPUT, rng)
    orthogonal, _ = np.linalg.qr(rng.normal(size=(HIDDEN, HIDDEN)))
    params["weight_hh"] = scale * orthogonal
    params["bias_ih"][:] = 0.0
    params["bias_hh"][:] = 0.0
    # inputs small enough that even 1.5^20 growth keeps the state where tanh is nearly linear
    inputs = 1e-6 * rng.normal(size=(time_steps, INPUT))
    targets = rng.integers(0, OUTPUT, size=time_steps)
    _, cache = rnn.forward(params, inputs, targets, np.zeros(HIDDEN), loss_at="last")
    assert np.abs(cache.states).max() < 0.1

    norms = jacobian_product_norms(rnn.step_jacobians(params, cache))  # (T + 1,), norms[t] = ||dh_T/dh_t||
    steps_back = time_steps - np.arange(time_steps + 1)
    np.testing.assert_allclose(norms, scale**steps_back, rtol=1e-2)
    ratios = norms[:-1] / norms[1:]  # one more step back multiplies the norm by about `scale`
    np.testing.assert_allclose(ratios, scale, rtol=1e-2)

    gradient_norms = np.linalg.norm(rnn.backward(params, cache)["h"], axis=1)  # (T + 1,)
    np.testing.assert_allclose(gradient_norms[:-1] / gradient_norms[1:], scale, rtol=1e-2)
