r"""Encoder-decoder models (many-to-many, unaligned): a recurrent one with attention, and a Transformer.

Both read a right-padded source batch and write the target one token at a
time, p(y_t | y_{<t}, x), and share one interface, which teacher forcing,
greedy decoding and beam search (``seqlab.decode``) use:

    memory = model.encode(src, src_len)             # what the decoder reads: batch-first tensors
    state = model.start(memory)                     # the decoder's state before BOS
    logits, state, weights = model.step(token, state, memory)   # (B,) -> (B, V), weights (B, S) or None
    logits, weights = model.teacher_forced(src, src_len, tgt_in)  # (B, T, V), (B, T, S) or None
    logits = model(src, src_len, tgt_in)

Every tensor of a memory and of a decoder state has the batch on dimension 0,
so beam search reorders or repeats hypotheses with one ``index_select`` over
the whole structure. Attention weights are exactly 0 at padded source
positions.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..backbones.attention_common import INIT_STD, MLP, PreNormBlock, merge_heads, resolve_heads, split_heads
from ..backbones.base import Backbone, State, lengths_mask
from ..backbones.recurrent import RecurrentBackbone
from ..backbones.transformer import AttentionPlan, CausalSelfAttention, sinusoidal_encoding
from ..config import Config
from ..errors import OptionError
from ..registry import build_backbone, check_options
from .classifier import reverse_within_lengths
from .language_model import OneHot

ATTENTIONS = ("bahdanau", "luong", "none")
Memory = dict[str, Tensor]


class AdditiveAttention(nn.Module):
    r"""Bahdanau et al. (2015): e_s = v^T tanh(W q + U h_s + b).

    ``keys`` precomputes U h_s + b once per source; ``scores`` adds the query's part.
    Inputs/outputs: keys(h (B, S, M)) -> (B, S, A); scores(q (B, Q), keys) -> (B, S).
    """

    def __init__(self, query_size: int, memory_size: int, attention_size: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_size, attention_size, bias=False)
        self.memory = nn.Linear(memory_size, attention_size)
        self.vector = nn.Linear(attention_size, 1, bias=False)

    def keys(self, outputs: Tensor) -> Tensor:
        return self.memory(outputs)  # (B, S, A)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        return self.vector(torch.tanh(self.query(query).unsqueeze(1) + keys)).squeeze(-1)  # (B, S)


class MultiplicativeAttention(nn.Module):
    r"""Luong et al. (2015), "general": e_s = q^T W h_s.

    ``keys`` precomputes W h_s once per source; ``scores`` is then a dot product.
    Inputs/outputs: keys(h (B, S, M)) -> (B, S, Q); scores(q (B, Q), keys) -> (B, S).
    """

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        self.weight = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, outputs: Tensor) -> Tensor:
        return self.weight(outputs)  # (B, S, Q)

    def scores(self, query: Tensor, keys: Tensor) -> Tensor:
        return (keys @ query.unsqueeze(-1)).squeeze(-1)  # (B, S)


def attend(attention: AdditiveAttention | MultiplicativeAttention, query: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
    r"""a = softmax_{s <= L}(e_s), c = sum_s a_s h_s: query (B, Q) -> context (B, M), weights (B, S)."""
    scores = attention.scores(query, memory["keys"]).masked_fill(~memory["mask"], float("-inf"))  # (B, S)
    weights = torch.softmax(scores, dim=-1)
    context = (weights.unsqueeze(1) @ memory["outputs"]).squeeze(1)  # (B, M)
    return context, weights


class EncoderDecoder(nn.Module):
    """What both encoder-decoders share: ``forward`` is teacher forcing's logits."""

    has_attention: bool = True

    def encode(self, src: Tensor, src_len: Tensor) -> Memory:  # pragma: no cover - interface
        raise NotImplementedError

    def start(self, memory: Memory) -> State:  # pragma: no cover - interface
        raise NotImplementedError

    def step(self, token: Tensor, state: State, memory: Memory) -> tuple[Tensor, State, Tensor | None]:  # pragma: no cover
        raise NotImplementedError

    def teacher_forced(self, src: Tensor, src_len: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor | None]:  # pragma: no cover
        raise NotImplementedError

    def forward(self, src: Tensor, src_len: Tensor, tgt_in: Tensor) -> Tensor:
        """src (B, S), src_len (B,), tgt_in (B, T) (BOS, y_1 .. y_{T-1}) -> logits (B, T, V) for y_1 .. y_T."""
        return self.teacher_forced(src, src_len, tgt_in)[0]


