"""Task models and ``build_model``, which rebuilds one from its config by registry names."""
from __future__ import annotations

from ..config import Config
from ..errors import SeqlabError
from ..registry import build_backbone
from .language_model import LanguageModel

__all__ = ["LanguageModel", "build_model"]


def build_model(config: Config, vocab_size: int) -> LanguageModel:
    """Embedding -> backbone -> head, from ``config.model``; a bad option becomes a SeqlabError."""
    model = config.model
    embedding_size = vocab_size if model.embedding == "onehot" else (model.embedding_size or model.hidden_size)
    try:
        backbone = build_backbone(
            model.backbone, input_size=embedding_size, hidden_size=model.hidden_size,
            num_layers=model.num_layers, dropout=model.dropout, **model.options)
        return LanguageModel(vocab_size, backbone, embedding=model.embedding, tie_weights=model.tie_weights)
    except (ValueError, TypeError) as error:
        raise SeqlabError(f"cannot build the model: {error}") from None
