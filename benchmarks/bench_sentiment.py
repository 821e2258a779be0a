"""Sentence sentiment (UCI "Sentiment Labelled Sentences": Yelp and Amazon): seqlab classifiers against bag-of-words.

Each file is 1,000 sentences, TAB, a label 1 or -1, no header. We measure
accuracy training on one site and testing on the other (cross-domain), and by
5-fold cross-validation within each site, for LSTM, GRU and Transformer
encoders trained with ``seqlab train --task classify``, beside a TF-IDF +
logistic-regression bag of words fitted on exactly the same rows.

Every seqlab run keeps 10% of its training rows for validation and is scored
with the checkpoint that was best on them (``best/``), never on test rows.
Texts are lower-cased for every model alike (the sites differ in casing
habits, and 1,000 sentences are too few to learn that "Great" is "great").

    python benchmarks/bench_sentiment.py            # everything (several minutes on 2 cores)
    python benchmarks/bench_sentiment.py --quick    # cross-domain only
    python benchmarks/bench_sentiment.py --pretrain # each model also initialised from a pretrained language model

With ``--pretrain`` each split first trains a word-level language model (same
backbone and sizes, one direction) on every sentence that split does not test
on, labels unused: for cross-validation the training folds and the other
site; cross-domain, the source site. The classifier then starts from its
embedding and forward backbone (``--init-from``, the GPT recipe); the reverse
direction of a bidirectional encoder starts fresh.
"""
from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

from common import machine
from seqlab.config import Config
from seqlab.train.checkpoint import load_checkpoint
from seqlab.train.trainer import train

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sentiment"
SITES = ("yelp", "amazon")
FOLDS = 5
SEED = 1337

# Small encoders, each about ten seconds to train on 900 sentences with one thread. The Transformer is causal, so
# max pooling lets early positions count; it did better at a gentler learning rate on a trial split.
MODELS: dict[str, dict[str, dict]] = {
    "lstm": {"model": {"backbone": "lstm"}, "task": {"bidirectional": True, "pooling": "max"}},
    "gru": {"model": {"backbone": "gru"}, "task": {"bidirectional": True, "pooling": "max"}},
    "transformer": {"model": {"backbone": "transformer", "num_layers": 1, "options": {"num_heads": 4}},
                    "task": {"pooling": "max"}, "train": {"learning_rate": 3e-3}},
}
# Words (the 600 most frequent pieces, so <unk> is trained on the rare ones and means something on the other
# site) and strong decoupled weight decay: with 900 sentences the models must stay close to a bag of words.
COMMON = {
    "data": {"tokenizer": "word", "vocab_size": 600, "val_fraction": 0.1, "block_size": 96},
    "model": {"hidden_size": 64, "embedding_size": 64, "dropout": 0.3},
    "train": {"batch_size": 32, "max_steps": 300, "warmup_steps": 20, "eval_interval": 30, "learning_rate": 1e-2,
              "min_learning_rate": 1e-4, "weight_decay": 1.0, "log_interval": 1000, "seed": SEED},
}


