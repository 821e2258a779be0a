"""The Transformer decoder (GPT): causal softmax self-attention with a key/value cache as its state."""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import SeqlabError, did_you_mean
from ..registry import register_backbone
from .attention_common import INIT_STD, PreNormStack, merge_heads, split_heads
from .base import State, check_lengths, final_state_wanted, lengths_mask

POSITIONAL_ENCODINGS = ("learned", "sinusoidal", "rotary", "alibi", "none")
FREQUENCY_BASE = 10000.0  # sinusoidal and rotary wavelengths run from 2*pi to 2*pi*10000


class ContextLengthError(SeqlabError, ValueError):
    """A forward past the learned position table: a ValueError to the API, one clear line to the command line."""


@dataclass
class AttentionPlan:
    """What every layer's attention shares within one call.

    mask: None for plain causal attention over the new positions alone (the
        fused fast path, never explicit); else (B, 1, T, S) bool, True where a query
        may look, or for ALiBi a (B, nh, T, S) additive bias that is -inf where it may not.
    rotary: (cos, sin), each (B, 1, T, hs // 2), or None.
    use_cache: whether the cache's slots come before the new keys (S = C + T) or not (S = T).
    explicit: compute the weights with an explicit softmax and return them.
    """

    mask: Tensor | None
    rotary: tuple[Tensor, Tensor] | None
    use_cache: bool
    explicit: bool


