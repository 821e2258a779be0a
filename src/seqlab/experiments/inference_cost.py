r"""Inference cost per generated token against its position t: a fixed-size state versus a growing context.

Every model is a language model of about the same size, run at batch 1 with
one torch thread. Recurrent models (LSTM, GRU, minGRU) generate through
``step`` with a state of fixed size. The Transformer generates in two ways:

- cached: ``step`` with its key/value cache (context_length = the longest
  position measured, so nothing is ever dropped);
- recompute: no cache, the whole prefix x_1..x_t run through ``forward`` for
  every new token, as nanoGPT's sampler does.

We time each token and count state bytes with ``state_tensors``. Which token
is fed does not change the cost, so the inputs are random tokens. For the
cached Transformer two byte counts are given: *allocated* (seqlab preallocates
a ring of context_length slots per layer) and *live* (the slots that hold a
past position: L x 2 x min(t, C) x H numbers, what a cache grown on demand
would hold). Time against t is summarised by the log-log slope of ms/token
over the measured positions but the first (where a forward pass's fixed costs
dominate): 0 for O(1) per token, 1 for O(t).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbones.base import state_tensors
from .base import ExperimentResult, Finding, register_experiment
from .common import save_figure
from .common_models import matched_language_model, parameter_count

VOCAB = 64
MODELS = ("lstm", "gru", "mingru", "transformer")
SETTINGS = {"smoke": {"positions": 32, "parameters": 20_000, "grid": (4, 8, 16, 32), "repeats": 1},
            "quick": {"positions": 1024, "parameters": 400_000, "grid": (16, 64, 256, 1024), "repeats": 5},
            "full": {"positions": 4096, "parameters": 1_000_000, "grid": (16, 64, 256, 1024, 4096), "repeats": 5,
                     "memory_gib": 2.0}}
FLAT = 0.2  # a log-log slope of time against t below this in size is O(1) per token
GROWS = 0.5  # one above this grows with t
# quick: about a minute on 2 shared cores; the recompute at the last position dominates full
WINDOW = 16  # a position's time is the fastest of the WINDOW steps ending there, over ``repeats`` generations (the
# machine is shared: the minimum is the measurement least disturbed by other jobs; one generation's window of 16
# steps, a few milliseconds, can fall wholly inside another job's time slice)


def state_bytes(state) -> int:
    """Bytes held by every tensor of a state."""
    return sum(tensor.numel() * tensor.element_size() for tensor in state_tensors(state))


def log_log_slope(positions: list[int], values: list[float]) -> float:
    """Least-squares slope of log(value) against log(position): ~0 for constant, ~1 for linear growth."""
    return float(np.polyfit(np.log(positions), np.log(values), 1)[0])


@torch.no_grad()
def step_costs(model: nn.Module, positions: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``positions`` tokens through ``model.step`` at batch 1 -> (seconds (N,), state bytes (N,)) per position."""
    tokens = torch.randint(model.vocab_size, (positions,), generator=torch.Generator().manual_seed(seed))
    state = model.init_state(1)
    seconds, sizes = np.zeros(positions), np.zeros(positions)
    for t in range(positions):
        started = time.perf_counter()
        _, state = model.step(tokens[t:t + 1], state)
        seconds[t] = time.perf_counter() - started
        sizes[t] = state_bytes(state)
    return seconds, sizes


@torch.no_grad()
def recompute_cost(model: nn.Module, position: int, *, repeats: int, seed: int = 0) -> float:
    """Seconds for one token at ``position`` without a cache: forward over the whole prefix of that length (fastest of ``repeats``)."""
    tokens = torch.randint(model.vocab_size, (1, position), generator=torch.Generator().manual_seed(seed))
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        model(tokens)
        times.append(time.perf_counter() - started)
    return float(np.min(times))


def verdict(rows: list[dict[str, Any]], settings: dict[str, Any]) -> Finding:
    """Reproduced: every recurrent model's time per token is flat in t (|slope| < FLAT) and recomputing the prefix
    grows (slope > GROWS). State sizes are reported as measured."""
    grid = settings["grid"]
    by = {row["model"]: row for row in rows}
    recurrent = [by[name] for name in ("lstm", "gru", "mingru")]
    recurrent_flat = all(abs(row["time_slope"]) < FLAT for row in recurrent)
    recompute, cached = by["transformer (recompute)"], by["transformer (cached)"]
    last = grid[-1]
    reproduced = bool(recurrent_flat and recompute["time_slope"] > GROWS)
    constant = [row["model"] for row in recurrent if len({row[f"live_bytes@{t}"] for t in grid}) == 1]
    cache_slope = log_log_slope(list(grid), [cached[f"live_bytes@{t}"] for t in grid])
    text = (
        f"Log-log slope of ms/token against t (0: O(1), 1: O(t)) over t = {', '.join(map(str, grid[1:]))}: "
        + ", ".join(f"{row['model']} {row['time_slope']:.2f}" for row in rows) + ". "
        f"At t = {last}: " + ", ".join(f"{row['model']} {row[f'ms@{last}']:.3g} ms" for row in rows) + ". "
        + (f"The state of {', '.join(constant)} holds the same number of bytes at every t measured; " if constant
           else "No recurrent state kept a constant size; ")
        + f"the Transformer's live cache grows with slope {cache_slope:.2f} in t, to {cached[f'live_bytes@{last}']:.3g} "
          f"bytes at t = {last}. "
        + (f"Every recurrent model is flat (|slope| < {FLAT:g}) and recomputing the prefix grows (slope > {GROWS:g}): "
           "the claim reproduces. " if reproduced else
           f"The claim did not reproduce: it needs every recurrent slope within +-{FLAT:g} and the recompute slope "
           f"above {GROWS:g}. ")
        + f"The cached Transformer's slope is {cached['time_slope']:.2f}"
        + (": it grows with t as well." if cached["time_slope"] > GROWS else
           f", between {FLAT:g} and {GROWS:g} over these positions." if cached["time_slope"] >= FLAT else
           f": flat (|slope| < {FLAT:g}) over these positions."))
    return Finding(text, reproduced)


