"""Long-range memory: the adding problem and copy memory at growing T, for seven backbones."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from .base import ExperimentResult, Finding, register_experiment
from .common import save_figure
from .common_synthetic import held_out_set, synthetic_config, tcn_layers, train_synthetic

# Bai, Kolter & Koltun 2018, Table 1: adding problem, T = 600, test MSE
BAI_ADDING_600 = {"lstm": 0.164, "gru": 5.3e-5, "tcn": 5.8e-5}
ADDING_BASELINE = 1 / 6  # always predicting 1: the variance of the sum of two U(0, 1)
COPY_BASELINE = 1 / 8  # guessing one of the 8 symbols
# Tuned on the validation sets (same T as training): Adam(W) without weight decay, gradient clipping at norm 1,
# lr 1e-2 for the gated nets and the TCN (1e-3: they sat at the baseline for 1500 steps; 250 steps were far too
# few), 1e-3 for the plain and identity-initialised RNNs (Le et al. 2015 used small rates for the IRNN; larger ones
# blow it up; 1e-4 and 3e-4 did no better within 1500 steps), 2e-3 for the Transformer; the LSTM's forget-gate bias
# at 1. The adding half of the claim is Bai et al.'s T=600 result: at the quick preset's T=100 an LSTM solves the
# adding problem too (as LSTMs do at moderate T; Le et al. 2015), so the quick preset tests the copy-memory half
# only and reports adding as outside the claim's range. The full preset runs Bai et al.'s lengths, adding at T=600
# and copy memory at T=1000, for the claim's three models at width 32 (at width 64 the TCN's step cost 2.5 x as
# much): in a 10-step probe with the 2 cores loaded about 4-fold, one step of the three took 1.8 s (adding) and
# 3.8 s (copy), most of it the GRU's and the TCN's, so 800 steps are about what 45 minutes allow; Bai et al.
# trained far longer. The quick preset took 7.4 minutes on one quiet core with every model on adding at T=100 and on
# copy memory at T=20 and 50 (the GRU's steps cost four times the fused LSTM's); since it does not judge adding, it
# runs adding for the LSTM alone (whose success there is why), and copy memory from T=10, where the recurrent nets
# still remember, to T=50.
SETTINGS = {
    # steps per run, hidden size, adding T's, copy-memory T's, models (and those run on adding, if fewer)
    "smoke": {"steps": 10, "hidden": 8, "adding": (8,), "copy": (4,), "models": ("lstm", "gru", "tcn"), "test": 32},
    "quick": {"steps": 1500, "hidden": 32, "adding": (100,), "copy": (10, 50), "models": ("lstm", "gru", "tcn", "irnn"),
              "adding_models": ("lstm",), "test": 512},
    "full": {"steps": 800, "hidden": 32, "adding": (600,), "copy": (1000,), "models": ("lstm", "gru", "tcn"),
             "test": 512, "memory_gib": 2.0},
}
ADDING_CLAIM_T = 600  # Bai et al.'s length; below it the LSTM is known to solve the adding problem
SOLVED = 0.1  # adding: an MSE below this fraction of the trivial baseline counts as solved
FAILED = 5.0  # adding: the LSTM fails when its MSE is above this many times the worse of the TCN's and the GRU's
REMEMBERS = 0.5  # copy memory: accuracy on the recalled symbols above this counts as remembering
LEARNING_RATES = {"rnn": 1e-3, "irnn": 1e-3, "lstm": 1e-2, "gru": 1e-2, "tcn": 1e-2, "transformer": 2e-3, "mingru": 1e-2}


def models(length: int, hidden: int) -> dict[str, dict[str, Any]]:
    """Model sections by name; ``length`` is the longest sequence (the TCN's receptive field must cover it)."""
    return {
        "rnn": {"backbone": "rnn"},
        "irnn": {"backbone": "rnn", "options": {"nonlinearity": "relu", "init": "identity"}},
        "lstm": {"backbone": "lstm", "options": {"forget_bias": 1.0}},
        "gru": {"backbone": "gru"},
        "tcn": {"backbone": "tcn", "num_layers": tcn_layers(length)},
        "transformer": {"backbone": "transformer", "num_layers": 2,
                        "options": {"context_length": length, "num_heads": max(1, hidden // 16)}},
        "mingru": {"backbone": "mingru"},
    }


def _at_longest(rows: list[dict[str, Any]], task: str) -> dict[str, float]:
    longest = max(row["T"] for row in rows if row["task"] == task)
    return {row["model"]: row["value"] for row in rows if row["task"] == task and row["T"] == longest}


RECURRENT = ("rnn", "irnn", "lstm", "gru", "mingru")


def verdict(rows: list[dict[str, Any]], settings: dict[str, Any]) -> Finding:
    """Adding (judged only at T >= ADDING_CLAIM_T): the TCN and the GRU solve it (MSE < SOLVED x baseline) and the
    LSTM fails (MSE > FAILED x theirs). Copy memory at the longest T: the TCN remembers (accuracy > REMEMBERS) and
    every recurrent net run does not. Reproduced when every half judged holds."""
    adding, copy = _at_longest(rows, "adding"), _at_longest(rows, "copy_memory")
    longest_adding = max(row["T"] for row in rows if row["task"] == "adding")
    longest_copy = max(row["T"] for row in rows if row["task"] == "copy_memory")
    solved = sorted(name for name, value in adding.items() if value < SOLVED * ADDING_BASELINE)
    remembered = sorted(name for name, value in copy.items() if value > REMEMBERS)
    order = ", ".join(f"{name} {value:.3g}" for name, value in sorted(adding.items(), key=lambda item: item[1]))
    copy_order = ", ".join(f"{name} {value:.2f}" for name, value in sorted(copy.items(), key=lambda item: -item[1]))
    text = (f"Adding at T={longest_adding} after {settings['steps']} steps, test MSE (baseline {ADDING_BASELINE:.3f}): "
            f"{order}; below {SOLVED:g} x the baseline: {', '.join(solved) or 'none'}. Copy memory at T={longest_copy}, "
            f"accuracy on the 10 recalled symbols (guessing {COPY_BASELINE:.3f}): {copy_order}; above {REMEMBERS:g}: "
            f"{', '.join(remembered) or 'none'}. ")
    halves = []
    if longest_adding >= ADDING_CLAIM_T:
        adding_holds = ("tcn" in solved and "gru" in solved
                        and adding["lstm"] > FAILED * max(adding["tcn"], adding["gru"]))
        halves.append(adding_holds)
        text += ("Adding half reproduced: the TCN and the GRU solve it and the LSTM's MSE is more than "
                 f"{FAILED:g} x theirs. " if adding_holds else
                 "Adding half did not reproduce: not both of the TCN and the GRU solved it with the LSTM more than "
                 f"{FAILED:g} x worse. ")
    else:
        text += (f"Adding at T={longest_adding} < {ADDING_CLAIM_T} is outside the claim (its LSTM failure is at "
                 f"T={ADDING_CLAIM_T}), so this preset does not judge that half"
                 + ("; here the LSTM solved it too. " if "lstm" in solved else ". "))
    copy_lengths = sorted({row["T"] for row in rows if row["task"] == "copy_memory"})
    if len(copy_lengths) > 1:
        shortest = {row["model"]: row["value"] for row in rows
                    if row["task"] == "copy_memory" and row["T"] == copy_lengths[0]}
        text += (f"From T={copy_lengths[0]} to T={longest_copy}: "
                 + ", ".join(f"{name} {shortest[name]:.2f} -> {copy[name]:.2f}" for name in copy if name in shortest)
                 + ". ")
    copy_holds = copy["tcn"] > REMEMBERS and all(value <= REMEMBERS for name, value in copy.items() if name in RECURRENT)
    halves.append(copy_holds)
    text += ("Copy-memory half reproduced: the TCN recalls the symbols and every recurrent net stays at or below "
             f"{REMEMBERS:g}." if copy_holds else
             f"Copy-memory half did not reproduce: it needs the TCN above {REMEMBERS:g} and every recurrent net at or "
             "below it.")
    return Finding(text, all(halves))


@register_experiment(
    "long-range", title="Long-range memory: adding and copy memory at growing T", settings=SETTINGS, verdict=verdict,
    claim="On the adding problem at T=600 a generic TCN (MSE 5.8e-5) and the GRU (5.3e-5) succeed where the LSTM "
          "stays at the trivial baseline (0.164 vs ~0.167); on copy memory recurrent nets fall to guessing as T "
          "grows while the TCN keeps remembering (Bai, Kolter & Koltun 2018, Table 1). The quick preset (T=100) "
          "judges the copy-memory half only: at T=100 an LSTM solves adding too; the full preset runs T=600.")
def run(settings: dict[str, Any], out_dir: Path) -> ExperimentResult:
    rows: list[dict[str, Any]] = []
    adding_models = settings.get("adding_models", settings["models"])
    for task, lengths, names in (("adding", settings["adding"], adding_models),
                                 ("copy_memory", settings["copy"], settings["models"])):
        for length in lengths:
            positions = length if task == "adding" else length + 20
            for name in names:
                model = models(positions, settings["hidden"])[name]
                config = synthetic_config(task, {"length": length}, {**model, "hidden_size": settings["hidden"]},
                                          steps=settings["steps"], learning_rate=LEARNING_RATES[name],
                                          weight_decay=0.0, device=settings["device"])
                _, checkpoint, seconds = train_synthetic(config)
                # a test set apart from the validation set the learning rates were tuned on
                test = held_out_set(task, {"length": length}, settings["test"])
                metrics = checkpoint.task.metrics(checkpoint.model, test)
                row = {"task": task, "T": length, "model": name}
                if task == "adding":
                    row.update(metric="test_mse", value=metrics["val_loss"], baseline=ADDING_BASELINE,
                               bai_T600_mse=BAI_ADDING_600.get(name, ""))
                else:
                    row.update(metric="test_accuracy", value=metrics["token_accuracy"], baseline=COPY_BASELINE,
                               bai_T600_mse="")
                row["train_s"] = round(seconds, 1)
                rows.append(row)
    return ExperimentResult(rows=rows, figures=[_figure(rows, out_dir)])


def _figure(rows: list[dict[str, Any]], out_dir: Path) -> str:
    """Grouped bars: one group per model, one bar per T, for each task."""
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    names = list(dict.fromkeys(row["model"] for row in rows))
    for axis, task, label, baseline in ((axes[0], "adding", "test MSE (log)", ADDING_BASELINE),
                                        (axes[1], "copy_memory", "accuracy on recalled symbols", COPY_BASELINE)):
        lengths = sorted({row["T"] for row in rows if row["task"] == task})
        width = 0.8 / len(lengths)
        for index, length in enumerate(lengths):
            values = {row["model"]: row["value"] for row in rows if row["task"] == task and row["T"] == length}
            axis.bar([position + (index - (len(lengths) - 1) / 2) * width for position in range(len(names))],
                     [values.get(name, 0.0) for name in names], width, label=f"T={length}")
        axis.axhline(baseline, color="grey", linestyle="--", label="trivial baseline")
        axis.set_xticks(range(len(names)), names)
        axis.set_ylabel(label)
        axis.set_title(task)
        if task == "adding":
            axis.set_yscale("log")
        axis.legend(fontsize=8)
    return save_figure(figure, out_dir, "long_range.png")
