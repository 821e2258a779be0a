"""A data file whose shape suggests another task than the language model it is about to train.

``--task lm`` (the default) reads any text, so a labelled TSV, a numeric
series or ABC tunes train without complaint as a character model, and the
mistake shows only at predict time. The shape is cheap to read from the first
lines: a warning then names the ``--task`` the file looks made for. It is a
warning, not a refusal, because a language model of such text is sometimes
what is meant (the ABC experiments train exactly that).
"""
from __future__ import annotations

import re
from pathlib import Path

from .text import is_number

PROBE_BYTES = 65536
PROBE_LINES = 200
MOST = 0.9  # the share of lines that must agree for a shape to count
ABC_TUNE_START = re.compile(r"^X:\s*\d+\s*$")
TIME_CELL = re.compile(r"^[\d\-+/:.T ]+$")  # a number, a date or a time: a series' first column


def suggested_task(path: str | Path) -> tuple[str, str] | None:
    """(task, what the file looks like) when the start of ``path`` looks made for another task than ``lm``."""
    path = Path(path)
    if not path.is_file():
        return None
    with path.open("rb") as handle:
        text = handle.read(PROBE_BYTES).decode("utf-8", errors="replace")
    lines = [line.rstrip("\r") for line in text.split("\n")[:PROBE_LINES]]
    lines = [line for line in lines if line.strip()]
    if not lines:
        return None
    if path.suffix.lower() == ".abc" or (any(ABC_TUNE_START.match(line) for line in lines)
                                          and any(line.startswith("K:") for line in lines)):
        return "music", "ABC tunes (X: and K: headers)"
    if _share(lines, is_number) >= MOST:
        return "forecast", "a numeric series (one number a line)"
    delimiter = "," if path.suffix.lower() == ".csv" else "\t"
    rows = [line.split(delimiter) for line in lines]
    width = len(rows[0])
    if width < 2 or _share(rows, lambda row: len(row) == width) < MOST:
        return None
    body = rows[1:] if len(rows) > 1 else rows  # the first row may be a header
    kind = "a CSV" if delimiter == "," else "a TSV"
    if (_share([cell for row in body for cell in row[1:]], is_number) >= MOST
            and _share([row[0] for row in body], lambda cell: bool(TIME_CELL.match(cell.strip()))) >= MOST):
        return "forecast", f"{kind} of numeric columns"
    labels = {row[-1].strip() for row in body if len(row) == width}
    if len(labels) <= max(2, min(20, len(body) // 2)) and all(len(label) <= 30 for label in labels):
        shown = ", ".join(sorted(labels)[:5]) + (", ..." if len(labels) > 5 else "")
        return "classify", f"{kind} with labels in its last column ({shown})"
    return "seq2seq", f"{kind} of text pairs"


def task_hint(path: str | Path) -> str | None:
    """One line for a language-model run on ``path`` when the file looks made for another task, else None."""
    suggestion = suggested_task(path)
    if suggestion is None:
        return None
    task, looks = suggestion
    return (f"note: {path} looks like {looks}, made for --task {task}, but trains a language model (--task lm); "
            f"pass --task {task} if that is what you meant")


def _share(items: list, predicate) -> float:
    return sum(1 for item in items if predicate(item)) / max(1, len(items))
