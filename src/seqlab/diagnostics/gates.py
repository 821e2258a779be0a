r"""Gate saturation: how often each gate sits near closed (< 0.1) or near open (> 0.9).

The gates are recomputed from the parameters, on each step's layer input and
previous state from a :class:`~seqlab.diagnostics.reading.Reading`, by the
code the backbones' own cells run (``LSTM.equations``, ``GRU.equations``, the
minimal nets' ``coefficients``), so no backbone needs a hook and no equation is
written twice:

    LSTM vanilla   i, f, o = sigmoid of blocks i, f, o of a_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    LSTM peephole  i, f also see p * c_{t-1}, o sees p_o * c_t
    LSTM coupled   f and o from blocks (f, g, o); the input gate is i = 1 - f
    LSTM no_forget i and o from blocks (i, g, o); there is no forget gate
    GRU            reset r and update z from blocks (r, z, n)
    minGRU         update z = sigmoid(W_z x_t + b_z)
    minLSTM        the normalised f' = f / (f + i) ("forget") and i' = 1 - f' ("input")

A forget gate near 1 keeps the memory lane open (dc_t/dc_{t-1} = f_t); near 0
it erases. A GRU's update gate z plays the forget gate's part: h_t = z h_{t-1} + (1 - z) n_t.
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

from ..backbones.gru import GRU
from ..backbones.lstm import LSTM
from ..backbones.minrnn import MinGRU, MinLSTM
from .reading import Reading, stacked_parts

NEAR_ZERO = 0.1
NEAR_ONE = 0.9


def has_gates(backbone: nn.Module) -> bool:
    return isinstance(backbone, (LSTM, GRU, MinGRU, MinLSTM))


def _lstm_gates(backbone: LSTM, layer: int, layer_input: Tensor, hidden: Tensor, cells: Tensor) -> dict[str, Tensor]:
    """layer_input (T, D_k); hidden, cells (T + 1, H) of this layer -> gate name -> (T, H)."""
    w_ih, w_hh, b_ih, b_hh = backbone.layer_weights(layer)
    preactivations = F.linear(layer_input, w_ih, b_ih) + F.linear(hidden[:-1], w_hh, b_hh)  # (T, G*H)
    gates, _, _ = backbone.equations(preactivations, cells[:-1], layer)
    return gates


def _gru_gates(backbone: GRU, layer: int, layer_input: Tensor, hidden: Tensor) -> dict[str, Tensor]:
    w_ih, w_hh, b_ih, b_hh = backbone.layer_weights(layer)
    gates, _ = backbone.equations(F.linear(layer_input, w_ih, b_ih), F.linear(hidden[:-1], w_hh, b_hh), hidden[:-1])
    return gates


def _minimal_gates(backbone: nn.Module, layer: int, layer_input: Tensor) -> dict[str, Tensor]:
    """From the scan's coefficient a_t of h_{t-1}: minGRU's is 1 - z, minLSTM's the normalised forget gate f'."""
    carry, _ = backbone.coefficients(backbone.projections[layer](layer_input))  # (T, H)
    if isinstance(backbone, MinGRU):
        return {"update": 1.0 - carry}
    return {"forget": carry, "input": 1.0 - carry}


@torch.no_grad()
def gate_values(backbone: nn.Module, reading: Reading) -> list[dict[str, Tensor]]:
    """Each layer's gates along the reading: a list over layers of gate name -> (T, H)."""
    if not has_gates(backbone):
        raise ValueError(f"{type(backbone).__name__} has no gates")
    parts = stacked_parts(reading.states)  # (T + 1, L, H) each: h, then c for the LSTM
    hidden = parts[0]
    layer_input = reading.inputs  # (T, E)
    values = []
    for layer in range(backbone.num_layers):
        if isinstance(backbone, LSTM):
            values.append(_lstm_gates(backbone, layer, layer_input, hidden[:, layer], parts[1][:, layer]))
        elif isinstance(backbone, GRU):
            values.append(_gru_gates(backbone, layer, layer_input, hidden[:, layer]))
        else:
            values.append(_minimal_gates(backbone, layer, layer_input))
        layer_input = hidden[1:, layer]  # layer k + 1 reads layer k's h_t
    return values


@dataclass
class GateSaturation:
    """Per layer, per gate: the share of values near 0, near 1, and the mean, over all steps and units."""

    layers: list[dict[str, dict[str, float]]]
    values: list[dict[str, np.ndarray]]  # the gate values themselves, (T, H), for the figure

    def to_json(self) -> dict[str, Any]:
        return {"near_zero_below": NEAR_ZERO, "near_one_above": NEAR_ONE, "layers": self.layers}


def gate_saturation(backbone: nn.Module, reading: Reading) -> GateSaturation:
    """Share of gate values below ``NEAR_ZERO`` and above ``NEAR_ONE``, for every gate of every layer."""
    values = gate_values(backbone, reading)
    layers = [
        {name: {"near_zero": float((gate < NEAR_ZERO).float().mean()), "near_one": float((gate > NEAR_ONE).float().mean()),
                "mean": float(gate.mean())}
         for name, gate in layer.items()}
        for layer in values
    ]
    return GateSaturation(layers=layers, values=[{name: gate.double().cpu().numpy() for name, gate in layer.items()} for layer in values])


def plot_gates(result: GateSaturation, path: Path) -> None:
    """A histogram of every gate's values per layer, the saturated shares in each title."""
    names = list(result.values[0])
    rows, columns = len(result.values), len(names)
    figure = Figure(figsize=(3.2 * columns, 2.6 * rows), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    bins = np.linspace(0.0, 1.0, 41)
    for layer, (values, shares) in enumerate(zip(result.values, result.layers)):
        for column, name in enumerate(names):
            axes = grid[layer, column]
            axes.hist(values[name].ravel(), bins=bins, color="tab:blue")
            axes.axvspan(0.0, NEAR_ZERO, color="tab:red", alpha=0.12)
            axes.axvspan(NEAR_ONE, 1.0, color="tab:green", alpha=0.12)
            share = shares[name]
            axes.set_title(f"layer {layer} {name}: <{NEAR_ZERO} {share['near_zero']:.0%}, >{NEAR_ONE} {share['near_one']:.0%}",
                           fontsize=8)
    figure.suptitle("gate values while reading")
    figure.savefig(path, dpi=110)
