"""Long-range memory: the adding problem and copy memory at growing T, for seven backbones."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from .base import ExperimentResult, register_experiment
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
# at 1. The quick preset keeps one adding T, two copy T's and the claim's models plus the IRNN (the full preset runs
# all seven at three T's each).
PRESETS = {
    # steps per run, hidden size, adding T's, copy-memory T's, models
    "quick": {"steps": 1500, "hidden": 32, "adding": (100,), "copy": (20, 50), "models": ("lstm", "gru", "tcn", "irnn")},
    "full": {"steps": 6000, "hidden": 64, "adding": (100, 200, 600), "copy": (100, 200, 1000),
             "models": ("rnn", "irnn", "lstm", "gru", "tcn", "transformer", "mingru")},
}
TEST_EXAMPLES = 512
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


@register_experiment(
    "long-range", title="Long-range memory: adding and copy memory at growing T",
    claim="On the adding problem at T=600 a generic TCN (MSE 5.8e-5) and the GRU (5.3e-5) succeed where the LSTM "
          "stays at the trivial baseline (0.164 vs ~0.167); on copy memory recurrent nets fall to guessing as T "
          "grows while the TCN keeps remembering (Bai, Kolter & Koltun 2018, Table 1)")
def run(preset: str, out_dir: Path) -> ExperimentResult:
    settings = PRESETS[preset]
    rows: list[dict[str, Any]] = []
    for task, lengths in (("adding", settings["adding"]), ("copy_memory", settings["copy"])):
        for length in lengths:
            positions = length if task == "adding" else length + 20
            for name in settings["models"]:
                model = models(positions, settings["hidden"])[name]
                config = synthetic_config(task, {"length": length}, {**model, "hidden_size": settings["hidden"]},
                                          steps=settings["steps"], learning_rate=LEARNING_RATES[name],
                                          weight_decay=0.0)
                _, checkpoint, seconds = train_synthetic(config)
                # a test set apart from the validation set the learning rates were tuned on
                test = held_out_set(task, {"length": length}, TEST_EXAMPLES)
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
    figures = [_figure(rows, out_dir)]
    return ExperimentResult(rows=rows, verdict=_verdict(rows, settings), reproduced=_reproduced(rows),
                            figures=figures, extra={"settings": {key: list(value) if isinstance(value, tuple) else value
                                                                 for key, value in settings.items()}})


def _at_longest(rows: list[dict[str, Any]], task: str) -> dict[str, float]:
    longest = max(row["T"] for row in rows if row["task"] == task)
    return {row["model"]: row["value"] for row in rows if row["task"] == task and row["T"] == longest}


RECURRENT = ("rnn", "irnn", "lstm", "gru", "mingru")


def _adding_holds(rows: list[dict[str, Any]]) -> bool:
    """Bai et al.'s adding result at the longest T: TCN and GRU solve it (MSE < 10% of the baseline), the LSTM does not."""
    adding = _at_longest(rows, "adding")
    solved = 0.1 * ADDING_BASELINE
    return adding["tcn"] < solved and adding["gru"] < solved and adding["lstm"] > 5 * max(adding["tcn"], adding["gru"])


def _copy_holds(rows: list[dict[str, Any]]) -> bool:
    """Copy memory at the longest T: the TCN remembers (accuracy > 0.5), every recurrent net run does not."""
    copy = _at_longest(rows, "copy_memory")
    return copy["tcn"] > 0.5 and all(value < 0.5 for name, value in copy.items() if name in RECURRENT)


def _reproduced(rows: list[dict[str, Any]]) -> bool:
    """Both halves of the claim: the adding result and the copy-memory result at the longest T's."""
    return _adding_holds(rows) and _copy_holds(rows)


def _verdict(rows: list[dict[str, Any]], settings: dict[str, Any]) -> str:
    adding, copy = _at_longest(rows, "adding"), _at_longest(rows, "copy_memory")
    longest_adding, longest_copy = max(settings["adding"]), max(settings["copy"])
    solved = sorted(name for name, value in adding.items() if value < 0.1 * ADDING_BASELINE)
    remembered = sorted(name for name, value in copy.items() if value > 0.5)
    order = ", ".join(f"{name} {value:.3g}" for name, value in sorted(adding.items(), key=lambda item: item[1]))
    copy_order = ", ".join(f"{name} {value:.2f}" for name, value in sorted(copy.items(), key=lambda item: -item[1]))
    text = (f"Adding at T={longest_adding} after {settings['steps']} steps, MSE (baseline 0.167): {order}; "
            f"below a tenth of the baseline: {', '.join(solved) or 'none'}. Copy memory at T={longest_copy}, "
            f"accuracy on the 10 recalled symbols (guessing 0.125): {copy_order}; above 0.5: "
            f"{', '.join(remembered) or 'none'}. ")
    if _adding_holds(rows):
        text += "As in Bai et al., the TCN and the GRU solve the adding problem at the longest T and the LSTM does not. "
    elif longest_adding < 600 and "lstm" in solved:
        text += (f"The adding half did not reproduce at T={longest_adding}, as expected at this length: the LSTM "
                 "solves it too, as LSTMs do at moderate T (Le et al. 2015); Bai et al.'s LSTM failure is at T=600, "
                 "which only the full preset runs. ")
    else:
        text += ("Bai et al.'s adding result (TCN and GRU solve it, the LSTM stays near the baseline) did not "
                 "reproduce at the longest T here. ")
    copy_lengths = sorted(settings["copy"])
    if len(copy_lengths) > 1:
        shortest = {row["model"]: row["value"] for row in rows if row["task"] == "copy_memory" and row["T"] == copy_lengths[0]}
        text += (f"From T={copy_lengths[0]} to T={longest_copy}: "
                 + ", ".join(f"{name} {shortest[name]:.2f} -> {copy[name]:.2f}" for name in copy if name in shortest)
                 + ". ")
    if _copy_holds(rows):
        text += ("The copy-memory half reproduced: the TCN recalls the symbols and the recurrent nets stay below "
                 "0.5 accuracy. ")
    else:
        text += "The copy-memory half did not reproduce (TCN above 0.5 and every recurrent net below it). "
    if longest_adding < 600:
        text += ("This preset is far shorter than the paper's (T=600 and T=1000, many thousand steps, ~70K "
                 "parameters), so it tests the claim at moderate T, not the paper's figures.")
    return text


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
