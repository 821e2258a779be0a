"""The language model: embedding -> backbone -> linear head over the vocabulary; and its conditioned form."""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from ..backbones.base import Backbone, State, map_state, state_tensors
from ..errors import OptionError


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
                raise OptionError("tied weights need a learned embedding as wide as the backbone's output")
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


CONDITIONINGS = ("auto", "state", "input")


def takes_hidden_state(backbone: Backbone) -> bool:
    """True when every tensor of the backbone's state is one hidden vector per layer, (num_layers, B, H):
    the state a condition can set (RNN, LSTM, GRU, minGRU, minLSTM), unlike caches and running sums."""
    shapes = {batch: [tuple(tensor.shape) for tensor in state_tensors(backbone.init_state(batch))] for batch in (1, 2)}
    return all(shapes[batch] and all(shape == (backbone.num_layers, batch, backbone.hidden_size) for shape in shapes[batch])
               for batch in (1, 2))


class ConditionedLanguageModel(LanguageModel):
    r"""A language model that starts from a fixed input c (one-to-many): p(x_{t+1} | x_{<=t}, c).

    c (B, C) is a float vector: a one-hot label, a multi-hot set of labels
    (e.g. key and meter), or any features. A learned projection carries it in:

    - ``conditioning="state"``: into the initial state. Each state tensor
      s^{(j)}_0 (one hidden vector per layer, (num_layers, B, H): h, and c for
      an LSTM) becomes s^{(j)}_0 = s^{(j)}_{init} + (W c)^{(j)}, W (J*L*H, C)
      without bias, where s_init is the backbone's own initial state (zeros,
      random or learned). The condition is felt only through the recurrence.
    - ``conditioning="input"``: into every input, e_t = E x_t + W c with
      W (E, C), for backbones whose state cannot take it (transformer, TCN,
      linear attention). The projected condition then rides along in the
      state, {"backbone": s, "condition": W c (B, E)}, so ``step`` sees it too.
    - ``"auto"``: "state" where the backbone's state is hidden vectors, else "input".

    W starts at zero, so an untrained projection (and c = 0, "no condition")
    gives exactly the unconditioned model.

    Args:
        vocab_size, backbone, embedding, tie_weights: see :class:`LanguageModel`.
        condition_size: C.
        conditioning: ``"auto"``, ``"state"`` or ``"input"``.

    Inputs/outputs: as :class:`LanguageModel`; start from ``condition_state(c)``.
    """

    def __init__(self, vocab_size: int, backbone: Backbone, *, condition_size: int, conditioning: str = "auto",
                 embedding: str = "learned", tie_weights: bool = False) -> None:
        super().__init__(vocab_size, backbone, embedding=embedding, tie_weights=tie_weights)
        if conditioning not in CONDITIONINGS:
            raise OptionError(f"conditioning must be one of {', '.join(CONDITIONINGS)}, got {conditioning!r}")
        if condition_size < 1:
            raise OptionError(f"condition_size must be at least 1, got {condition_size}")
        hidden_state = takes_hidden_state(backbone)
        if conditioning == "state" and not hidden_state:
            raise OptionError(f"a {type(backbone).__name__} state is not one hidden vector per layer, so a condition "
                             "cannot set it; use conditioning 'input' (or 'auto')")
        self.conditioning = conditioning if conditioning != "auto" else ("state" if hidden_state else "input")
        self.condition_size = condition_size
        if self.conditioning == "state":
            state_count = len(state_tensors(backbone.init_state(1)))
            width = state_count * backbone.num_layers * backbone.hidden_size
        else:
            width = backbone.input_size
        self.condition_projection = nn.Linear(condition_size, width, bias=False)
        nn.init.zeros_(self.condition_projection.weight)

    def condition_state(self, condition: Tensor) -> State:
        """condition (B, C) -> the state to start from."""
        batch = condition.shape[0]
        projected = self.condition_projection(condition.to(self.condition_projection.weight))  # (B, width)
        base = self.backbone.init_state(batch)
        if self.conditioning == "input":
            return {"backbone": base, "condition": projected}
        layers, hidden = self.backbone.num_layers, self.backbone.hidden_size
        offsets = iter(projected.view(batch, -1, layers, hidden).permute(1, 2, 0, 3).unbind(0))  # J x (L, B, H)
        return map_state(lambda tensor: tensor + next(offsets), base)

    def init_state(self, batch_size: int) -> State:
        """The unconditioned start (c = 0)."""
        weight = self.condition_projection.weight
        return self.condition_state(weight.new_zeros(batch_size, self.condition_size))

    def forward(self, tokens: Tensor, state: State = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        if self.conditioning == "state":
            return super().forward(tokens, state, lengths)
        if state is None:
            state = self.init_state(tokens.shape[0])
        inputs = self.embedding(tokens) + state["condition"].unsqueeze(1)  # (B, T, E)
        hidden, backbone_state = self.backbone(inputs, state["backbone"], lengths)  # (B, T, H)
        return self.head(hidden), {"backbone": backbone_state, "condition": state["condition"]}

    def step(self, token: Tensor, state: State) -> tuple[Tensor, State]:
        if self.conditioning == "state":
            return super().step(token, state)
        hidden, backbone_state = self.backbone.step(self.embedding(token) + state["condition"], state["backbone"])  # (B, H)
        return self.head(hidden), {"backbone": backbone_state, "condition": state["condition"]}
