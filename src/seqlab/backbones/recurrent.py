"""The shared machinery of the gated and ungated recurrent backbones (RNN, LSTM, GRU).

A stacked recurrent backbone is a cell (one step of one layer) and a traversal
(the loop over time, then over layers). The traversal lives here; each backbone
file supplies its cell. Parameters use torch's names and layouts
(``weight_ih_l{k}``: (G*H, D_k), ``weight_hh_l{k}``: (G*H, H), ``bias_ih_l{k}``,
``bias_hh_l{k}``) so weights copy to and from ``nn.RNN``/``nn.LSTM``/``nn.GRU``, and
the state layout is torch's: (num_layers, B, H) per state tensor.

Where torch has a fused kernel for the cell (vanilla LSTM, GRU, tanh/ReLU RNN)
``forward`` runs it; ``step`` always runs our own cell, so the step-equals-forward
invariant checks our equations against torch's kernel.

Our own traversal hoists the input projection out of the time loop: one
(B*T, D) x (D, G*H) matrix product per layer, leaving only h_{t-1} W_hh^T and
the gate arithmetic inside the loop.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from .base import Backbone, State, check_lengths, lengths_mask

INITIAL_STATES = ("zeros", "random", "learned")
RANDOM_INITIAL_STATE_STD = 0.1  # the spread of a state drawn once and kept fixed


class RecurrentBackbone(Backbone):
    """A stack of recurrent layers sharing one traversal.

    Subclasses set ``gates`` (how many H-row blocks W_ih has), ``state_names``
    (the per-layer state tensors, h first), and implement ``cell``. They may set
    ``fused_kernel`` to the torch op that computes the same cell.

    Args:
        input_size: D, features per position.
        hidden_size: H.
        num_layers: stacked layers; layer k > 0 reads layer k-1's h_t.
        dropout: dropout on the outputs of every layer but the last (training only).
        initial_state: ``"zeros"``; ``"random"`` (drawn once, saved with the model,
            never trained); ``"learned"`` (a parameter trained with the rest).
        init: ``"default"`` (torch's U(-1/sqrt(H), 1/sqrt(H))), ``"xavier"``
            (Glorot-uniform per gate block, zero biases) or ``"orthogonal"``
            (orthogonal recurrent blocks, Glorot input blocks, zero biases).
        fused: use torch's fused kernel in ``forward`` when the cell has one.
    """

    gates: int = 1
    state_names: tuple[str, ...] = ("h",)
    fused_kernel = None  # e.g. torch.gru; None: our own traversal only
    init_schemes: tuple[str, ...] = ("default", "xavier", "orthogonal")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        dropout: float = 0.0,
        initial_state: str = "zeros",
        init: str = "default",
        fused: bool = True,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers=num_layers, dropout=dropout)
        if initial_state not in INITIAL_STATES:
            raise ValueError(f"initial_state must be one of {', '.join(INITIAL_STATES)}, got {initial_state!r}")
        if init not in self.init_schemes:
            raise ValueError(f"init must be one of {', '.join(self.init_schemes)}, got {init!r}")
        self.initial_state = initial_state
        self.init = init
        self.fused = fused
        rows = self.gates * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(rows, layer_input)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(rows, hidden_size)))
            self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(rows)))
            self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(rows)))
        shape = (len(self.state_names), num_layers, 1, hidden_size)
        if initial_state == "learned":
            self.initial_hidden = nn.Parameter(torch.zeros(shape))
        elif initial_state == "random":
            self.register_buffer("initial_hidden", torch.randn(shape) * RANDOM_INITIAL_STATE_STD)
        self.reset_parameters()

    # ----------------------------------------------------------------- weights
    def layer_weights(self, layer: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(W_ih, W_hh, b_ih, b_hh) of one layer, torch's order."""
        return (
            getattr(self, f"weight_ih_l{layer}"),
            getattr(self, f"weight_hh_l{layer}"),
            getattr(self, f"bias_ih_l{layer}"),
            getattr(self, f"bias_hh_l{layer}"),
        )

    def reset_parameters(self) -> None:
        hidden = self.hidden_size
        bound = 1.0 / math.sqrt(hidden)
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer)
            with torch.no_grad():
                if self.init == "default":
                    for weight in (w_ih, w_hh, b_ih, b_hh):
                        weight.uniform_(-bound, bound)
                    continue
                b_ih.zero_()
                b_hh.zero_()
                for block in range(self.gates):
                    rows = slice(block * hidden, (block + 1) * hidden)
                    nn.init.xavier_uniform_(w_ih[rows])
                    self._init_recurrent_block(w_hh[rows])

    def _init_recurrent_block(self, block: Tensor) -> None:
        if self.init == "orthogonal":
            nn.init.orthogonal_(block)
        else:
            nn.init.xavier_uniform_(block)

    # ------------------------------------------------------------------- state
    def init_state(self, batch_size: int) -> State:
        device = self.weight_hh_l0.device
        dtype = self.weight_hh_l0.dtype
        if self.initial_state == "zeros":
            stacked = torch.zeros(len(self.state_names), self.num_layers, batch_size, self.hidden_size, device=device, dtype=dtype)
        else:
            stacked = self.initial_hidden.expand(-1, -1, batch_size, -1)
        return self._pack(tuple(stacked.unbind(0)))

    def _pack(self, tensors: tuple[Tensor, ...]) -> State:
        """Internal tuple -> public state: h alone, or a tuple such as (h, c)."""
        return tensors[0] if len(tensors) == 1 else tensors

    def _unpack(self, state: State) -> tuple[Tensor, ...]:
        tensors = (state,) if isinstance(state, Tensor) else tuple(state)
        if len(tensors) != len(self.state_names):
            raise ValueError(f"{type(self).__name__} state is ({', '.join(self.state_names)}), got {len(tensors)} tensors")
        return tensors

    # -------------------------------------------------------------------- cell
    def cell(self, gates_x: Tensor, state: tuple[Tensor, ...], layer: int) -> tuple[Tensor, ...]:
        """One step of one layer: gates_x = W_ih x_t + b_ih, (B, G*H); state tensors (B, H) -> new state, h first."""
        raise NotImplementedError

    # ---------------------------------------------------------------- traversal
    def forward(self, x: Tensor, state: State = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        """x (B, T, D) -> y (B, T, H) = the last layer's h_t, and the final state."""
        batch, time_steps, _ = x.shape
        hidden = self._unpack(self.init_state(batch) if state is None else state)
        if lengths is not None:
            lengths = check_lengths(lengths, batch, time_steps)
            if bool((lengths == time_steps).all()):
                lengths = None
        if self.fused and self.fused_kernel is not None:
            y, final = self._forward_fused(x, hidden, lengths)
        else:
            y, final = self._forward_cells(x, hidden, lengths)
        return y, self._pack(final)

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        """x_t (B, D) -> y_t (B, H), the new state; our own cell, whatever ``fused`` says."""
        hidden = self._unpack(state)
        layer_input = x_t
        new_layers = []
        for layer in range(self.num_layers):
            w_ih, _, b_ih, _ = self.layer_weights(layer)
            new = self.cell(F.linear(layer_input, w_ih, b_ih), tuple(tensor[layer] for tensor in hidden), layer)
            new_layers.append(new)
            layer_input = self._between_layers(new[0], layer)
        final = tuple(torch.stack([new[index] for new in new_layers]) for index in range(len(self.state_names)))
        return layer_input, self._pack(final)

    def _between_layers(self, h: Tensor, layer: int) -> Tensor:
        if layer < self.num_layers - 1 and self.dropout > 0:
            return F.dropout(h, self.dropout, self.training)
        return h

    def _forward_cells(self, x: Tensor, hidden: tuple[Tensor, ...], lengths: Tensor | None) -> tuple[Tensor, tuple[Tensor, ...]]:
        time_steps = x.shape[1]
        mask = None if lengths is None else lengths_mask(lengths, time_steps).unsqueeze(-1)  # (B, T, 1)
        layer_input = x
        finals = []
        for layer in range(self.num_layers):
            w_ih, _, b_ih, _ = self.layer_weights(layer)
            gates_x = F.linear(layer_input, w_ih, b_ih)  # (B, T, G*H), hoisted out of the loop
            layer_state = tuple(tensor[layer] for tensor in hidden)
            outputs = []
            for t in range(time_steps):
                new = self.cell(gates_x[:, t], layer_state, layer)
                if mask is not None:  # padded positions keep the state they had
                    new = tuple(torch.where(mask[:, t], fresh, old) for fresh, old in zip(new, layer_state))
                layer_state = new
                outputs.append(new[0])
            layer_output = torch.stack(outputs, dim=1)  # (B, T, H)
            if mask is not None:
                layer_output = layer_output * mask
            finals.append(layer_state)
            layer_input = self._between_layers(layer_output, layer)
        return layer_input, tuple(torch.stack([final[index] for final in finals]) for index in range(len(self.state_names)))

    def _flat_weights(self) -> list[Tensor]:
        return [weight for layer in range(self.num_layers) for weight in self.layer_weights(layer)]

    def _forward_fused(self, x: Tensor, hidden: tuple[Tensor, ...], lengths: Tensor | None) -> tuple[Tensor, tuple[Tensor, ...]]:
        hx = [tensor.contiguous() for tensor in hidden]
        hx_arg = hx if len(hx) > 1 else hx[0]
        dropout = self.dropout if self.num_layers > 1 else 0.0
        if lengths is None:
            y, *final = self.fused_kernel(x, hx_arg, self._flat_weights(), True, self.num_layers, dropout, self.training, False, True)
            return y, tuple(final)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        sorted_hx = [tensor.index_select(1, packed.sorted_indices) for tensor in hx]
        data, *final = self.fused_kernel(
            packed.data, packed.batch_sizes, sorted_hx if len(sorted_hx) > 1 else sorted_hx[0],
            self._flat_weights(), True, self.num_layers, dropout, self.training, False,
        )
        output = packed._replace(data=data)
        y, _ = pad_packed_sequence(output, batch_first=True, total_length=x.shape[1])
        return y, tuple(tensor.index_select(1, packed.unsorted_indices) for tensor in final)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, initial_state={self.initial_state!r}, init={self.init!r}, fused={self.fused}"

