"""The one interface every backbone implements: a recurrence with a state.

    y_t, s_t = f(x_t, s_{t-1})

``forward`` runs a whole sequence (the fast path for training), ``step`` runs one
position (the streaming path for generation). A state is a tensor or a tuple,
list or dict of them (a "pytree"); ``map_state`` applies a function to every
tensor in one, which is how the trainer detaches a carried state between
truncated-BPTT windows.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, ClassVar, Iterator

import torch
from torch import Tensor, nn

State = Any  # a Tensor, or a tuple / list / dict of States


def map_state(function: Callable[[Tensor], Tensor], state: State) -> State:
    """Apply ``function`` to every tensor inside a state, keeping its structure."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return function(state)
    if isinstance(state, tuple):
        return tuple(map_state(function, item) for item in state)
    if isinstance(state, list):
        return [map_state(function, item) for item in state]
    if isinstance(state, dict):
        return {key: map_state(function, item) for key, item in state.items()}
    raise TypeError(f"a state holds tensors, tuples, lists or dicts, not {type(state).__name__}")


_final_state_unused = False


@contextmanager
def final_state_unused(unused: bool = True) -> Iterator[None]:
    """Within this block the caller reads no final state of a forward from a fresh state (training with random
    windows), so a backbone whose state costs work to build (the Transformer's key/value cache) may return None."""
    global _final_state_unused
    previous, _final_state_unused = _final_state_unused, unused
    try:
        yield
    finally:
        _final_state_unused = previous


def final_state_wanted() -> bool:
    """False inside ``final_state_unused()``."""
    return not _final_state_unused


def state_tensors(state: State) -> list[Tensor]:
    """Every tensor inside a state, in a fixed order (for saving and comparing)."""
    found: list[Tensor] = []
    map_state(lambda tensor: found.append(tensor) or tensor, state)
    return found


def lengths_mask(lengths: Tensor, time_steps: int) -> Tensor:
    """(B,) lengths -> (B, T) bool mask, True at real positions."""
    positions = torch.arange(time_steps, device=lengths.device)
    return positions.unsqueeze(0) < lengths.unsqueeze(1)


def check_lengths(lengths: Tensor, batch: int, time_steps: int) -> Tensor:
    """Validate (B,) lengths of a right-padded batch: 1 <= length <= T."""
    lengths = torch.as_tensor(lengths).to(dtype=torch.long)
    if lengths.shape != (batch,):
        raise ValueError(f"lengths must have shape ({batch},), got {tuple(lengths.shape)}")
    if bool((lengths < 1).any()) or bool((lengths > time_steps).any()):
        raise ValueError(f"every length must be between 1 and {time_steps}")
    return lengths


class Backbone(nn.Module):
    """Base class of all backbones: ``(B, T, *input_shape) -> (B, T, *output_shape)`` with a state; for most
    backbones that is ``(B, T, input_size) -> (B, T, output_size)``.

    Subclasses implement ``init_state``, ``forward`` and ``step``. Invariants
    (tested for every registered backbone):

    1. stepping position by position gives ``forward``'s outputs and final state;
    2. ``forward(x[:, :k])`` then ``forward(x[:, k:], state)`` gives ``forward(x)``;
    3. y_t does not depend on x_t' for t' > t.

    With ``lengths`` (right-padded batches) the returned state is each
    sequence's state at its own last real position and padded outputs are zero.
    """

    reads_frames: ClassVar[bool] = False  # True: x is (B, T, C, H, W), see input_shape

    def __init__(self, input_size: int, hidden_size: int, *, num_layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if input_size < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError("input_size, hidden_size and num_layers must be positive")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout

    @property
    def output_size(self) -> int:
        return self.hidden_size

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one position of x, after (B, T): (input_size,) for a backbone that reads vectors,
        (C, H, W) for one that reads frames (``reads_frames``)."""
        return (self.input_size,)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """The shape of one position of y, after (B, T)."""
        return (self.output_size,)

    @property
    def forward_limit(self) -> int | None:
        """The most positions ``forward`` can take from a fresh state (None: any); ``step`` has no limit."""
        return None

    def init_state(self, batch_size: int) -> State:  # pragma: no cover - interface
        raise NotImplementedError

    def forward(self, x: Tensor, state: State = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:  # pragma: no cover
        raise NotImplementedError

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:  # pragma: no cover - interface
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, dropout={self.dropout}"
