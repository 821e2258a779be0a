r"""The convolutional LSTM (Shi et al. 2015): an LSTM whose state is a stack of feature maps.

Where an LSTM multiplies vectors by matrices, the ConvLSTM convolves frames
with kernels, so every pixel's gates read only a neighbourhood of the input
and of the state: the model sees space the way a convolutional net does and
time the way an LSTM does. It reads frame sequences x (B, T, C, H, W) and
returns y (B, T, hidden_size, H, W).
"""
from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import OptionError
from ..registry import register_backbone
from .base import Backbone, State, check_lengths
from .lstm import lstm_equations


@register_backbone("convlstm")
class ConvLSTM(Backbone):
    r"""A stack of ConvLSTM layers (Shi et al. 2015, equations 3), with ``*`` a convolution ("same" padding)
    and :math:`\circ` the element-wise product:

    .. math::
        i_t &= \sigma(W_{xi} * X_t + W_{hi} * H_{t-1} + W_{ci} \circ C_{t-1} + b_i) \\
        f_t &= \sigma(W_{xf} * X_t + W_{hf} * H_{t-1} + W_{cf} \circ C_{t-1} + b_f) \\
        C_t &= f_t \circ C_{t-1} + i_t \circ \tanh(W_{xc} * X_t + W_{hc} * H_{t-1} + b_c) \\
        o_t &= \sigma(W_{xo} * X_t + W_{ho} * H_{t-1} + W_{co} \circ C_t + b_o) \\
        H_t &= o_t \circ \tanh(C_t)

    The peephole weights W_c* are maps of one value per channel and pixel, so a
    model is built for one frame size. Layer k > 0 reads layer k-1's H_t.

    Args:
        input_size: C, channels per input frame.
        hidden_size: channels of H and C.
        num_layers: stacked layers.
        dropout: dropout on the outputs of every layer but the last (training only).
        frame_height, frame_width: the frame size it reads.
        kernel_size: k, odd, of every convolution.
        peephole: keep the W_c* terms (the paper's cell); False drops them.

    Inputs/outputs: ``forward(x (B, T, C, H, W), state, lengths)`` -> y (B, T, hidden_size, H, W) and the state
    (H, C), each (num_layers, B, hidden_size, H, W); ``step(x_t (B, C, H, W), state)`` -> y_t and the state.
    Parameters per layer l: ``weight_ih_l{l}`` (4 hidden, C_l, k, k) with ``bias_l{l}`` (4 hidden), the gate blocks
    in the order i, f, g (the candidate), o; ``weight_hh_l{l}`` (4 hidden, hidden, k, k); ``peephole_l{l}``
    (3, hidden, H, W) for W_ci, W_cf, W_co (zeros at the start).
    """

    reads_frames: ClassVar[bool] = True

    def __init__(self, input_size: int, hidden_size: int, *, num_layers: int = 1, dropout: float = 0.0,
                 frame_height: int = 8, frame_width: int = 8, kernel_size: int = 3, peephole: bool = True) -> None:
        super().__init__(input_size, hidden_size, num_layers=num_layers, dropout=dropout)
        if frame_height < 1 or frame_width < 1:
            raise OptionError(f"frame_height and frame_width must be positive, got {frame_height} x {frame_width}")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise OptionError(f"kernel_size must be odd and positive (same padding), got {kernel_size}")
        self.frame_height, self.frame_width = frame_height, frame_width
        self.kernel_size = kernel_size
        self.peephole = peephole
        bound = 1.0 / (hidden_size * kernel_size * kernel_size) ** 0.5
        for layer in range(num_layers):
            channels = input_size if layer == 0 else hidden_size
            shape = (4 * hidden_size, channels, kernel_size, kernel_size)
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(shape).uniform_(-bound, bound)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(
                torch.empty(4 * hidden_size, hidden_size, kernel_size, kernel_size).uniform_(-bound, bound)))
            self.register_parameter(f"bias_l{layer}", nn.Parameter(torch.empty(4 * hidden_size).uniform_(-bound, bound)))
            if peephole:
                self.register_parameter(f"peephole_l{layer}",
                                        nn.Parameter(torch.zeros(3, hidden_size, frame_height, frame_width)))

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.input_size, self.frame_height, self.frame_width)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return (self.hidden_size, self.frame_height, self.frame_width)

    def init_state(self, batch_size: int) -> State:
        weight = self.weight_ih_l0
        zeros = weight.new_zeros(self.num_layers, batch_size, self.hidden_size, self.frame_height, self.frame_width)
        return (zeros, zeros.clone())

    def _check(self, x: Tensor, leading: int) -> None:
        if x.dim() != leading + 3 or tuple(x.shape[leading:]) != self.input_shape:
            want = "(B, T, C, H, W)" if leading == 2 else "(B, C, H, W)"
            raise ValueError(f"convlstm reads frames {want} with (C, H, W) = {self.input_shape}, "
                             f"got shape {tuple(x.shape)}")

    def cell(self, layer: int, input_gates: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """One step of one layer: input_gates = W_x * X_t + b (B, 4 hidden, H, W), h and c (B, hidden, H, W)."""
        gates = input_gates + F.conv2d(h, getattr(self, f"weight_hh_l{layer}"), padding=self.kernel_size // 2)
        peepholes = tuple(getattr(self, f"peephole_l{layer}")) if self.peephole else None  # each (hidden, H, W)
        _, c, h = lstm_equations(*gates.chunk(4, dim=1), c, peepholes=peepholes)  # blocks (B, hidden, H, W)
        return h, c

    def _input_gates(self, layer: int, frames: Tensor) -> Tensor:
        """W_x * X + b for frames (N, C_l, H, W) -> (N, 4 hidden, H, W)."""
        return F.conv2d(frames, getattr(self, f"weight_ih_l{layer}"), getattr(self, f"bias_l{layer}"),
                        padding=self.kernel_size // 2)

    def _between_layers(self, layer: int, h: Tensor) -> Tensor:
        if layer < self.num_layers - 1 and self.dropout > 0:
            return F.dropout(h, self.dropout, self.training)
        return h

    def forward(self, x: Tensor, state: State = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        self._check(x, 2)
        batch, time_steps = x.shape[:2]
        h0, c0 = self.init_state(batch) if state is None else state
        if lengths is not None:
            lengths = check_lengths(lengths, batch, time_steps).to(x.device)
        final_h, final_c = [], []
        layer_input = x  # (B, T, C_l, H, W)
        for layer in range(self.num_layers):
            # the input convolution of every frame at once; only the recurrent one is inside the loop
            input_gates = self._input_gates(layer, layer_input.flatten(0, 1)).unflatten(0, (batch, time_steps))
            h, c = h0[layer], c0[layer]
            outputs = []
            for t in range(time_steps):
                new_h, new_c = self.cell(layer, input_gates[:, t], h, c)
                if lengths is None:
                    h, c = new_h, new_c
                    outputs.append(h)
                else:  # past its length a sequence keeps its state and outputs zeros
                    real = (t < lengths).view(batch, 1, 1, 1)  # (B, 1, 1, 1)
                    h, c = torch.where(real, new_h, h), torch.where(real, new_c, c)
                    outputs.append(new_h * real)
            final_h.append(h)
            final_c.append(c)
            layer_input = self._between_layers(layer, torch.stack(outputs, dim=1))  # (B, T, hidden, H, W)
        return layer_input, (torch.stack(final_h), torch.stack(final_c))

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        self._check(x_t, 1)
        h0, c0 = state
        final_h, final_c = [], []
        layer_input = x_t  # (B, C_l, H, W)
        for layer in range(self.num_layers):
            h, c = self.cell(layer, self._input_gates(layer, layer_input), h0[layer], c0[layer])
            final_h.append(h)
            final_c.append(c)
            layer_input = self._between_layers(layer, h)
        return layer_input, (torch.stack(final_h), torch.stack(final_c))

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, frame={self.frame_height}x{self.frame_width}, kernel_size={self.kernel_size}, "
                f"peephole={self.peephole}")
