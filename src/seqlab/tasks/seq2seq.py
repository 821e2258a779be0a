"""Many-to-many, unaligned: sequence to sequence over (source, target) pairs, e.g. dates -> ISO 8601.

Data: a TSV/CSV of pairs or ``builtin:dates`` (see ``seqlab.data.pairs`` and
``seqlab.data.dates``); a seeded shuffle sets ``data.val_fraction`` of the
pairs aside. One tokenizer (``data.tokenizer``: char, word or bpe), fitted on
the training sources and targets together, serves both sides, its ids shifted
past PAD, BOS and EOS; it is the checkpoint's asset. Sources longer than
``data.block_size`` tokens are cut to their first ``block_size``; a training
target longer than ``task.max_target_length`` tokens is refused.

Model (``seqlab.models.seq2seq``): ``--backbone transformer`` is the Transformer
encoder-decoder; any other backbone encodes for a recurrent decoder with
``task.attention`` bahdanau, luong or none (``task.bidirectional``: a second,
right-to-left encoder). Training is teacher forcing: cross-entropy of
y_1 .. y_T, EOS given BOS, y_1 .. y_{T-1}, averaged over real target tokens.

Metrics: ``val_loss`` (teacher-forced nats per target token, EOS included),
``exact_match`` (the selection metric: share of decoded outputs equal to the
target) and ``bleu`` (sacreBLEU's corpus BLEU on the detokenized text, tokenized
by sacreBLEU's ``task.bleu_tokenize``; ``seqlab eval`` prints its signature
beside it). Decoding is greedy for ``task.beam_size`` 1, else beam search, and
stops at EOS or after ``task.max_target_length`` tokens.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..backbones.base import State
from ..config import Config
from ..data.batches import Batch
from ..data.labelled import pad_right, split_indices
from ..data.pairs import BUILTIN_PREFIX, EOS, PAD, SPECIALS, PairBatches, Pairs, SeqToSeqVocabulary, read_pairs
from ..data.text import read_lines, table_suffix
from ..data.tokenizers import fit_tokenizer, tokenizer_from_dict
from ..decode import check_decoding, decode
from ..errors import SeqlabError
from ..models.seq2seq import EncoderDecoder, build_seq2seq
from ..train.distributed import ProcessContext
from . import register_task
from .base import BatchSource, InitialWeights, Task, check_text_inputs, start_model

TOKENIZER_FILE = "tokenizer.json"
TABLE_SUFFIXES = (".csv", ".tsv")
BLEU_ORDER = 4


# ----------------------------------------------------------------- BLEU
BLEU_STATISTICS = 2 * BLEU_ORDER + 2  # matches and n-grams of n = 1..4, hypothesis length, reference length


def bleu_metric(tokenize: str) -> Any:
    """sacreBLEU's BLEU with its defaults (4-grams, exponential smoothing, one reference), tokenized by ``tokenize``."""
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize=tokenize)


def bleu_signature(tokenize: str) -> str:
    """sacreBLEU's signature of ``bleu_metric(tokenize)``, e.g. ``nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:2.6.0``."""
    metric = bleu_metric(tokenize)
    metric.corpus_score([""], [[""]])  # sacreBLEU learns the number of references (one, here) from a scoring
    return metric.get_signature().format()


def bleu_statistics(metric: Any, hypothesis: str, reference: str) -> list[float]:
    """sacreBLEU's sufficient statistics of one pair; sums over a corpus (and across processes) give corpus BLEU."""
    score = metric.corpus_score([hypothesis], [[reference]])
    return [*score.counts, *score.totals, score.sys_len, score.ref_len]


def bleu_from_statistics(metric: Any, statistics: Sequence[float]) -> float:
    """Corpus BLEU (0-100) from summed statistics, as sacreBLEU's ``corpus_score`` computes it."""
    counts = [int(value) for value in statistics]
    return metric.compute_bleu(counts[:BLEU_ORDER], counts[BLEU_ORDER:2 * BLEU_ORDER], counts[-2], counts[-1],
                               smooth_method=metric.smooth_method, smooth_value=metric.smooth_value,
                               effective_order=metric.effective_order, max_ngram_order=metric.max_ngram_order).score


