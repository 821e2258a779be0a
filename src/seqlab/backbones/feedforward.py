r"""No recurrence at all: the same network at every position, the baseline every recurrence is measured against.

The lectures draw it as copies of one network, one per frame, without
connections between them: y_t depends on x_t alone, so it can say where a ball
is but not where it is going. Its state is empty; it is still a backbone like
any other (forward, step, lengths), which is what lets it stand beside them.
"""
from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from ..registry import register_backbone
from .base import Backbone, State, check_lengths, lengths_mask


@register_backbone("feedforward")
class FeedForward(Backbone):
    r"""A per-position multilayer perceptron with no state:

    .. math::
        h^{(0)}_t = x_t, \quad h^{(l)}_t = \mathrm{ReLU}(W_l h^{(l-1)}_t + b_l), \quad y_t = h^{(L)}_t

    Args:
        input_size: D. hidden_size: H, the width of every layer. num_layers: L.
        dropout: dropout on the outputs of every layer but the last (training only).

    Inputs/outputs: x (B, T, D) -> y (B, T, H); the state is the empty tuple.
    """

    def __init__(self, input_size: int, hidden_size: int, *, num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__(input_size, hidden_size, num_layers=num_layers, dropout=dropout)
        self.layers = nn.ModuleList(nn.Linear(input_size if layer == 0 else hidden_size, hidden_size)
                                    for layer in range(num_layers))

    def init_state(self, batch_size: int) -> State:
        return ()

    def _network(self, x: Tensor) -> Tensor:
        for index, layer in enumerate(self.layers):
            x = F.relu(layer(x))
            if index < self.num_layers - 1 and self.dropout > 0:
                x = F.dropout(x, self.dropout, self.training)
        return x

    def forward(self, x: Tensor, state: State = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        y = self._network(x)  # (B, T, H)
        if lengths is not None:
            lengths = check_lengths(lengths, x.shape[0], x.shape[1]).to(x.device)
            y = y * lengths_mask(lengths, x.shape[1]).unsqueeze(-1).to(y.dtype)
        return y, ()

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        return self._network(x_t), ()
