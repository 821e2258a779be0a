"""Many-to-many, aligned: next-token prediction over text (characters, words or BPE).

The text is a file, a folder of files, or a corpus prepared with ``seqlab prepare``
(memory-mapped tokens): all three arrive as a ``Corpus`` (``data/prepared.py``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..backbones.base import State
from ..config import Config
from ..data.batches import Batch, Tokens, as_long, evaluation_streams, make_batches
from ..data.prepared import Corpus, load_corpus
from ..data.tokenizers import tokenizer_from_dict
from ..errors import SeqlabError
from ..models import build_model
from ..train.distributed import ProcessContext
from . import register_task
from .base import BatchSource, InitialWeights, Task, start_model

TOKENIZER_FILE = "tokenizer.json"


@torch.no_grad()
def evaluate_tokens(model: nn.Module, tokens: Tokens, *, block_size: int, batch_size: int, carry_state: bool,
                    max_batches: int = 0, context: ProcessContext | None = None) -> tuple[float, int]:
    """Mean next-token cross-entropy (nats) over a token split, deterministic.

    The split is laid out as contiguous streams read ``block_size`` at a time;
    with ``carry_state`` each window starts from the state the previous one
    left (as the model was trained), otherwise from a fresh state. Under DDP
    each process reads its share of the streams and the sums are combined.
    Only the windows read are copied from ``tokens`` (which may be memory-mapped).
    Returns (mean loss, number of predicted tokens).
    """
    context = context or ProcessContext(device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    inputs, targets = evaluation_streams(tokens, block_size=block_size, batch_size=batch_size)
    rows = list(range(context.rank, inputs.shape[0], context.world_size))
    total = torch.zeros(2, dtype=torch.float64)  # (summed loss, count)
    if rows:
        mine = slice(context.rank, inputs.shape[0], context.world_size)
        state: State = None
        for window, start in enumerate(range(0, inputs.shape[1], block_size)):
            if max_batches and window >= max_batches:
                break
            columns = slice(start, start + block_size)
            window_inputs = as_long(inputs[mine, columns]).to(context.device)  # (b, T)
            window_targets = as_long(targets[mine, columns]).to(context.device)  # (b, T)
            logits, state = model(window_inputs, state if carry_state else None)
            total[0] += F.cross_entropy(logits.flatten(0, 1).float(), window_targets.flatten(), reduction="sum").item()
            total[1] += window_targets.numel()
    total = context.all_reduce(total)
    model.train(was_training)
    return float(total[0] / total[1]), int(total[1])


@register_task("lm")
class LanguageModelTask(Task):
    """p(x_{t+1} | x_{<=t}) over a text: the first (1 - val_fraction) of one file trains and the rest
    validates; a folder or a prepared corpus holds out whole documents instead.

    The tokenizer is fitted on the training part and reads text as ``data.min_count``,
    ``data.lowercase`` and, for words, ``task.words_only`` say (the classifier's
    reading, so a classifier can start from this model with ``--init-from``).

    Metrics: ``val_loss`` (nats per token) and ``bpc`` (bits per character: the loss in bits times the
    tokens per character of the text measured, counted exactly from the text, or, where
    ``eval_max_batches`` stops early, from the characters each measured token decodes to).
    """

    asset_files = (TOKENIZER_FILE,)
    metric_names = ("val_loss", "bpc")

    def __init__(self, config: Config, assets: dict[str, Any] | None = None) -> None:
        super().__init__(config, assets)
        self.tokenizer = tokenizer_from_dict(assets[TOKENIZER_FILE]) if assets else None
        self.data: Corpus | None = None
        self.initial_weights: InitialWeights | None = None  # init_from's, for a fresh run

    @property
    def carries_state(self) -> bool:
        return self.config.data.batching == "stream"

    def load_data(self) -> None:
        data = self.config.data
        if self.tokenizer is None and self.config.task.init_from:  # fine-tuning: the old vocabulary, on new text
            self.initial_weights = InitialWeights(self.config, ("embedding", "backbone", "head"))
            self.tokenizer = self.initial_weights.tokenizer(self.config, words_only=self.config.task.words_only)
        self.data = load_corpus(data.path, tokenizer_kind=data.tokenizer, unknown=data.unknown,
                                val_fraction=data.val_fraction, vocab_size=data.vocab_size, min_count=data.min_count,
                                lowercase=data.lowercase, words_only=self.config.task.words_only,
                                tokenizer=self.tokenizer, encoding=data.encoding)
        self.tokenizer = self.data.tokenizer
        # a prepared corpus fixed its tokenizer and split: the checkpoint records what was used
        data.tokenizer, data.val_fraction = self.tokenizer.kind, self.data.val_fraction
        data.lowercase = getattr(self.tokenizer, "lowercase", data.lowercase)
        self.config.task.words_only = getattr(self.tokenizer, "words_only", self.config.task.words_only)
        if len(self.data.train) < data.block_size + 1:
            raise SeqlabError(
                f"{data.path}: the training part has {len(self.data.train)} tokens, fewer than one training "
                f"window (block size {data.block_size} + 1); use a longer file or a smaller --block-size")
        if self.data.val_fraction > 0 and len(self.data.val) < 2:
            raise SeqlabError(
                f"{data.path}: the validation part has {len(self.data.val)} tokens, too few to measure; "
                "use a longer file, a larger --val-fraction, or --val-fraction 0")

    @property
    def has_validation(self) -> bool:
        return self.data is not None and len(self.data.val) > 1

    def assets(self) -> dict[str, Any]:
        return {TOKENIZER_FILE: self.tokenizer.to_dict()}

    def build_model(self) -> nn.Module:
        return start_model(build_model(self.config, self.tokenizer.vocab_size), self.config, self.initial_weights)

    def batches(self) -> BatchSource:
        return make_batches(self.config.data.batching, self.data.train, block_size=self.config.data.block_size,
                            batch_size=self.config.train.batch_size, seed=self.config.train.seed)

    def loss(self, model: nn.Module, batch: Batch, state: State) -> tuple[Tensor, State]:
        logits, state = model(batch.inputs, state)  # (b, T, V)
        return F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), reduction="sum"), state

    def _measure(self, model: nn.Module, tokens: Tokens, characters: int, *, context: ProcessContext | None = None,
                 max_batches: int = 0) -> tuple[float, int, int]:
        """(bits, tokens, characters) of a part: all of it (``characters`` counted from its text), or
        the first ``max_batches`` windows of each stream, whose characters are those their target
        tokens decode to (``token_characters``; exact but for a word <unk>, which counts one)."""
        block_size, batch_size = self.config.data.block_size, self.config.train.batch_size
        loss, _ = evaluate_tokens(model, tokens, block_size=block_size, batch_size=batch_size,
                                  carry_state=self.carries_state, max_batches=max_batches, context=context)
        _, targets = evaluation_streams(tokens, block_size=block_size, batch_size=batch_size)
        if max_batches and max_batches * block_size < targets.shape[1]:
            measured = np.asarray(targets[:, :max_batches * block_size])  # (B', max_batches * T)
            return (loss / math.log(2) * measured.size, measured.size,
                    int(self.tokenizer.token_characters()[measured].sum()))
        return loss / math.log(2) * len(tokens), len(tokens), characters

    def evaluate(self, model: nn.Module, *, context: ProcessContext, max_batches: int = 0) -> dict[str, float]:
        bits, tokens, characters = self._measure(model, self.data.val, self.data.val_characters, context=context,
                                                 max_batches=max_batches)
        return {"val_loss": bits * math.log(2) / tokens, "bpc": bits / characters}

    def evaluate_file(self, model: nn.Module, path: str | Path, *, split: str) -> dict[str, Any]:
        """``val`` is exactly the part the trainer validated on (everything when it had none); ``all``
        measures both parts, each on its own. Also says how many tokens and characters were measured."""
        data = self.config.data
        corpus = load_corpus(path, tokenizer_kind=data.tokenizer, unknown=data.unknown,
                             val_fraction=data.val_fraction, vocab_size=data.vocab_size, tokenizer=self.tokenizer,
                             encoding=data.encoding)
        both = [(corpus.train, corpus.train_characters), (corpus.val, corpus.val_characters)]
        parts = {"val": [(corpus.val, corpus.val_characters)] if len(corpus.val) else both,
                 "train": [(corpus.train, corpus.train_characters)], "all": both}[split]
        parts = [(tokens, characters) for tokens, characters in parts if len(tokens) >= 2]
        if not parts:
            raise SeqlabError(f"the {split} split of {path} has too few tokens to evaluate")
        bits = tokens = characters = 0
        for part_tokens, part_characters in parts:
            part_bits, part_count, part_characters = self._measure(model, part_tokens, part_characters)
            bits, tokens, characters = bits + part_bits, tokens + part_count, characters + part_characters
        return {"split": split, "tokens": tokens, "characters": characters,
                "val_loss": bits * math.log(2) / tokens, "bpc": bits / characters}
