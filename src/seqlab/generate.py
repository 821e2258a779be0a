"""Sampling that streams through a state: one ``step()`` per token, for one sequence or a batch.

The prompt goes through ``forward`` once; every new token then costs one
``step``, and nothing grows with the output but what the backbone's state
holds (nothing, for recurrent backbones). Text is yielded as it is made.

N samples share one batched step. Sample i draws from its own random stream,
seeded ``seed + i``, so it is exactly the sample ``seed + i`` gives alone, and
each ends at its own stop string. Token ids become text incrementally: a
byte-level tokenizer's bytes go through UTF-8's incremental decoder, so a
character whose bytes span tokens appears once its last byte arrives, and a
stop string is caught wherever the token boundaries fall.
"""
from __future__ import annotations

import codecs
import math
import secrets
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import Tensor

from .backbones.base import State, map_state, state_tensors
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


def sample_tokens(logits: Tensor, *, temperature: float, top_k: int, top_p: float,
                  generators: list[torch.Generator]) -> Tensor:
    """logits (B, V) -> token ids (B,), row i drawn with ``generators[i]``; temperature 0 is greedy."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probabilities = torch.softmax(filter_logits(logits.float() / temperature, top_k=top_k, top_p=top_p), dim=-1).cpu()
    # one draw per row from the row's own stream, so a row's tokens do not depend on the batch around it
    tokens = [torch.multinomial(probabilities[row:row + 1], 1, generator=generator)
              for row, generator in enumerate(generators)]
    return torch.cat(tokens).view(-1).to(logits.device)  # (B,)


def check_sampling(*, max_tokens: int, temperature: float, top_k: int, top_p: float, num_samples: int = 1) -> None:
    if num_samples < 1:
        raise SeqlabError(f"--num-samples must be at least 1, got {num_samples}")
    if max_tokens < 0:
        raise SeqlabError(f"--max-tokens must be zero or more, got {max_tokens}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise SeqlabError(f"--temperature must be a finite number, zero or more, got {temperature}")
    if top_k < 0:
        raise SeqlabError(f"--top-k must be zero (off) or more, got {top_k}")
    if not 0 < top_p <= 1:
        raise SeqlabError(f"--top-p must be in (0, 1], got {top_p}")




class TextDecoder:
    """Token ids -> text, as it becomes final.

    A byte-level tokenizer (one with ``token_bytes``) may split a character's
    UTF-8 bytes across tokens: its bytes go through Python's incremental UTF-8
    decoder, which holds an incomplete character back until its last byte and
    turns only bytes that are not UTF-8 into U+FFFD. Other tokenizers decode
    token by token, each after the tokenizer's ``separator`` if it has one (a
    words-only word tokenizer: a space, as the text goes on from what came before).
    """

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.token_bytes = getattr(tokenizer, "token_bytes", None)
        self.separator = getattr(tokenizer, "separator", "")
        self.utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def add(self, token: int) -> str:
        if self.token_bytes is None:
            return self.separator + self.tokenizer.decode([token])
        return self.utf8.decode(self.token_bytes(token))

    def finish(self) -> str:
        """What is left: U+FFFD for each byte of a character that never completed."""
        return "" if self.token_bytes is None else self.utf8.decode(b"", final=True)


class StopFilter:
    """Text in, text out up to (not including) the first occurrence of ``stop`` (None: no stop).

    Text that could be the start of the stop string is held back until the
    next piece shows whether it is, so a stop spanning tokens is caught.
    """

    def __init__(self, stop: str | None) -> None:
        self.stop = stop
        self.pending = ""
        self.stopped = False

    def add(self, text: str) -> str:
        if not self.stop:
            return text
        self.pending += text
        if self.stop in self.pending:
            self.stopped = True
            head, self.pending = self.pending[:self.pending.index(self.stop)], ""
            return head
        keep = _longest_stop_prefix(self.pending, self.stop)
        out, self.pending = self.pending[:len(self.pending) - keep], self.pending[len(self.pending) - keep:]
        return out

    def finish(self) -> str:
        out, self.pending = self.pending, ""
        return out


@dataclass
class SampledStep:
    """One position of a batched generation, per sample: the text made final, the token, its probability.

    ``texts[i]`` is empty when sample i held its text back (a partial
    character, a possible stop) or has finished; ``finished[i]`` is True from
    the step at which sample i met its stop or its last token.
    """

    texts: list[str]
    tokens: list[int]
    probabilities: list[float]  # the model's p(token | context), before temperature and filtering
    finished: list[bool]


def batch_dimensions(model: torch.nn.Module) -> list[int | None]:
    """For each tensor of the model's state (in ``state_tensors`` order), the dimension that is the batch (None: shared)."""
    ones, twos = state_tensors(model.init_state(1)), state_tensors(model.init_state(2))
    dimensions = []
    for one, two in zip(ones, twos):
        differing = [dimension for dimension, (a, b) in enumerate(zip(one.shape, two.shape)) if a != b]
        dimensions.append(differing[0] if differing else None)
    return dimensions


