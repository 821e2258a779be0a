"""Many-to-one: a label for each text of a CSV/TSV file (sentiment, topic, language, ...)."""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..backbones.base import State
from ..config import Config
from ..data.batches import Batch
from ..data.labelled import (AUTO, LabelledBatches, LabelledTexts, class_columns, holds_text, pad_right, read_labelled,
                            read_unlabelled, split_indices)
from ..data.text import read_lines, table_suffix
from ..data.tokenizers import (Tokenizer, WordTokenizer, count_pieces, fit_tokenizer, subword_ids, tokenizer_from_dict,
                               word_pieces)
from ..data.vectors import VectorEmbedding, read_word_vectors
from ..errors import SeqlabError
from ..models.bag_of_words import BagOfWords
from ..models.classifier import ClassifierEnsemble, build_classifier, log_probabilities, subword_buckets
from ..train.distributed import ProcessContext
from . import register_task
from .base import BatchSource, InitialWeights, Task, check_text_inputs, start_model

TOKENIZER_FILE = "tokenizer.json"
LABELS_FILE = "labels.json"
BAG_OF_WORDS_FILE = "bag_of_words.json"
TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json")  # compressed or not: table_suffix


def confusion_matrix(targets: Tensor, predictions: Tensor, num_classes: int) -> Tensor:
    """(N,) true and (N,) predicted class ids -> (C, C) counts, rows true, columns predicted."""
    flat = targets.long() * num_classes + predictions.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def classification_metrics(confusion: Tensor) -> dict[str, float]:
    r"""Accuracy and macro-F1 from a (C, C) confusion matrix (rows true, columns predicted).

    accuracy = sum_c M_cc / sum M;  F1_c = 2 M_cc / (2 M_cc + FP_c + FN_c), averaged
    over the classes that occur among the true or the predicted labels (as
    scikit-learn's default label set does).
    """
    confusion = confusion.double()
    true_positives = confusion.diagonal()
    false_positives = confusion.sum(0) - true_positives
    false_negatives = confusion.sum(1) - true_positives
    denominator = 2 * true_positives + false_positives + false_negatives
    present = denominator > 0
    f1 = 2 * true_positives[present] / denominator[present]
    total = confusion.sum()
    return {"accuracy": float(true_positives.sum() / total) if total > 0 else 0.0,
            "macro_f1": float(f1.mean()) if present.any() else 0.0}


