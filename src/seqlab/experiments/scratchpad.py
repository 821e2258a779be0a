"""Shortcuts vs a scratchpad: addition trained on 1-2 digit numbers, tested on longer ones."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from .base import ExperimentResult, register_experiment
from .common import save_figure
from .common_synthetic import held_out_set, sequence_correct, synthetic_config, train_synthetic

# Tuned on the training digits (validation = 1..train_digits): lr 5e-3 for the LSTM (3e-3 for the Transformer), no
# weight decay, the LSTM's forget-gate bias at 1. The quick preset runs the LSTM only: the small Transformer took
# ~5 minutes for 1500 steps and still got only 35% of in-range scratchpads right, so it would not test anything
# within a few minutes; the full preset trains both far longer.
PRESETS = {
    "quick": {"steps": 2000, "batch_size": 32, "train_digits": 2, "test_digits": (1, 2, 3, 4), "test_examples": 200,
              "models": ("lstm",)},
    "full": {"steps": 6000, "batch_size": 64, "train_digits": 3, "test_digits": (1, 2, 3, 4, 5, 6),
             "test_examples": 500, "models": ("transformer", "lstm")},
}
MODELS = {
    "transformer": {"backbone": "transformer", "hidden_size": 64, "num_layers": 2,
                    "options": {"positional": "rotary", "num_heads": 4, "context_length": 160}},
    "lstm": {"backbone": "lstm", "hidden_size": 128, "options": {"forget_bias": 1.0}},
}
LEARNING_RATES = {"transformer": 3e-3, "lstm": 5e-3}
LEARNED = 0.8  # exact match on the training digits that counts as having learned them


@register_experiment(
    "scratchpad", title="Shortcuts vs scratchpad: 1-2 digit addition tested on more digits",
    claim="Trained on 1-2 digit addition, a model answering directly learns a brittle shortcut that fails on 3 "
          "digits; showing its work (a scratchpad) uses the output as working memory and makes the computation "
          "easier (lectures; Nye et al. 2021)")
def run(preset: str, out_dir: Path) -> ExperimentResult:
    settings = PRESETS[preset]
    rows: list[dict[str, Any]] = []
    for name in settings["models"]:
        for scratchpad in (False, True):
            options = {"digits_max": settings["train_digits"], "scratchpad": scratchpad}
            config = synthetic_config("addition", options, MODELS[name], steps=settings["steps"],
                                      batch_size=settings["batch_size"], learning_rate=LEARNING_RATES[name],
                                      weight_decay=0.0)
            metrics, checkpoint, seconds = train_synthetic(config)
            row: dict[str, Any] = {"model": name, "answer": "scratchpad" if scratchpad else "direct"}
            for digits in settings["test_digits"]:
                examples = held_out_set("addition", {**options, "val_digits_min": digits, "val_digits_max": digits},
                                        settings["test_examples"])
                row[f"{digits}_digits"] = round(float(sequence_correct(checkpoint, examples).float().mean()), 3)
            row["train_s"] = round(seconds, 1)
            rows.append(row)
    verdict, reproduced = _verdict(rows, settings)
    return ExperimentResult(rows=rows, verdict=verdict, reproduced=reproduced, figures=[_figure(rows, settings, out_dir)])


def _verdict(rows: list[dict[str, Any]], settings: dict[str, Any]) -> tuple[str, bool | None]:
    """The claim is about extrapolation: the scratchpad carries over to more digits than trained on better than the
    direct answer. A model tests it once its scratchpad has learned the training digits (>= 80% exact match); then
    it holds when the scratchpad beats the direct answer one digit beyond by more than 5 points. The in-range
    difference (the working makes the training lengths easier to learn) is reported in words."""
    trained, beyond = settings["train_digits"], settings["train_digits"] + 1
    parts, verdicts, easier = [], {}, []
    for name in settings["models"]:
        direct, pad = (next(row for row in rows if row["model"] == name and row["answer"] == answer)
                       for answer in ("direct", "scratchpad"))
        parts.append(f"{name}: {trained} digits direct {direct[f'{trained}_digits']:.0%} / scratchpad "
                     f"{pad[f'{trained}_digits']:.0%}, {beyond} digits direct {direct[f'{beyond}_digits']:.0%} / "
                     f"scratchpad {pad[f'{beyond}_digits']:.0%}")
        if pad[f"{trained}_digits"] >= LEARNED:
            verdicts[name] = pad[f"{beyond}_digits"] > direct[f"{beyond}_digits"] + 0.05
        if pad[f"{trained}_digits"] > direct[f"{trained}_digits"] + 0.05:
            easier.append(name)
    text = (f"Exact match (greedy decoding reproduces the whole scored continuation) on 1..{max(settings['test_digits'])}"
            f"-digit operands after training on 1..{trained} digits for {settings['steps']} steps: "
            + "; ".join(parts) + ". ")
    if easier:
        text += (f"Within the training lengths the working helps: {', '.join(easier)} got more {trained}-digit sums "
                 "right with the scratchpad than answering directly. ")
    if not verdicts:
        text += (f"Inconclusive on extrapolation: no model's scratchpad learned the training lengths ({LEARNED:.0%} "
                 f"exact match on {trained} digits) within this budget.")
        return text, None
    reproduced = any(verdicts.values())
    if reproduced:
        text += ("The scratchpad carries over to longer numbers better than the direct answer for "
                 + ", ".join(name for name, held in verdicts.items() if held) + ".")
    else:
        text += ("Extrapolation did not reproduce: the scratchpad, though learned on the training lengths ("
                 + ", ".join(verdicts) + f"), was no better than the direct answer on {beyond} digits. To write "
                 f"column {beyond} the model must fetch digits at a distance from the answer it never saw in "
                 "training; Nye et al. trained on up to 8 digits, with Transformers of millions to billions of parameters.")
    return text, reproduced


def _figure(rows: list[dict[str, Any]], settings: dict[str, Any], out_dir: Path) -> str:
    figure, axis = plt.subplots(figsize=(7, 4))
    digits = list(settings["test_digits"])
    for row in rows:
        axis.plot(digits, [row[f"{count}_digits"] for count in digits], marker="o",
                  linestyle="-" if row["answer"] == "scratchpad" else "--", label=f"{row['model']} {row['answer']}")
    axis.axvspan(0.5, settings["train_digits"] + 0.5, color="grey", alpha=0.15, label="trained digits")
    axis.set_xlabel("digits per operand")
    axis.set_ylabel("exact match")
    axis.set_xticks(digits)
    axis.legend(fontsize=8)
    return save_figure(figure, out_dir, "scratchpad.png")
