"""Sampling that streams through a state: one ``step()`` per token.

The prompt goes through ``forward`` once; every new token then costs one
``step``, and nothing grows with the output but what the backbone's state
holds (nothing, for recurrent backbones). Text is yielded as it is made.
"""
from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor

from .backbones.base import State
from .errors import SeqlabError


def filter_logits(logits: Tensor, *, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """Keep the k most likely tokens and/or the smallest set whose probability reaches p; mask the rest to -inf.

    logits (B, V) -> (B, V).
    """
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
        # drop a token when the tokens before it already reach p (the first token always stays)
        drop_sorted = (cumulative - torch.softmax(sorted_logits, dim=-1)) >= top_p
        drop = drop_sorted.scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample_token(logits: Tensor, *, temperature: float, top_k: int, top_p: float, generator: torch.Generator) -> Tensor:
    """logits (B, V) -> token ids (B,); temperature 0 is greedy."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probabilities = torch.softmax(filter_logits(logits.float() / temperature, top_k=top_k, top_p=top_p), dim=-1)
    return torch.multinomial(probabilities.cpu(), 1, generator=generator).squeeze(-1).to(logits.device)


def check_sampling(*, max_tokens: int, temperature: float, top_k: int, top_p: float) -> None:
    if max_tokens < 0:
        raise SeqlabError(f"--max-tokens must be zero or more, got {max_tokens}")
    if temperature < 0:
        raise SeqlabError(f"--temperature must be zero or more, got {temperature}")
    if top_k < 0:
        raise SeqlabError(f"--top-k must be zero (off) or more, got {top_k}")
    if not 0 < top_p <= 1:
        raise SeqlabError(f"--top-p must be in (0, 1], got {top_p}")


@torch.no_grad()
def generate(model: torch.nn.Module, tokenizer, prompt: str = "", *, max_tokens: int = 500, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, seed: int | None = None, stop: str | None = None,
             state: State = None) -> Iterator[str]:
    """Yield generated text piece by piece (not including the prompt).

    With ``stop``, generation ends where the text first contains it; the stop
    string itself is not yielded. An empty prompt starts from a newline when the
    vocabulary has one (texts begin after one), else from token 0. ``state`` is
    the state the prompt starts from (batch 1), e.g. a conditioned model's
    ``condition_state``; None: the model's own fresh state.
    """
    check_sampling(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p)
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator()
    generator.manual_seed(seed if seed is not None else torch.seed())
    prompt_ids = tokenizer.encode(prompt) if prompt else tokenizer.encode("\n")[-1:]
    if len(prompt_ids) == 0:
        prompt_ids = torch.zeros(1, dtype=torch.long)
    prompt_ids = prompt_ids.to(device)
    limit = getattr(getattr(model, "backbone", None), "forward_limit", None) or len(prompt_ids)
    logits, state = model(prompt_ids[:limit].unsqueeze(0), state)  # (1, P', V): the prompt in one pass where it fits
    logits = logits[:, -1]  # (1, V)
    for token in prompt_ids[limit:]:  # the rest, if any, one step at a time
        logits, state = model.step(token.view(1), state)
    pending = ""  # text held back because it could be the start of the stop string
    for position in range(max_tokens):
        if position:  # the prompt's forward gave the first logits; each later token costs one step
            logits, state = model.step(token, state)
        token = sample_token(logits, temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)  # (1,)
        piece = tokenizer.decode(token.tolist())
        if stop:
            pending += piece
            if stop in pending:
                head = pending[:pending.index(stop)]
                if head:
                    yield head
                return
            keep = _longest_stop_prefix(pending, stop)
            if len(pending) > keep:
                yield pending[:len(pending) - keep]
                pending = pending[len(pending) - keep:]
        else:
            yield piece
    if pending:
        yield pending


def _longest_stop_prefix(text: str, stop: str) -> int:
    """Length of the longest suffix of ``text`` that begins ``stop``."""
    for length in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-length:]):
            return length
    return 0