def feed_size(attention: str, memory_size: int, hidden_size: int) -> int:
    """Width the recurrent decoder reads besides the embedding: the context (bahdanau), the previous
    attentional vector (luong, input feeding) or nothing (none)."""
    return {"bahdanau": memory_size, "luong": hidden_size, "none": 0}[attention]


class RecurrentSeq2Seq(EncoderDecoder):
    r"""A recurrent encoder-decoder with additive, multiplicative or no attention.

    Encoder: h_1..h_L = encoder(E x) over the real positions (any registered
    backbone); with ``reverse_encoder`` (bidirectional) h_s = [h_s^fwd; h_s^rev], the
    second read right to left within each length. Its summary
    m = [h_L^fwd; h_1^rev] starts the decoder: s_0 = tanh(W_b m + b_b), for every
    layer (and, for an LSTM, the cell as well).

    Decoder, a recurrent cell stack (rnn, lstm or gru) with state s, at step t:
        ``bahdanau``: c_t = attend(s_{t-1}), s_t = cell([E y_{t-1}; c_t], s_{t-1}),
                      o_t = tanh(W_o [s_t; c_t]),  a_ts ∝ exp(v^T tanh(W s_{t-1} + U h_s));
        ``luong``:    s_t = cell([E y_{t-1}; o_{t-1}], s_{t-1}) (input feeding, o_0 = 0),
                      c_t = attend(s_t), o_t = tanh(W_o [s_t; c_t]),  a_ts ∝ exp(s_t^T W h_s);
        ``none``:     s_t = cell(E y_{t-1}, s_{t-1}), o_t = tanh(W_o s_t): the source reaches
                      the decoder only through s_0.
    where attend(q) = sum_s a_s h_s with the weights softmax over real positions
    (the top layer's h is the query). p(y_t | y_{<t}, x) = softmax(W_v o_t + b_v).

    Args:
        vocab_size: V, shared by source and target (one embedding for both).
        encoder: a backbone reading the embedding.
        decoder: a RecurrentBackbone whose input is E + feed_size(attention, M, H).
        reverse_encoder: a second encoder for the right-to-left direction, or None.
        attention: ``bahdanau``, ``luong`` or ``none``.
        embedding: ``learned`` or ``onehot``.
        dropout: on embeddings and on o_t.

    State: {"hidden": (B, n, layers, H)} (n = 1, or 2 for an LSTM's (h, c)) and,
    for ``luong``, {"feed": (B, H)}, o_{t-1}.
    """

    def __init__(self, vocab_size: int, encoder: Backbone, decoder: RecurrentBackbone, *,
                 reverse_encoder: Backbone | None = None, attention: str = "bahdanau", embedding: str = "learned",
                 dropout: float = 0.0) -> None:
        super().__init__()
        if attention not in ATTENTIONS:
            raise OptionError(f"attention must be one of {', '.join(ATTENTIONS)}, got {attention!r}")
        if not isinstance(decoder, RecurrentBackbone):
            raise ValueError("the decoder must be a recurrent backbone (rnn, lstm or gru)")
        self.vocab_size = vocab_size
        self.attention_kind = attention
        self.has_attention = attention != "none"
        self.embedding: nn.Module = OneHot(vocab_size) if embedding == "onehot" else nn.Embedding(vocab_size, encoder.input_size)
        self.encoder = encoder
        self.reverse_encoder = reverse_encoder
        self.decoder = decoder
        memory_size = encoder.output_size + (reverse_encoder.output_size if reverse_encoder is not None else 0)
        hidden = decoder.hidden_size
        expected = encoder.input_size + feed_size(attention, memory_size, hidden)
        if decoder.input_size != expected:
            raise ValueError(f"the decoder must read {expected} features, it reads {decoder.input_size}")
        self.state_count = len(decoder.state_names)
        self.bridge = nn.Linear(memory_size, self.state_count * decoder.num_layers * hidden)
        self.attention: nn.Module | None = None
        if attention == "bahdanau":
            self.attention = AdditiveAttention(hidden, memory_size, hidden)
        elif attention == "luong":
            self.attention = MultiplicativeAttention(hidden, memory_size)
        self.combine = nn.Linear(hidden + (memory_size if self.has_attention else 0), hidden)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, vocab_size)

    def encode(self, src: Tensor, src_len: Tensor) -> Memory:
        """src (B, S), src_len (B,) -> {"outputs": (B, S, M), "mask": (B, S), "summary": (B, M), "keys": (B, S, A)}."""
        embedded = self.dropout(self.embedding(src))  # (B, S, E)
        outputs, _ = self.encoder(embedded, None, src_len)  # (B, S, H_e)
        rows = torch.arange(src.shape[0], device=src.device)
        summary = outputs[rows, src_len - 1]  # (B, H_e)
        if self.reverse_encoder is not None:
            reverse, _ = self.reverse_encoder(reverse_within_lengths(embedded, src_len), None, src_len)
            reverse = reverse_within_lengths(reverse, src_len)  # position s has read x_L .. x_s
            outputs = torch.cat([outputs, reverse], dim=2)  # (B, S, M)
            summary = torch.cat([summary, reverse[:, 0]], dim=1)  # (B, M)
        memory = {"outputs": outputs, "mask": lengths_mask(src_len, src.shape[1]), "summary": summary}
        if self.attention is not None:
            memory["keys"] = self.attention.keys(outputs)
        return memory

    def start(self, memory: Memory) -> State:
        summary = memory["summary"]
        decoder = self.decoder
        hidden = torch.tanh(self.bridge(summary)).view(  # (B, n, layers, H)
            summary.shape[0], self.state_count, decoder.num_layers, decoder.hidden_size)
        state = {"hidden": hidden}
        if self.attention_kind == "luong":
            state["feed"] = summary.new_zeros(summary.shape[0], decoder.hidden_size)
        return state

    def _backbone_state(self, hidden: Tensor) -> State:
        """(B, n, layers, H) -> the backbone's own layout: h (layers, B, H), or (h, c)."""
        tensors = tuple(hidden.permute(1, 2, 0, 3).unbind(0))
        return tensors[0] if len(tensors) == 1 else tensors

    def _decode(self, embedded: Tensor, state: State, memory: Memory) -> tuple[Tensor, State, Tensor | None]:
        """embedded y_0 .. y_{T-1} (B, T, E) -> logits (B, T, V), the state after them, weights (B, T, S) or None.

        The decoder backbone traverses the steps: without attention all at once (``forward``); with it by input
        feeding (``input_fed``), each step reading the context (bahdanau) or the attentional vector (luong) that
        the output before it gives."""
        hidden = self._backbone_state(state["hidden"])
        new_state: State = {}
        if self.attention_kind == "none":
            outputs, hidden = self.decoder(embedded, hidden)  # (B, T, H)
            combined, weights = torch.tanh(self.combine(outputs)), None
        elif self.attention_kind == "bahdanau":  # c_t = attend(s_{t-1}), read with y_{t-1}
            query = state["hidden"][:, 0, -1]  # s_0's top h
            outputs, fed, hidden = self.decoder.input_fed(embedded, hidden, lambda y: attend(self.attention, y, memory),
                                                          attend(self.attention, query, memory))
            contexts, weights = (torch.stack(parts, dim=1) for parts in zip(*fed))  # (B, T, M), (B, T, S)
            combined = torch.tanh(self.combine(torch.cat([outputs, contexts], dim=-1)))
        else:  # luong: o_t = tanh(W_o [s_t; attend(s_t)]), read with y_t at the next step
            def attentional(y: Tensor) -> tuple[Tensor, Tensor]:
                context, weights = attend(self.attention, y, memory)
                return torch.tanh(self.combine(torch.cat([y, context], dim=-1))), weights

            outputs, fed, hidden = self.decoder.input_fed(embedded, hidden, attentional, (state["feed"],))
            fed = [*fed[1:], attentional(outputs[:, -1])]  # o_t and the weights behind it, for t = 0 .. T-1
            combined, weights = (torch.stack(parts, dim=1) for parts in zip(*fed))
            new_state["feed"] = combined[:, -1]
        tensors = (hidden,) if isinstance(hidden, Tensor) else tuple(hidden)
        new_state["hidden"] = torch.stack(tensors).permute(2, 0, 1, 3)  # (B, n, layers, H)
        return self.head(self.dropout(combined)), new_state, weights

    def step(self, token: Tensor, state: State, memory: Memory) -> tuple[Tensor, State, Tensor | None]:
        logits, state, weights = self._decode(self.dropout(self.embedding(token)).unsqueeze(1), state, memory)
        return logits[:, 0], state, None if weights is None else weights[:, 0]

    def teacher_forced(self, src: Tensor, src_len: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor | None]:
        memory = self.encode(src, src_len)
        logits, _, weights = self._decode(self.dropout(self.embedding(tgt_in)), self.start(memory), memory)
        return logits, weights  # (B, T, V), (B, T, S) or None


