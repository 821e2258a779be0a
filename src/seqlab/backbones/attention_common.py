"""Pieces shared by the attention backbones (softmax attention, linear attention).

Both are GPT-style stacks of pre-norm blocks that differ only in how positions
exchange information (the "mixer"):

    h_0 = W_in x (only when input_size != hidden_size)
    a_l = h_{l-1} + Dropout(Mixer_l(LN_l1(h_{l-1})))
    h_l = a_l + Dropout(MLP_l(LN_l2(a_l)))
    y   = LN_f(h_L)

This module registers no backbone; it holds the block, the MLP, head
bookkeeping and the GPT-2 initialisation.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import OptionError
from .base import Backbone

MLP_EXPANSION = 4
INIT_STD = 0.02  # GPT-2's weight scale


def resolve_heads(hidden_size: int, num_heads: int | None) -> int:
    """The number of heads: ``num_heads``, or one per 64 hidden units (at least one); it must divide hidden_size."""
    heads = max(1, hidden_size // 64) if num_heads is None else num_heads
    if heads < 1:
        raise OptionError(f"num_heads must be positive, got {heads}")
    if hidden_size % heads:
        chosen = "" if num_heads is not None else " (the default, one head per 64 units)"
        raise OptionError(f"hidden_size {hidden_size} is not divisible by num_heads {heads}{chosen}; give --num-heads that divides it")
    return heads


def split_heads(x: Tensor, heads: int) -> Tensor:
    """(B, T, H) -> (B, nh, T, hs)."""
    batch, time_steps, hidden = x.shape
    return x.view(batch, time_steps, heads, hidden // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """(B, nh, T, hs) -> (B, T, H)."""
    batch, heads, time_steps, head_size = x.shape
    return x.transpose(1, 2).reshape(batch, time_steps, heads * head_size)


class MLP(nn.Module):
    r"""The position-wise feed-forward network, 4x wide.

    .. math::
        \mathrm{MLP}(x) = W_2\,\mathrm{GELU}(W_1 x + b_1) + b_2,\quad W_1 \in \mathbb{R}^{4H \times H}

    Inputs/outputs: (..., H) -> (..., H).
    """

    def __init__(self, hidden_size: int, *, bias: bool = True) -> None:
        super().__init__()
        self.expand = nn.Linear(hidden_size, MLP_EXPANSION * hidden_size, bias=bias)
        self.project = nn.Linear(MLP_EXPANSION * hidden_size, hidden_size, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.project(F.gelu(self.expand(x)))


class PreNormBlock(nn.Module):
    r"""One pre-norm residual block around a mixer.

    .. math::
        a = x + \mathrm{Dropout}(\mathrm{Mixer}(\mathrm{LN}_1(x))),\qquad
        y = a + \mathrm{Dropout}(\mathrm{MLP}(\mathrm{LN}_2(a)))

    The mixer is any module called as ``mixer(normed_x, *arguments)`` that
    returns ``(output, extra)``; the block passes ``extra`` (a layer's new cache
    or running sums, attention weights) back untouched.

    Inputs/outputs: x (B, T, H) -> (y (B, T, H), extra).
    """

    def __init__(self, hidden_size: int, mixer: nn.Module, *, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.norm_1 = nn.LayerNorm(hidden_size, bias=bias)
        self.mixer = mixer
        self.norm_2 = nn.LayerNorm(hidden_size, bias=bias)
        self.mlp = MLP(hidden_size, bias=bias)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, *mixer_arguments: Any) -> tuple[Tensor, Any]:
        mixed, extra = self.mixer(self.norm_1(x), *mixer_arguments)
        x = x + self.residual_dropout(mixed)
        x = x + self.residual_dropout(self.mlp(self.norm_2(x)))
        return x, extra


class PreNormStack(Backbone):
    r"""A stack of :class:`PreNormBlock` s with an input projection and a final LayerNorm.

    .. math::
        h_0 = W_{in} x \;(\text{identity when } D = H),\quad h_l = \mathrm{Block}_l(h_{l-1}),\quad y = \mathrm{LN}_f(h_L)

    Subclasses set their own attributes, then call this constructor, which asks
    ``make_mixer()`` for each layer's mixer. Every mixer has ``output`` (its
    projection onto the residual stream) for the GPT-2 initialisation: weights
    N(0, 0.02^2), biases 0, and the two projections onto the residual stream of
    each block N(0, (0.02 / sqrt(2L))^2) so the stream's variance does not grow
    with depth.

    Args:
        num_heads: heads; None: max(1, hidden_size // 64). Must divide hidden_size.
        bias: biases in the linear layers and LayerNorms.
        dropout: residual dropout (and whatever the mixer drops), training only.
    """

    def __init__(self, input_size: int, hidden_size: int, *, num_layers: int = 1, dropout: float = 0.0,
                 num_heads: int | None = None, bias: bool = True) -> None:
        super().__init__(input_size, hidden_size, num_layers=num_layers, dropout=dropout)
        self.num_heads = resolve_heads(hidden_size, num_heads)
        self.head_size = hidden_size // self.num_heads
        self.bias = bias
        self.input_projection: nn.Module = (
            nn.Identity() if input_size == hidden_size else nn.Linear(input_size, hidden_size, bias=bias))
        self.blocks = nn.ModuleList(
            PreNormBlock(hidden_size, self.make_mixer(), dropout=dropout, bias=bias) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(hidden_size, bias=bias)
        self.reset_parameters()

    def make_mixer(self) -> nn.Module:  # pragma: no cover - interface
        raise NotImplementedError

    def reset_parameters(self) -> None:
        residual_std = INIT_STD / math.sqrt(2 * self.num_layers)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, (nn.Linear, nn.Embedding)):
                    nn.init.normal_(module.weight, std=INIT_STD)
                    if getattr(module, "bias", None) is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.reset_parameters()
            for block in self.blocks:
                nn.init.normal_(block.mixer.output.weight, std=residual_std)
                nn.init.normal_(block.mlp.project.weight, std=residual_std)

    def parameter_like(self) -> Tensor:
        """A parameter whose device and dtype the state takes."""
        return self.final_norm.weight

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, num_heads={self.num_heads}, bias={self.bias}"