def rotate(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotary embedding: rotate pairs (x_i, x_{i+hs/2}) by the angle p * theta_i; an odd last channel stays.

    x (B, nh, T, hs); cos, sin (B, 1, T, hs // 2).
    """
    half = cos.shape[-1]
    first, second, rest = x[..., :half], x[..., half:2 * half], x[..., 2 * half:]
    return torch.cat([first * cos - second * sin, first * sin + second * cos, rest], dim=-1)


def sinusoidal_encoding(positions: Tensor, width: int, dtype: torch.dtype) -> Tensor:
    """PE(p, 2i) = sin(p / 10000^(2i/H)), PE(p, 2i+1) = cos(p / 10000^(2i/H)); positions (B, T) -> (B, T, H).

    The angles are float32 at least, whatever ``dtype`` (the result's) is: bfloat16 holds integers exactly
    only up to 256, so a 16-bit position (or angle) past that would be another position's.
    """
    pairs = (width + 1) // 2
    exact = torch.promote_types(dtype, torch.float32)
    exponents = torch.arange(pairs, device=positions.device, dtype=exact) * 2.0 / width
    angles = positions.to(exact).unsqueeze(-1) * FREQUENCY_BASE ** -exponents  # (B, T, pairs)
    return torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)[..., :width].to(dtype)


def alibi_slopes(heads: int, *, device: torch.device, dtype: torch.dtype) -> Tensor:
    """m_h = 2^(-8h/nh) for h = 1..nh (Press et al. 2022): one head sees far, another mostly near."""
    return 2.0 ** (-8.0 * torch.arange(1, heads + 1, device=device, dtype=dtype) / heads)


def ring_source(starts: Tensor, lengths: Tensor, ring_size: int) -> Tensor:
    """Which new position t each ring slot takes after a call, or a negative number to keep the slot.

    Slot s holds position p where p = s (mod C). A row that starts at position
    ``start`` and adds ``length`` real positions writes slot s from its last real
    t with start + t = s (mod C): t = length - 1 - ((start + length - 1 - s) mod C).
    starts, lengths (B,) -> (B, C).
    """
    slots = torch.arange(ring_size, device=starts.device)
    last = (starts + lengths - 1).unsqueeze(1)  # (B, 1)
    return lengths.unsqueeze(1) - 1 - torch.remainder(last - slots, ring_size)


def ring_write(ring: Tensor, new: Tensor, source: Tensor, *, batch_dim: int, slot_dim: int) -> Tensor:
    """Slot s of row b becomes new's entry source[b, s] along ``slot_dim``, or stays where source[b, s] < 0.

    ring has C entries along ``slot_dim``, new any number; both share every other
    dimension, the batch at ``batch_dim``. source (B, C) long.
    """
    shape = [1] * ring.dim()
    shape[batch_dim], shape[slot_dim] = source.shape
    gathered_shape = list(new.shape)
    gathered_shape[slot_dim] = source.shape[1]
    if new.shape[slot_dim] == 1:  # one new position (a generation step): every written slot takes it, no gather
        gathered = new.expand(gathered_shape)
    else:
        gathered = new.gather(slot_dim, source.clamp(min=0).view(shape).expand(gathered_shape))
    return torch.where((source >= 0).view(shape), gathered, ring)


class CausalSelfAttention(nn.Module):
    r"""Multi-head causal self-attention over the cached and the new positions.

    .. math::
        \mathrm{head}_h = \mathrm{softmax}\Big(\frac{Q_h K_h^\top}{\sqrt{d_h}} + M\Big) V_h,\qquad
        \mathrm{out} = W_O\,[\mathrm{head}_1; \dots; \mathrm{head}_{n_h}]

    with (Q, K, V) = x W_QKV^T split into heads, rotary rotation of Q and K when
    planned, and M = 0 where a query may look and -inf elsewhere (plus the
    ALiBi bias -m_h (i - j)). The fast path is ``scaled_dot_product_attention``;
    the explicit path (for attention maps) computes the same weights by hand.

    Inputs/outputs: x (B, T, H), cached keys and values (B, nh, C, hs) ->
    (out (B, T, H), (new keys (B, nh, T, hs), new values, weights (B, nh, T, S) or None)).
    Keys are cached after rotation, so a cached key never needs its position again.
    """

    def __init__(self, hidden_size: int, num_heads: int, *, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)
        self.output = nn.Linear(hidden_size, hidden_size, bias=bias)

    def forward(self, x: Tensor, cached_keys: Tensor, cached_values: Tensor,
                plan: AttentionPlan) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor | None]]:
        query, key, value = (split_heads(part, self.num_heads) for part in self.qkv(x).chunk(3, dim=-1))  # (B, nh, T, hs)
        if plan.rotary is not None:
            query, key = rotate(query, *plan.rotary), rotate(key, *plan.rotary)
        all_keys, all_values = key, value
        if plan.use_cache:
            all_keys = torch.cat([cached_keys, key], dim=2)  # (B, nh, S, hs)
            all_values = torch.cat([cached_values, value], dim=2)
        weights = None
        if plan.explicit:
            scores = query @ all_keys.transpose(-2, -1) / math.sqrt(query.shape[-1])  # (B, nh, T, S)
            weights = torch.softmax(scores + additive_mask(plan.mask, scores), dim=-1)
            mixed = weights @ all_values
        else:
            mixed = F.scaled_dot_product_attention(
                query, all_keys, all_values, attn_mask=plan.mask, is_causal=plan.mask is None,
                dropout_p=self.dropout if self.training else 0.0)  # (B, nh, T, hs)
        return self.output(merge_heads(mixed)), (key, value, weights)


def additive_mask(mask: Tensor, scores: Tensor) -> Tensor:
    """A bool mask (True: may look) as 0 / -inf; an additive one (ALiBi's) as it is. Broadcasts to scores (B, nh, T, S)."""
    if mask.dtype != torch.bool:
        return mask
    return torch.zeros((), dtype=scores.dtype, device=scores.device).masked_fill(~mask, float("-inf"))


@register_backbone("transformer")
class Transformer(PreNormStack):
    r"""GPT-style decoder: pre-LayerNorm blocks of causal multi-head self-attention and a 4x GELU MLP.

    .. math::
        h_0 = W_{in} x + P,\quad a_l = h_{l-1} + \mathrm{Attn}_l(\mathrm{LN}(h_{l-1})),\quad
        h_l = a_l + \mathrm{MLP}_l(\mathrm{LN}(a_l)),\quad y = \mathrm{LN}_f(h_L)

    where attention at position i reads keys j with i - C < j <= i (C = context_length).

    Positional encodings (``positional``):
        ``learned``: P = a trained table E[p] of C rows, added to h_0.
        ``sinusoidal``: P = PE(p) with PE(p, 2i) = sin(p / 10000^(2i/H)), PE(p, 2i+1) = cos(...), added to h_0.
        ``rotary``: no P; q and k of each head rotated pairwise by p * 10000^(-i/(hs/2)),
            so q_i . k_j depends on i - j only (Su et al. 2021).
        ``alibi``: no P; scores get -m_h (i - j), m_h = 2^(-8h/nh) (Press et al. 2022).
        ``none``: no position information beyond the causal mask.

    State, a dict of tensors:
        ``keys``, ``values``: (L, B, nh, C, hs), a ring buffer per layer: position p
            lives in slot p mod C (keys after rotary rotation).
        ``positions``: (B,) long, how many positions each row has seen, so the next one's index.
        ``inputs`` (``learned`` only): (B, C, D), the backbone's inputs in the same ring.
    Which positions the slots hold follows from ``positions`` alone (slot s holds the
    latest p < positions with p = s mod C, empty if p < 0), so rows of a batch can be at
    different positions: with ``lengths`` each row advances by its own length and its
    padded positions are never written.

    Past the context length:
        The cache is a sliding window holding the last C positions. Every query sees
        at most the last C keys, itself included (j > i - C), in ``forward`` (a banded
        causal mask) as in ``step``, so stepping equals ``forward`` at any length for
        ``sinusoidal``, ``rotary``, ``alibi`` and ``none``, whose positions are unbounded.
        ``learned`` has a row for positions 0..C-1 only, so ``forward`` and
        ``attention_maps`` raise :class:`ContextLengthError` (a ValueError) when a real
        position would reach C: an input longer than C, or a state carried that far.
        ``step`` past that point does what nanoGPT does when it crops its context: it
        re-encodes the last C-1 inputs (kept in ``inputs``) and the new one as positions
        0..C-1 from scratch, a whole forward over C positions per step; the cache then
        holds that window's keys and values.

    Args:
        input_size: D; projected to H by a linear layer only when D != H.
        hidden_size: H.
        num_layers: L blocks.
        dropout: attention-weight and residual dropout (training only).
        num_heads: nh; None: max(1, H // 64). Must divide H; head size hs = H / nh.
        context_length: C, the attention window and the cache's length.
        positional: one of ``learned``, ``sinusoidal``, ``rotary``, ``alibi``, ``none``.
        bias: biases in the linear layers and LayerNorms.

    Inputs/outputs: x (B, T, D) -> y (B, T, H) and the state above.
    Diagnostics: :meth:`attention_maps` returns each layer's weights.
    """

    def __init__(self, input_size: int, hidden_size: int, *, context_length: int = 256, positional: str = "rotary",
                 **options) -> None:
        if context_length < 1:
            raise ValueError(f"context_length must be at least 1, got {context_length}")
        if positional not in POSITIONAL_ENCODINGS:
            raise ValueError(f"positional must be one of {', '.join(POSITIONAL_ENCODINGS)}, got {positional!r}{did_you_mean(positional, POSITIONAL_ENCODINGS)}")
        self.context_length = context_length
        self.positional = positional
        super().__init__(input_size, hidden_size, **options)
        if positional == "learned":
            self.position_embedding = nn.Embedding(context_length, hidden_size)
            nn.init.normal_(self.position_embedding.weight, std=INIT_STD)

    @property
    def forward_limit(self) -> int | None:
        return self.context_length if self.positional == "learned" else None

    def make_mixer(self) -> nn.Module:
        return CausalSelfAttention(self.hidden_size, self.num_heads, dropout=self.dropout, bias=self.bias)

    # ------------------------------------------------------------------- state
    def init_state(self, batch_size: int) -> State:
        like = self.parameter_like()
        cache_shape = (self.num_layers, batch_size, self.num_heads, self.context_length, self.head_size)
        state = {
            "keys": like.new_zeros(cache_shape),
            "values": like.new_zeros(cache_shape),
            "positions": torch.zeros(batch_size, dtype=torch.long, device=like.device),
        }
        if self.positional == "learned":
            state["inputs"] = like.new_zeros(batch_size, self.context_length, self.input_size)
        return state

    # ------------------------------------------------------------- public API
    def forward(self, x: Tensor, state: State = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        """x (B, T, D) -> y (B, T, H), and the state after each row's last real position."""
        batch, time_steps, _ = x.shape
        if lengths is not None:
            lengths = check_lengths(lengths, batch, time_steps).to(x.device)
        if self.positional == "learned":
            self._check_table(time_steps, state, lengths)
        y, state, _ = self._run(x, state, lengths, explicit=False)
        return y, state

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        """x_t (B, D) -> y_t (B, H): one more position through the cache, O(C) per layer."""
        if self.positional == "learned":
            saturated = state["positions"] >= self.context_length  # (B,)
            if torch.jit.is_tracing() or bool(saturated.any()):  # a traced graph keeps both paths
                return self._step_past_table(x_t, state, saturated)
        y, state, _ = self._run(x_t.unsqueeze(1), state, None, explicit=False)
        return y[:, 0], state

    def attention_maps(self, x: Tensor, state: State = None) -> list[Tensor]:
        """Each layer's attention weights (B, nh, T, S), computed with an explicit softmax.

        S = T keys (the new positions) without a state; with one, S = C + T: the
        cache's C ring slots (slot s holds position p = s mod C, see the class
        docstring), then the T new positions. Weights are before dropout; each row
        sums to 1 and is zero where the query may not look.
        """
        if self.positional == "learned":
            self._check_table(x.shape[1], state, None)
        _, _, maps = self._run(x, state, None, explicit=True)
        return maps

    # --------------------------------------------------------------- internals
    def _check_table(self, time_steps: int, state: State, lengths: Tensor | None) -> None:
        reach = time_steps if lengths is None else lengths  # real positions each row adds
        if state is not None:
            reach = state["positions"] + reach
        furthest = int(torch.as_tensor(reach).max())
        if furthest > self.context_length:
            raise ContextLengthError(
                f"learned positions cover context_length={self.context_length} positions, but this input reaches "
                f"position {furthest - 1}: give a shorter input (generation continues past the context by itself, "
                "one step at a time) or use --positional rotary, alibi, sinusoidal or none")

    def _run(self, x: Tensor, state: State, lengths: Tensor | None, *,
             explicit: bool) -> tuple[Tensor, State, list[Tensor]]:
        batch, time_steps, _ = x.shape
        fresh = state is None
        if fresh:
            state = self.init_state(batch)
        starts = state["positions"].to(x.device)  # (B,)
        offsets = torch.arange(time_steps, device=x.device)
        query_positions = starts.unsqueeze(1) + offsets  # (B, T)
        hidden = self.input_projection(x)  # (B, T, H)
        if self.positional == "learned":
            # padded positions and rows about to be re-encoded may run past the table; their outputs are discarded
            hidden = hidden + self.position_embedding(query_positions.clamp(max=self.context_length - 1))
        elif self.positional == "sinusoidal":
            hidden = hidden + sinusoidal_encoding(query_positions, self.hidden_size, hidden.dtype)
        # slot s holds position p = s (mod C): until a row passes C, its slots from its position on are empty, so
        # a cached call attends over the first `filled` slots only and costs O(t), not O(C) (maps show all C)
        # (a traced graph, e.g. for ONNX export, cannot read positions: it attends over all C slots, masked as maps are)
        filled = (self.context_length if fresh or explicit or torch.jit.is_tracing()
                  else min(int(starts.max()), self.context_length))
        plan = self._plan(starts, query_positions, use_cache=not fresh, explicit=explicit, dtype=hidden.dtype,
                          filled=filled)
        new_keys, new_values, maps = [], [], []
        for layer, block in enumerate(self.blocks):
            hidden, (keys, values, weights) = block(hidden, state["keys"][layer][:, :, :filled],
                                                    state["values"][layer][:, :, :filled], plan)
            new_keys.append(keys)
            new_values.append(values)
            if weights is not None:
                maps.append(weights)
        y = self.final_norm(hidden)
        if lengths is not None:
            y = y.masked_fill(~lengths_mask(lengths, time_steps).unsqueeze(-1), 0.0)
        if fresh and not final_state_wanted():  # training from fresh windows: nothing reads the cache
            return y, None, maps
        real_lengths = torch.full_like(starts, time_steps) if lengths is None else lengths
        source = ring_source(starts, real_lengths, self.context_length)  # (B, C)
        new_state = {
            "keys": ring_write(state["keys"], torch.stack(new_keys), source, batch_dim=1, slot_dim=3),
            "values": ring_write(state["values"], torch.stack(new_values), source, batch_dim=1, slot_dim=3),
            "positions": starts + real_lengths,
        }
        if self.positional == "learned":
            new_state["inputs"] = ring_write(state["inputs"], x, source, batch_dim=0, slot_dim=1)
        return y, new_state, maps

    def _plan(self, starts: Tensor, query_positions: Tensor, *, use_cache: bool, explicit: bool,
              dtype: torch.dtype, filled: int) -> AttentionPlan:
        time_steps = query_positions.shape[1]
        rotary = None
        if self.positional == "rotary":
            half = self.head_size // 2
            # positions and angles in float32 at least (see sinusoidal_encoding); cos and sin in the activations' dtype
            exact = torch.promote_types(dtype, torch.float32)
            frequencies = FREQUENCY_BASE ** -(torch.arange(half, device=starts.device, dtype=exact) / half)
            angles = (query_positions.to(exact).unsqueeze(-1) * frequencies).unsqueeze(1)  # (B, 1, T, hs/2)
            rotary = (angles.cos().to(dtype), angles.sin().to(dtype))
        if not use_cache and not explicit and time_steps <= self.context_length and self.positional != "alibi":
            return AttentionPlan(mask=None, rotary=rotary, use_cache=False, explicit=False)
        key_positions = query_positions
        if use_cache:
            slots = torch.arange(filled, device=starts.device)
            before = (starts - 1).unsqueeze(1)  # (B, 1)
            ring_positions = before - torch.remainder(before - slots, self.context_length)  # (B, filled), < 0: empty
            key_positions = torch.cat([ring_positions, query_positions], dim=1)  # (B, S)
        distance = query_positions.unsqueeze(2) - key_positions.unsqueeze(1)  # (B, T, S)
        visible = (distance >= 0) & (distance < self.context_length) & (key_positions >= 0).unsqueeze(1)
        visible = visible.unsqueeze(1)  # (B, 1, T, S)
        if self.positional != "alibi":
            return AttentionPlan(mask=visible, rotary=rotary, use_cache=use_cache, explicit=explicit)
        slopes = alibi_slopes(self.num_heads, device=starts.device, dtype=dtype).view(1, -1, 1, 1)
        bias = -slopes * distance.unsqueeze(1).to(dtype)  # (B, nh, T, S)
        return AttentionPlan(mask=bias.masked_fill(~visible, float("-inf")), rotary=rotary, use_cache=use_cache,
                             explicit=explicit)

    def _step_past_table(self, x_t: Tensor, state: State, saturated: Tensor) -> tuple[Tensor, State]:
        """The ``learned`` step for rows whose next position is past the table: nanoGPT's crop, exactly.

        Rows still inside the table take the ordinary cached step; the batch runs
        both and each row keeps its own.
        """
        context = self.context_length
        starts = state["positions"]  # (B,)
        batch = starts.shape[0]
        # the last C-1 inputs of each row, oldest first, then x_t: the window a cropping model would see
        window_positions = starts.unsqueeze(1) - (context - 1) + torch.arange(context - 1, device=starts.device)
        slots = torch.remainder(window_positions, context).unsqueeze(-1).expand(-1, -1, self.input_size)
        window = torch.cat([state["inputs"].gather(1, slots), x_t.unsqueeze(1)], dim=1)  # (B, C, D)
        window_y, window_state, _ = self._run(window, None, None, explicit=False)
        # window position j is absolute position start - C + 1 + j, whose ring slot is (start + 1 + j) mod C
        # and the fresh window's ring holds j in slot j, so every slot is rewritten from slot (s - start - 1) mod C
        source = torch.remainder(torch.arange(context, device=starts.device) - starts.unsqueeze(1) - 1, context)
        y = window_y[:, -1]
        new_state = {
            "keys": ring_write(state["keys"], window_state["keys"], source, batch_dim=1, slot_dim=3),
            "values": ring_write(state["values"], window_state["values"], source, batch_dim=1, slot_dim=3),
            "positions": starts + 1,
            "inputs": ring_write(state["inputs"], window_state["inputs"], source, batch_dim=0, slot_dim=1),
        }
        if not torch.jit.is_tracing() and bool(saturated.all()):
            return y, new_state
        cached_y, cached_state = self._run(x_t.unsqueeze(1), state, None, explicit=False)[:2]
        y = torch.where(saturated.unsqueeze(1), y, cached_y[:, 0])
        for name in ("keys", "values", "inputs"):
            batch_dim = 1 if name != "inputs" else 0
            shape = [1] * new_state[name].dim()
            shape[batch_dim] = batch
            new_state[name] = torch.where(saturated.view(shape), new_state[name], cached_state[name])
        return y, new_state

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, context_length={self.context_length}, positional={self.positional!r}"