class CrossAttention(nn.Module):
    r"""Multi-head attention from the decoder's positions to the encoder's.

    .. math::
        \mathrm{head}_h = \mathrm{softmax}\Big(\frac{Q_h K_h^\top}{\sqrt{d_h}} + M\Big) V_h,\quad
        Q = x W_Q,\ (K, V) = m\,W_{KV},\quad \mathrm{out} = W_O [\mathrm{head}_1; \dots]

    with M = -inf at padded source positions. Keys and values are computed once
    per source (``project``). Inputs/outputs: x (B, T, H), keys and values
    (B, nh, S, hs), mask (B, S) -> out (B, T, H), weights (B, nh, T, S).
    """

    def __init__(self, hidden_size: int, num_heads: int, *, bias: bool = True) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.query = nn.Linear(hidden_size, hidden_size, bias=bias)
        self.key_value = nn.Linear(hidden_size, 2 * hidden_size, bias=bias)
        self.output = nn.Linear(hidden_size, hidden_size, bias=bias)

    def project(self, memory_outputs: Tensor) -> tuple[Tensor, Tensor]:
        keys, values = self.key_value(memory_outputs).chunk(2, dim=-1)
        return split_heads(keys, self.num_heads), split_heads(values, self.num_heads)  # (B, nh, S, hs) each

    def forward(self, x: Tensor, keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        query = split_heads(self.query(x), self.num_heads)  # (B, nh, T, hs)
        scores = query @ keys.transpose(-2, -1) / math.sqrt(query.shape[-1])  # (B, nh, T, S)
        weights = torch.softmax(scores.masked_fill(~mask[:, None, None, :], float("-inf")), dim=-1)
        return self.output(merge_heads(weights @ values)), weights


class DecoderBlock(nn.Module):
    r"""Pre-norm decoder block: causal self-attention, cross-attention, MLP, each residual.

    .. math::
        a = x + \mathrm{SelfAttn}(\mathrm{LN}_1 x),\quad b = a + \mathrm{CrossAttn}(\mathrm{LN}_2 a, m),\quad
        y = b + \mathrm{MLP}(\mathrm{LN}_3 b)

    Returns y (B, T, H) and (the new positions' keys, values (B, nh, T, hs), cross weights (B, nh, T, S)).
    """

    def __init__(self, hidden_size: int, num_heads: int, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.norm_1 = nn.LayerNorm(hidden_size)
        self.self_attention = CausalSelfAttention(hidden_size, num_heads, dropout=dropout)
        self.norm_2 = nn.LayerNorm(hidden_size)
        self.cross_attention = CrossAttention(hidden_size, num_heads)
        self.norm_3 = nn.LayerNorm(hidden_size)
        self.mlp = MLP(hidden_size)
        self.residual_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, cached_keys: Tensor | None, cached_values: Tensor | None, plan: AttentionPlan,
                cross_keys: Tensor, cross_values: Tensor, mask: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor, Tensor]]:
        mixed, (keys, values, _) = self.self_attention(self.norm_1(x), cached_keys, cached_values, plan)
        x = x + self.residual_dropout(mixed)
        crossed, weights = self.cross_attention(self.norm_2(x), cross_keys, cross_values, mask)
        x = x + self.residual_dropout(crossed)
        x = x + self.residual_dropout(self.mlp(self.norm_3(x)))
        return x, (keys, values, weights)


