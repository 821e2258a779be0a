"""The per-position model: an input embedding -> any backbone -> a head at every position."""
from __future__ import annotations

from torch import Tensor, nn

from ..backbones.base import Backbone, State
from ..errors import OptionError
from .language_model import OneHot


class PositionwiseModel(nn.Module):
    r"""One output per position, from tokens or from real-valued vectors.

        e_t = E[x_t]              tokens (``vocab_size`` V > 0): a learned table, or one-hot vectors
        e_t = W_e x_t + b_e       vectors (``input_features`` F > 0)
        h_t, s_t = backbone(e_t, s_{t-1})
        o_t = W_o h_t + b_o       K logits (``outputs`` K > 0), or one real value (K = 0)

    Args:
        backbone: any registered backbone; its input size is the embedding width E.
        vocab_size: V, for token inputs (0 for vectors).
        input_features: F, for vector inputs (0 for tokens).
        outputs: K classes per position, or 0 for a real value per position.
        embedding: ``"learned"`` or ``"onehot"`` (tokens only; E must then be V).

    Inputs/outputs: x (B, T) int64 or (B, T, F) float -> (B, T, K) logits or (B, T) values,
    and the backbone's state.
    """

    def __init__(self, backbone: Backbone, *, vocab_size: int = 0, input_features: int = 0, outputs: int,
                 embedding: str = "learned") -> None:
        super().__init__()
        if (vocab_size > 0) == (input_features > 0):
            raise ValueError("give exactly one of vocab_size (token inputs) and input_features (vector inputs)")
        if vocab_size and embedding == "onehot":
            if backbone.input_size != vocab_size:
                raise OptionError(f"a one-hot embedding is {vocab_size} wide; give --embedding-size {vocab_size}")
            self.embedding: nn.Module = OneHot(vocab_size)
        elif vocab_size:
            self.embedding = nn.Embedding(vocab_size, backbone.input_size)
        else:
            self.embedding = nn.Linear(input_features, backbone.input_size)
        self.backbone = backbone
        self.outputs = outputs
        self.head = nn.Linear(backbone.output_size, outputs or 1)

    def init_state(self, batch_size: int) -> State:
        return self.backbone.init_state(batch_size)

    def forward(self, inputs: Tensor, state: State = None) -> tuple[Tensor, State]:
        hidden, state = self.backbone(self.embedding(inputs), state)  # (B, T, H)
        out = self.head(hidden)  # (B, T, K or 1)
        return (out if self.outputs else out.squeeze(-1)), state