# ----------------------------------------------------------------- task
@register_task("seq2seq")
class SeqToSeqTask(Task):
    """p(y | x) over (source, target) pairs, trained by teacher forcing; see the module docstring.

    Metrics: ``val_loss``, ``exact_match`` (kept in ``best/``, higher is better) and ``bleu``.
    """

    asset_files = (TOKENIZER_FILE,)
    metric_names = ("val_loss", "exact_match", "bleu")
    selection_metric = "exact_match"
    higher_is_better = True

    def __init__(self, config: Config, assets: dict[str, Any] | None = None) -> None:
        super().__init__(config, assets)  # the options' choices were checked by Config.validate
        task = config.task
        check_decoding(beam_size=task.beam_size, max_length=task.max_target_length)
        self.vocabulary: SeqToSeqVocabulary | None = (
            SeqToSeqVocabulary(tokenizer_from_dict(assets[TOKENIZER_FILE])) if assets else None)
        self.train_sources: list[Tensor] = []
        self.train_targets: list[Tensor] = []
        self.val_sources: list[Tensor] = []
        self.val_targets: list[str] = []
        self.initial_weights: InitialWeights | None = None  # init_from's, for a fresh run

    @property
    def tokenizer(self) -> Any:
        return self.vocabulary.tokenizer

    # ------------------------------------------------------------------ data
    def encode_source(self, text: str) -> Tensor:
        ids = self.vocabulary.source(text)[:self.config.data.block_size]  # (L,)
        if len(ids) == 0:
            raise SeqlabError(f"the source {text[:40]!r} has no tokens; give every input some text")
        return ids

    def _target(self, text: str, where: str) -> Tensor:
        ids = self.vocabulary.target(text)  # (T + 2,)
        limit = self.config.task.max_target_length
        if len(ids) - 1 > limit:
            raise SeqlabError(f"{where}: the target has {len(ids) - 1} tokens with EOS, more than "
                              f"--max-target-length {limit}; raise it")
        return ids

    def _read(self, path: str | Path) -> Pairs:
        return read_pairs(path, header=self.config.task.header, encoding=self.config.data.encoding)

    def load_data(self) -> None:
        data = self.config.data
        pairs = self._read(data.path)
        train_rows, val_rows = split_indices(len(pairs.sources), data.val_fraction, seed=self.config.train.seed)
        if self.vocabulary is None:
            if self.config.task.init_from:  # a language model's tokenizer, embedding and backbone (as the encoder)
                self.initial_weights = InitialWeights(self.config, ("embedding", "backbone"))
                if self.config.model.backbone == "transformer":
                    raise SeqlabError(f"--init-from {self.config.task.init_from} has a transformer backbone; the seq2seq "
                                      "Transformer cannot start from it (a recurrent one can)")
                tokenizer = self.initial_weights.tokenizer(self.config)
                # the pair vocabulary is the language model's ids shifted past PAD, BOS, EOS (whose rows start at 0)
                language_model = self.initial_weights.weights
                embedding = dict(language_model["embedding"])
                if "weight" in embedding:
                    embedding["weight"] = torch.cat([embedding["weight"].new_zeros(SPECIALS, embedding["weight"].shape[1]),
                                                     embedding["weight"]])
                self.initial_weights.weights = {"embedding": embedding, "encoder": language_model["backbone"]}
            else:
                text = "\n".join(part for row in train_rows for part in (pairs.sources[row], pairs.targets[row]))
                tokenizer = fit_tokenizer(data.tokenizer, text, unknown=data.unknown, vocab_size=data.vocab_size,
                                          min_count=data.min_count, lowercase=data.lowercase)
            self.vocabulary = SeqToSeqVocabulary(tokenizer)
        self.train_sources = [self.encode_source(pairs.sources[row]) for row in train_rows]
        self.train_targets = [self._target(pairs.targets[row], f"{data.path} line {pairs.line_numbers[row]}")
                              for row in train_rows]
        self.val_sources = [self.encode_source(pairs.sources[row]) for row in val_rows]
        self.val_targets = [pairs.targets[row] for row in val_rows]

    @property
    def has_validation(self) -> bool:
        return len(self.val_sources) > 0

    def assets(self) -> dict[str, Any]:
        return {TOKENIZER_FILE: self.tokenizer.to_dict()}

    # ----------------------------------------------------------------- model
    def build_model(self) -> nn.Module:
        model = build_seq2seq(self.config, self.vocabulary.size)
        return start_model(model, self.config, self.initial_weights)

    def batches(self) -> BatchSource:
        return PairBatches(self.train_sources, self.train_targets, batch_size=self.config.train.batch_size,
                           seed=self.config.train.seed, bucketing=self.config.data.bucketing)

    def loss(self, model: nn.Module, batch: Batch, state: State) -> tuple[Tensor, State]:
        logits = model(batch.inputs, batch.lengths, batch.targets[:, :-1])  # (b, T, V)
        return F.cross_entropy(logits.flatten(0, 1), batch.targets[:, 1:].flatten(), ignore_index=PAD, reduction="sum"), None

    def counted(self, batch: Batch) -> float:
        """The real target tokens (EOS included, padding not)."""
        return float((batch.targets[:, 1:] != PAD).sum())

    def tokens(self, batch: Batch) -> int:
        """The real source tokens the encoder reads and the real target tokens the decoder reads."""
        return int(batch.lengths.sum()) + int((batch.targets[:, :-1] != PAD).sum())

    # ------------------------------------------------------------ evaluation
    def _batches(self, sources: list[Tensor]) -> list[list[int]]:
        """Row indices in batches of similar source length, so little padding is computed."""
        order = sorted(range(len(sources)), key=lambda index: len(sources[index]))
        size = self.config.train.batch_size
        return [order[start:start + size] for start in range(0, len(order), size)]

    @torch.no_grad()
    def _decode(self, model: EncoderDecoder, sources: list[Tensor]) -> list[list[int]]:
        """The decoded token ids (EOS and after dropped) of every source, in order."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        task = self.config.task
        outputs: list[list[int]] = [[] for _ in sources]
        for chosen in self._batches(sources):
            inputs, lengths = pad_right([sources[index] for index in chosen])
            hypotheses = decode(model, inputs.to(device), lengths.to(device), beam_size=task.beam_size,
                                max_length=task.max_target_length)
            for index, hypothesis in zip(chosen, hypotheses):
                outputs[index] = [token for token in hypothesis.tokens if token != EOS]
        model.train(was_training)
        return outputs

    @torch.no_grad()
    def _sums(self, model: EncoderDecoder, sources: list[Tensor], targets: list[str]) -> Tensor:
        """[summed loss, target tokens, exact matches, pairs, BLEU statistics...] as one float64 vector."""
        sums = torch.zeros(4 + BLEU_STATISTICS, dtype=torch.float64)
        if not sources:  # a process with no share of a small split
            return sums
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        target_ids = [self.vocabulary.target(text) for text in targets]
        for chosen in self._batches(sources):
            inputs, lengths = pad_right([sources[index] for index in chosen])
            padded, _ = pad_right([target_ids[index] for index in chosen])
            padded = padded.to(device)
            logits = model(inputs.to(device), lengths.to(device), padded[:, :-1])
            sums[0] += float(F.cross_entropy(logits.flatten(0, 1).float(), padded[:, 1:].flatten(),
                                             ignore_index=PAD, reduction="sum"))
            sums[1] += int((padded[:, 1:] != PAD).sum())
        model.train(was_training)
        metric = bleu_metric(self.config.task.bleu_tokenize)
        for decoded, target in zip(self._decode(model, sources), targets):
            text = self.vocabulary.decode(decoded)
            sums[2] += float(text == target)
            sums[3] += 1
            sums[4:] += torch.tensor(bleu_statistics(metric, text, target), dtype=torch.float64)
        return sums

    def _metrics(self, sums: Tensor) -> dict[str, float]:
        return {"val_loss": float(sums[0] / sums[1]), "exact_match": float(sums[2] / sums[3]),
                "bleu": bleu_from_statistics(bleu_metric(self.config.task.bleu_tokenize), sums[4:].tolist())}

    def evaluate(self, model: nn.Module, *, context: ProcessContext, max_batches: int = 0) -> dict[str, float]:
        rows = list(range(context.rank, len(self.val_sources), context.world_size))
        if max_batches:
            rows = rows[:max_batches * self.config.train.batch_size]
        sums = self._sums(model, [self.val_sources[row] for row in rows], [self.val_targets[row] for row in rows])
        return self._metrics(context.all_reduce(sums.to(context.device)).cpu())

    def evaluate_file(self, model: nn.Module, path: str | Path, *, split: str) -> dict[str, Any]:
        """Metrics on ``split`` of a pairs file; on the training data itself ``val`` and ``train`` are the
        trainer's parts (``val`` is all of it when training held none out), any other file is evaluated whole."""
        pairs = self._read(path)
        rows = list(range(len(pairs.sources)))
        same_data = (str(path) == self.config.data.path if str(path).startswith(BUILTIN_PREFIX)
                     else Path(path).resolve() == Path(self.config.data.path).resolve())
        if not same_data:
            split = "all"
        elif split != "all" and self.config.data.val_fraction > 0:
            train_rows, val_rows = split_indices(len(rows), self.config.data.val_fraction, seed=self.config.train.seed)
            rows = val_rows if split == "val" else train_rows
        sums = self._sums(model, [self.encode_source(pairs.sources[row]) for row in rows],
                          [pairs.targets[row] for row in rows])
        return {"split": split, "examples": len(rows), **self._metrics(sums),
                "bleu_signature": bleu_signature(self.config.task.bleu_tokenize)}

    # ------------------------------------------------------------- prediction
    def read_inputs(self, path: str | Path) -> list[Any]:
        """.csv/.tsv (compressed or not): the sources of a pairs file; anything else: one source per line."""
        if table_suffix(path) in TABLE_SUFFIXES:
            return self._read(path).sources
        return read_lines(path, self.config.data.encoding)

    def predict(self, model: nn.Module, inputs: list[Any]) -> list[Any]:
        check_text_inputs(inputs, "translate")
        return [self.vocabulary.decode(ids) for ids in self._decode(model, [self.encode_source(text) for text in inputs])]