class TransformerSeq2Seq(EncoderDecoder):
    r"""The Transformer encoder-decoder (Vaswani et al. 2017), pre-norm, sinusoidal positions.

    .. math::
        e_0 = E x + PE,\quad e_l = \mathrm{Block}^{enc}_l(e_{l-1})\ \text{(self-attention over real positions)},
        \quad m = \mathrm{LN}(e_L)

        d_0 = E y_{<t} + PE,\quad d_l = \mathrm{DecoderBlock}_l(d_{l-1}, m),\quad
        p(y_t \mid y_{<t}, x) = \mathrm{softmax}(W_v \mathrm{LN}(d_L)_t + b_v)

    The encoder's blocks are the backbone's pre-norm blocks with a padding mask
    instead of the causal one; the decoder's self-attention is the backbone's
    causal attention, which ``step`` runs over a growing key/value cache. One
    embedding (N(0, 1)) serves both sides; other weights follow GPT-2
    (N(0, 0.02^2), residual projections scaled by 1/sqrt(2L)).

    Args:
        vocab_size: V. hidden_size: H. num_layers: L encoder and L decoder blocks.
        num_heads: nh; None: max(1, H // 64). dropout: attention and residual dropout.

    Memory: {"outputs": (B, S, H), "mask": (B, S), "cross_keys", "cross_values": (B, L, nh, S, hs)}.
    State: {"keys", "values": (B, L, nh, t, hs), the decoder's self-attention cache; "positions": (B,)}.
    Attention weights: the last decoder layer's cross-attention, averaged over heads.
    """

    def __init__(self, vocab_size: int, hidden_size: int, *, num_layers: int = 1, num_heads: int | None = None,
                 dropout: float = 0.0) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = resolve_heads(hidden_size, num_heads)
        self.head_size = hidden_size // self.num_heads
        self.embedding = nn.Embedding(vocab_size, hidden_size)
        self.embedding_dropout = nn.Dropout(dropout)
        self.encoder_blocks = nn.ModuleList(
            PreNormBlock(hidden_size, CausalSelfAttention(hidden_size, self.num_heads, dropout=dropout), dropout=dropout)
            for _ in range(num_layers))
        self.encoder_norm = nn.LayerNorm(hidden_size)
        self.decoder_blocks = nn.ModuleList(
            DecoderBlock(hidden_size, self.num_heads, dropout=dropout) for _ in range(num_layers))
        self.decoder_norm = nn.LayerNorm(hidden_size)
        self.head = nn.Linear(hidden_size, vocab_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        residual_std = INIT_STD / math.sqrt(2 * self.num_layers)
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear):
                    nn.init.normal_(module.weight, std=INIT_STD)
                    if module.bias is not None:
                        module.bias.zero_()
            for block in [*self.encoder_blocks, *self.decoder_blocks]:
                projections = [block.mlp.project]
                projections += [block.mixer.output] if isinstance(block, PreNormBlock) else [
                    block.self_attention.output, block.cross_attention.output]
                for projection in projections:
                    nn.init.normal_(projection.weight, std=residual_std)

    def _embed(self, tokens: Tensor, positions: Tensor) -> Tensor:
        """tokens, positions (B, T) -> (B, T, H)."""
        embedded = self.embedding(tokens)
        return self.embedding_dropout(embedded + sinusoidal_encoding(positions, self.hidden_size, embedded.dtype))

    def encode(self, src: Tensor, src_len: Tensor) -> Memory:
        batch, length = src.shape
        positions = torch.arange(length, device=src.device).expand(batch, length)
        mask = lengths_mask(src_len, length)  # (B, S)
        plan = AttentionPlan(mask=mask[:, None, None, :], rotary=None, use_cache=False, explicit=False)
        hidden = self._embed(src, positions)
        for block in self.encoder_blocks:
            hidden, _ = block(hidden, None, None, plan)
        outputs = self.encoder_norm(hidden)  # (B, S, H)
        projected = [block.cross_attention.project(outputs) for block in self.decoder_blocks]
        return {"outputs": outputs, "mask": mask,
                "cross_keys": torch.stack([keys for keys, _ in projected], 1),  # (B, L, nh, S, hs)
                "cross_values": torch.stack([values for _, values in projected], 1)}

    def start(self, memory: Memory) -> State:
        outputs = memory["outputs"]
        empty = outputs.new_zeros(outputs.shape[0], self.num_layers, self.num_heads, 0, self.head_size)
        return {"keys": empty, "values": empty.clone(),
                "positions": torch.zeros(outputs.shape[0], dtype=torch.long, device=outputs.device)}

    def _decode(self, hidden: Tensor, state: State | None, plan: AttentionPlan,
                memory: Memory) -> tuple[Tensor, list[Tensor], list[Tensor], Tensor]:
        keys, values, weights = [], [], None
        for layer, block in enumerate(self.decoder_blocks):
            cached_keys = None if state is None else state["keys"][:, layer]
            cached_values = None if state is None else state["values"][:, layer]
            hidden, (layer_keys, layer_values, weights) = block(
                hidden, cached_keys, cached_values, plan, memory["cross_keys"][:, layer],
                memory["cross_values"][:, layer], memory["mask"])
            keys.append(layer_keys)
            values.append(layer_values)
        return self.head(self.decoder_norm(hidden)), keys, values, weights.mean(1)  # weights (B, T, S)

    def step(self, token: Tensor, state: State, memory: Memory) -> tuple[Tensor, State, Tensor | None]:
        positions = state["positions"]  # (B,)
        hidden = self._embed(token.unsqueeze(1), positions.unsqueeze(1))  # (B, 1, H)
        seen = state["keys"].shape[3]
        visible = torch.ones(token.shape[0], 1, 1, seen + 1, dtype=torch.bool, device=token.device)  # the cache and itself
        plan = AttentionPlan(mask=visible, rotary=None, use_cache=True, explicit=False)
        logits, keys, values, weights = self._decode(hidden, state, plan, memory)
        new_state = {"keys": torch.cat([state["keys"], torch.stack(keys, 1)], dim=3),  # (B, L, nh, t+1, hs)
                     "values": torch.cat([state["values"], torch.stack(values, 1)], dim=3),
                     "positions": positions + 1}
        return logits[:, 0], new_state, weights[:, 0]

    def teacher_forced(self, src: Tensor, src_len: Tensor, tgt_in: Tensor) -> tuple[Tensor, Tensor | None]:
        memory = self.encode(src, src_len)
        batch, length = tgt_in.shape
        positions = torch.arange(length, device=tgt_in.device).expand(batch, length)
        plan = AttentionPlan(mask=None, rotary=None, use_cache=False, explicit=False)  # plain causal
        logits, _, _, weights = self._decode(self._embed(tgt_in, positions), None, plan, memory)
        return logits, weights


