"""Problem shapes, by name: every task trains through the same trainer and checkpoints the same way."""
from __future__ import annotations

import importlib
import pkgutil

from ..registry import TASKS, register_task, task_class
from .base import Batch, BatchSource, Task


# every module here registers its task(s); importing them all makes a new task one file
for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Batch", "BatchSource", "Task", "TASKS", "register_task", "task_class"]
