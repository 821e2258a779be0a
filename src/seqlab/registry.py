"""Name -> class registries, so configs and checkpoints name things instead of pickling them."""
from __future__ import annotations

import inspect
from typing import Any, Callable, TypeVar

BACKBONES: dict[str, type] = {}

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
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(sorted(BACKBONES))}")
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


def build_backbone(name: str, *, input_size: int, hidden_size: int, num_layers: int = 1, frames: bool = False,
                   **options: Any):
    """Build a registered backbone by name, e.g. ``build_backbone("lstm", input_size=65, hidden_size=256, variant="peephole")``.

    ``frames``: the caller feeds frames (B, T, C, H, W); a backbone that reads the other kind is refused.
    """
    cls = backbone_class(name)
    if cls.reads_frames != frames:
        raise ValueError(f"backbone {name!r} reads " + ("frames (B, T, C, H, W); use it with --task ball" if
                         cls.reads_frames else "vectors (B, T, D), not frames"))
    known = backbone_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"backbone {name!r} has no option {', '.join(unknown)}; its options are {', '.join(sorted(known))}")
    return cls(input_size, hidden_size, num_layers=num_layers, **options)


def _load_backbones() -> None:
    from . import backbones  # noqa: F401  (importing registers them)
