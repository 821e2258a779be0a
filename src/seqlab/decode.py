r"""Decoding an encoder-decoder (``seqlab.models.seq2seq``) through its step API: greedy and beam search.

A hypothesis y_1 .. y_n (EOS last when it finished) scores
log p(y | x) = sum_t log p(y_t | y_{<t}, x), and, length-normalised, that sum
divided by n, which beam search uses to pick among finished hypotheses (raw
sums favour short outputs).

Beam search (per input) keeps k hypotheses: each step extends every live one
by every token and keeps the k best extensions by raw score; an extension
ending in EOS is finished and leaves the beam, which shrinks by one, so the
search ends when k hypotheses have finished (or at ``max_length``, where the
live ones count as finished unended). With k = 1 this is greedy decoding,
token for token.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

from .backbones.base import map_state
from .data.pairs import BOS, EOS
from .errors import SeqlabError


@dataclass
class Hypothesis:
    tokens: list[int]  # y_1 .. y_n, EOS last if it finished
    score: float  # sum of log-probabilities

    @property
    def normalised_score(self) -> float:
        return self.score / max(1, len(self.tokens))


def check_decoding(*, beam_size: int, max_length: int) -> None:
    if beam_size < 1:
        raise SeqlabError(f"--beam-size must be at least 1, got {beam_size}")
    if max_length < 1:
        raise SeqlabError(f"--max-target-length must be at least 1, got {max_length}")


def use_beam_size(checkpoint: Any, beam_size: int | None) -> None:
    """Make a loaded seq2seq checkpoint decode with ``beam_size`` instead of its own (None: keep its own)."""
    if beam_size is None:
        return
    if checkpoint.config.task.name != "seq2seq":
        raise SeqlabError(f"--beam-size is for seq2seq checkpoints; this one is --task {checkpoint.config.task.name}")
    check_decoding(beam_size=beam_size, max_length=checkpoint.config.task.max_target_length)
    checkpoint.config.task.beam_size = beam_size


@torch.no_grad()
def greedy_decode(model: torch.nn.Module, src: Tensor, src_len: Tensor, *, max_length: int) -> list[Hypothesis]:
    """y_t = argmax p(y | y_{<t}, x) for a batch: src (B, S), src_len (B,) -> B hypotheses."""
    memory = model.encode(src, src_len)
    state = model.start(memory)
    token = torch.full((src.shape[0],), BOS, dtype=torch.long, device=src.device)
    finished = torch.zeros(src.shape[0], dtype=torch.bool, device=src.device)
    scores = torch.zeros(src.shape[0], dtype=torch.float64, device=src.device)
    tokens = []
    for _ in range(max_length):
        logits, state, _ = model.step(token, state, memory)
        log_probabilities = F.log_softmax(logits.float(), dim=-1)  # (B, V)
        token = log_probabilities.argmax(-1)  # (B,)
        chosen = log_probabilities.gather(1, token.unsqueeze(1)).squeeze(1).double()
        scores += torch.where(finished, torch.zeros_like(chosen), chosen)
        tokens.append(token)
        finished |= token == EOS
        if bool(finished.all()):
            break
    hypotheses = []
    for row, sequence in enumerate(torch.stack(tokens, 1).tolist()):
        end = sequence.index(EOS) + 1 if EOS in sequence else len(sequence)
        hypotheses.append(Hypothesis(sequence[:end], float(scores[row])))
    return hypotheses


@torch.no_grad()
def beam_search(model: torch.nn.Module, src: Tensor, *, beam_size: int, max_length: int) -> list[Hypothesis]:
    """The finished hypotheses of one source src (S,), best length-normalised score first."""
    memory = model.encode(src.unsqueeze(0), torch.tensor([len(src)], device=src.device))
    state = model.start(memory)
    alive: list[list[int]] = [[]]
    scores = torch.zeros(1, dtype=torch.float64, device=src.device)  # (k,)
    finished: list[Hypothesis] = []
    width = beam_size
    for _ in range(max_length):
        rows = len(alive)
        last = torch.tensor([tokens[-1] if tokens else BOS for tokens in alive], device=src.device)  # (k,)
        expanded = map_state(lambda tensor: tensor.expand(rows, *tensor.shape[1:]), memory)
        logits, state, _ = model.step(last, state, expanded)
        log_probabilities = F.log_softmax(logits.float(), dim=-1).double()  # (k, V)
        vocab_size = log_probabilities.shape[1]
        candidates = (scores.unsqueeze(1) + log_probabilities).flatten()  # (k V,)
        best, index = candidates.topk(min(width, candidates.numel()))
        kept_rows, kept_tokens, kept_scores = [], [], []
        for score, flat in zip(best.tolist(), index.tolist()):
            row, token = divmod(flat, vocab_size)
            if token == EOS:
                finished.append(Hypothesis(alive[row] + [token], score))
            else:
                kept_rows.append(row)
                kept_tokens.append(alive[row] + [token])
                kept_scores.append(score)
        width -= len(best) - len(kept_rows)
        if not kept_rows:
            break
        keep = torch.tensor(kept_rows, device=src.device)
        state = map_state(lambda tensor: tensor.index_select(0, keep), state)
        alive, scores = kept_tokens, scores.new_tensor(kept_scores)
    else:
        finished += [Hypothesis(tokens, score) for tokens, score in zip(alive, scores.tolist())]
    return sorted(finished, key=lambda hypothesis: hypothesis.normalised_score, reverse=True)


def decode(model: torch.nn.Module, src: Tensor, src_len: Tensor, *, beam_size: int, max_length: int) -> list[Hypothesis]:
    """The best hypothesis per source of a padded batch: greedy (batched) for beam size 1, else beam search."""
    check_decoding(beam_size=beam_size, max_length=max_length)
    if beam_size == 1:
        return greedy_decode(model, src, src_len, max_length=max_length)
    return [beam_search(model, src[row, :length], beam_size=beam_size, max_length=max_length)[0]
            for row, length in enumerate(src_len.tolist())]