def repeat_state(model: torch.nn.Module, state: State, copies: int) -> State:
    """A batch-1 state -> ``copies`` rows of it (real copies: some steps write their state in place)."""
    dimensions = iter(batch_dimensions(model))

    def repeat(tensor: Tensor) -> Tensor:
        dimension = next(dimensions)
        return tensor.clone() if dimension is None else tensor.repeat_interleave(copies, dim=dimension)

    return map_state(repeat, state)


@torch.no_grad()
def generate_batch(model: torch.nn.Module, tokenizer, prompt: str = "", *, num_samples: int = 1, max_tokens: int = 500,
                   temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0, seed: int | None = None,
                   stop: str | None = None, state: State = None) -> Iterator[SampledStep]:
    """Generate ``num_samples`` continuations of one prompt at once; yield one :class:`SampledStep` per position.

    Sample i uses the random stream seeded ``seed + i`` (a random seed when
    None). Generation ends when every sample has met its stop or made
    ``max_tokens`` tokens; a sample's remaining held-back text comes with its
    last step. An empty prompt starts from a newline when the vocabulary has
    one (texts begin after one), else from token 0. ``state`` is the state the
    prompt starts from (batch 1), e.g. a conditioned model's
    ``condition_state``; None: the model's own fresh state.
    """
    check_sampling(max_tokens=max_tokens, temperature=temperature, top_k=top_k, top_p=top_p, num_samples=num_samples)
    model.eval()
    device = next(model.parameters()).device
    base_seed = seed if seed is not None else secrets.randbits(62)
    generators = [torch.Generator().manual_seed(base_seed + index) for index in range(num_samples)]
    prompt_ids = tokenizer.encode(prompt) if prompt else tokenizer.encode("\n")[-1:]
    if len(prompt_ids) == 0:
        prompt_ids = torch.zeros(1, dtype=torch.long)
    prompt_ids = prompt_ids.to(device)
    limit = getattr(getattr(model, "backbone", None), "forward_limit", None) or len(prompt_ids)
    # the prompt once, in batch 1 as a lone sample would run it, then copied for every sample
    logits, state = model(prompt_ids[:limit].unsqueeze(0), state)  # (1, P', V): the prompt in one pass where it fits
    logits = logits[:, -1]  # (1, V)
    for token in prompt_ids[limit:]:  # the rest, if any, one step at a time
        logits, state = model.step(token.view(1), state)
    if num_samples > 1:
        state = repeat_state(model, state, num_samples)
        logits = logits.expand(num_samples, -1)  # (N, V)
    decoders = [TextDecoder(tokenizer) for _ in range(num_samples)]
    stops = [StopFilter(stop) for _ in range(num_samples)]
    finished = [False] * num_samples
    for position in range(max_tokens):
        if position:  # the prompt's forward gave the first logits; each later token costs one step
            logits, state = model.step(tokens, state)
        tokens = sample_tokens(logits, temperature=temperature, top_k=top_k, top_p=top_p, generators=generators)  # (N,)
        probabilities = torch.softmax(logits.float(), dim=-1).gather(1, tokens.unsqueeze(1)).squeeze(1)  # (N,)
        last = position == max_tokens - 1
        texts = []
        for row, token in enumerate(tokens.tolist()):
            if finished[row]:
                texts.append("")
                continue
            text = stops[row].add(decoders[row].add(token))
            if last and not stops[row].stopped:
                text += stops[row].add(decoders[row].finish())
                text += "" if stops[row].stopped else stops[row].finish()
            finished[row] = stops[row].stopped or last
            texts.append(text)
        yield SampledStep(texts, tokens.tolist(), probabilities.tolist(), list(finished))
        if all(finished):
            return


def generate(model: torch.nn.Module, tokenizer, prompt: str = "", *, max_tokens: int = 500, temperature: float = 1.0,
             top_k: int = 0, top_p: float = 1.0, seed: int | None = None, stop: str | None = None,
             state: State = None) -> Iterator[str]:
    """Yield one sample's text piece by piece (not including the prompt); see :func:`generate_batch`.

    With ``stop``, generation ends where the text first contains it; the stop
    string itself is not yielded.
    """
    for step in generate_batch(model, tokenizer, prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                               top_p=top_p, seed=seed, stop=stop, state=state):
        if step.texts[0]:
            yield step.texts[0]


def _longest_stop_prefix(text: str, stop: str) -> int:
    """Length of the longest suffix of ``text`` that begins ``stop``."""
    for length in range(min(len(text), len(stop) - 1), 0, -1):
        if stop.startswith(text[-length:]):
            return length
    return 0
