"""Causal linear attention (Katharopoulos et al. 2020): a Transformer that is also an RNN."""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..errors import OptionError
from ..registry import register_backbone
from .attention_common import PreNormStack, merge_heads, split_heads
from .base import State, check_lengths, lengths_mask


def feature_map(x: Tensor) -> Tensor:
    """phi(x) = elu(x) + 1: positive, so every normaliser phi(q)^T z is positive."""
    return F.elu(x) + 1.0


class CausalLinearAttention(nn.Module):
    r"""Multi-head causal linear attention with running sums as its state.

    .. math::
        y_t = \frac{\phi(q_t)^\top S_t}{\phi(q_t)^\top z_t + \varepsilon},\qquad
        S_t = S_{t-1} + \phi(k_t) v_t^\top,\qquad z_t = z_{t-1} + \phi(k_t)

    per head, out = W_O [y^1; ...; y^{nh}]. Softmax attention's
    exp(q^T k) is replaced by the kernel phi(q)^T phi(k), so the sum over the
    past factorises through S (hs x hs) and z (hs): O(1) per step.

    Two ways to compute the same thing:
        ``parallel`` (for ``forward``): in chunks of c positions, inside a chunk the
            masked quadratic form (phi(Q) phi(K)^T masked to j <= i) times V, plus
            phi(Q) S from the chunks before; then S and z absorb the chunk. O(T c hs + T hs^2).
        ``recurrent`` (for ``step``): the update above, one position at a time.

    Inputs/outputs: x (B, T, H), running sums S (B, nh, hs, hs) and z (B, nh, hs),
    real (B, T) bool or None (False: a padded position, which adds nothing to S and z)
    -> (out (B, T, H), (S, z) after the last position).
    """

    def __init__(self, hidden_size: int, num_heads: int, *, bias: bool = True, eps: float = 1e-6,
                 chunk_size: int = 64) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.eps = eps
        self.chunk_size = chunk_size
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=bias)
        self.output = nn.Linear(hidden_size, hidden_size, bias=bias)

    def forward(self, x: Tensor, sums: Tensor, normalizers: Tensor, real: Tensor | None,
                recurrent: bool) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        query, key, value = (split_heads(part, self.num_heads) for part in self.qkv(x).chunk(3, dim=-1))  # (B, nh, T, hs)
        query, key = feature_map(query), feature_map(key)
        if real is not None:
            key = key * real[:, None, :, None].to(key.dtype)  # a zero feature adds nothing to S or z
        mix = self.recurrent if recurrent else self.parallel
        mixed, sums, normalizers = mix(query, key, value, sums, normalizers)
        return self.output(merge_heads(mixed)), (sums, normalizers)

    def parallel(self, query: Tensor, key: Tensor, value: Tensor, sums: Tensor,
                 normalizers: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        outputs = []
        for start in range(0, query.shape[2], self.chunk_size):
            chunk = slice(start, start + self.chunk_size)
            q, k, v = query[:, :, chunk], key[:, :, chunk], value[:, :, chunk]  # (B, nh, c, hs)
            scores = (q @ k.transpose(-2, -1)).tril()  # (B, nh, c, c): phi(q_i)^T phi(k_j), j <= i
            numerator = scores @ v + q @ sums  # (B, nh, c, hs)
            denominator = scores.sum(-1) + (q @ normalizers.unsqueeze(-1)).squeeze(-1)  # (B, nh, c)
            outputs.append(numerator / (denominator.unsqueeze(-1) + self.eps))
            sums = sums + k.transpose(-2, -1) @ v  # (B, nh, hs, hs)
            normalizers = normalizers + k.sum(dim=2)  # (B, nh, hs)
        return torch.cat(outputs, dim=2), sums, normalizers

    def recurrent(self, query: Tensor, key: Tensor, value: Tensor, sums: Tensor,
                  normalizers: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        outputs = []
        for t in range(query.shape[2]):
            q, k, v = query[:, :, t], key[:, :, t], value[:, :, t]  # (B, nh, hs)
            sums = sums + k.unsqueeze(-1) * v.unsqueeze(-2)  # (B, nh, hs, hs): S_t = S_{t-1} + phi(k_t) v_t^T
            normalizers = normalizers + k
            numerator = (q.unsqueeze(-2) @ sums).squeeze(-2)  # (B, nh, hs)
            denominator = (q * normalizers).sum(-1, keepdim=True)  # (B, nh, 1)
            outputs.append(numerator / (denominator + self.eps))
        return torch.stack(outputs, dim=2), sums, normalizers


@register_backbone("linear_attention")
class LinearAttention(PreNormStack):
    r"""A GPT-style stack whose attention is causal linear attention (Katharopoulos et al. 2020).

    .. math::
        a_l = h_{l-1} + \mathrm{LinAttn}_l(\mathrm{LN}(h_{l-1})),\quad h_l = a_l + \mathrm{MLP}_l(\mathrm{LN}(a_l)),
        \quad y = \mathrm{LN}_f(h_L)

    with, per layer and head, phi(x) = elu(x) + 1 and

    .. math::
        y_t = \frac{\phi(q_t)^\top S_t}{\phi(q_t)^\top z_t + \varepsilon},\quad
        S_t = \sum_{i \le t} \phi(k_i) v_i^\top,\quad z_t = \sum_{i \le t} \phi(k_i).

    ``forward`` computes it in parallel (chunked), ``step`` as the recurrence on (S, z).

    No positional encoding: order reaches the model through causality, as in an RNN.
    One layer's y_t is a function of the set of past (k_i, v_i), but that set grows
    with t, and every later layer reads outputs that already summarise different
    prefixes, so positions become distinguishable (causal Transformers without
    position encodings learn positions the same way). Leaving positions out also
    keeps the state O(1) and meaningful at any length: nothing indexes a table
    and nothing counts.

    State, a dict of tensors:
        ``key_value_sums``: S, (L, B, nh, hs, hs);
        ``key_sums``: z, (L, B, nh, hs).

    Args:
        num_heads: nh; None: max(1, H // 64). Must divide H; head size hs = H / nh.
        eps: epsilon added to the normaliser phi(q)^T z.
        chunk_size: positions per chunk of the parallel form; a trade between the
            masked c x c products and the number of sequential chunk updates.
        bias, dropout (residual, training only), input_size, hidden_size, num_layers:
            as for the Transformer.

    Inputs/outputs: x (B, T, D) -> y (B, T, H) and the state above.
    """

    def __init__(self, input_size: int, hidden_size: int, *, eps: float = 1e-6, chunk_size: int = 64,
                 **options) -> None:
        if not eps >= 0.0:
            raise OptionError(f"eps must be zero or more, got {eps}")
        if chunk_size < 1:
            raise OptionError(f"chunk_size must be at least 1, got {chunk_size}")
        self.eps = eps
        self.chunk_size = chunk_size
        super().__init__(input_size, hidden_size, **options)

    def make_mixer(self) -> nn.Module:
        return CausalLinearAttention(self.hidden_size, self.num_heads, bias=self.bias, eps=self.eps,
                                     chunk_size=self.chunk_size)

    def init_state(self, batch_size: int) -> State:
        like = self.parameter_like()
        shape = (self.num_layers, batch_size, self.num_heads, self.head_size)
        return {"key_value_sums": like.new_zeros(*shape, self.head_size), "key_sums": like.new_zeros(shape)}

    def forward(self, x: Tensor, state: State = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        """x (B, T, D) -> y (B, T, H) by the chunked parallel form, and (S, z) after each row's last real position."""
        batch, time_steps, _ = x.shape
        real = None
        if lengths is not None:
            real = lengths_mask(check_lengths(lengths, batch, time_steps).to(x.device), time_steps)  # (B, T)
        y, state = self._run(x, self.init_state(batch) if state is None else state, real, recurrent=False)
        if real is not None:
            y = y.masked_fill(~real.unsqueeze(-1), 0.0)
        return y, state

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        """x_t (B, D) -> y_t (B, H) by the recurrence: O(1) in the sequence length."""
        y, state = self._run(x_t.unsqueeze(1), state, None, recurrent=True)
        return y[:, 0], state

    def _run(self, x: Tensor, state: State, real: Tensor | None, *, recurrent: bool) -> tuple[Tensor, State]:
        hidden = self.input_projection(x)  # (B, T, H)
        all_sums, all_normalizers = [], []
        for layer, block in enumerate(self.blocks):
            hidden, (sums, normalizers) = block(
                hidden, state["key_value_sums"][layer], state["key_sums"][layer], real, recurrent)
            all_sums.append(sums)
            all_normalizers.append(normalizers)
        return self.final_norm(hidden), {"key_value_sums": torch.stack(all_sums), "key_sums": torch.stack(all_normalizers)}

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, eps={self.eps}, chunk_size={self.chunk_size}"
