"""Pieces shared by the experiments that train character language models on the ABC tunes music21 ships.

``write_abc_corpus`` puts a fixed slice of the tunes into a text file the lm
task can read; ``charlm_config`` is the nested config of a short run on it;
``position_losses`` measures the cross-entropy at each position of fresh-state
windows, which shows how much a model's first predictions suffer from its
initial state.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..data.abc import music21_tunes

ABC_FILE = "abc_tunes.txt"


def write_abc_corpus(out_dir: Path, *, characters: int) -> Path:
    """The first tunes of music21's ABC corpora, whole tunes separated by blank lines, up to ``characters``
    characters, written to out_dir/abc_tunes.txt; returns the path. Deterministic."""
    kept: list[str] = []
    total = 0
    for tune in music21_tunes():
        if total + len(tune) + 2 > characters and kept:
            break
        kept.append(tune)
        total += len(tune) + 2
    path = out_dir / ABC_FILE
    path.write_text("\n\n".join(kept) + "\n", encoding="utf-8")
    return path


def charlm_config(path: Path, *, backbone: str, hidden_size: int, steps: int, seed: int, block_size: int = 64,
                  batch_size: int = 32, options: dict[str, Any] | None = None, **train: Any) -> dict[str, Any]:
    """A nested config for a short char-LM run on ``path`` with one torch thread; ``train`` overrides train fields."""
    return {
        "task": {"name": "lm"},
        "data": {"path": str(path), "tokenizer": "char", "block_size": block_size, "val_fraction": 0.1},
        "model": {"backbone": backbone, "hidden_size": hidden_size, "num_layers": 1, "options": dict(options or {})},
        "train": {"batch_size": batch_size, "max_steps": steps, "warmup_steps": min(50, steps // 10),
                  "eval_interval": steps, "eval_max_batches": 8, "log_interval": 10, "seed": seed, "threads": 1,
                  "learning_rate": 3e-3, **train},
    }


@torch.no_grad()
def position_losses(model: nn.Module, tokens: Tensor, *, block_size: int, windows: int, seed: int) -> Tensor:
    """Mean cross-entropy (nats) at each position 1..T of ``windows`` random windows of ``tokens`` (N,).

    Every window starts from the model's initial state, so position 1 is predicted from x_1 and s_0 alone.
    Returns (T,) with T = block_size, float64.
    """
    generator = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(tokens) - block_size, (windows,), generator=generator)
    chunks = tokens[starts.unsqueeze(1) + torch.arange(block_size + 1)]  # (W, T + 1)
    was_training = model.training
    model.eval()
    logits, _ = model(chunks[:, :-1])  # (W, T, V)
    model.train(was_training)
    losses = F.cross_entropy(logits.transpose(1, 2).float(), chunks[:, 1:], reduction="none")  # (W, T)
    return losses.double().mean(0)
