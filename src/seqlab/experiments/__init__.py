"""``seqlab experiment``: the classic claims about sequence models, reproduced with figures and numbers.

Importing this package imports every module in it; each experiment module
registers a function with ``@register_experiment``, so a new experiment is one
file here and nothing else. See ``base.py`` for what an experiment returns and
``report.py`` for the HTML page that gathers them.
"""
import importlib
import pkgutil

from .base import (EXPERIMENTS, PRESETS, Experiment, ExperimentResult, experiment_names, register_experiment,
                   run_experiment)

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "report") and not _module.name.startswith("common"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["EXPERIMENTS", "PRESETS", "Experiment", "ExperimentResult", "experiment_names", "register_experiment",
           "run_experiment"]
