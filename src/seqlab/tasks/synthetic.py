"""Synthetic tasks (``--task synthetic --data builtin:NAME``): fresh seeded examples every step.

The source (``seqlab.data.synthetic``) says what the model reads (tokens or
vectors) and writes (classes or a real value) at every position, and which
positions count. The model is ``PositionwiseModel``: an embedding (or a linear
input projection) -> any backbone -> a head at every position. The loss is the
mean over the masked positions: cross entropy for classes, squared error for
values. Training draws new examples every step (there is no training file to
overfit); validation is a fixed set drawn once from the source's validation
ranges with seed ``train.seed + 1``.

Metrics (``val_loss`` selects the checkpoint in ``best/``):
    values:  ``val_loss`` (MSE) and ``baseline_mse``, the MSE of the best constant
             (the targets' variance: ~0.167 for the adding problem).
    classes: ``val_loss`` (nats), ``token_accuracy`` over the scored positions,
             ``sequence_accuracy``, the fraction of examples whose every scored
             position is right (for generative sources: greedy decoding
             reproduces the whole scored continuation; for a^n b^n: the string is
             accepted), and ``baseline_accuracy``, always guessing the most
             frequent scored target.

``seqlab eval CKPT --data builtin:NAME`` redraws the validation set (``--split
train``: as many examples from the training ranges). ``seqlab predict``
continues prompts greedily for generative sources (``12+34=`` -> ``46``),
labels whole strings for membership, and prints the output symbol at every
position otherwise (copy memory).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..backbones.base import State
from ..config import Config
from ..data.batches import Batch
from ..data.synthetic import Examples, Source, build_source
from ..data.text import read_lines
from ..errors import SeqlabError
from ..models.positionwise import PositionwiseModel
from ..registry import build_backbone
from . import register_task
from .base import BatchSource, InitialWeights, Task, start_model

VALIDATION_SEED_OFFSET = 1
TRAIN_SPLIT_SEED_OFFSET = 2


class SyntheticBatches:
    """Fresh examples every step from ``source`` (training ranges), deterministic given the seed."""

    carries_state = False

    def __init__(self, source: Source, *, batch_size: int, seed: int) -> None:
        self.source = source
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> Batch:
        examples = self.source.sample(self.batch_size, self.generator, "train")
        return Batch(examples.inputs, examples.targets, reset=True, mask=examples.mask)

    def state_dict(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])


def masked_loss(outputs: Tensor, targets: Tensor, mask: Tensor) -> Tensor:
    """Sum over the masked positions: cross entropy of (B, T, K) logits, or squared error of (B, T) values."""
    if outputs.dim() == 3:
        return F.cross_entropy(outputs[mask], targets[mask], reduction="sum")
    return F.mse_loss(outputs[mask], targets[mask], reduction="sum")


@torch.no_grad()
def score_examples(model: nn.Module, examples: Examples, *, batch_size: int) -> dict[str, Tensor]:
    """Run ``model`` over ``examples`` in batches and score every example.

    Returns per-example tensors (N,): ``loss_sum`` (summed over the scored
    positions), ``scored`` (how many), and for classes ``correct`` (right
    scored positions) and ``all_correct`` (bool: every scored position right).
    """
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    parts: dict[str, list[Tensor]] = {}
    for first in range(0, len(examples), batch_size):
        chunk = examples.select(slice(first, first + batch_size))
        width = int(chunk.lengths.max())
        inputs, targets, mask = (tensor[:, :width].to(device) for tensor in (chunk.inputs, chunk.targets, chunk.mask))
        outputs, _ = model(inputs)  # (b, T, K) or (b, T)
        outputs = outputs.float()
        if outputs.dim() == 3:
            losses = F.cross_entropy(outputs.transpose(1, 2), targets, reduction="none")  # (b, T)
            right = (outputs.argmax(-1) == targets) & mask
            parts.setdefault("correct", []).append(right.sum(1).cpu())
            parts.setdefault("all_correct", []).append((right == mask).all(1).cpu())
        else:
            losses = (outputs - targets) ** 2
        parts.setdefault("loss_sum", []).append((losses * mask).sum(1).cpu())
        parts.setdefault("scored", []).append(mask.sum(1).cpu())
    model.train(was_training)
    return {name: torch.cat(values) for name, values in parts.items()}


@register_task("synthetic")
class SyntheticTask(Task):
    """Any registered synthetic source, any backbone, a masked per-position loss (see the module docstring)."""

    asset_files = ()
    selection_metric = "val_loss"

    def __init__(self, config: Config, assets: dict[str, Any] | None = None) -> None:
        super().__init__(config, assets)
        self.source = build_source(config.data.path, config.data.options)
        self.regression = not self.source.output_symbols
        self.metric_names = (("val_loss", "baseline_mse") if self.regression else
                             ("val_loss", "token_accuracy", "sequence_accuracy", "baseline_accuracy"))
        self.validation: Examples | None = None
        # --init-from (e.g. the same source at a shorter length: a curriculum); parts that do not fit start fresh
        self.initial_weights = InitialWeights(config, ("embedding", "backbone", "head")) if (
            config.task.init_from and assets is None) else None

    def _draw(self, split: str) -> Examples:
        offset = VALIDATION_SEED_OFFSET if split == "val" else TRAIN_SPLIT_SEED_OFFSET
        generator = torch.Generator().manual_seed(self.config.train.seed + offset)
        return self.source.sample(self.source.val_examples, generator, split)

    def load_data(self) -> None:
        self.validation = self._draw("val")

    @property
    def has_validation(self) -> bool:
        return True

    def assets(self) -> dict[str, Any]:
        return {}

    def build_model(self) -> nn.Module:
        model, source = self.config.model, self.source
        vocab_size = len(source.input_symbols)
        onehot = model.embedding == "onehot" and vocab_size > 0
        input_size = vocab_size if onehot else (model.embedding_size or model.hidden_size)
        backbone = build_backbone(model.backbone, input_size=input_size, hidden_size=model.hidden_size,
                                  num_layers=model.num_layers, dropout=model.dropout, **model.options)
        built = PositionwiseModel(backbone, vocab_size=vocab_size, input_features=source.input_features,
                                  outputs=len(source.output_symbols), embedding=model.embedding)
        limit = backbone.forward_limit
        if limit is not None and source.longest() > limit:
            raise SeqlabError(f"source {source.name!r} makes sequences of up to {source.longest()} positions, more than "
                              f"the backbone's context of {limit}; raise --context-length or shorten the sequences")
        return start_model(built, self.config, self.initial_weights, optional=("embedding", "head"))

    def batches(self) -> BatchSource:
        return SyntheticBatches(self.source, batch_size=self.config.train.batch_size, seed=self.config.train.seed)

    def loss(self, model: nn.Module, batch: Batch, state: State) -> tuple[Tensor, State]:
        outputs, state = model(batch.inputs)
        return masked_loss(outputs, batch.targets, batch.mask), state

    def counted(self, batch: Batch) -> float:
        return float(batch.mask.sum())

    def metrics(self, model: nn.Module, examples: Examples) -> dict[str, float]:
        """The task's metrics on any set of examples of this source."""
        scores = score_examples(model, examples, batch_size=self.config.train.batch_size)
        scored = float(scores["scored"].sum())
        metrics = {"val_loss": float(scores["loss_sum"].sum()) / scored}
        targets = examples.targets[examples.mask]
        if self.regression:
            metrics["baseline_mse"] = float(((targets - targets.mean()) ** 2).mean())
            return metrics
        metrics["token_accuracy"] = float(scores["correct"].sum()) / scored
        metrics["sequence_accuracy"] = float(scores["all_correct"].float().mean())
        metrics["baseline_accuracy"] = float(torch.bincount(targets).max()) / len(targets)
        return metrics

    def evaluate(self, model: nn.Module, *, context: Any, max_batches: int = 0) -> dict[str, float]:
        """Every process scores the whole (small) validation set, so all report the same numbers."""
        examples = self.validation
        if max_batches:
            examples = examples.select(slice(0, max_batches * self.config.train.batch_size))
        return self.metrics(model, examples)

    def evaluate_file(self, model: nn.Module, path: str | Path, *, split: str) -> dict[str, Any]:
        """``val``: the validation set redrawn; ``train``: as many examples from the training ranges; ``all``: both."""
        if str(path) != self.config.data.path:
            raise SeqlabError(f"this checkpoint was trained on {self.config.data.path}; evaluate it with "
                              f"--data {self.config.data.path}, not {path}")
        parts = [self._draw(name) for name in (("val", "train") if split == "all" else (split,))]
        if len(parts) == 2:
            width = max(part.inputs.shape[1] for part in parts)
            parts = [_pad_to(part, width) for part in parts]
            parts = [Examples(*(torch.cat(tensors) for tensors in zip(*(vars(part).values() for part in parts))))]
        return {"split": split, "examples": len(parts[0]), **self.metrics(model, parts[0])}

    # ------------------------------------------------------------- predict
    def read_inputs(self, path: str | Path) -> list[Any]:
        return [line.strip() for line in read_lines(path, self.config.data.encoding)]

    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: list[Any]) -> list[Any]:
        """Generative sources: the greedy continuation of each prompt up to the end symbol (without it).
        Membership: ``in`` or ``out``. Other token sources: the output symbol at every position."""
        source = self.source
        if not source.input_symbols:
            raise SeqlabError(f"source {source.name!r} reads real-valued vectors; use seqlab eval instead of predict")
        device = next(model.parameters()).device
        results = []
        for text in inputs:
            prefix = "^" if "^" in source.input_symbols and not text.startswith("^") else ""
            ids = torch.tensor([source.encode(prefix + text)], device=device)  # (1, T)
            if not source.generative:
                outputs, _ = model(ids)  # (1, T, K)
                symbols = [source.output_symbols[index] for index in outputs[0].argmax(-1).tolist()]
                results.append(symbols[-1] if len(source.output_symbols) == 2 else "".join(symbols))
                continue
            continuation = ""
            for _ in range(source.longest()):
                outputs, _ = model(ids)
                symbol = source.output_symbols[int(outputs[0, -1].argmax())]
                if symbol == source.end_symbol:
                    break
                continuation += symbol
                ids = torch.cat([ids, torch.tensor([[source.input_symbols.index(symbol)]], device=device)], dim=1)
            results.append(continuation)
        return results


def _pad_to(examples: Examples, width: int) -> Examples:
    extra = width - examples.inputs.shape[1]
    if extra == 0:
        return examples
    pad = (0, 0, 0, extra) if examples.inputs.dim() == 3 else (0, extra)
    return Examples(F.pad(examples.inputs, pad), F.pad(examples.targets, (0, extra)), F.pad(examples.mask, (0, extra)),
                    examples.lengths)
