"""One-to-many, then many-to-many: ABC tunes as characters, each tune starting from its key and meter.

Every tune is one sequence, "\\n" + tune + "\\n\\n": the opening newline is the
first input, the blank line the end of the tune. Its header is written with
the title lines after K: (``conditions_first``: "M:6/8\\nL:1/8\\nK:D\\nT:...",
which music21 reads as the same tune), so a tune opens with the fields it is
conditioned on. Its condition, the key (K:) and meter (M:) of its header as a
multi-hot vector, enters the model (``ConditionedLanguageModel``: its initial
state, or every input), so ``seqlab sample --condition "K:D M:6/8"`` asks for a
jig in D; generated tunes get their titles moved back to the top
(``seqlab.music.generate_tunes``). During training each condition group is
dropped (set to zero) for a random tenth of the tunes, so the model also
writes tunes when asked for no key or meter, or only one of them.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..backbones.base import State
from ..config import Config
from ..data.abc import TUNE_END, TUNE_START, conditions_first, normalize_key, normalize_meter, read_tunes, tune_conditions
from ..data.batches import Batch
from ..data.conditions import ConditionVocabulary
from ..data.labelled import IGNORED_TARGET, ConditionedSequenceBatches, next_token_batch, pad_right, split_indices
from ..data.tokenizers import fit_tokenizer, tokenizer_from_dict
from ..errors import SeqlabError
from ..models import build_model
from ..music import tune_problem
from ..train.distributed import ProcessContext, unwrap
from . import register_task
from .base import BatchSource, InitialWeights, Task, start_model
from .language_model import TOKENIZER_FILE

CONDITIONS_FILE = "conditions.json"
CONDITION_DROPOUT = 0.1  # the chance that a tune's key (and, independently, its meter) is hidden in training
NORMALIZERS = {"K": normalize_key, "M": normalize_meter}


class Tunes:
    """The tunes of one split, encoded: token sequences (each >= 2 tokens) and their (N, C) conditions."""

    def __init__(self, tunes: list[str], tokenizer: Any, vocabulary: ConditionVocabulary, *, max_tokens: int) -> None:
        self.sequences = [tokenizer.encode(TUNE_START + conditions_first(tune) + TUNE_END)[:max_tokens] for tune in tunes]
        self.truncated = sum(len(TUNE_START + tune + TUNE_END) > max_tokens for tune in tunes)
        self.characters = sum(len(tokenizer.decode(sequence[1:])) for sequence in self.sequences)  # what is predicted
        self.conditions = (torch.stack([vocabulary.encode(tune_conditions(tune), strict=False) for tune in tunes])
                           if tunes else torch.zeros(0, vocabulary.size))


@register_task("music")
class MusicTask(Task):
    """Character model of ABC tunes conditioned on key and meter.

    ``--data``: an .abc file, a folder of them (searched recursively), or
    ``builtin:music21`` (the corpora shipped inside music21). Tunes music21
    cannot parse are skipped and counted. The tunes are shuffled with
    ``--seed`` and split by tune; ``--block-size`` is the longest tune in
    tokens (longer ones are cut). Metrics: ``val_loss`` (nats per token) and
    ``bpc`` (bits per character), over whole validation tunes.
    """

    asset_files = (TOKENIZER_FILE, CONDITIONS_FILE)
    metric_names = ("val_loss", "bpc")

    def __init__(self, config: Config, assets: dict[str, Any] | None = None) -> None:
        super().__init__(config, assets)
        self.tokenizer = tokenizer_from_dict(assets[TOKENIZER_FILE]) if assets else None
        self.vocabulary = ConditionVocabulary.from_dict(assets[CONDITIONS_FILE]) if assets else None
        self.train_tunes: Tunes | None = None
        self.val_tunes: Tunes | None = None
        self.initial_weights: InitialWeights | None = None  # init_from's, for a fresh run

    # ------------------------------------------------------------------ data
    def _read(self, path: str | Path) -> tuple[list[str], list[str], int]:
        """(training tunes, validation tunes, tunes skipped because music21 cannot parse them)."""
        if not str(path):
            raise SeqlabError("no data given: pass --data FILE.abc, a folder of .abc files, or builtin:music21")
        tunes = read_tunes(path, self.config.data.encoding)
        readable = [tune for tune in tunes if tune_problem(tune, full=False) is None]
        if not readable:
            raise SeqlabError(f"music21 cannot parse any of the {len(tunes)} tunes in {path}; check the ABC")
        train_rows, val_rows = split_indices(len(readable), self.config.data.val_fraction, seed=self.config.train.seed)
        return [readable[row] for row in train_rows], [readable[row] for row in val_rows], len(tunes) - len(readable)

    def load_data(self) -> None:
        data = self.config.data
        train_tunes, val_tunes, skipped = self._read(data.path)
        if self.tokenizer is None:
            if self.config.task.init_from:  # e.g. a language model trained on ABC text: its vocabulary and weights
                self.initial_weights = InitialWeights(self.config, ("embedding", "backbone", "head"))
                self.tokenizer = self.initial_weights.tokenizer(self.config)
            else:
                text = TUNE_START + TUNE_END.join(map(conditions_first, train_tunes)) + TUNE_END
                self.tokenizer = fit_tokenizer(data.tokenizer, text, unknown=data.unknown, vocab_size=data.vocab_size,
                                               min_count=data.min_count, lowercase=data.lowercase)
            self.vocabulary = ConditionVocabulary.fit([tune_conditions(tune) for tune in train_tunes])
        if not self.vocabulary.size:
            raise SeqlabError(f"no tune in {data.path} has a key or meter to condition on (K:, M: headers)")
        self.train_tunes = self._encode(train_tunes)
        self.val_tunes = self._encode(val_tunes)
        truncated = self.train_tunes.truncated + self.val_tunes.truncated
        self.notes.append(f"music: {len(train_tunes) + len(val_tunes) + skipped} tunes in {data.path}, {skipped} "
                          f"skipped (music21 cannot parse them); {len(train_tunes)} train, {len(val_tunes)} validate"
                          + (f"; {truncated} cut to --block-size {data.block_size}" if truncated else ""))

    def _encode(self, tunes: list[str]) -> Tunes:
        return Tunes(tunes, self.tokenizer, self.vocabulary, max_tokens=self.config.data.block_size + 1)

    @property
    def has_validation(self) -> bool:
        return self.val_tunes is not None and len(self.val_tunes.sequences) > 0

    def assets(self) -> dict[str, Any]:
        return {TOKENIZER_FILE: self.tokenizer.to_dict(), CONDITIONS_FILE: self.vocabulary.to_dict()}

    # ------------------------------------------------------------ conditions
    def parse_condition(self, text: str) -> dict[str, str | None]:
        """ "K:D M:6/8" (or "K:D major", one group, or "") -> {"K": "D", "M": "6/8"}, normalized; None where not asked."""
        asked: dict[str, str | None] = {name: None for name in self.vocabulary.groups}
        for name, label in self.vocabulary.parse(text).items():
            normalizer = NORMALIZERS.get(name)
            normalized = normalizer(label) if normalizer else label
            if normalized is None:
                raise SeqlabError(self.vocabulary.unknown_message(name, label))
            asked[name] = normalized
        return asked

    def condition_state(self, model: nn.Module, text: str) -> State:
        """The initial state (batch 1) of a tune in the asked key and meter; unknown ones are refused, listing the known."""
        vector = self.vocabulary.encode(self.parse_condition(text), strict=True)  # (C,)
        return model.condition_state(vector.unsqueeze(0))

    # ----------------------------------------------------------------- model
    def build_model(self) -> nn.Module:
        model = build_model(self.config, self.tokenizer.vocab_size, condition_size=self.vocabulary.size)
        return start_model(model, self.config, self.initial_weights)

    def batches(self) -> BatchSource:
        tunes = self.train_tunes
        return ConditionedSequenceBatches(tunes.sequences, tunes.conditions, batch_size=self.config.train.batch_size,
                                          seed=self.config.train.seed, condition_groups=self._slot_groups(),
                                          hide_probability=CONDITION_DROPOUT)

    def _slot_groups(self) -> Tensor:
        """(C,) the index of each condition slot's group."""
        return torch.tensor([index for index, labels in enumerate(self.vocabulary.groups.values()) for _ in labels])

    def loss(self, model: nn.Module, batch: Batch, state: State) -> tuple[Tensor, State]:
        # No lengths: outputs past a tune's end never reach its real positions (causality) and their
        # targets are ignored, and the dense fused kernel runs far faster than a packed one.
        logits, _ = model(batch.inputs, unwrap(model).condition_state(batch.condition))  # (b, T, V)
        return F.cross_entropy(logits.flatten(0, 1), batch.targets.flatten(), ignore_index=IGNORED_TARGET,
                               reduction="sum"), None

    def counted(self, batch: Batch) -> float:
        """The predicted tokens: every target before a tune's end."""
        return float((batch.targets != IGNORED_TARGET).sum())

    # ------------------------------------------------------------ evaluation
    @torch.no_grad()
    def _sums(self, model: nn.Module, tunes: Tunes, rows: list[int]) -> Tensor:
        """[summed loss (nats), predicted tokens] over the chosen tunes, float64; batched by similar length."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        sums = torch.zeros(2, dtype=torch.float64)
        order = sorted(rows, key=lambda row: len(tunes.sequences[row]))
        batch_size = self.config.train.batch_size
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            padded, lengths = pad_right([tunes.sequences[row] for row in chosen])
            batch = next_token_batch(padded, lengths, tunes.conditions[chosen]).to(device)
            logits, _ = model(batch.inputs, model.condition_state(batch.condition))  # (b, T, V), as in ``loss``
            sums[0] += F.cross_entropy(logits.flatten(0, 1).float(), batch.targets.flatten(), reduction="sum",
                                       ignore_index=IGNORED_TARGET).item()
            sums[1] += int((batch.targets != IGNORED_TARGET).sum())
        model.train(was_training)
        return sums

    def _metrics(self, sums: Tensor, characters: int) -> dict[str, float]:
        loss = float(sums[0] / sums[1])
        return {"val_loss": loss, "bpc": float(sums[0]) / math.log(2) / characters}

    def evaluate(self, model: nn.Module, *, context: ProcessContext, max_batches: int = 0) -> dict[str, float]:
        tunes = self.val_tunes
        rows = list(range(len(tunes.sequences)))
        if max_batches:
            rows = rows[:max_batches * self.config.train.batch_size]
        characters = sum(len(self.tokenizer.decode(tunes.sequences[row][1:])) for row in rows)
        sums = self._sums(model, tunes, rows[context.rank::context.world_size])
        return self._metrics(context.all_reduce(sums.to(context.device)).cpu(), characters)

    def evaluate_file(self, model: nn.Module, path: str | Path, *, split: str) -> dict[str, Any]:
        """Metrics on ``split`` of any tunes source, split by tune as in training (``val``: the whole source when
        training had no validation part)."""
        train_tunes, val_tunes, skipped = self._read(path)
        if split == "val" and self.config.data.val_fraction == 0:
            split = "all"
        chosen = {"val": val_tunes, "train": train_tunes, "all": train_tunes + val_tunes}[split]
        tunes = self._encode(chosen)
        sums = self._sums(model, tunes, list(range(len(chosen))))
        return {"split": split, "tunes": len(chosen), "skipped": skipped, **self._metrics(sums, tunes.characters)}
