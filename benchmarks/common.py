"""Shared pieces of the benchmarks: the machine's description and models of matched size."""
from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

import torch

from seqlab import backbone_names, build_backbone
from seqlab.models import LanguageModel

VOCAB = 65  # tinyshakespeare's character count

# Depth per backbone for the matched-size comparisons; the width is then chosen for the parameter budget.
LAYERS = {"rnn": 2, "lstm": 2, "gru": 2, "mingru": 3, "minlstm": 3, "tcn": 4, "linear_attention": 4, "transformer": 4}
WIDTH_STEP = {"transformer": 64, "linear_attention": 64}  # attention widths: whole heads of 64


def machine() -> str:
    """CPU model, threads and versions, for every table we print."""
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{model}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
            f"Python {platform.python_version()}")


def parameter_count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def matched_language_model(name: str, *, target_parameters: int = 1_000_000, vocab_size: int = VOCAB,
                           **options: Any) -> LanguageModel:
    """A language model with backbone ``name`` whose width is chosen to come closest to ``target_parameters``."""
    step = WIDTH_STEP.get(name, 16)
    layers = LAYERS.get(name, 2)
    best: tuple[int, LanguageModel] | None = None
    for width in range(step, 4096 + step, step):
        backbone = build_backbone(name, input_size=width, hidden_size=width, num_layers=layers, **options)
        model = LanguageModel(vocab_size, backbone)
        gap = abs(parameter_count(model) - target_parameters)
        if best is None or gap < best[0]:
            best = (gap, model)
        if parameter_count(model) > target_parameters:
            break
    assert best is not None
    return best[1]


def available(names: list[str]) -> list[str]:
    registered = set(backbone_names())
    return [name for name in names if name in registered]