def read_site(path: Path) -> list[tuple[str, str]]:
    """(lower-cased sentence, label) rows of one TAB-separated file."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            sentence, label = line.rsplit("\t", 1)
            rows.append((sentence.strip().lower(), label.strip()))
    return rows


def write_rows(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{sentence}\t{label}\n" for sentence, label in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------ baseline
WORD = re.compile(r"\w+")


def bag_of_words_accuracy(train_rows: list[tuple[str, str]], test_rows: list[tuple[str, str]]) -> float:
    """TF-IDF (smoothed idf, l2-normalised rows) + L2-regularised logistic regression fitted by L-BFGS."""
    documents = [WORD.findall(sentence) for sentence, _ in train_rows]
    vocabulary = {word: index for index, word in enumerate(sorted({word for words in documents for word in words}))}

    def counts(sentences: list[str]) -> torch.Tensor:
        matrix = torch.zeros(len(sentences), len(vocabulary), dtype=torch.float64)  # (N, V)
        for row, sentence in enumerate(sentences):
            for word, count in Counter(WORD.findall(sentence)).items():
                if word in vocabulary:
                    matrix[row, vocabulary[word]] = count
        return matrix

    train_counts = counts([sentence for sentence, _ in train_rows])
    document_frequency = (train_counts > 0).sum(0)  # (V,)
    idf = torch.log((1 + len(train_rows)) / (1 + document_frequency)) + 1

    def features(matrix: torch.Tensor) -> torch.Tensor:
        weighted = matrix * idf
        return weighted / weighted.norm(dim=1, keepdim=True).clamp_min(1e-12)

    labels = sorted({label for _, label in train_rows})
    targets = torch.tensor([labels.index(label) for _, label in train_rows])
    inputs = features(train_counts)
    weight = torch.zeros(len(vocabulary), len(labels), dtype=torch.float64, requires_grad=True)
    bias = torch.zeros(len(labels), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=200, line_search_fn="strong_wolfe")
    strength = 1.0 / len(train_rows)  # C = 1 in scikit-learn's terms

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(inputs @ weight + bias, targets) + 0.5 * strength * weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    predicted = (features(counts([sentence for sentence, _ in test_rows])) @ weight + bias).argmax(1)
    truth = torch.tensor([labels.index(label) if label in labels else -1 for _, label in test_rows])
    return float((predicted == truth).double().mean())


# -------------------------------------------------------------------- seqlab
PRETRAIN = {"data": {"block_size": 32, "val_fraction": 0.05}, "train": {"max_steps": 600, "weight_decay": 0.1,
                                                                       "learning_rate": 5e-3, "eval_interval": 100}}


def pretrain_language_model(name: str, sentences: list[str], *, workspace: Path, threads: int) -> Path:
    """A word-level language model with classifier ``name``'s backbone and sizes, on ``sentences``; its best checkpoint."""
    config = Config.from_dict({section: {**COMMON.get(section, {}), **MODELS[name].get(section, {}),
                                         **PRETRAIN.get(section, {})} for section in ("model", "data", "train")})
    config.train.threads = threads
    order = torch.randperm(len(sentences), generator=torch.Generator().manual_seed(SEED)).tolist()
    corpus = workspace / "corpus.txt"
    corpus.write_text("".join(sentences[index] + "\n" for index in order), encoding="utf-8")
    config.data.path = str(corpus)
    out = workspace / "lm"
    train(config, out, overwrite=True, quiet=True)
    return out / "best"


def seqlab_accuracy(name: str, train_rows: list[tuple[str, str]], test_rows: list[tuple[str, str]], *,
                    workspace: Path, threads: int, steps: int, init_from: Path | None = None,
                    weight_decay: float | None = None) -> float:
    """Train ``seqlab`` classifier ``name`` on train_rows (10% held for checkpoint selection), test on test_rows."""
    config = Config.from_dict({section: {**COMMON.get(section, {}), **MODELS[name].get(section, {})}
                               for section in ("task", "model", "data", "train")})
    config.task.name = "classify"
    config.task.header = "no"
    config.task.init_from = str(init_from or "")
    if weight_decay is not None:
        config.train.weight_decay = weight_decay
    config.train.threads = threads
    config.train.max_steps = steps
    config.data.path = str(write_rows(workspace / "train.tsv", train_rows))
    out = workspace / "run"
    train(config, out, overwrite=True, quiet=True)
    checkpoint = load_checkpoint(out / "best" if config.data.val_fraction > 0 else out)
    metrics = checkpoint.task.evaluate_file(checkpoint.model, write_rows(workspace / "test.tsv", test_rows), split="all")
    return metrics["accuracy"]


Split = tuple[list[tuple[str, str]], list[tuple[str, str]], list[str]]  # train rows, test rows, unlabelled text


