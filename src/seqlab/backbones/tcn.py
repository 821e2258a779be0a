r"""The temporal convolutional network (Bai, Kolter & Koltun 2018) as a recurrence with a state.

A causal convolution with kernel k and dilation d reads x_t, x_{t-d}, ...,
x_{t-(k-1)d}: its whole memory is the last (k-1)d inputs. Keeping exactly those
in a buffer makes the TCN a recurrence like any other backbone here: ``forward``
convolves a whole sequence after the buffer (which replaces the zero padding),
``step`` convolves one new position after it, at a cost set by the receptive
field and not by how many positions came before.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import weight_norm as apply_weight_norm

from ..errors import OptionError
from ..registry import register_backbone
from .base import Backbone, State, check_lengths, lengths_mask


class TemporalBlock(nn.Module):
    r"""One residual block: two dilated causal convolutions, each followed by ReLU and dropout.

    .. math::
        u &= \mathrm{Drop}(\mathrm{ReLU}(\mathrm{conv}_1(x))), \quad
        v = \mathrm{Drop}(\mathrm{ReLU}(\mathrm{conv}_2(u))) \\
        y &= \mathrm{ReLU}(v + R x)

    with (conv x)_t = c + sum_{j=0}^{k-1} W_j x_{t-(k-1-j)d} (torch's
    cross-correlation order: the last tap W_{k-1} meets x_t) and R the identity,
    or a 1x1 convolution when the block changes the width.

    Inputs/outputs: x (B, C_in, T) and buffers (B, C_in, P), (B, H, P) of the
    last P = (k-1)d inputs of each convolution -> y (B, H, T) and the new buffers.
    """

    def __init__(self, in_channels: int, hidden_size: int, *, kernel_size: int, dilation: int, dropout: float, weight_norm: bool) -> None:
        super().__init__()
        self.history = (kernel_size - 1) * dilation  # P
        self.first = nn.Conv1d(in_channels, hidden_size, kernel_size, dilation=dilation)
        self.second = nn.Conv1d(hidden_size, hidden_size, kernel_size, dilation=dilation)
        if weight_norm:
            self.first = apply_weight_norm(self.first)
            self.second = apply_weight_norm(self.second)
        self.residual = nn.Conv1d(in_channels, hidden_size, 1) if in_channels != hidden_size else None
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, buffers: tuple[Tensor, Tensor], lengths: Tensor | None) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        first_buffer, second_buffer = buffers
        padded = torch.cat([first_buffer, x], dim=2)  # (B, C_in, P + T)
        hidden = self.dropout(F.relu(self.first(padded)))  # (B, H, T)
        padded_hidden = torch.cat([second_buffer, hidden], dim=2)  # (B, H, P + T)
        out = self.dropout(F.relu(self.second(padded_hidden)))  # (B, H, T)
        residual = x if self.residual is None else self.residual(x)
        return F.relu(out + residual), (self._last_inputs(padded, lengths), self._last_inputs(padded_hidden, lengths))

    def _last_inputs(self, padded: Tensor, lengths: Tensor | None) -> Tensor:
        """The P inputs ending at each row's last real position: padded columns [length, length + P)."""
        if lengths is None:
            return padded[:, :, padded.shape[2] - self.history:].clone()  # (B, C, P), not a view pinning the sequence
        columns = lengths.unsqueeze(1) + torch.arange(self.history, device=padded.device)  # (B, P)
        return padded.gather(2, columns.unsqueeze(1).expand(-1, padded.shape[1], -1))  # (B, C, P)


@register_backbone("tcn")
class TCN(Backbone):
    r"""Causal temporal convolutional network: a stack of residual ``TemporalBlock``\ s.

    Block i (i = 0 .. num_layers-1) has dilation d_i = 2^i and two causal
    convolutions of kernel k, so the output at t sees the inputs x_{t-R+1..t}:

    .. math::
        R = 1 + 2 (k - 1) \sum_{i<N} 2^i = 1 + 2 (k - 1) (2^N - 1)

    (``receptive_field``). Every convolution keeps the last P_i = (k-1) d_i
    inputs it saw as its state; a fresh state is zeros, which is the zero left
    padding of the usual TCN. Weights take torch's default initialisation.

    Args:
        input_size: D, features per position.
        hidden_size: H, the channels of every block.
        num_layers: N, the number of residual blocks.
        dropout: dropout after each convolution's ReLU (training only).
        kernel_size: k >= 2.
        weight_norm: reparametrise each dilated convolution's weight as g v / ||v||
            (Salimans & Kingma 2016), as the paper does.

    Inputs/outputs: x (B, T, D) -> y (B, T, H). State: a tuple with one pair
    per block, (inputs of conv 1 (B, C_in, P_i), inputs of conv 2 (B, H, P_i)),
    C_in = D for block 0 and H after. With ``lengths`` each row's buffers end
    at its own last real position and padded outputs are zero.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        dropout: float = 0.0,
        kernel_size: int = 3,
        weight_norm: bool = False,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers=num_layers, dropout=dropout)
        if isinstance(kernel_size, bool) or not isinstance(kernel_size, int) or kernel_size < 2:
            raise OptionError(f"kernel_size must be an integer >= 2 (a kernel of 1 sees no past), got {kernel_size!r}")
        if not isinstance(weight_norm, bool):
            raise OptionError(f"weight_norm must be true or false, got {weight_norm!r}")
        self.kernel_size = kernel_size
        self.weight_norm = weight_norm
        self.blocks = nn.ModuleList(
            TemporalBlock(
                input_size if index == 0 else hidden_size,
                hidden_size,
                kernel_size=kernel_size,
                dilation=2**index,
                dropout=dropout,
                weight_norm=weight_norm,
            )
            for index in range(num_layers)
        )

    @property
    def receptive_field(self) -> int:
        """How many positions, the current one included, an output can depend on."""
        return 1 + 2 * (self.kernel_size - 1) * (2**self.num_layers - 1)

    def init_state(self, batch_size: int) -> State:
        bias = self.blocks[0].first.bias
        return tuple(
            (
                bias.new_zeros(batch_size, block.first.in_channels, block.history),
                bias.new_zeros(batch_size, self.hidden_size, block.history),
            )
            for block in self.blocks
        )

    def forward(self, x: Tensor, state: State = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        """x (B, T, D) -> y (B, T, H), and the buffers after the last (real) position."""
        batch, time_steps, _ = x.shape
        buffers = self.init_state(batch) if state is None else state
        if lengths is not None:
            lengths = check_lengths(lengths, batch, time_steps).to(x.device)
            if bool((lengths == time_steps).all()):
                lengths = None
        hidden = x.transpose(1, 2)  # (B, D, T): channels first, as conv1d wants
        new_buffers = []
        for block, block_buffers in zip(self.blocks, buffers):
            hidden, block_state = block(hidden, block_buffers, lengths)  # (B, H, T)
            new_buffers.append(block_state)
        y = hidden.transpose(1, 2)  # (B, T, H)
        if lengths is not None:
            y = y.masked_fill(~lengths_mask(lengths, time_steps).unsqueeze(-1), 0.0)
        return y, tuple(new_buffers)

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        """x_t (B, D) -> y_t (B, H): each convolution reads its buffer and x_t, O(receptive field) work."""
        y, new_state = self.forward(x_t.unsqueeze(1), state)  # (B, 1, H)
        return y.squeeze(1), new_state

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, kernel_size={self.kernel_size}, weight_norm={self.weight_norm}, receptive_field={self.receptive_field}"
