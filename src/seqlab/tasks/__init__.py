"""Problem shapes, by name: every task trains through the same trainer and checkpoints the same way."""
from __future__ import annotations

from typing import Callable, TypeVar

from ..errors import SeqlabError
from .base import Batch, BatchSource, Task

TASKS: dict[str, type[Task]] = {}
T = TypeVar("T")


def register_task(name: str) -> Callable[[T], T]:
    def register(cls: T) -> T:
        cls.name = name  # type: ignore[attr-defined]
        TASKS[name] = cls  # type: ignore[assignment]
        return cls

    return register


def task_class(name: str) -> type[Task]:
    if name not in TASKS:
        raise SeqlabError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}")
    return TASKS[name]


from . import language_model  # noqa: E402,F401  (registers "lm")
from . import classify  # noqa: E402,F401  (registers "classify")
from . import forecast  # noqa: E402,F401  (registers "forecast")
from . import synthetic  # noqa: E402,F401  (registers "synthetic")

__all__ = ["Batch", "BatchSource", "Task", "TASKS", "register_task", "task_class"]
