r"""What a sentiment RNN learns: the hidden state's path through a sentence, and how the sentiment fades.

A small GRU classifier (the classify task, pooling "last") learns positive /
negative / neutral from a templated corpus made here in code: a subject, a
sentiment word (or a neutral one), optional negation ("not great" is
negative), and neutral filler words before and after, up to MAX_FILLER of them.
With pooling "last" the head reads h_L, so the head applied to every h_t
(taken after each word; the word tokenizer also reads the spaces between),

    r_t = p(positive | h_t) = softmax(W_c h_t + b_c)[positive],

is what the classifier would answer if the sentence stopped at t.

The measurement pairs each probe sentence with a baseline that differs only in
the sentiment word (replaced by a neutral word), then follows
D(k) = r_{s+k} - r^{baseline}_{s+k} over the k = 0, 1, ... neutral words after
the sentiment word at position s: D(0) is the readout's shift at the word, and
the half-life is the first k (linearly interpolated) at which |D(k)| falls to
|D(0)| / 2. The probes run on past the longest filler seen in training.

``seqlab experiment sentiment-trajectory --data FILE`` trains on a TAB-separated
file of sentence, label instead (e.g. the UCI Yelp sentences, labels 1 / 0); the
probes are still the templated sentences, with the label "1" (or "positive")
read as positive.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..data.labelled import read_labelled
from ..diagnostics.trajectories import plot_trajectory, principal_components, state_trajectory
from ..errors import SeqlabError
from .base import ExperimentResult, Finding, register_experiment
from .common import save_figure, train_run

POSITIVE = ("great", "good", "wonderful", "excellent", "delicious", "friendly", "amazing", "lovely", "perfect", "fantastic")
NEGATIVE = ("terrible", "bad", "awful", "horrible", "rude", "bland", "disgusting", "boring", "poor", "dreadful")
NEUTRAL = ("blue", "upstairs", "open", "square", "wooden", "downstairs", "round", "green")
SUBJECTS = ("the food", "the service", "the staff", "the movie", "this place", "our waiter", "the room", "the soup")
FILLER = ("we", "went", "there", "on", "a", "tuesday", "after", "work", "with", "my", "sister", "it", "is", "near",
          "the", "station", "i", "ordered", "table", "by", "window", "and", "then", "walked", "home", "later", "that",
          "evening", "they", "had", "parked", "car", "outside", "in", "street")
MAX_FILLER = 8  # neutral words before and after the sentiment phrase in training sentences
NEGATION_RATE = 0.25
SETTINGS = {"smoke": {"sentences": 60, "steps": 5, "hidden": 8, "probes": 2, "trailing": 10},
            "quick": {"sentences": 3000, "steps": 500, "hidden": 32, "probes": 40, "trailing": 30},
            "full": {"sentences": 20000, "steps": 3000, "hidden": 64, "probes": 200, "trailing": 60, "memory_gib": 2.0}}
MOVES = 1.0  # the sentiment word "moves" the readout: log-odds deviation D(0) beyond +-MOVES for its polarity


def templated_sentence(rng: random.Random, *, label: str, leading: int, trailing: int, negated: bool = False,
                       word: str | None = None) -> str:
    """One sentence: ``leading`` filler words, '<subject> was [not] <word>', ``trailing`` filler words.

    label "positive"/"negative" picks a sentiment word (the opposite list when ``negated``, so the meaning is the
    label's), "neutral" a neutral word; ``word`` overrides the choice.
    """
    if word is None:
        pool = {"positive": NEGATIVE if negated else POSITIVE, "negative": POSITIVE if negated else NEGATIVE,
                "neutral": NEUTRAL}[label]
        word = rng.choice(pool)
    words = [rng.choice(FILLER) for _ in range(leading)]
    words += [*rng.choice(SUBJECTS).split(), "was", *(["not"] if negated else []), word]
    words += [rng.choice(FILLER) for _ in range(trailing)]
    return " ".join(words)


def templated_corpus(count: int, *, seed: int) -> list[tuple[str, str]]:
    """``count`` (sentence, label) pairs, labels positive / negative / neutral in equal shares."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        label = ("positive", "negative", "neutral")[index % 3]
        negated = label != "neutral" and rng.random() < NEGATION_RATE
        rows.append((templated_sentence(rng, label=label, leading=rng.randint(0, MAX_FILLER),
                                        trailing=rng.randint(0, MAX_FILLER), negated=negated), label))
    rng.shuffle(rows)
    return rows


def polarity_labels(labels: list[str], *, source: str) -> tuple[int, int]:
    """The indices of the positive and the negative label: "positive" and "negative", or for two labels
    "1" and the other one. Anything else is refused with one line."""
    if "positive" in labels and "negative" in labels:
        return labels.index("positive"), labels.index("negative")
    if len(labels) == 2 and "1" in labels:
        positive = labels.index("1")
        return positive, 1 - positive
    raise SeqlabError(f"{source}: labels {', '.join(labels)} name no polarity; use positive/negative (and neutral), "
                      "or two labels of which 1 is positive")


def half_life(deviation: np.ndarray) -> float:
    """deviation (K,) = D(0), D(1), ... -> the first k (linearly interpolated) with |D(k)| <= |D(0)| / 2; inf if none."""
    size = np.abs(deviation)
    half = size[0] / 2
    for k in range(1, len(size)):
        if size[k] <= half:
            return float(k - 1 + (size[k - 1] - half) / (size[k - 1] - size[k]))
    return float("inf")


@torch.no_grad()
def readouts(model: nn.Module, tokens: Tensor, *, keep: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """tokens (T,) -> (the head's logits W_c h_t + b_c (T, C), the states h_t (T, H)) of a ``SequenceClassifier``,
    at every position, or only at the positions ``keep`` (W,) when given (e.g. after each word, not the spaces)."""
    model.eval()
    states = model.features(tokens.unsqueeze(0), torch.tensor([len(tokens)]))[0]  # (T, H)
    if keep is not None:
        states = states[keep]  # (W, H)
    return model.head(states), states


def word_positions(tokenizer, tokens: Tensor) -> Tensor:
    """The positions of a word tokenizer's tokens that are not white space (the word tokenizer keeps spaces)."""
    return torch.tensor([index for index, token in enumerate(tokens.tolist())
                         if not tokenizer.pieces[token].isspace()], dtype=torch.long)


def verdict(rows: list[dict[str, Any]], settings: dict[str, Any]) -> Finding:
    """Reproduced: each sentiment word moves the log-odds the right way by more than MOVES against the neutral
    baseline, and the state's distance from the baseline's halves within the probe (finite half-life) for both."""
    by = {row["sentiment"]: row for row in rows}
    trailing = settings["trailing"]
    state_decays = all(np.isfinite(row["state_half_life"]) for row in rows)
    score_decays = all(np.isfinite(row["score_half_life"]) for row in rows)
    moves = by["positive"]["score_D(0)"] > MOVES and by["negative"]["score_D(0)"] < -MOVES
    reproduced = bool(moves and state_decays)
    text = (
        f"GRU (hidden {settings['hidden']}) trained on {by['positive']['corpus']}: validation accuracy "
        f"{by['positive']['val_accuracy']:.3f}. "
        + " ".join(
            f"A {polarity} word moves p(positive) by {row['p_shift_at_word']:+.3f} and the log-odds "
            f"(positive vs negative) by {row['score_D(0)']:+.2f} against the neutral baseline; that log-odds "
            f"difference is {row[f'score_D({MAX_FILLER})']:+.2f} after {MAX_FILLER} neutral words and "
            f"{row[f'score_D({trailing})']:+.2f} after {trailing} (half-life {row['score_half_life']:.3g} words). "
            f"The state's distance from the baseline's goes {row['state_D(0)']:.3g} -> {row[f'state_D({MAX_FILLER})']:.3g}"
            f" -> {row[f'state_D({trailing})']:.3g} (half-life {row['state_half_life']:.3g} words; "
            f"{row['probes_state_never_halves']} of {row['probes']} probes never halve)." for polarity, row in by.items())
        + " "
        + ("Both sentiment words move the log-odds by more than " + f"{MOVES:g} and the state then halves its distance "
           "from the neutral baseline within the probe: the claim reproduces" if reproduced else
           "The claim did not reproduce: it needs both sentiment words to move the log-odds by more than "
           f"{MOVES:g} ({'they do' if moves else 'they do not'}) and the state's distance from the baseline to halve "
           f"within the probe ({'it does' if state_decays else 'it does not'})")
        + (f"; the readout's deviation halves within {trailing} words as well." if score_decays else
           f"; the readout's deviation does not halve within {trailing} words."))
    return Finding(text, reproduced)


@register_experiment(
    "sentiment-trajectory", title="What a sentiment RNN learns: state trajectory and fading readout",
    settings=SETTINGS, verdict=verdict, data="a TSV of sentence TAB label (labels positive / negative, or 1 / 0)",
    claim="An RNN builds a context vector that each input modifies; the context decays toward a baseline "
          "representation as inputs pass, slowly forgetting (the lectures; Karpathy 2015; Radford et al. 2017's "
          "sentiment neuron).")
def run(settings: dict[str, Any], out_dir: Path) -> ExperimentResult:
    import matplotlib.pyplot as plt

    if settings["data"]:
        path = Path(settings["data"])
    else:
        path = out_dir / "sentiment.tsv"
        path.write_text("".join(f"{sentence}\t{label}\n" for sentence, label in
                                templated_corpus(settings["sentences"], seed=0)), encoding="utf-8")
    values = {
        "task": {"name": "classify", "pooling": "last", "header": "no"},
        "data": {"path": str(path), "tokenizer": "word", "block_size": 64, "val_fraction": 0.1},
        "model": {"backbone": "gru", "hidden_size": settings["hidden"]},
        "train": {"batch_size": 32, "max_steps": settings["steps"], "warmup_steps": 20, "learning_rate": 1e-2,
                  "eval_interval": settings["steps"], "log_interval": 50, "seed": 0, "threads": 1,
                  "device": settings["device"]},
    }
    polarity_labels(sorted(set(read_labelled(path, header="no").labels)), source=str(path))  # refuse before training
    summary, checkpoint = train_run(values, out_dir / "run")
    model, tokenizer, labels = checkpoint.model, checkpoint.tokenizer, checkpoint.task.labels
    positive, negative = polarity_labels(labels, source=str(path))


    # probes: sentiment word at position s after a few filler words, then `trailing` filler words; the baseline
    # is the same sentence with a neutral word in its place. Per probe and k = 0..trailing:
    #   score deviation  D(k)   = score_{s+k} - score^baseline_{s+k},  score = logit_pos - logit_neg (log-odds)
    #   state distance   D_h(k) = ||h_{s+k} - h^baseline_{s+k}||
    rng = random.Random(1)
    trailing = settings["trailing"]
    measured: dict[str, dict[str, list]] = {polarity: {"score": [], "state": [], "shift": []}
                                            for polarity in ("positive", "negative")}
    examples: dict[str, tuple[list[str], np.ndarray, Tensor]] = {}
    for polarity, words in (("positive", POSITIVE), ("negative", NEGATIVE)):
        for index in range(settings["probes"]):
            seed = rng.randrange(1 << 30)
            leading = random.Random(seed).randint(0, 3)
            sentence = templated_sentence(random.Random(seed), label=polarity, leading=leading, trailing=trailing,
                                          word=words[index % len(words)])
            baseline = templated_sentence(random.Random(seed), label="neutral", leading=leading, trailing=trailing,
                                          word=NEUTRAL[index % len(NEUTRAL)])
            read = {}
            for kind, text in (("probe", sentence), ("baseline", baseline)):
                tokens = tokenizer.encode(text)
                logits, states = readouts(model, tokens, keep=word_positions(tokenizer, tokens))
                read[kind] = (logits, states, torch.softmax(logits, dim=-1)[:, positive])
            where = len(sentence.split()) - trailing - 1  # the sentiment word's index
            (logits, states, probability), (base_logits, base_states, base_probability) = read["probe"], read["baseline"]
            score = logits[:, positive] - logits[:, negative]
            base_score = base_logits[:, positive] - base_logits[:, negative]
            measured[polarity]["score"].append((score - base_score)[where:].double().numpy())
            measured[polarity]["state"].append((states - base_states)[where:].norm(dim=-1).double().numpy())
            measured[polarity]["shift"].append(float(probability[where] - probability[where - 1]))
            if index == 0:
                examples[polarity] = (sentence.split(), probability.numpy(), states)
                examples.setdefault("neutral", (baseline.split(), base_probability.numpy(), base_states))

    corpus = Path(settings["data"]).name if settings["data"] else f"templated ({settings['sentences']} sentences)"
    rows = []
    for polarity, values in measured.items():
        score, state = np.mean(values["score"], axis=0), np.mean(values["state"], axis=0)  # (trailing + 1,)
        state_lives = [half_life(curve) for curve in values["state"]]
        rows.append({"sentiment": polarity, "probes": len(state_lives), "corpus": corpus,
                     "val_accuracy": (summary.metrics or {}).get("accuracy", float("nan")),
                     "p_shift_at_word": float(np.mean(values["shift"])),
                     "score_D(0)": float(score[0]), f"score_D({MAX_FILLER})": float(score[MAX_FILLER]),
                     f"score_D({trailing})": float(score[-1]), "score_half_life": half_life(score),
                     "state_D(0)": float(state[0]), f"state_D({MAX_FILLER})": float(state[MAX_FILLER]),
                     f"state_D({trailing})": float(state[-1]), "state_half_life": half_life(state),
                     "probes_state_never_halves": sum(not np.isfinite(life) for life in state_lives)})

    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    colours = {"positive": "tab:green", "negative": "tab:red", "neutral": "tab:grey"}
    for polarity, (words, readout, _) in examples.items():
        left.plot(np.arange(1, len(words) + 1), readout, marker=".", color=colours[polarity],
                  label=" ".join(words[:10]) + " ...")
    left.set_xlabel("position t (words)")
    left.set_ylabel("p(positive | h_t)")
    left.set_title("readout along three probe sentences")
    left.legend(fontsize=7)
    for polarity, values in measured.items():
        score, state = np.mean(values["score"], axis=0), np.mean(values["state"], axis=0)
        right.plot(np.arange(trailing + 1), state / state[0], marker=".", color=colours[polarity],
                   label=f"{polarity} word: state distance ||h - h_baseline||")
        right.plot(np.arange(trailing + 1), score / score[0], linestyle="--", color=colours[polarity],
                   label=f"{polarity} word: log-odds deviation")
    right.axhline(0.0, color="grey", linewidth=1)
    right.axvline(MAX_FILLER, color="black", linestyle=":", linewidth=1, label="longest trailing filler in training")
    right.set_xlabel("neutral words since the sentiment word (k)")
    right.set_ylabel("difference from the neutral baseline, / its value at k = 0")
    right.set_title("the sentiment's trace, relative to the neutral baseline")
    right.legend(fontsize=8)
    figures = [save_figure(figure, out_dir, "readout_decay.png")]

    # the three example paths in one principal-component plane
    stacked = np.concatenate([states.numpy() for _, _, states in examples.values()])  # (sum T, H)
    projection, explained = principal_components(stacked, count=2)
    figure, axis = plt.subplots(figsize=(7, 6))
    start = 0
    for polarity, (words, _, states) in examples.items():
        path = projection[start:start + len(words)]
        start += len(words)
        axis.plot(path[:, 0], path[:, 1], marker=".", color=colours[polarity], label=polarity, alpha=0.8)
        for t in range(0, len(words), max(1, len(words) // 12)):
            axis.annotate(words[t], path[t], fontsize=7, xytext=(2, 2), textcoords="offset points")
        axis.scatter(*path[-1], color=colours[polarity], marker="s", s=40)
    axis.set_xlabel(f"PC 1 ({explained[0]:.0%} of variance)")
    axis.set_ylabel(f"PC 2 ({explained[1]:.0%} of variance)")
    axis.set_title("h_t through three probe sentences (square: the end)")
    axis.legend()
    figures.append(save_figure(figure, out_dir, "state_trajectories.png"))
    words, _, states = examples["positive"]
    plot_trajectory(state_trajectory(states.numpy(), words), out_dir / "trajectory_positive.png")
    figures.append("trajectory_positive.png")

    return ExperimentResult(rows=rows, figures=figures,
                            extra={"mean_state_distance": {polarity: np.mean(values["state"], axis=0).tolist()
                                                           for polarity, values in measured.items()},
                                   "mean_score_deviation": {polarity: np.mean(values["score"], axis=0).tolist()
                                                            for polarity, values in measured.items()}})
