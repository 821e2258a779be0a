"""Reading one sequence through a language model step by step, and the recurrent state's layout.

Every analysis reads one sequence (batch 1) through ``backbone.step``, the
streaming path every backbone has. The recurrent backbones (RNN, LSTM, GRU,
minGRU, minLSTM) share one state layout: a tensor h of shape (L, B, H), or a
tuple (h, c) of two such tensors, with the output y_t equal to the last layer's
h_t. That is what lets the gradient and Jacobian analyses speak of "h_t" for
all of them at once; the other backbones (Transformer, linear attention, TCN)
carry caches or running sums instead, and get the analyses that fit them.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from ..backbones.base import Backbone, State
from ..backbones.minrnn import MinimalRecurrentBackbone
from ..backbones.recurrent import RecurrentBackbone


def is_recurrent(backbone: Backbone) -> bool:
    """Whether the state is h (L, B, H) or (h, c), and y_t is the last layer's h_t."""
    return isinstance(backbone, (RecurrentBackbone, MinimalRecurrentBackbone))


def state_parts(state: State) -> tuple[Tensor, ...]:
    """A recurrent state as a tuple of (L, B, H) tensors, h first."""
    return (state,) if isinstance(state, Tensor) else tuple(state)


def state_from_parts(parts: tuple[Tensor, ...]) -> State:
    """The inverse of :func:`state_parts`: h alone, or the tuple (h, c)."""
    return parts[0] if len(parts) == 1 else parts


def add_to_last_hidden(state: State, delta: Tensor) -> State:
    """The state with ``delta`` (B, H) added to the last layer's h (a new tensor; the graph stays intact)."""
    hidden, *others = state_parts(state)
    shifted = torch.cat([hidden[:-1], (hidden[-1] + delta).unsqueeze(0)])  # (L, B, H)
    return state_from_parts((shifted, *others))


def flatten_state(state: State) -> Tensor:
    """(L, B, H) parts -> (B, S) with S = parts * L * H, every part's layers in order."""
    return torch.cat([part.transpose(0, 1).flatten(1) for part in state_parts(state)], dim=1)


def unflatten_state(flat: Tensor, *, parts: int, layers: int) -> State:
    """(B, S) -> the state of ``parts`` (L, B, H) tensors; the inverse of :func:`flatten_state`."""
    batch = flat.shape[0]
    chunks = flat.view(batch, parts, layers, -1).unbind(1)  # each (B, L, H)
    return state_from_parts(tuple(chunk.transpose(0, 1) for chunk in chunks))


@dataclass
class Reading:
    """One sequence read through the model by ``step``.

    inputs: (T, E) the embedded tokens x_1 .. x_T.
    outputs: (T, H) the backbone's outputs y_1 .. y_T (for a recurrent backbone, the last layer's h_t).
    states: s_0 .. s_T for a recurrent backbone (each a batch-1 state), empty for the others,
        whose caches would cost O(T) memory per step to keep.
    """

    inputs: Tensor
    outputs: Tensor
    states: list[State]


@torch.no_grad()
def read_sequence(model: nn.Module, tokens: Tensor) -> Reading:
    """Step a language model's backbone through ``tokens`` (T,) from its initial state."""
    backbone = model.backbone
    inputs = model.embedding(tokens)  # (T, E)
    state = backbone.init_state(1)
    keep = is_recurrent(backbone)
    states = [state] if keep else []
    outputs = []
    for t in range(inputs.shape[0]):
        y_t, state = backbone.step(inputs[t:t + 1], state)  # (1, H)
        outputs.append(y_t[0])
        if keep:
            states.append(state)
    return Reading(inputs=inputs, outputs=torch.stack(outputs), states=states)


def stacked_parts(states: list[State]) -> tuple[Tensor, ...]:
    """Batch-1 recurrent states s_0 .. s_T -> one (T + 1, L, H) tensor per part, h first."""
    per_state = [state_parts(state) for state in states]
    return tuple(torch.stack([parts[index][:, 0] for parts in per_state]) for index in range(len(per_state[0])))