@register_experiment(
    "inference-cost", title="Inference cost per token: recurrent state vs Transformer context", settings=SETTINGS,
    verdict=verdict, devices=("cpu",),
    claim="An RNN needs only h_{t-1} to produce token t: constant time and memory per step; a Transformer "
          "attends to all t previous positions, so its cache grows as O(t), and without a cache each token "
          "costs a forward pass over the whole prefix (lecture: 'inference needs only h_{t-1}'; Vaswani et al. 2017).")
def run(settings: dict[str, Any], out_dir: Path) -> ExperimentResult:
    import matplotlib.pyplot as plt

    torch.set_num_threads(1)  # the latency of one thread, as the training runs use
    positions, grid = settings["positions"], settings["grid"]
    curves: dict[str, dict[str, list[float]]] = {}
    rows = []
    for name in MODELS:
        options = {"context_length": positions} if name == "transformer" else {}
        model = matched_language_model(name, target_parameters=settings["parameters"], vocab_size=VOCAB, **options)
        passes = [step_costs(model, positions) for _ in range(settings["repeats"])]
        seconds, sizes = np.min([pass_seconds for pass_seconds, _ in passes], axis=0), passes[0][1]
        milliseconds = [1e3 * float(np.min(seconds[max(0, t - WINDOW):t])) for t in grid]
        label = "transformer (cached)" if name == "transformer" else name
        allocated = [float(sizes[t - 1]) for t in grid]
        if name == "transformer":
            backbone = model.backbone
            width = next(backbone.parameters()).element_size()
            live = [2.0 * backbone.num_layers * min(t, positions) * backbone.hidden_size * width for t in grid]
        else:
            live = allocated
        curves[label] = {"ms": milliseconds, "live_bytes": live, "allocated_bytes": allocated}
        rows.append({"model": label, "parameters": parameter_count(model), "width": model.backbone.hidden_size,
                     **{f"ms@{t}": value for t, value in zip(grid, milliseconds)},
                     "time_slope": log_log_slope(list(grid[1:]), milliseconds[1:]),
                     **{f"live_bytes@{t}": value for t, value in zip(grid, live)},
                     "allocated_bytes@end": allocated[-1]})
        if name == "transformer":
            # the same weights with context t: a fresh forward also writes a cache of context_length slots,
            # which recomputing the prefix does not need
            recompute = [1e3 * recompute_cost(matched_language_model(name, target_parameters=settings["parameters"],
                                                                     vocab_size=VOCAB, context_length=t),
                                              t, repeats=settings["repeats"]) for t in grid]
            curves["transformer (recompute)"] = {"ms": recompute, "live_bytes": live, "allocated_bytes": live}
            rows.append({"model": "transformer (recompute)", "parameters": parameter_count(model),
                         "width": model.backbone.hidden_size, **{f"ms@{t}": value for t, value in zip(grid, recompute)},
                         "time_slope": log_log_slope(list(grid[1:]), recompute[1:]),
                         **{f"live_bytes@{t}": value for t, value in zip(grid, live)},
                         "allocated_bytes@end": float("nan")})

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for index, (label, curve) in enumerate(curves.items()):
        colour = f"C{index}"
        left.loglog(grid, curve["ms"], marker="o", color=colour, label=label)
        if "recompute" in label:  # the same keys and values as the live cache, computed afresh for each token
            right.loglog(grid, curve["live_bytes"], marker="+", markersize=12, linestyle="none", color=colour,
                         label=label + ": keys and values recomputed")
            continue
        right.loglog(grid, curve["live_bytes"], marker="o", color=colour, label=label + (" (live)" if "cached" in label else ""))
        if "cached" in label:
            right.loglog(grid, curve["allocated_bytes"], marker="x", linestyle=":", color=colour,
                         label=label + " (allocated ring)")
    left.set_xlabel("position t of the generated token")
    left.set_ylabel("ms per token (batch 1, 1 thread)")
    left.set_title("time per generated token")
    right.set_xlabel("position t")
    right.set_ylabel("state bytes")
    right.set_title("memory carried between tokens")
    for axis in (left, right):
        axis.legend(fontsize=8)
    figures = [save_figure(figure, out_dir, "inference_cost.png")]

    return ExperimentResult(rows=rows, figures=figures, extra={"positions": list(grid), "curves": curves})
