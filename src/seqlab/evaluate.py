"""Evaluate a checkpoint on a data file, on the split its training used."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .decode import use_beam_size
from .train.checkpoint import load_checkpoint


def evaluate_checkpoint(checkpoint_dir: str | Path, data_path: str | Path, *, split: str = "val",
                        beam_size: int | None = None, device: str = "cpu") -> dict[str, Any]:
    """The task's metrics (lower-case keys) on ``split`` (val, train or all) of ``data_path``;
    ``beam_size`` (seq2seq only) replaces the checkpoint's; the model runs on ``device``."""
    checkpoint = load_checkpoint(checkpoint_dir, device=device)
    use_beam_size(checkpoint, beam_size)
    return checkpoint.task.evaluate_file(checkpoint.model, data_path, split=split)
