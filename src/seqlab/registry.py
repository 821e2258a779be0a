"""Name -> class registries, so configs and checkpoints name things instead of pickling them.

Backbones and tasks register themselves when their package is imported; the
look-ups here import the package on first use. So this module imports no
model or task code, and anything (the config, checkpoints, the tasks
themselves) can import it at the top without a cycle.
"""
from __future__ import annotations

import inspect
import typing
from typing import Any, Callable, TypeVar

from .errors import OptionError, SeqlabError, did_you_mean

BACKBONES: dict[str, type] = {}
TASKS: dict[str, type] = {}

# One line of help per backbone option (its flag: --variant, --num-heads, ...), written once for every backbone
# that takes it; `seqlab train --backbone NAME --help` shows it, and a test fails for an option without one.
BACKBONE_OPTION_HELP: dict[str, str] = {
    "initial_state": "h_0: zeros, random (drawn once, saved, never trained) or learned",
    "init": "weight initialisation: default (torch's), xavier or orthogonal; rnn also identity (the IRNN)",
    "recurrent_gain": "multiply W_hh by this after --init (above 1: an exploding start, below: a vanishing one)",
    "fused": "true: torch's fused kernel; false: our own cell; null: whichever is faster on this device",
    "variant": "the LSTM variant: vanilla, peephole, coupled (input = 1 - forget) or no_forget",
    "forget_bias": "the forget gate's starting bias (1.0 against early forgetting); null: as initialised",
    "nonlinearity": "tanh (a bounded state) or relu",
    "kernel_size": "k, the convolution's width: tcn at least 2 (receptive field 1 + 2 (k - 1) (2^N - 1)), convlstm odd",
    "frame_height": "H, the height in pixels of the frames it reads (the ball task sets it from the data)",
    "frame_width": "W, the width in pixels of the frames it reads (the ball task sets it from the data)",
    "peephole": "the cell state also feeds the gates (W_c * C terms), as in Shi et al. 2015",
    "weight_norm": "reparametrise each convolution's weight as g v / ||v|| (Salimans & Kingma 2016)",
    "num_heads": "attention heads, dividing --hidden-size; null: max(1, H // 64)",
    "bias": "biases in the linear layers and LayerNorms",
    "eps": "added to the normaliser phi(q)^T z",
    "chunk_size": "positions per chunk of the parallel form (masked c x c products against sequential updates)",
    "context_length": "C, the attention window and the cache's length",
    "positional": "position encoding: learned, sinusoidal, rotary, alibi or none",
}

T = TypeVar("T")


def register_backbone(name: str) -> Callable[[T], T]:
    """Class decorator: make a backbone buildable by ``name``."""

    def register(cls: T) -> T:
        if name in BACKBONES:
            raise ValueError(f"backbone {name!r} is registered twice")
        BACKBONES[name] = cls  # type: ignore[assignment]
        return cls

    return register


def backbone_names() -> list[str]:
    _load_backbones()
    return sorted(BACKBONES)


def backbone_class(name: str) -> type:
    _load_backbones()
    if name not in BACKBONES:
        raise OptionError(f"unknown backbone {name!r}; choose one of {', '.join(sorted(BACKBONES))}"
                          f"{did_you_mean(name, BACKBONES, prefix='--backbone ')}")
    return BACKBONES[name]


def backbone_options(name: str) -> dict[str, inspect.Parameter]:
    """The keyword options a backbone accepts, beyond input_size and hidden_size, with their defaults."""
    options: dict[str, inspect.Parameter] = {}
    for cls in reversed(backbone_class(name).__mro__):
        if "__init__" not in vars(cls):
            continue
        for parameter in inspect.signature(vars(cls)["__init__"]).parameters.values():
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                options[parameter.name] = parameter
    return options


def _option_types(name: str) -> dict[str, Any]:
    """Each keyword option's annotated type (``int``, ``float | None``, ...)."""
    types: dict[str, Any] = {}
    for cls in reversed(backbone_class(name).__mro__):
        if "__init__" in vars(cls):
            types.update(typing.get_type_hints(vars(cls)["__init__"]))
    return types


def _typed_option(backbone: str, name: str, value: Any, annotation: Any) -> Any:
    """``value`` as the option's type (an integral float for an int, an int for a float), or an OptionError."""
    allowed = typing.get_args(annotation) or (annotation,)
    if value is None and type(None) in allowed:
        return None
    if isinstance(value, bool):
        if bool in allowed:
            return value
    elif int in allowed and isinstance(value, float) and value.is_integer():
        return int(value)
    elif float in allowed and isinstance(value, (int, float)):
        return float(value)
    elif any(kind is not type(None) and isinstance(value, kind) for kind in allowed):
        return value
    names = " or ".join("null" if kind is type(None) else kind.__name__ for kind in allowed)
    raise OptionError(f"--{name.replace('_', '-')} of backbone {backbone!r} takes {names}, got {value!r}")


def build_backbone(name: str, *, input_size: int, hidden_size: int, num_layers: int = 1, frames: bool = False,
                   **options: Any):
    """Build a registered backbone by name, e.g. ``build_backbone("lstm", input_size=65, hidden_size=256, variant="peephole")``.

    ``frames``: the caller feeds frames (B, T, C, H, W); a backbone that reads the other kind is refused.
    Options are checked against the constructor's signature (names and annotated types) first, so a
    wrong one is an OptionError naming it, never a TypeError from inside the constructor.
    """
    cls = backbone_class(name)
    if cls.reads_frames != frames:
        raise OptionError(f"backbone {name!r} reads " + ("frames (B, T, C, H, W); use it with --task ball" if
                          cls.reads_frames else "vectors (B, T, D), not frames"))
    return cls(input_size, hidden_size, num_layers=num_layers, **check_options(name, options))


def check_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """A backbone's options checked by name and annotated type (an OptionError names a wrong one), as those types."""
    known = backbone_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise OptionError(f"backbone {name!r} has no option {', '.join(unknown)}; its options are {', '.join(sorted(known))}")
    types = _option_types(name)
    return {option: _typed_option(name, option, value, types[option]) for option, value in options.items()}


def _load_backbones() -> None:
    from . import backbones  # noqa: F401  (importing registers them)


def register_task(name: str) -> Callable[[T], T]:
    """Class decorator: make a task buildable by ``name`` (its ``name`` attribute is set too)."""

    def register(cls: T) -> T:
        cls.name = name  # type: ignore[attr-defined]
        TASKS[name] = cls  # type: ignore[assignment]
        return cls

    return register


def task_names() -> list[str]:
    _load_tasks()
    return sorted(TASKS)


def task_class(name: str) -> type:
    _load_tasks()
    if name not in TASKS:
        raise SeqlabError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}"
                          f"{did_you_mean(name, TASKS, prefix='--task ')}")
    return TASKS[name]


def _load_tasks() -> None:
    from . import tasks  # noqa: F401  (importing registers them)
