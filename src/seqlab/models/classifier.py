"""The sequence classifier (many-to-one): embedding -> backbone(s) -> masked pooling -> linear head."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..backbones.base import Backbone, lengths_mask
from ..config import Config
from ..errors import OptionError
from ..registry import build_backbone
from .language_model import OneHot

POOLINGS = ("last", "mean", "max", "attention")
NGRAM_BUCKETS = 1 << 18  # rows of the bag-of-tokens path that hashed token n-grams (n >= 2) share
SUBWORD_NUMBERS = 1 << 19  # the bag's subword rows hold about this many numbers (rows x classes), at most


def subword_buckets(num_classes: int) -> int:
    """The rows that hashed subwords share in a bag of ``num_classes`` columns: 2^18 for two classes, fewer for
    more (a bag of 100 classes is not a hundred times the size and the work of a step), never under 2^14."""
    return max(1 << 14, min(1 << 18, SUBWORD_NUMBERS // num_classes))


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
    learns what word order adds. With ``ngrams`` N > 1 the bag also holds every
    n-gram of 2..N tokens, each hashed to one of ``NGRAM_BUCKETS`` further rows
    of U (h(x_t..x_{t+n-1}) = (((x_t V + x_{t+1}) mod B) V + ...) mod B), and the
    mean runs over all of the row's unigrams and n-grams. With ``subwords`` the
    tokens come with the hashed character n-grams of their words (tokens
    (B, T, 1 + K): the token, then K bucket numbers 1..B, 0 for none;
    ``subword_ids``, B = ``subword_buckets(C)``), and each token's row is
    U[x_t] + sum_k U[o + s_tk - 1] (o: the first subword row, after the tokens' and n-grams'),
    as fastText builds a word from its pieces: a word never seen in training
    (the unknown token) still counts by its pieces. The mean stays one over
    tokens and n-grams, so a word weighs the same with few pieces or many.

    With ``word_dropout`` p, training replaces each token by the unknown token
    (id 0) with probability p, for both paths: the model cannot lean on any one
    word.

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
        ngrams: the longest n-gram the wide path reads (1: single tokens).
        word_dropout: p above.
        subwords: the inputs carry character n-grams for the wide path.

    Inputs/outputs: tokens (B, T) int64, or (B, T, 1 + K) with ``subwords``, and lengths (B,) (None: all T) ->
    logits (B, C).
    ``embedding`` and ``backbone`` are named as in ``LanguageModel`` so a language
    model's weights can initialise them.
    """

    def __init__(self, vocab_size: int, num_classes: int, backbone: Backbone, *,
                 reverse_backbone: Backbone | None = None, embedding: str = "learned", pooling: str = "last",
                 dropout: float = 0.0, bag_of_tokens: bool = False, ngrams: int = 1,
                 word_dropout: float = 0.0, subwords: bool = False) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise OptionError(f"pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        if num_classes < 2:
            raise OptionError(f"a classifier needs at least 2 classes, got {num_classes}")
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
        self.ngrams = ngrams
        self.word_dropout = word_dropout
        self.first_subword_row = vocab_size + (NGRAM_BUCKETS if ngrams > 1 else 0)
        bag_rows = self.first_subword_row + (subword_buckets(num_classes) if subwords else 0)
        self.bag = nn.Embedding(bag_rows, num_classes) if bag_of_tokens else None
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

    def bag_rows(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """tokens (B, T), lengths (B,) -> the wide path's rows of U (B, F) and whether each is real (B, F):
        the T tokens, then the T - n + 1 hashed n-grams for n = 2..ngrams."""
        mask = lengths_mask(lengths, tokens.shape[1])  # (B, T)
        rows, real = [tokens], [mask]
        hashed = tokens
        for n in range(2, self.ngrams + 1):
            hashed = (hashed[:, :-1] * self.vocab_size + tokens[:, n - 1:]) % NGRAM_BUCKETS  # (B, T - n + 1)
            rows.append(self.vocab_size + hashed)
            real.append(mask[:, n - 1:])  # the n-gram from t is real when its last token, t + n - 1, is
        return torch.cat(rows, 1), torch.cat(real, 1)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        if lengths is None:
            lengths = torch.full((tokens.shape[0],), tokens.shape[1], dtype=torch.long, device=tokens.device)
        subwords = None
        if tokens.dim() == 3:
            tokens, subwords = tokens[:, :, 0], tokens[:, :, 1:]  # (B, T), (B, T, K)
        if self.training and self.word_dropout > 0:
            dropped = torch.rand(tokens.shape, device=tokens.device) < self.word_dropout  # (B, T)
            tokens = tokens.masked_fill(dropped, 0)
            subwords = None if subwords is None else subwords.masked_fill(dropped.unsqueeze(2), 0)
        pooled = self.pool(self.features(tokens, lengths), lengths)  # (B, D)
        logits = self.head(self.dropout(pooled))  # (B, C)
        if self.bag is None:
            return logits
        rows, real = self.bag_rows(tokens, lengths)  # (B, F) each
        real = real.unsqueeze(2).to(logits.dtype)  # (B, F, 1)
        summed = (self.bag(rows) * real).sum(1)  # (B, C)
        if subwords is not None:  # real[:, :T]: which tokens are (bag_rows puts them first)
            pieces = ((subwords > 0).to(logits.dtype) * real[:, :tokens.shape[1]]).unsqueeze(3)  # (B, T, K, 1)
            pieces_rows = self.first_subword_row + (subwords - 1).clamp(min=0)  # (B, T, K)
            summed = summed + (self.bag(pieces_rows) * pieces).sum((1, 2))
        return logits + summed / real.sum(1)


class ClassifierEnsemble(nn.Module):
    r"""K ``SequenceClassifier`` s trained side by side, predicting together: p(c | x) = (1/K) sum_k p_k(c | x).

    The members differ in their initialisation and dropout masks and see the
    same batches; each is trained on its own cross-entropy (the loss is their
    mean), so they stay independent models whose errors partly cancel.

    Inputs/outputs: tokens (B, T) int64 and lengths (B,) -> each member's logits (K, B, C);
    ``log_probabilities`` turns them into the ensemble's (B, C).
    """

    def __init__(self, members: list[SequenceClassifier]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, tokens: Tensor, lengths: Tensor | None = None) -> Tensor:
        return torch.stack([member(tokens, lengths) for member in self.members])  # (K, B, C)


def log_probabilities(outputs: Tensor) -> Tensor:
    """A classifier's logits (B, C), or an ensemble's (K, B, C) -> log p(c | x) (B, C), the ensemble's the log of
    its members' mean probability."""
    if outputs.dim() == 2:
        return outputs.log_softmax(1)
    return torch.logsumexp(outputs.log_softmax(2), 0) - math.log(outputs.shape[0])  # (B, C)


def build_classifier(config: Config, vocab_size: int, num_classes: int) -> SequenceClassifier:
    """Embedding -> backbone(s) -> pooling -> head from ``config.model`` and ``config.task``."""
    model, task = config.model, config.task
    embedding_size = vocab_size if model.embedding == "onehot" else (model.embedding_size or model.hidden_size)

    def backbone() -> Backbone:
        return build_backbone(model.backbone, input_size=embedding_size, hidden_size=model.hidden_size,
                              num_layers=model.num_layers, dropout=model.dropout, **model.options)

    return SequenceClassifier(vocab_size, num_classes, backbone(), reverse_backbone=backbone() if task.bidirectional else None,
                              embedding=model.embedding, pooling=task.pooling, dropout=model.dropout,
                              bag_of_tokens=task.bag_of_tokens, ngrams=task.ngrams, word_dropout=task.word_dropout,
                              subwords=task.subwords > 0)
