"""Pieces the synthetic-task experiments share: a config for one run, training it, scoring test sets."""
from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import torch

from ..data.synthetic import Examples, build_source
from ..tasks.synthetic import score_examples
from ..train.checkpoint import Checkpoint
from .common import train_run


def tcn_layers(length: int, kernel_size: int = 3) -> int:
    """The fewest residual blocks whose receptive field 1 + 2 (k-1) (2^N - 1) covers ``length`` positions."""
    return max(1, math.ceil(math.log2((length - 1) / (2 * (kernel_size - 1)) + 1)))


def synthetic_config(source: str, options: dict[str, Any], model: dict[str, Any], *, steps: int, seed: int = 0,
                     batch_size: int = 32, learning_rate: float = 2e-3, val_examples: int = 256,
                     **train: Any) -> dict[str, Any]:
    """A nested config for ``train_run``: ``--task synthetic --data builtin:SOURCE``, validated once at the end.

    ``train`` holds further train-section fields (``weight_decay=0.0``, ``clip_norm=...``) that override the defaults.
    """
    return {
        "task": {"name": "synthetic"},
        "data": {"path": f"builtin:{source}", "options": {"val_examples": val_examples, **options}},
        "model": {"hidden_size": 32, **model},
        "train": {"max_steps": steps, "batch_size": batch_size, "learning_rate": learning_rate,
                  "warmup_steps": min(50, steps // 10), "eval_interval": steps, "log_interval": max(1, steps // 20),
                  "seed": seed, "threads": 1, **train},
    }


def train_synthetic(values: dict[str, Any]) -> tuple[dict[str, float], Checkpoint, float]:
    """Train one config in a scratch directory; return its final validation metrics, the checkpoint, the seconds."""
    with tempfile.TemporaryDirectory(prefix="seqlab-experiment-") as scratch:
        summary, checkpoint = train_run(values, Path(scratch) / "run", best=False)
    return summary.metrics or {}, checkpoint, summary.train_seconds


def sequence_correct(checkpoint: Checkpoint, examples: Examples, *, batch_size: int = 64) -> torch.Tensor:
    """(N,) bool: every scored position of each example predicted right (greedy decoding reproduces it)."""
    return score_examples(checkpoint.model, examples, batch_size=batch_size)["all_correct"]


def held_out_set(source: str, options: dict[str, Any], count: int, *, seed: int = 12345) -> Examples:
    """``count`` examples from the validation ranges of ``builtin:SOURCE`` with ``options``."""
    return build_source(f"builtin:{source}", options).sample(count, torch.Generator().manual_seed(seed), "val")


def largest_prefix(ns: list[int], accepted: list[bool]) -> int:
    """The largest n such that every n' <= n in ``ns`` (sorted) is accepted; 0 if the first is not."""
    largest = 0
    for n, ok in zip(ns, accepted):
        if not ok:
            break
        largest = n
    return largest
