"""What the three reference cells share: the output layer and its loss, initialisation,
conversion from a seqlab torch backbone, and products of step Jacobians.

Every cell in :mod:`seqlab.reference` reads one sequence (no batch) in float64.
The derivations number steps t = 1 .. T as the lectures do; the arrays are
0-based, so ``inputs[t - 1]`` is x_t and ``states[t]`` is h_t, with
``states[0]`` the initial state h_0.

The output layer and the loss are the same for every cell:

    z_t = W_hy h_t + b_hy            logits, (O,)
    p_t = softmax(z_t)
    L   = sum over scored t of -log p_t[y_t]

where every step is scored (many-to-many, ``loss_at="every"``) or only the last
(many-to-one, ``loss_at="last"``). Softmax and cross-entropy together have the
simple derivative dL/dz_t = p_t - onehot(y_t) on a scored step, 0 elsewhere.
"""
from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

Parameters = dict[str, np.ndarray]
LossAt = Literal["every", "last"]
LOSS_AT: tuple[str, ...] = ("every", "last")


def as_sequence(inputs: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Check and convert one sequence: inputs (T, D) float64, targets (T,) integer classes."""
    inputs = np.asarray(inputs, dtype=np.float64)
    targets = np.asarray(targets)
    if inputs.ndim != 2:
        raise ValueError(f"inputs must be (T, D), got shape {inputs.shape}")
    if targets.shape != (inputs.shape[0],) or not np.issubdtype(targets.dtype, np.integer):
        raise ValueError(f"targets must be {inputs.shape[0]} integer classes, one a step, got {targets.dtype} {targets.shape}")
    return inputs, targets


def scored_steps(time_steps: int, loss_at: LossAt) -> np.ndarray:
    """(T,) bool: which steps carry a loss term."""
    if loss_at not in LOSS_AT:
        raise ValueError(f"loss_at must be one of {', '.join(LOSS_AT)}, got {loss_at!r}")
    scored = np.ones(time_steps, dtype=bool)
    if loss_at == "last":
        scored[:-1] = False
    return scored


def output_loss(params: Parameters, hidden: np.ndarray, targets: np.ndarray, scored: np.ndarray) -> tuple[float, np.ndarray]:
    """hidden (T, H) = h_1 .. h_T -> (the summed cross-entropy of the scored steps, p (T, O))."""
    logits = hidden @ params["weight_hy"].T + params["bias_hy"]  # (T, O)
    # subtracting the row maximum keeps exp from overflowing and changes nothing
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (T, O)
    step_losses = -log_probabilities[np.arange(len(targets)), targets]  # (T,)
    return float(step_losses[scored].sum()), np.exp(log_probabilities)


def logit_gradients(probabilities: np.ndarray, targets: np.ndarray, scored: np.ndarray) -> np.ndarray:
    """dL/dz_t for every step, (T, O): p_t - onehot(y_t) where step t is scored, 0 elsewhere."""
    gradients = probabilities.copy()
    gradients[np.arange(len(targets)), targets] -= 1.0
    gradients[~scored] = 0.0
    return gradients


def sigmoid(value: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * value))  # equal to 1 / (1 + exp(-value)), without exp overflowing


def init_recurrent_params(gates: int, input_size: int, hidden_size: int, output_size: int, rng: np.random.Generator) -> Parameters:
    """Parameters of a cell with ``gates`` blocks of H rows, drawn as torch draws them.

    torch's recurrent layers and its Linear head (fan-in H) both draw from
    U(-1/sqrt(H), 1/sqrt(H)), so a reference cell starts where a seqlab model would.
    """
    bound = 1.0 / math.sqrt(hidden_size)
    rows = gates * hidden_size
    shapes = {
        "weight_ih": (rows, input_size),
        "weight_hh": (rows, hidden_size),
        "bias_ih": (rows,),
        "bias_hh": (rows,),
        "weight_hy": (output_size, hidden_size),
        "bias_hy": (output_size,),
    }
    return {name: rng.uniform(-bound, bound, size=shape) for name, shape in shapes.items()}


def params_from_torch(backbone: Any, head: Any) -> Parameters:
    """Copy a one-layer seqlab RNN/LSTM/GRU backbone and an ``nn.Linear`` head into float64 arrays.

    The keys drop torch's layer suffix (``weight_ih_l0`` -> ``weight_ih``); the
    head's ``weight``/``bias`` become ``weight_hy``/``bias_hy``. Only attribute
    access is needed, so this module never imports torch.
    """
    if backbone.num_layers != 1:
        raise ValueError(f"the reference cells have one layer; this backbone has {backbone.num_layers}")
    variant = getattr(backbone, "variant", "vanilla")
    if variant != "vanilla":
        raise ValueError(f"the reference LSTM is the vanilla cell; this backbone is the {variant!r} variant")

    def to_array(tensor: Any) -> np.ndarray:
        return tensor.detach().cpu().double().numpy().copy()

    params = {name: to_array(getattr(backbone, f"{name}_l0")) for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    params["weight_hy"] = to_array(head.weight)
    params["bias_hy"] = to_array(head.bias)
    return params


def jacobian_product_norms(jacobians: np.ndarray) -> np.ndarray:
    """Step Jacobians (T, S, S), ``jacobians[t]`` = ds_{t+1}/ds_t -> (T + 1,) spectral norms of ds_T/ds_t.

    ds_T/ds_t = J_T J_{T-1} ... J_{t+1} is what the loss at the last step is
    multiplied by on its way back to s_t; entry T (no steps) is ||I|| = 1.
    """
    time_steps, size, _ = jacobians.shape
    norms = np.empty(time_steps + 1)
    product = np.eye(size)
    norms[time_steps] = 1.0
    for t in reversed(range(time_steps)):
        product = product @ jacobians[t]
        norms[t] = np.linalg.norm(product, 2)
    return norms
