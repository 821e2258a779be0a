"""Progress for every wait longer than a few seconds: a rich bar in a terminal, sparse whole lines elsewhere.

In a terminal the status lives on a bar that redraws in place. In a file or a
pipe (a log, ``| tee``, CI) there is nothing to redraw, so the status is
printed as a line of its own at most once every ``interval`` seconds (the
first and the last always), and no line is ever wrapped: a record that is
longer than the console is one long line, never two halves of a number.
"""
from __future__ import annotations

import statistics
import time
from types import TracebackType
from typing import Callable

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

STATUS_INTERVAL_SECONDS = 5.0


def console_for(*, quiet: bool = False) -> Console:
    """A stderr console that never wraps a record (soft_wrap) and never reads markup into user text."""
    return Console(stderr=True, quiet=quiet, soft_wrap=True, markup=False, highlight=False)


class ProgressReport:
    """What a long wait shows, on ``console``.

    Args:
        label: what is being waited for ("train", "tunes", "experiment counting").
        total: the units of the whole wait (steps, tunes, seconds), or None when unknown.
        console: where to show it (usually :func:`console_for`).
        interval: in a file or pipe, the least seconds between two status lines.
        clock: the time source (tests pass a fake one).
    """

    def __init__(self, label: str, total: float | None, *, console: Console,
                 interval: float = STATUS_INTERVAL_SECONDS, clock=time.monotonic) -> None:
        self.label = label
        self.console = console
        self.interval = interval
        self.clock = clock
        self.last_line: float | None = None
        self.pending = ""
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                            TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console,
                            disable=not console.is_terminal)
        self.task = self.bar.add_task(label, total=total, status="")

    def __enter__(self) -> "ProgressReport":
        self.bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        if self.pending:  # the last status always shows
            self._line(self.pending)
        self.bar.stop()

    def update(self, completed: float, status: str = "", *, total: float | None = None) -> None:
        """Move to ``completed`` units with a one-line ``status``."""
        if total is not None:
            self.bar.update(self.task, total=total)
        self.bar.update(self.task, completed=completed, status=status)
        if self.console.is_terminal:
            return
        now = self.clock()
        if self.last_line is None or now - self.last_line >= self.interval:
            self._line(status)
        else:
            self.pending = status

    def print(self, record: str) -> None:
        """A record that must show whatever the interval (a validation, a finished run), on one line; a status
        held back by the interval shows first, so the lines stay in order."""
        if self.pending:
            self._line(self.pending)
        self.console.print(record)

    def _line(self, status: str) -> None:
        self.console.print(f"{self.label}: {status}" if status else self.label)
        self.last_line = self.clock()
        self.pending = ""


class SlowdownWatch:
    """Notices, once, when training steps collapse because other processes compete for the cores.

    The reference is the median duration of the first ``baseline`` steps after
    the first (which pays for warm-up); the current pace is the median of the
    last ``window`` steps. A collapse is a current median at least ``factor``
    times the reference while the 1-minute load average exceeds the cores:
    torch's threads then wait on each other (a step can take 25x longer), and
    one thread per process usually recovers most of the speed.

    Args:
        threads: torch threads this process uses (the advice depends on it).
        load: the 1-minute load average, e.g. ``lambda: os.getloadavg()[0]``.
        cores: CPU cores of the machine.
    """

    def __init__(self, *, threads: int, load: Callable[[], float], cores: int, baseline: int = 10, window: int = 20,
                 factor: float = 3.0) -> None:
        self.threads, self.load, self.cores = threads, load, cores
        self.baseline, self.window, self.factor = baseline, window, factor
        self.durations: list[float] = []
        self.said = False

    def observe(self, seconds: float) -> str | None:
        """Record one step's duration; return the warning the first time the pace has collapsed."""
        self.durations.append(seconds)
        reference_steps = self.durations[1:1 + self.baseline]
        recent = self.durations[1 + self.baseline:][-self.window:]
        if self.said or len(reference_steps) < self.baseline or len(recent) < self.window:
            return None
        reference, current = statistics.median(reference_steps), statistics.median(recent)
        load = self.load()
        if current < self.factor * reference or load <= self.cores:
            return None
        self.said = True
        advice = ("pass --threads 1 (one torch thread per process), which usually recovers most of the speed"
                  if self.threads > 1 else "this run already uses one thread; fewer competing processes would help")
        return (f"steps now take {current / reference:.0f}x as long as the first ones ({current * 1e3:.0f} ms against "
                f"{reference * 1e3:.0f} ms) and the machine's load ({load:.1f}) exceeds its {self.cores} cores: other "
                f"processes compete for them; {advice}")
