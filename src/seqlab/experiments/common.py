"""Pieces shared by the experiments: training through the one trainer (saying which run, how far), and figures."""
from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..config import Config  # noqa: E402
from ..progress import ProgressReport, console_for  # noqa: E402
from ..train.checkpoint import Checkpoint, load_checkpoint  # noqa: E402
from ..train.trainer import BEST_DIRECTORY, Trainer, TrainSummary  # noqa: E402


@dataclass
class ExperimentProgress:
    """The experiment under way, so each of its training runs can say where it stands."""

    name: str
    runs: int = 0


_CURRENT: ContextVar[ExperimentProgress | None] = ContextVar("experiment", default=None)


@contextmanager
def experiment_progress(name: str, preset: str) -> Iterator[ExperimentProgress]:
    """Announce an experiment, number its training runs, and say when it is done and how long it took."""
    console = console_for()
    console.print(f"experiment {name} (preset {preset}): started")
    progress = ExperimentProgress(name)
    token = _CURRENT.set(progress)
    started = time.perf_counter()
    try:
        yield progress
    finally:
        _CURRENT.reset(token)
    console.print(f"experiment {name}: {progress.runs} training runs, done in {time.perf_counter() - started:.0f} s")


def describe_run(config: Config) -> str:
    """Which model on which data with which seed, in a few words: "lstm (variant peephole), H 32, seed 1, builtin:anbn"."""
    model, data = config.model, config.data
    layers = f" x{model.num_layers}" if model.num_layers > 1 else ""
    source = data.path if data.path.startswith("builtin:") else Path(data.path).name
    return (f"{model.backbone}{_shown_options(model.options)}, H {model.hidden_size}{layers}, "
            f"seed {config.train.seed}, {source}{_shown_options(data.options)}")


def _shown_options(options: dict[str, Any]) -> str:
    shown = ", ".join(f"{name} {value}" for name, value in options.items() if name != "val_examples")
    return f" ({shown})" if shown else ""


def train_run(values: dict[str, Any], out_dir: str | Path, *, best: bool = True) -> tuple[TrainSummary, Checkpoint]:
    """Train a config given as nested sections ({"model": {...}, "train": {...}}) into ``out_dir``, showing only
    progress: which run of the experiment, which model and seed, how far.

    Returns the trainer's summary and the checkpoint (the best one by validation when ``best`` and one exists).
    """
    config = Config.from_dict(values, source="experiment")
    experiment = _CURRENT.get()
    label = describe_run(config)
    if experiment is not None:
        experiment.runs += 1
        label = f"{experiment.name} run {experiment.runs}: {label}"
    train = config.train
    by_steps = bool(train.max_steps)

    def report(trainer: Trainer, step: int, loss: float) -> None:
        done = f"step {step}" + (f" of {train.max_steps}" if by_steps else f", {trainer.train_seconds:.0f} of "
                                                                             f"{train.max_seconds:g} s")
        progress.update(step if by_steps else trainer.train_seconds, f"{done}, loss {loss:.4f}")

    with ProgressReport(label, train.max_steps or train.max_seconds, console=console_for()) as progress:
        summary = Trainer(config, out_dir, overwrite=True, quiet=True, step_callback=report).fit()
        metrics = ", ".join(f"{name} {value:.4f}" for name, value in (summary.metrics or {}).items())
        progress.print(f"{label}: {summary.steps} steps in {summary.train_seconds:.1f} s{'; ' + metrics if metrics else ''}")
    where = Path(out_dir) / BEST_DIRECTORY
    return summary, load_checkpoint(where if best and where.exists() else out_dir)


def save_figure(figure: plt.Figure, out_dir: Path, name: str) -> str:
    """Save ``figure`` as out_dir/name (PNG), close it, return the file name for ExperimentResult.figures."""
    figure.tight_layout()
    figure.savefig(out_dir / name, dpi=110)
    plt.close(figure)
    return name
