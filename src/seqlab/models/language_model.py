"""The language model: embedding -> backbone -> linear head over the vocabulary."""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from ..backbones.base import Backbone, State


class OneHot(nn.Module):
    """Token ids -> one-hot vectors of vocabulary size: sparse, no learned meaning."""

    def __init__(self, vocab_size: int) -> None:
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, tokens: Tensor) -> Tensor:
        return F.one_hot(tokens, self.vocab_size).float()  # (..., V)


class LanguageModel(nn.Module):
    r"""Next-token prediction: p(x_{t+1} | x_{<=t}) = softmax(W_hy h_t + b_y).

    Args:
        vocab_size: V.
        backbone: any registered backbone whose input size is the embedding width.
        embedding: ``"learned"`` (nn.Embedding(V, E)) or ``"onehot"`` (E = V).
        tie_weights: share the head's weight with the embedding (Press & Wolf
            2017); needs the backbone's output width to equal E.

    Inputs/outputs: tokens (B, T) int64 -> logits (B, T, V) and the backbone's state.
    """

    def __init__(self, vocab_size: int, backbone: Backbone, *, embedding: str = "learned", tie_weights: bool = False) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        if embedding == "onehot":
            self.embedding: nn.Module = OneHot(vocab_size)
        else:
            self.embedding = nn.Embedding(vocab_size, backbone.input_size)
        self.backbone = backbone
        self.head = nn.Linear(backbone.output_size, vocab_size)
        if tie_weights:
            if embedding != "learned" or backbone.output_size != backbone.input_size:
                raise ValueError("tied weights need a learned embedding as wide as the backbone's output")
            self.head.weight = self.embedding.weight

    def init_state(self, batch_size: int) -> State:
        return self.backbone.init_state(batch_size)

    def forward(self, tokens: Tensor, state: State = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        hidden, state = self.backbone(self.embedding(tokens), state, lengths)  # (B, T, H)
        return self.head(hidden), state  # (B, T, V)

    def step(self, token: Tensor, state: State) -> tuple[Tensor, State]:
        """token (B,) -> logits (B, V) and the next state."""
        hidden, state = self.backbone.step(self.embedding(token), state)  # (B, H)
        return self.head(hidden), state
