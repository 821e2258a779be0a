"""The sequence classifier (many-to-one): embedding -> backbone(s) -> masked pooling -> linear head."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..backbones.base import Backbone, lengths_mask
from ..config import Config
from ..errors import SeqlabError
from ..registry import build_backbone
from .language_model import OneHot

POOLINGS = ("last", "mean", "max", "attention")


def reverse_within_lengths(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each row's first ``length`` positions, leaving its padding where it is.

    x (B, T, D), lengths (B,) -> (B, T, D). Applying it twice gives x back.
    """
    positions = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
    last = (lengths - 1).unsqueeze(1)  # (B, 1)
    source = torch.where(positions <= last, last - positions, positions)  # (B, T)
    return x.gather(1, source.unsqueeze(2).expand_as(x))


class SequenceClassifier(nn.Module):
    r"""p(c | x_1..x_L) = softmax(W_c pool(h_1..h_L) + b_c), over right-padded batches.

    h_t = backbone(E x)_t; with ``bidirectional`` a second backbone reads each
    sequence reversed within its own length and h_t = [h_t^fwd ; h_t^rev], where
    h_t^rev has read x_L..x_t. Padding never reaches the prediction: the
    backbones get the lengths and every pooling is masked to t <= L.

    With ``bag_of_tokens`` a wide path joins the deep one (as in fastText and
    wide-and-deep models): logits += (1/L) sum_{t<=L} U[x_t], U (V, C) learned and
    started at zero, a linear model of the bag of tokens trained jointly with the
    encoder, so a small data set can lean on word identity while the encoder
    learns what word order adds.

    Poolings:
        last:      each direction's final output, h_L^fwd (and h_1^rev);
        mean:      (1/L) sum_{t<=L} h_t;
        max:       max_{t<=L} h_t, elementwise;
        attention: sum_{t<=L} a_t h_t,  a = softmax_{t<=L}(v^T h_t), v learned.

    Args:
        vocab_size: V.
        num_classes: C.
        backbone: any registered backbone whose input size is the embedding width.
        reverse_backbone: the second, right-to-left backbone (bidirectional), or None.
        embedding: ``"learned"`` (nn.Embedding(V, E)) or ``"onehot"`` (E = V).
        pooling: one of ``POOLINGS``.
        dropout: on the embedded tokens and on the pooled vector, before the head.
        bag_of_tokens: add the wide path above.

    Inputs/outputs: tokens (B, T) int64 and lengths (B,) (None: all T) -> logits (B, C).
    ``embedding`` and ``backbone`` are named as in ``LanguageModel`` so a language
    model's weights can initialise them.
    """

    def __init__(self, vocab_size: int, num_classes: int, backbone: Backbone, *,
                 reverse_backbone: Backbone | None = None, embedding: str = "learned", pooling: str = "last",
                 dropout: float = 0.0, bag_of_tokens: bool = False) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.vocab_size = vocab_size
        self.num_classes = num_classes
        self.pooling = pooling
        if embedding == "onehot":
            self.embedding: nn.Module = OneHot(vocab_size)
        else:
            self.embedding = nn.Embedding(vocab_size, backbone.input_size)
        self.backbone = backbone
        self.reverse_backbone = reverse_backbone
        width = backbone.output_size + (reverse_backbone.output_size if reverse_backbone is not None else 0)
        self.attention_score = nn.Linear(width, 1, bias=False) if pooling == "attention" else None
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)
        self.bag = nn.Embedding(vocab_size, num_classes) if bag_of_tokens else None
        if self.bag is not None:
            nn.init.zeros_(self.bag.weight)

    def features(self, tokens: Tensor, lengths: Tensor) -> Tensor:
        """tokens (B, T) and lengths (B,) -> per-position outputs (B, T, D), zero at padding."""
        embedded = self.dropout(self.embedding(tokens))  # (B, T, E)
        forward_outputs, _ = self.backbone(embedded, None, lengths)  # (B, T, H)
        if self.reverse_backbone is None:
            return forward_outputs
        reverse_outputs, _ = self.reverse_backbone(reverse_within_lengths(embedded, lengths), None, lengths)
        return torch.cat([forward_outputs, reverse_within_lengths(reverse_outputs, lengths)], dim=2)  # (B, T, 2H)

    def pool(self, outputs: Tensor, lengths: Tensor) -> Tensor:
        """(B, T, D) outputs -> (B, D), looking only at each row's first ``length`` positions."""
        mask = lengths_mask(lengths, outputs.shape[1]).unsqueeze(2)  # (B, T, 1)
        if self.pooling == "last":
            rows = torch.arange(outputs.shape[0], device=outputs.device)
            last = outputs[rows, lengths - 1]  # (B, D)
            if self.reverse_backbone is None:
                return last
            # the reverse direction ends at position 1: that output has read the whole sequence
            forward_width = self.backbone.output_size
            return torch.cat([last[:, :forward_width], outputs[:, 0, forward_width:]], dim=1)
        if self.pooling == "mean":
            return (outputs * mask).sum(1) / lengths.unsqueeze(1).to(outputs.dtype)  # (B, D)
        if self.pooling == "max":
            return outputs.masked_fill(~mask, float("-inf")).amax(1)  # (B, D)
        scores = self.attention_score(outputs).masked_fill(~mask, float("-inf"))  # (B, T, 1)
        weights = torch.softmax(scores, dim=1)  # (B, T, 1)
        return (weights * outputs).sum(1)  # (B, D)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        if lengths is None:
            lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long, device=tokens.device)
        pooled = self.pool(self.features(tokens, lengths), lengths)  # (B, D)
        logits = self.head(self.dropout(pooled))  # (B, C)
        if self.bag is None:
            return logits
        mask = lengths_mask(lengths, tokens.shape[1]).unsqueeze(2)  # (B, T, 1)
        bag = (self.bag(tokens) * mask).sum(1) / lengths.unsqueeze(1).to(logits.dtype)  # (B, C)
        return logits + bag


def build_classifier(config: Config, vocab_size: int, num_classes: int) -> SequenceClassifier:
    """Embedding -> backbone(s) -> pooling -> head from ``config.model`` and ``config.task``."""
    model, task = config.model, config.task
    embedding_size = vocab_size if model.embedding == "onehot" else (model.embedding_size or model.hidden_size)

    def backbone() -> Backbone:
        return build_backbone(model.backbone, input_size=embedding_size, hidden_size=model.hidden_size,
                              num_layers=model.num_layers, dropout=model.dropout, **model.options)

    try:
        return SequenceClassifier(vocab_size, num_classes, backbone(),
                                  reverse_backbone=backbone() if task.bidirectional else None,
                                  embedding=model.embedding, pooling=task.pooling, dropout=model.dropout,
                                  bag_of_tokens=task.bag_of_tokens)
    except (ValueError, TypeError) as error:
        raise SeqlabError(f"cannot build the classifier: {error}") from None
