"""Backbones: every model is a recurrence with a state.

Importing this package imports every module in it, and each backbone module
registers its class by name, so a new backbone is one file here and nothing else.
"""
import importlib
import pkgutil

from .base import Backbone, State, map_state, state_tensors

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Backbone", "State", "map_state", "state_tensors"]
