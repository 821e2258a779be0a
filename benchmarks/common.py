"""Shared pieces of the benchmarks: the machine's description and models of matched size."""
from __future__ import annotations

from typing import Any

import torch

from seqlab import backbone_names, build_backbone
from seqlab.experiments.base import machine  # noqa: F401  (every benchmark prints it)
from seqlab.models import LanguageModel

VOCAB = 65  # tinyshakespeare's character count

# Depth per backbone for the matched-size comparisons; the width is then chosen for the parameter budget.
LAYERS = {"rnn": 2, "lstm": 2, "gru": 2, "mingru": 3, "minlstm": 3, "tcn": 4, "linear_attention": 4, "transformer": 4}
WIDTH_STEP = {"transformer": 64, "linear_attention": 64}  # attention widths: whole heads of 64


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
