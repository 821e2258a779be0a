"""TensorBoard logging (the optional ``tensorboard`` extra), through torch's SummaryWriter.

A run's event files live in ``OUT/tensorboard``. Scalars are tagged by kind:
``train/loss``, ``train/lr``, ``train/grad_norm`` (before clipping),
``train/tokens_per_second`` (and ``train/pascanu`` when the regulariser is on);
``val/<metric>`` for every validation metric. A resumed run writes to the same
directory from its checkpoint's step on, purging anything an interrupted run
logged past that step, so its curves continue the earlier ones. ``seqlab
diagnose`` adds its figures to a run that logs here, as images.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import SeqlabError

DIRECTORY = "tensorboard"
NOT_SCALARS = ("kind", "step", "train_seconds", "elapsed_seconds")


def summary_writer_class() -> type:
    """torch's SummaryWriter, or one line naming the extra when the tensorboard package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise SeqlabError("TensorBoard logging needs the tensorboard package: pip install 'seqlab[tensorboard]'") from None
    return SummaryWriter


def summary_writer(directory: Path, *, purge_step: int | None = None) -> Any:
    return summary_writer_class()(log_dir=str(directory), purge_step=purge_step)


class TensorBoardLog:
    """The trainer's records as TensorBoard scalars: a train record's numbers under ``train/``, an eval's under ``val/``."""

    def __init__(self, run_directory: Path, *, resume_step: int | None = None) -> None:
        # a run resumed after step s logs from s + 1 on: whatever an interrupted run logged there is dropped
        purge_step = None if resume_step is None else resume_step + 1
        self.writer = summary_writer(run_directory / DIRECTORY, purge_step=purge_step)

    def write(self, record: dict[str, Any]) -> None:
        prefix = "train" if record["kind"] == "train" else "val"
        for name, value in record.items():
            if name not in NOT_SCALARS:
                self.writer.add_scalar(f"{prefix}/{name}", value, global_step=record["step"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def log_figures(run_directory: Path, figures: dict[str, Path], *, step: int) -> None:
    """Add PNG figures to a run's TensorBoard log as images tagged ``diagnostics/<name>``."""
    from matplotlib import pyplot

    writer = summary_writer(run_directory / DIRECTORY)
    for name, path in figures.items():
        writer.add_image(f"diagnostics/{name}", pyplot.imread(path)[..., :3], global_step=step, dataformats="HWC")
    writer.close()