def folds(rows: list[tuple[str, str]], other: list[tuple[str, str]]) -> list[Split]:
    """FOLDS seeded (train, test, pretraining text) partitions of rows; the other site's sentences are unlabelled text."""
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(SEED)).tolist()
    parts = [order[index::FOLDS] for index in range(FOLDS)]
    splits = []
    for k in range(FOLDS):
        train_rows = [rows[i] for part in parts[:k] + parts[k + 1:] for i in part]
        splits.append((train_rows, [rows[i] for i in parts[k]], [s for s, _ in train_rows] + [s for s, _ in other]))
    return splits


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="folder with yelp_labelled.txt and amazon_labelled.txt")
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    parser.add_argument("--quick", action="store_true", help="cross-domain only (no cross-validation)")
    parser.add_argument("--steps", type=int, default=COMMON["train"]["max_steps"], help="training steps per run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument("--finetune-weight-decay", type=float, default=None,
                        help="weight decay for the LM-pretrained classifiers (default: the same as from scratch)")
    parser.add_argument("--pretrain", action="store_true",
                        help="also start each model from a language model pretrained on the split's unlabelled text")
    arguments = parser.parse_args()
    paths = {site: Path(arguments.data) / f"{site}_labelled.txt" for site in SITES}
    if not all(path.exists() for path in paths.values()):
        print(f"{arguments.data} lacks {' or '.join(path.name for path in paths.values())}: pass --data FOLDER",
              file=sys.stderr)
        return 2
    torch.set_num_threads(arguments.threads)
    names = [name.strip() for name in arguments.models.split(",") if name.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        print(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}", file=sys.stderr)
        return 2
    data = {site: read_site(path) for site, path in paths.items()}
    experiments = [(f"{source} -> {target}", [(data[source], data[target], [s for s, _ in data[source]])])
                   for source, target in (("yelp", "amazon"), ("amazon", "yelp"))]
    if not arguments.quick:
        experiments += [(f"{site} 5-fold CV", folds(data[site], data[other]))
                        for site, other in zip(SITES, reversed(SITES))]
    variants = [(name, False) for name in names] + [(name, True) for name in names if arguments.pretrain]
    columns = ["bag of words (TF-IDF + LR)", *(f"{name} (LM-pretrained)" if pretrained else name
                                                for name, pretrained in variants)]
    results: dict[str, list[float]] = {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        for label, splits in experiments:
            row = [sum(bag_of_words_accuracy(train_rows, test_rows) for train_rows, test_rows, _ in splits) / len(splits)]
            for name, pretrained in variants:
                scores = []
                for train_rows, test_rows, text in splits:
                    init_from = (pretrain_language_model(name, text, workspace=Path(scratch), threads=arguments.threads)
                                 if pretrained else None)
                    scores.append(seqlab_accuracy(name, train_rows, test_rows, workspace=Path(scratch),
                                                  threads=arguments.threads, steps=arguments.steps, init_from=init_from,
                                                  weight_decay=arguments.finetune_weight_decay if pretrained else None))
                row.append(sum(scores) / len(scores))
                print(f"{label}: {columns[len(row) - 1]} {row[-1]:.3f} ({time.perf_counter() - started:.0f} s)",
                      file=sys.stderr)
            results[label] = row
    command = "python benchmarks/bench_sentiment.py" + (" --quick" if arguments.quick else "") + (
        " --pretrain" if arguments.pretrain else "") + (
        f" --finetune-weight-decay {arguments.finetune_weight_decay}" if arguments.finetune_weight_decay is not None
        else "") + (
        f" --models {arguments.models}" if arguments.models != ",".join(MODELS) else "") + (
        f" --steps {arguments.steps}" if arguments.steps != COMMON["train"]["max_steps"] else "")
    print("# Sentence sentiment accuracy (UCI Yelp / Amazon labelled sentences)")
    print(f"machine: {machine()}")
    print(f"command: {command}")
    print(f"total time: {time.perf_counter() - started:.0f} s")
    print("| experiment | " + " | ".join(columns) + " |")
    print("|---|" + "---|" * len(columns))
    for label, row in results.items():
        print(f"| {label} | " + " | ".join(f"{value:.3f}" for value in row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