@register_task("classify")
class ClassifyTask(Task):
    """p(label | text) over the rows of a CSV/TSV file; a seeded shuffle sets ``val_fraction`` of them aside.

    The label set (every label in the training file, sorted) and the tokenizer
    (fitted on the training part's texts) are the assets. Texts longer than
    ``data.block_size`` tokens are cut to their first ``block_size``, in
    training and prediction alike. Batches are random, right-padded, with
    lengths, so padding never reaches a prediction.

    With ``task.init_from`` (a checkpoint directory, e.g. a language model) the
    classifier reuses that checkpoint's tokenizer and model architecture
    (``config.model``, keeping this run's dropout) and starts its ``embedding``
    and ``backbone`` from its weights; a bidirectional run's reverse backbone
    starts fresh. ``task.freeze_backbone`` keeps ``backbone`` fixed. The
    tokenizer records how it reads text (``data.lowercase``, ``task.words_only``):
    a checkpoint that reads it otherwise than this run asks is refused.

    With ``task.word_vectors`` (a GloVe, word2vec or fastText text file) the
    embedding starts from pretrained vectors and takes their width: the
    vocabulary keeps every training word the file has a vector for (whatever
    ``data.min_count``), adds the file's ``task.vector_words`` most frequent
    words, and weight decay leaves the embedding alone (``undecayed``).

    With ``task.subwords`` N (and the word tokenizer) each token comes with its
    word's character n-grams of 3..N characters, hashed (``subword_ids``): the
    bag-of-tokens path reads them, so a word seen in no training row, or fewer
    than ``data.min_count`` times, still counts by its pieces ("unwatchable"
    by "<un" and "able>").

    Metrics: the network's own ``val_loss`` (nats), ``accuracy`` (the
    selection metric: best/ is the network's best) and ``macro_f1``. Beside
    them, the bag-of-words baseline (``BagOfWords``: TF-IDF + logistic
    regression, fitted on the same training rows, saved as an asset) is scored
    on the same rows: ``bow_accuracy`` and ``bow_macro_f1``; with
    ``task.ensemble`` (predictions from the mean of the network's and the bag
    of words' probabilities) the ensemble's as ``ensemble_accuracy`` and
    ``ensemble_macro_f1``.
    """

    asset_files = (TOKENIZER_FILE, LABELS_FILE, BAG_OF_WORDS_FILE)
    # sized for small labelled sets (hundreds to thousands of rows), chosen by 5-fold cross-validation on the
    # Yelp sentences only (see benchmarks/RESULTS.md): lower-cased words seen at least twice, white space not a
    # token, a bidirectional GRU read with max pooling beside a bag of tokens and of the words' character 3- to
    # 5-grams (undecayed), dropout and strong weight decay,
    # early stopping; the network predicts alone (the bag of words is reported beside it)
    defaults = {
        "task": {"bidirectional": True, "pooling": "max", "bag_of_tokens": True, "words_only": True, "subwords": 5},
        "model": {"backbone": "gru", "hidden_size": 64, "embedding_size": 64, "dropout": 0.3},
        "data": {"tokenizer": "word", "lowercase": True, "min_count": 2},
        "train": {"max_steps": 1000, "eval_interval": 30, "patience": 5, "warmup_steps": 20, "learning_rate": 1e-2,
                  "weight_decay": 1.0},
    }
    selection_metric = "accuracy"
    higher_is_better = True

    def __init__(self, config: Config, assets: dict[str, Any] | None = None) -> None:
        super().__init__(config, assets)
        saved = assets[TOKENIZER_FILE] if assets else None
        if saved is not None and saved["kind"] == "word" and "words_only" not in saved:
            # written before words-only reading was the tokenizer's own setting: the run applied task.words_only
            # when encoding (not with --init-from), and so must every reader of that checkpoint
            saved = {**saved, "words_only": bool(config.task.words_only and not config.task.init_from)}
        self.tokenizer: Tokenizer | None = tokenizer_from_dict(saved) if saved is not None else None
        # labels.json: the labels, and the training file's header names of its label and text columns (before
        # those were saved, the labels alone)
        saved_labels = assets[LABELS_FILE] if assets else None
        if isinstance(saved_labels, list):
            saved_labels = {"labels": saved_labels, "layout": None}
        self.labels: list[str] | None = list(saved_labels["labels"]) if saved_labels else None
        self.layout: dict[str, Any] | None = saved_labels["layout"] if saved_labels else None
        # the baseline; None when the training texts hold no word it reads (then it is not reported)
        self.bag_of_words: BagOfWords | None = None
        if assets and assets[BAG_OF_WORDS_FILE] is not None:
            self.bag_of_words = BagOfWords.from_dict(assets[BAG_OF_WORDS_FILE])
        # the start of a fresh run's weights: init_from's, or word_vectors' embedding
        self.initial_weights: InitialWeights | VectorEmbedding | None = None
        self.train_sequences: list[Tensor] = []
        self.train_targets = torch.zeros(0, dtype=torch.long)
        self.val_sequences: list[Tensor] = []
        self.val_targets = torch.zeros(0, dtype=torch.long)
        self.val_texts: list[str] = []  # for the bag-of-words baseline
        self.loss_weights: Tensor | None = None  # (C,) with task.class_weights

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The network's metrics (``accuracy`` chooses best/), with ``task.ensemble`` the ensemble's beside them."""
        return ("val_loss", "accuracy", "macro_f1") + (("ensemble_accuracy", "ensemble_macro_f1")
                                                       if self._ensembled else ())

    # ------------------------------------------------------------------ data
    def _read(self, path: str | Path) -> LabelledTexts:
        task = self.config.task
        return read_labelled(path, label_column=task.label_column, text_columns=task.text_columns, header=task.header,
                             encoding=self.config.data.encoding)

    def _encode(self, text: str) -> Tensor:
        """text -> its (L,) token ids; with ``task.subwords`` (L, 1 + K): each token, then its word's hashed
        character n-grams (``subword_ids``)."""
        block_size, subwords = self.config.data.block_size, self.config.task.subwords
        if subwords:  # the word tokenizer (load_data sees to it): its pieces, read once, give ids and n-grams
            pieces = self.tokenizer.read_pieces(text)
            tokens = self.tokenizer.encode_pieces(pieces)[:block_size]  # (L,)
        else:
            tokens = self.tokenizer.encode(text)[:block_size]  # (L,)
        if len(tokens) == 0:
            raise SeqlabError(f"the text {text[:40]!r} has no tokens; give every input some text")
        if not subwords:
            return tokens
        return torch.cat([tokens.unsqueeze(1), subword_ids(pieces[:len(tokens)], subwords,
                                                           subword_buckets(len(self.labels)))], 1)

    def _targets(self, table: LabelledTexts, path: str | Path) -> Tensor:
        ids = {label: index for index, label in enumerate(self.labels)}
        for label, line_number in zip(table.labels, table.line_numbers):
            if label not in ids:
                raise SeqlabError(f"{path} line {line_number}: label {label!r} was not among the training labels "
                                  f"({', '.join(self.labels)})")
        return torch.tensor([ids[label] for label in table.labels], dtype=torch.long)

    def load_data(self) -> None:
        data, train = self.config.data, self.config.train
        table = self._read(data.path)
        fresh = self.labels is None  # no assets yet: fit them
        if fresh:
            self.labels = sorted(set(table.labels))
            self.layout = table.layout
            if self.config.task.label_column == AUTO:  # the column chosen, saved so that eval reads its files alike
                chosen = table.layout["label"] if table.layout else str(table.label_index)
                self.config.task.label_column = chosen
                if table.label_index != -1:
                    self.notes.append(f"classify: {data.path}: the last column holds text, so the labels are column "
                                      f"{chosen!r} ({len(self.labels)} classes); --label-column sets it")
            if len(self.labels) < 2:
                raise SeqlabError(f"{data.path}: every row has the label {self.labels[0]!r}; a classifier needs "
                                  "at least two classes (check --label-column)")
        targets = self._targets(table, data.path)
        self._check_label_counts(table, data.path)
        train_rows, val_rows = split_indices(len(table.texts), data.val_fraction, seed=train.seed)
        self._check_training_classes(targets[train_rows], data.path)
        if self.tokenizer is None:
            if self.config.task.word_vectors:
                self._fit_with_vectors([table.texts[row] for row in train_rows])
            elif self.config.task.init_from:
                self.initial_weights = InitialWeights(self.config, ("embedding", "backbone"))
                self.tokenizer = self.initial_weights.tokenizer(self.config, words_only=self.config.task.words_only)
            else:
                self.tokenizer = fit_tokenizer(data.tokenizer, "\n".join(table.texts[row] for row in train_rows),
                                               unknown=data.unknown, vocab_size=data.vocab_size,
                                               min_count=data.min_count, lowercase=data.lowercase,
                                               words_only=self.config.task.words_only)
        if self.config.task.subwords and self.tokenizer.kind != "word":
            self.notes.append(f"classify: --subwords reads the words of --tokenizer word; this {self.tokenizer.kind} "
                              "tokenizer's pieces are read as tokens alone")
            self.config.task.subwords = 0  # saved so: eval and predict read text as training did
        self.train_sequences = [self._encode(table.texts[row]) for row in train_rows]
        self.train_targets = targets[train_rows]
        self.val_sequences = [self._encode(table.texts[row]) for row in val_rows]
        self.val_targets = targets[val_rows]
        self.val_texts = [table.texts[row] for row in val_rows]
        if fresh:
            self.bag_of_words = BagOfWords.fit([table.texts[row] for row in train_rows], self.train_targets)
        self.loss_weights = self._class_weights()

    def _fit_with_vectors(self, texts: list[str]) -> None:
        """The word tokenizer of ``texts`` keeping every word with a pretrained vector, and the embedding those
        vectors start (``task.word_vectors``; the embedding takes their width)."""
        data, task = self.config.data, self.config.task
        if task.init_from:
            raise SeqlabError("--word-vectors and --init-from both start the embedding; pass one of them")
        if data.tokenizer != "word":
            raise SeqlabError(f"--word-vectors gives words their vectors, but this run asks for --tokenizer "
                              f"{data.tokenizer}; pass --tokenizer word")
        counts = count_pieces("word", texts, lowercase=data.lowercase, words_only=task.words_only)
        vectors = read_word_vectors(task.word_vectors, counts, first=task.vector_words)
        if not any(word in vectors for word in counts):
            raise SeqlabError(f"{task.word_vectors} has a vector for none of the training text's {len(counts):,} "
                              "words; pass vectors of this text's language")
        # the file's most frequent words, where this tokenizer reads each as one piece (GloVe's "n't" it never makes)
        extra = [word for word in vectors.words[:task.vector_words]
                 if word_pieces(word, lowercase=data.lowercase, words_only=task.words_only) == [word]]
        self.tokenizer = WordTokenizer.from_counts(counts, unknown=data.unknown, vocab_size=data.vocab_size,
                                                   min_count=data.min_count, lowercase=data.lowercase,
                                                   words_only=task.words_only, keep=vectors, extra=extra)
        self.initial_weights = VectorEmbedding(vectors, self.tokenizer.pieces, seed=self.config.train.seed)
        self.config.model.embedding, self.config.model.embedding_size = "learned", vectors.dimension
        read = [piece for piece in self.tokenizer.pieces[1:] if piece in counts]
        found = sum(piece in vectors for piece in read)
        self.notes.append(f"classify: {task.word_vectors} has vectors for {found:,} of the {len(read):,} words the "
                          f"vocabulary takes from the training text; {self.tokenizer.vocab_size - 1 - len(read):,} "
                          f"more of its most frequent words joined (--vector-words); {vectors.dimension} numbers each")

    def undecayed(self, model: nn.Module) -> list[nn.Parameter]:
        """The bag-of-tokens rows: AdamW's decay shrinks every row at every step, so the row of a rare word or
        subword, which few batches hold, would fade between its updates (the training that chose the defaults
        measured it, benchmarks/RESULTS.md). With ``task.word_vectors`` the embedding too: decay would pull the
        pretrained vectors toward zero, and those of words training never sees (``task.vector_words``) away
        from what they mean."""
        members = model.members if isinstance(model, ClassifierEnsemble) else [model]
        kept = [member.bag.weight for member in members if member.bag is not None]
        if self.config.task.word_vectors:
            kept += [member.embedding.weight for member in members]
        return kept

    def _check_label_counts(self, table: LabelledTexts, path: str | Path) -> None:
        """Refuse a label with a single row: it can be neither learnt nor checked."""
        counts = Counter(table.labels)
        single = [label for label in self.labels if counts[label] == 1]
        if holds_text(table.labels):  # not classes
            column = self.config.task.label_column
            named = f"{table.layout['label']!r}, --label-column {column}" if table.layout else f"--label-column {column}"
            others = [name for name in class_columns(path, header=table.layout is not None,
                                                             encoding=self.config.data.encoding)
                      if name != (table.layout["label"] if table.layout else column)]
            raise SeqlabError(f"{path}: {len(single)} of {len(table.labels)} rows have a label no other row has, so "
                              f"the label column ({named}) holds text, not classes; "
                              + (f"pass --label-column {others[0]}" if others else
                                 "pass --label-column with the column of classes"))
        if single:
            line = table.line_numbers[table.labels.index(single[0])]
            raise SeqlabError(f"{path} line {line}: label {single[0]!r} occurs only once ({len(single)} label(s) "
                              "do); give each class at least two rows, or relabel or remove that row")

    def _check_training_classes(self, train_targets: Tensor, path: str | Path) -> None:
        """Refuse a split that left a class without a training row: the classifier could never predict it."""
        counts = torch.bincount(train_targets, minlength=len(self.labels))  # (C,)
        missing = [self.labels[index] for index in (counts == 0).nonzero().flatten().tolist()]
        if missing:
            raise SeqlabError(f"{path}: every row labelled {missing[0]!r} fell into the validation part, so the "
                              "classifier could never learn it; add rows of that label, or change --seed or "
                              "--val-fraction")

    @property
    def has_validation(self) -> bool:
        return len(self.val_sequences) > 0

    def assets(self) -> dict[str, Any]:
        return {TOKENIZER_FILE: self.tokenizer.to_dict(), LABELS_FILE: {"labels": list(self.labels),
                                                                        "layout": self.layout},
                BAG_OF_WORDS_FILE: None if self.bag_of_words is None else self.bag_of_words.to_dict()}

    def _class_weights(self) -> Tensor | None:
        """Inverse training frequency, N / (C n_c), with ``task.class_weights``; classes never seen weigh 0."""
        if not self.config.task.class_weights:
            return None
        counts = torch.bincount(self.train_targets, minlength=len(self.labels)).double()  # (C,)
        weights = len(self.train_targets) / (len(self.labels) * counts)
        return torch.where(counts > 0, weights, torch.zeros_like(weights)).float()

    # ----------------------------------------------------------------- model
    def build_model(self) -> nn.Module:
        members = [start_model(build_classifier(self.config, self.tokenizer.vocab_size, len(self.labels)), self.config,
                               self.initial_weights) for _ in range(self.config.task.members)]
        return members[0] if len(members) == 1 else ClassifierEnsemble(members)

    def batches(self) -> BatchSource:
        return LabelledBatches(self.train_sequences, self.train_targets, batch_size=self.config.train.batch_size,
                               seed=self.config.train.seed, bucketing=self.config.data.bucketing)

    def loss(self, model: nn.Module, batch: Batch, state: State) -> tuple[Tensor, State]:
        logits = model(batch.inputs, batch.lengths)  # (b, C), or (K, b, C) from K members
        members = 1 if logits.dim() == 2 else logits.shape[0]
        # float32 at least: under mixed precision the loss is float32, and so must its weights be to match counted
        weights = (None if self.loss_weights is None
                   else self.loss_weights.to(logits.device, torch.promote_types(logits.dtype, torch.float32)))
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.targets.repeat(members), weight=weights,
                               reduction="sum", label_smoothing=self.config.task.label_smoothing)
        return loss / members, None  # each member's loss, averaged over the members

    def counted(self, batch: Batch) -> float:
        """With class weights each example counts its class's weight (as a weighted mean does), else one."""
        if self.loss_weights is None:
            return float(len(batch.targets))
        return float(self.loss_weights.double()[batch.targets.cpu()].sum())

    # ------------------------------------------------------------ evaluation
    @torch.no_grad()
    def _network_scores(self, model: nn.Module, sequences: list[Tensor]) -> Tensor:
        """(N, C) float64 log-probabilities of the network alone, in the order given; batched by similar length so
        little padding is computed."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        batch_size = self.config.train.batch_size
        order = sorted(range(len(sequences)), key=lambda index: len(sequences[index]))
        scores = torch.zeros(len(sequences), len(self.labels), dtype=torch.float64)
        for start in range(0, len(order), batch_size):
            chosen = order[start:start + batch_size]
            inputs, lengths = pad_right([sequences[index] for index in chosen])
            scores[chosen] = log_probabilities(model(inputs.to(device), lengths.to(device)).double()).cpu()  # (b, C)
        model.train(was_training)
        return scores

    def _ensemble_scores(self, network: Tensor, texts: list[str]) -> Tensor:
        """The network's (N, C) log-probabilities -> the log of the mean of its and the bag of words' probabilities."""
        return ((network.exp() + self.bag_of_words.probabilities(texts)) / 2).log()  # (N, C)

    @property
    def _ensembled(self) -> bool:
        return self.config.task.ensemble and self.bag_of_words is not None

    def _sums(self, log_probabilities: Tensor, targets: Tensor) -> Tensor:
        """(N, C) log-probabilities and (N,) targets -> [summed loss, count, confusion counts...] as one float64
        vector, so processes can add theirs."""
        summed = torch.zeros(2 + len(self.labels) ** 2, dtype=torch.float64)
        summed[0] = F.nll_loss(log_probabilities, targets, reduction="sum")
        summed[1] = len(targets)
        summed[2:] = confusion_matrix(targets, log_probabilities.argmax(1), len(self.labels)).flatten().double()
        return summed

    def _metrics(self, sums: Tensor) -> tuple[dict[str, float], Tensor]:
        classes = len(self.labels)
        confusion = sums[2:].view(classes, classes).round().long()
        return {"val_loss": float(sums[0] / sums[1]), **classification_metrics(confusion)}, confusion

    def _network_and_ensemble(self, model: nn.Module, sequences: list[Tensor], texts: list[str],
                              targets: Tensor) -> Tensor:
        """The network's sums, followed with ``task.ensemble`` by the network+bag-of-words ensemble's."""
        if not sequences:  # a process with no share of a small split
            return torch.zeros((2 if self._ensembled else 1) * (2 + len(self.labels) ** 2), dtype=torch.float64)
        network = self._network_scores(model, sequences)  # (N, C)
        sums = [self._sums(network, targets)]
        if self._ensembled:
            sums.append(self._sums(self._ensemble_scores(network, texts), targets))
        return torch.cat(sums)

    def _named_metrics(self, sums: Tensor) -> tuple[dict[str, float], Tensor]:
        """Sums from ``_network_and_ensemble`` -> the network's metrics (and confusion matrix), beside them the
        ensemble's as ``ensemble_*``: the network is always reported on its own, and chooses best/."""
        width = 2 + len(self.labels) ** 2
        metrics, confusion = self._metrics(sums[:width])
        if len(sums) > width:
            ensemble, _ = self._metrics(sums[width:])
            metrics |= {f"ensemble_{name}": ensemble[name] for name in ("accuracy", "macro_f1")}
        return metrics, confusion

    def evaluate(self, model: nn.Module, *, context: ProcessContext, max_batches: int = 0) -> dict[str, float]:
        rows = list(range(context.rank, len(self.val_sequences), context.world_size))
        if max_batches:
            rows = rows[:max_batches * self.config.train.batch_size]
        sums = self._network_and_ensemble(model, [self.val_sequences[row] for row in rows],
                                          [self.val_texts[row] for row in rows], self.val_targets[rows])
        metrics, _ = self._named_metrics(context.all_reduce(sums.to(context.device)).cpu())
        return metrics

    def _baseline(self, texts: list[str], targets: Tensor) -> dict[str, float]:
        """The bag of words' accuracy and macro-F1 on ``texts``, named ``bow_*``; {} without a bag of words."""
        if self.bag_of_words is None:
            return {}
        predicted = self.bag_of_words.predict(texts)  # (N,)
        metrics = classification_metrics(confusion_matrix(targets, predicted, len(self.labels)))
        return {f"bow_{name}": value for name, value in metrics.items()}

    def baseline_metrics(self) -> dict[str, float]:
        return self._baseline(self.val_texts, self.val_targets) if self.val_texts else {}

    def evaluate_file(self, model: nn.Module, path: str | Path, *, split: str) -> dict[str, Any]:
        """Metrics and the confusion matrix on ``split`` of a file laid out like the training data.

        On the training file itself, ``val`` and ``train`` are exactly the
        trainer's parts (``val`` is the whole file when training had none). Any
        other file is new data and is evaluated whole: its split is ``all``.
        """
        table = self._read(path)
        targets = self._targets(table, path)
        rows = list(range(len(table.texts)))
        same_file = Path(path).resolve() == Path(self.config.data.path).resolve()
        if not same_file:
            split = "all"
        elif split != "all" and self.config.data.val_fraction > 0:
            train_rows, val_rows = split_indices(len(rows), self.config.data.val_fraction, seed=self.config.train.seed)
            rows = val_rows if split == "val" else train_rows
        texts = [table.texts[row] for row in rows]
        sums = self._network_and_ensemble(model, [self._encode(text) for text in texts], texts, targets[rows])
        metrics, confusion = self._named_metrics(sums)
        return {"split": split, "examples": len(rows), **metrics, **self._baseline(texts, targets[rows]),
                "confusion_matrix": confusion.tolist(), "labels": list(self.labels)}

    # ------------------------------------------------------------- prediction
    def read_inputs(self, path: str | Path) -> list[Any]:
        """.csv/.tsv/.jsonl (compressed or not): the texts of a file laid out like the training data, or of one
        without its label column (its header names the training text columns) or of one column (see
        ``read_unlabelled``); anything else: one text per line."""
        if table_suffix(path) in TABLE_SUFFIXES:
            texts = read_unlabelled(path, layout=self.layout, header=self.config.task.header,
                                    encoding=self.config.data.encoding)
            return self._read(path).texts if texts is None else texts
        return read_lines(path, self.config.data.encoding)

    def predict(self, model: nn.Module, inputs: list[Any]) -> list[Any]:
        check_text_inputs(inputs, "classify")
        scores = self._network_scores(model, [self._encode(text) for text in inputs])  # (N, C)
        if self._ensembled:
            scores = self._ensemble_scores(scores, inputs)
        return [self.labels[index] for index in scores.argmax(1).tolist()]
