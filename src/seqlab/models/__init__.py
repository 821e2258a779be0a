"""Task models and ``build_model``, which rebuilds one from its config by registry names."""
from __future__ import annotations

from ..config import Config
from ..registry import build_backbone
from .language_model import ConditionedLanguageModel, LanguageModel

__all__ = ["ConditionedLanguageModel", "LanguageModel", "build_model"]


def build_model(config: Config, vocab_size: int, *, condition_size: int = 0) -> LanguageModel:
    """Embedding -> backbone -> head, from ``config.model``; a bad option is an OptionError.

    With ``condition_size`` C > 0: a :class:`ConditionedLanguageModel` that starts from a (B, C) condition,
    carried in as ``config.model.conditioning`` says.
    """
    model = config.model
    embedding_size = vocab_size if model.embedding == "onehot" else (model.embedding_size or model.hidden_size)
    backbone = build_backbone(model.backbone, input_size=embedding_size, hidden_size=model.hidden_size,
                              num_layers=model.num_layers, dropout=model.dropout, **model.options)
    if condition_size:
        return ConditionedLanguageModel(vocab_size, backbone, condition_size=condition_size,
                                        conditioning=model.conditioning, embedding=model.embedding,
                                        tie_weights=model.tie_weights)
    return LanguageModel(vocab_size, backbone, embedding=model.embedding, tie_weights=model.tie_weights)
