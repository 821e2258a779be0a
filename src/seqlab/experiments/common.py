"""Pieces shared by the experiments: training through the one trainer, and figures."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..config import Config  # noqa: E402
from ..train.checkpoint import Checkpoint, load_checkpoint  # noqa: E402
from ..train.trainer import BEST_DIRECTORY, TrainSummary, train  # noqa: E402


def train_run(values: dict[str, Any], out_dir: str | Path, *, best: bool = True) -> tuple[TrainSummary, Checkpoint]:
    """Train a config given as nested sections ({"model": {...}, "train": {...}}) quietly into ``out_dir``.

    Returns the trainer's summary and the checkpoint (the best one by validation when ``best`` and one exists).
    """
    config = Config.from_dict(values, source="experiment")
    summary = train(config, out_dir, overwrite=True, quiet=True)
    where = Path(out_dir) / BEST_DIRECTORY
    return summary, load_checkpoint(where if best and where.exists() else out_dir)


def save_figure(figure: plt.Figure, out_dir: Path, name: str) -> str:
    """Save ``figure`` as out_dir/name (PNG), close it, return the file name for ExperimentResult.figures."""
    figure.tight_layout()
    figure.savefig(out_dir / name, dpi=110)
    plt.close(figure)
    return name
