r"""Hidden-state trajectories: the backbone's output y_t (the last layer's h_t) projected onto its top two principal components.

With Y (T, H) the states and Ybar its column means, the thin SVD
Y - Ybar = U S V^T gives the projection P = (Y - Ybar) V[:, :k] = U[:, :k] S[:k], (T, k),
and component i explains S_i^2 / sum_j S_j^2 of the variance. The path shows what
the lectures describe: a context vector that each input moves, drifting back
toward a baseline as inputs pass.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

ANNOTATIONS = 24  # at most this many tokens are written on the path, so it stays readable


def principal_components(points: np.ndarray, *, count: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """points (T, H) -> (projection (T, count), explained variance ratio (count,)).

    Fewer points or dimensions than ``count`` leave the missing components zero.
    """
    centred = points - points.mean(axis=0, keepdims=True)
    left, singular, _ = np.linalg.svd(centred, full_matrices=False)  # left (T, r), singular (r,)
    kept = min(count, singular.shape[0])
    projection = np.zeros((points.shape[0], count))
    projection[:, :kept] = left[:, :kept] * singular[:kept]
    total = float((singular ** 2).sum())
    explained = np.zeros(count)
    if total > 0:
        explained[:kept] = singular[:kept] ** 2 / total
    return projection, explained


@dataclass
class Trajectory:
    """projection: (T, 2) the states on the top two components; explained: (2,) their variance shares;
    tokens: the T tokens read, as text."""

    projection: np.ndarray
    explained: np.ndarray
    tokens: list[str]

    def to_json(self) -> dict[str, Any]:
        return {"explained_variance_ratio": self.explained.tolist(), "tokens": self.tokens,
                "projection": self.projection.tolist()}


def state_trajectory(outputs: np.ndarray, tokens: list[str]) -> Trajectory:
    """outputs (T, H), the states read after each of ``tokens`` -> their 2-D principal-component path."""
    projection, explained = principal_components(outputs, count=2)
    return Trajectory(projection=projection, explained=explained, tokens=tokens)


def plot_trajectory(result: Trajectory, path: Path) -> None:
    """The path in the plane of the top two components, coloured by time, a few tokens written on it."""
    figure = Figure(figsize=(6.5, 5.5), layout="constrained")
    axes = figure.add_subplot()
    x, y = result.projection[:, 0], result.projection[:, 1]
    axes.plot(x, y, color="lightgrey", linewidth=0.8, zorder=1)
    points = axes.scatter(x, y, c=np.arange(len(x)), cmap="viridis", s=14, zorder=2)
    every = max(1, -(-len(x) // ANNOTATIONS))  # ceiling division
    for t in range(0, len(x), every):
        axes.annotate(repr(result.tokens[t])[1:-1], (x[t], y[t]), fontsize=7, xytext=(3, 3), textcoords="offset points")
    figure.colorbar(points, ax=axes, label="position t")
    axes.set_xlabel(f"PC 1 ({result.explained[0]:.0%} of variance)")
    axes.set_ylabel(f"PC 2 ({result.explained[1]:.0%} of variance)")
    axes.set_title("hidden-state trajectory while reading")
    figure.savefig(path, dpi=110)
