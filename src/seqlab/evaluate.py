"""Evaluate a checkpoint on a data file, on the split its training used."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import ENCODING_TASKS
from .data.synthetic import BUILTIN_PREFIX
from .data.text import UTF8, check_encoding
from .decode import use_beam_size
from .errors import SeqlabError
from .train.checkpoint import load_checkpoint


def use_encoding(checkpoint: Any, encoding: str | None) -> None:
    """Make a loaded checkpoint read the files given to ``eval`` and ``predict`` in ``encoding``; None: UTF-8, whatever
    the training data's was (a file's encoding is the file's own, not the model's)."""
    task = checkpoint.config.task.name
    if encoding is not None and task not in ENCODING_TASKS:
        raise SeqlabError(f"--encoding is for checkpoints of --task {', '.join(ENCODING_TASKS)}; this one is --task "
                          f"{task}, which reads UTF-8")
    checkpoint.config.data.encoding = UTF8 if encoding is None else check_encoding(encoding)


def data_to_read(checkpoint: Any, checkpoint_dir: str | Path, data_path: str | Path | None, encoding: str | None,
                 flag: str) -> str | Path:
    """The file that ``eval`` or ``predict`` reads, and the checkpoint set to read it: ``data_path`` in ``encoding``
    (see ``use_encoding``), or where it is None, the data the checkpoint was trained on, in the encoding it was read
    in unless ``encoding`` says otherwise; one line naming ``flag`` where that data is not here."""
    if data_path is None:
        data_path = checkpoint.config.data.path
        if not str(data_path).startswith(BUILTIN_PREFIX) and not Path(data_path).exists():  # gone, or run elsewhere
            raise SeqlabError(f"{checkpoint_dir} was trained on {data_path}, which is not in {Path.cwd()}; pass "
                              f"{flag} with the file to read")
        if encoding is not None:
            use_encoding(checkpoint, encoding)
    else:
        use_encoding(checkpoint, encoding)
    return data_path


def evaluate_checkpoint(checkpoint_dir: str | Path, data_path: str | Path | None = None, *, split: str = "val",
                        beam_size: int | None = None, device: str = "cpu", encoding: str | None = None) -> dict[str, Any]:
    """The task's metrics (lower-case keys) on ``split`` (val, train or all) of ``data_path`` (see ``data_to_read``:
    None, the data the checkpoint was trained on), and under ``data`` the file's name. ``beam_size`` (seq2seq only)
    replaces the checkpoint's; the model runs on ``device``."""
    checkpoint = load_checkpoint(checkpoint_dir, device=device)
    use_beam_size(checkpoint, beam_size)
    data_path = data_to_read(checkpoint, checkpoint_dir, data_path, encoding, "--data")
    return {**checkpoint.task.evaluate_file(checkpoint.model, data_path, split=split), "data": str(data_path)}
