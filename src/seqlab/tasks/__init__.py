"""Problem shapes, by name: every task trains through the same trainer and checkpoints the same way."""
from __future__ import annotations

import importlib
import pkgutil

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


# every module here registers its task(s); importing them all makes a new task one file
for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Batch", "BatchSource", "Task", "TASKS", "register_task", "task_class"]