DECODER_BACKBONES = ("rnn", "lstm", "gru")
DEFAULT_DECODER = "gru"


def build_seq2seq(config: Config, vocab_size: int) -> EncoderDecoder:
    """``model.backbone`` "transformer" -> TransformerSeq2Seq; any other -> RecurrentSeq2Seq.

    The recurrent model's encoder is that backbone (with ``model.options``;
    two with ``task.bidirectional``) and its decoder the same cell when it is
    rnn, lstm or gru, else a GRU. ``task.attention`` picks the attention.
    """
    model, task = config.model, config.task
    if model.backbone == "transformer":
        unknown = sorted(set(model.options) - {"num_heads"})
        if unknown:
            raise OptionError(f"the seq2seq Transformer takes --num-heads only, not --{unknown[0].replace('_', '-')}")
        if model.embedding != "learned":
            raise OptionError("the seq2seq Transformer needs --embedding learned")
        if task.attention == "none":
            raise OptionError("a Transformer encoder-decoder always attends; --attention none is for recurrent models")
        options = check_options("transformer", model.options)
        return TransformerSeq2Seq(vocab_size, model.hidden_size, num_layers=model.num_layers,
                                  num_heads=options.get("num_heads"), dropout=model.dropout)
    embedding_size = vocab_size if model.embedding == "onehot" else (model.embedding_size or model.hidden_size)

    def encoder() -> Backbone:
        return build_backbone(model.backbone, input_size=embedding_size, hidden_size=model.hidden_size,
                              num_layers=model.num_layers, dropout=model.dropout, **model.options)

    forward_encoder = encoder()
    reverse_encoder = encoder() if task.bidirectional else None
    memory_size = forward_encoder.output_size * (2 if task.bidirectional else 1)
    decoder_name = model.backbone if model.backbone in DECODER_BACKBONES else DEFAULT_DECODER
    decoder_options = model.options if decoder_name == model.backbone else {}
    decoder = build_backbone(decoder_name, input_size=embedding_size + feed_size(task.attention, memory_size,
                                                                                model.hidden_size),
                             hidden_size=model.hidden_size, num_layers=model.num_layers, dropout=model.dropout,
                             **decoder_options)
    return RecurrentSeq2Seq(vocab_size, forward_encoder, decoder, reverse_encoder=reverse_encoder,
                            attention=task.attention, embedding=model.embedding, dropout=model.dropout)
