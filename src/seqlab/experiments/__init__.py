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

# the order of the story (and of --list and the report); a module not named here follows, by name
ORDER = ("vanishing_gradients", "long_range", "clipping", "counting", "length_generalisation", "scratchpad",
         "inference_cost", "training_parallelism", "initial_state", "lstm_variants", "sentiment_trajectory", "ball_video")
_modules = [module.name for module in pkgutil.iter_modules(__path__)
            if module.name not in ("base", "report") and not module.name.startswith("common")]
for _name in sorted(_modules, key=lambda name: (ORDER.index(name) if name in ORDER else len(ORDER), name)):
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["EXPERIMENTS", "PRESETS", "Experiment", "ExperimentResult", "experiment_names", "register_experiment",
           "run_experiment"]
