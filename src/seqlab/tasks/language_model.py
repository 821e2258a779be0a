"""Many-to-many, aligned: next-token prediction over a text file (characters, words or BPE)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..backbones.base import State
from ..config import Config
from ..data.batches import Batch, evaluation_streams, make_batches
from ..data.text import TextData, load_text_data, read_text, split_text
from ..data.tokenizers import tokenizer_from_dict
from ..errors import SeqlabError
from ..models import build_model
from ..train.distributed import ProcessContext
from . import register_task
from .base import BatchSource, InitialWeights, Task, start_model

TOKENIZER_FILE = "tokenizer.json"


@torch.no_grad()
def evaluate_tokens(model: nn.Module, tokens: Tensor, *, block_size: int, batch_size: int, carry_state: bool,
                    max_batches: int = 0, context: ProcessContext | None = None) -> tuple[float, int]:
    """Mean next-token cross-entropy (nats) over a token split, deterministic.

    The split is laid out as contiguous streams read ``block_size`` at a time;
    with ``carry_state`` each window starts from the state the previous one
    left (as the model was trained), otherwise from a fresh state. Under DDP
    each process reads its share of the streams and the sums are combined.
    Returns (mean loss, number of predicted tokens).
    """
    context = context or ProcessContext(device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    inputs, targets = evaluation_streams(tokens, block_size=block_size, batch_size=batch_size)
    rows = list(range(context.rank, inputs.shape[0], context.world_size))
    total = torch.zeros(2, dtype=torch.float64)  # (summed loss, count)
    if rows:
        inputs, targets = inputs[rows].to(context.device), targets[rows].to(context.device)
        state: State = None
        for window, start in enumerate(range(0, inputs.shape[1], block_size)):
            if max_batches and window >= max_batches:
                break
            logits, state = model(inputs[:, start:start + block_size], state if carry_state else None)
            window_targets = targets[:, start:start + block_size]
            total[0] += F.cross_entropy(logits.flatten(0, 1).float(), window_targets.flatten(), reduction="sum").item()
            total[1] += window_targets.numel()
    total = context.all_reduce(total)
    model.train(was_training)
    return float(total[0] / total[1]), int(total[1])


def bits_per_character(loss: float, tokens: int, characters: int) -> float:
    """Nats per token -> bits per character of the text those tokens spell."""
    return loss / math.log(2) * tokens / characters


@register_task("lm")
class LanguageModelTask(Task):
    """p(x_{t+1} | x_{<=t}) over one text file: the first (1 - val_fraction) trains, the rest validates.

    Metrics: ``val_loss`` (nats per token) and ``bpc`` (bits per character).
    """

    asset_files = (TOKENIZER_FILE,)
    metric_names = ("val_loss", "bpc")

    def __init__(self, config: Config, assets: dict[str, Any] | None = None) -> None:
        super().__init__(config, assets)
        self.tokenizer = tokenizer_from_dict(assets[TOKENIZER_FILE]) if assets else None
        self.data: TextData | None = None
        self.initial_weights: InitialWeights | None = None  # init_from's, for a fresh run

    @property
    def carries_state(self) -> bool:
        return self.config.data.batching == "stream"

    def load_data(self) -> None:
        data = self.config.data
        if self.tokenizer is None and self.config.task.init_from:  # fine-tuning: the old vocabulary, on new text
            self.initial_weights = InitialWeights(self.config, ("embedding", "backbone", "head"))
            self.tokenizer = self.initial_weights.tokenizer(self.config)
        self.data = load_text_data(data.path, tokenizer_kind=data.tokenizer, unknown=data.unknown,
                                   val_fraction=data.val_fraction, block_size=data.block_size,
                                   vocab_size=data.vocab_size, tokenizer=self.tokenizer)
        self.tokenizer = self.data.tokenizer

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

    def _metrics(self, model: nn.Module, tokens: Tensor, characters: int, *, context: ProcessContext | None = None,
                 max_batches: int = 0) -> dict[str, float]:
        loss, _ = evaluate_tokens(model, tokens, block_size=self.config.data.block_size,
                                  batch_size=self.config.train.batch_size, carry_state=self.carries_state,
                                  max_batches=max_batches, context=context)
        return {"val_loss": loss, "bpc": bits_per_character(loss, len(tokens), characters)}

    def evaluate(self, model: nn.Module, *, context: ProcessContext, max_batches: int = 0) -> dict[str, float]:
        return self._metrics(model, self.data.val, self.data.val_characters, context=context, max_batches=max_batches)

    def evaluate_file(self, model: nn.Module, path: str | Path, *, split: str) -> dict[str, Any]:
        """``val`` is exactly the part the trainer validated on (the whole file when it had none)."""
        text = read_text(path)
        train_text, val_text = split_text(text, self.config.data.val_fraction)
        if split == "val" and self.config.data.val_fraction == 0:
            val_text = text
        chosen = {"val": val_text, "train": train_text, "all": text}[split]
        tokens = self.tokenizer.encode(chosen)
        if len(tokens) < 2:
            raise SeqlabError(f"the {split} split of {path} has {len(tokens)} tokens, too few to evaluate")
        return {"split": split, "tokens": len(tokens), **self._metrics(model, tokens, len(chosen))}
