"""Shared pieces of the benchmarks: the machine's description and models of matched size."""
from __future__ import annotations

from typing import Any

from seqlab import backbone_names
from seqlab.experiments.base import machine  # noqa: F401  (every benchmark prints it)
from seqlab.experiments.common_models import matched_language_model as matched
from seqlab.experiments.common_models import parameter_count, training_step_times  # noqa: F401
from seqlab.models import LanguageModel

VOCAB = 65  # tinyshakespeare's character count

# Depth per backbone for the benchmarks' matched-size comparisons (the width is then chosen for the budget).
LAYERS = {"rnn": 2, "lstm": 2, "gru": 2, "mingru": 3, "minlstm": 3, "tcn": 4, "linear_attention": 4, "transformer": 4}


def matched_language_model(name: str, *, target_parameters: int = 1_000_000, vocab_size: int = VOCAB,
                           **options: Any) -> LanguageModel:
    """A language model with backbone ``name`` (depth LAYERS[name]) whose width comes closest to ``target_parameters``."""
    return matched(name, target_parameters=target_parameters, vocab_size=vocab_size, layers=LAYERS.get(name, 2),
                   **options)


def available(names: list[str]) -> list[str]:
    registered = set(backbone_names())
    return [name for name in names if name in registered]
