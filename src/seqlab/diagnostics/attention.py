r"""Attention maps of a Transformer, per layer and head, with two summaries per head.

    w_h[i, j] = softmax_j(q_i . k_j / sqrt(d_h) + M[i, j])        (each row sums to 1)
    distance_h = mean_i sum_j w_h[i, j] (i - j)       how far back a head looks, in positions
    entropy_h  = mean_i -sum_j w_h[i, j] log w_h[i, j]  0: one key; log(i + 1): uniform over the past
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from ..backbones.transformer import Transformer

DECIMALS = 5  # enough for a picture's numbers, small enough to keep the JSON readable


def has_attention_maps(backbone: nn.Module) -> bool:
    return isinstance(backbone, Transformer)


@dataclass
class AttentionMaps:
    """maps: (L, nh, T, T), row i of head h the weights query i puts on keys 0 .. T-1.
    distance, entropy: (L, nh), see the module docstring."""

    maps: np.ndarray
    distance: np.ndarray
    entropy: np.ndarray

    def to_json(self) -> dict[str, Any]:
        return {"mean_distance": self.distance.tolist(), "mean_entropy": self.entropy.tolist(),
                "maps": np.round(self.maps, DECIMALS).tolist()}


@torch.no_grad()
def attention_maps(model: nn.Module, tokens: Tensor) -> AttentionMaps:
    """Every layer's and head's attention weights over tokens (T,), from a fresh state."""
    embedded = model.embedding(tokens.unsqueeze(0))  # (1, T, E)
    maps = torch.stack([weights[0] for weights in model.backbone.attention_maps(embedded)]).double()  # (L, nh, T, T)
    time_steps = maps.shape[-1]
    maps = maps.cpu()  # numbers and figures are made on the CPU, wherever the model ran
    offsets = (torch.arange(time_steps).unsqueeze(1) - torch.arange(time_steps).unsqueeze(0)).clamp(min=0)  # (T, T): i - j
    distance = (maps * offsets).sum(-1).mean(-1)  # (L, nh)
    entropy = -(maps * torch.log(maps.clamp(min=1e-30))).sum(-1).mean(-1)  # (L, nh); 0 log 0 = 0
    return AttentionMaps(maps=maps.numpy(), distance=distance.numpy(), entropy=entropy.numpy())


def plot_attention(result: AttentionMaps, path: Path, *, labels: list[str]) -> None:
    """A grid of heat maps, layers down and heads across; the tokens label the axes while there are few."""
    layers, heads, time_steps, _ = result.maps.shape
    figure = Figure(figsize=(2.8 * heads + 0.6, 2.8 * layers), layout="constrained")
    grid = figure.subplots(layers, heads, squeeze=False)
    for layer in range(layers):
        for head in range(heads):
            axes = grid[layer, head]
            image = axes.imshow(result.maps[layer, head], cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
            axes.set_title(f"layer {layer} head {head}: reach {result.distance[layer, head]:.1f}", fontsize=8)
            if time_steps <= 40:
                axes.set_xticks(range(time_steps), labels, fontsize=5)
                axes.set_yticks(range(time_steps), labels, fontsize=5)
            else:
                axes.set_xticks([])
                axes.set_yticks([])
    figure.colorbar(image, ax=grid, shrink=0.6, label="weight (query row -> key column)")
    figure.savefig(path, dpi=110)
