"""Shortcuts vs a scratchpad: a Transformer trained on short additions, tested on longer ones."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from .base import ExperimentResult, Finding, register_experiment
from .common import save_figure
from .common_synthetic import held_out_set, sequence_correct, synthetic_config, train_synthetic

# The claim is about Transformers' shortcuts, so every preset trains the Transformer alone. Nye et al. trained on 1-8
# digits and tested on 9-10; the quick preset shrinks the digit counts (1-2, tested on 3-4), not the idea; the full
# preset trains on 1-4 and tests on 5-6, what 45 minutes of 2 CPU cores allow (an earlier full preset, 1-5 digits,
# 8000 steps of 64 and the LSTM beside it, was estimated at about 90 minutes from the quick run's steps).
# lr 3e-3 for the Transformer (5e-3 for the LSTM), no weight decay, the LSTM's forget-gate bias at 1. At 1500 steps
# the Transformer's scratchpad got 42% of 2-digit sums right (direct 30%), short of the LEARNED bar the verdict
# needs before it judges extrapolation, so the quick preset trains for 3000.
SETTINGS = {
    "smoke": {"steps": 10, "batch_size": 8, "train_digits": 1, "test_digits": (1, 2), "test_examples": 16,
              "models": ("transformer",)},
    "quick": {"steps": 3000, "batch_size": 32, "train_digits": 2, "test_digits": (1, 2, 3, 4), "test_examples": 200,
              "models": ("transformer",)},
    "full": {"steps": 5000, "batch_size": 32, "train_digits": 4, "test_digits": (1, 2, 3, 4, 5, 6),
             "test_examples": 300, "models": ("transformer",), "memory_gib": 3.0},
}
MODELS = {
    "transformer": {"backbone": "transformer", "hidden_size": 64, "num_layers": 2,
                    "options": {"positional": "rotary", "num_heads": 4, "context_length": 160}},
    "lstm": {"backbone": "lstm", "hidden_size": 128, "options": {"forget_bias": 1.0}},
}
LEARNING_RATES = {"transformer": 3e-3, "lstm": 5e-3}
LEARNED = 0.8  # exact match on the training digits that counts as having learned them
MARGIN = 0.05  # one answer form beats the other when its exact match is higher by more than this


def verdict(rows: list[dict[str, Any]], settings: dict[str, Any]) -> Finding:
    """The claim is about extrapolation: the scratchpad carries over to more digits than trained on better than the
    direct answer. A model tests it once its scratchpad has learned the training digits (>= LEARNED exact match);
    then it holds when the scratchpad beats the direct answer one digit beyond by more than MARGIN. Reproduced
    when it holds for some model that tests it; None (inconclusive) when none does. The in-range difference is
    reported in words."""
    trained, beyond = settings["train_digits"], settings["train_digits"] + 1
    parts, verdicts, easier = [], {}, []
    for name in settings["models"]:
        direct, pad = (next(row for row in rows if row["model"] == name and row["answer"] == answer)
                       for answer in ("direct", "scratchpad"))
        parts.append(f"{name}: {trained} digits direct {direct[f'{trained}_digits']:.0%} / scratchpad "
                     f"{pad[f'{trained}_digits']:.0%}, {beyond} digits direct {direct[f'{beyond}_digits']:.0%} / "
                     f"scratchpad {pad[f'{beyond}_digits']:.0%}")
        if pad[f"{trained}_digits"] >= LEARNED:
            verdicts[name] = pad[f"{beyond}_digits"] > direct[f"{beyond}_digits"] + MARGIN
        if pad[f"{trained}_digits"] > direct[f"{trained}_digits"] + MARGIN:
            easier.append(name)
    text = (f"Exact match (greedy decoding reproduces the whole scored continuation) on 1..{max(settings['test_digits'])}"
            f"-digit operands after training on 1..{trained} digits for {settings['steps']} steps: "
            + "; ".join(parts) + ". ")
    if easier:
        text += (f"Within the training lengths the scratchpad got more {trained}-digit sums right than the direct "
                 f"answer (by more than {MARGIN:.0%}) for {', '.join(easier)}. ")
    if not verdicts:
        text += (f"Inconclusive on extrapolation: no model's scratchpad reached {LEARNED:.0%} exact match on {trained} "
                 "digits within this budget.")
        return Finding(text, None)
    held = [name for name, holds in verdicts.items() if holds]
    if held:
        text += (f"On {beyond} digits the scratchpad beats the direct answer by more than {MARGIN:.0%} for "
                 f"{', '.join(held)}: the claim reproduces.")
    else:
        text += (f"Extrapolation did not reproduce: the scratchpad, learned on the training lengths by "
                 f"{', '.join(verdicts)}, did not beat the direct answer by more than {MARGIN:.0%} on {beyond} digits.")
    return Finding(text, bool(held))


@register_experiment(
    "scratchpad", title="Shortcuts vs scratchpad: addition trained on short numbers, tested on longer ones",
    settings=SETTINGS, verdict=verdict,
    claim="Trained on short additions, a Transformer answering directly learns a brittle shortcut that fails on "
          "longer numbers; showing its work (a scratchpad) uses the output as working memory and carries over "
          "further (lectures; Nye et al. 2021, trained on 1-8 digits, tested on 9-10). The quick preset trains on "
          "1-2 digits and tests on 3-4.")
def run(settings: dict[str, Any], out_dir: Path) -> ExperimentResult:
    rows: list[dict[str, Any]] = []
    for name in settings["models"]:
        for scratchpad in (False, True):
            options = {"digits_max": settings["train_digits"], "scratchpad": scratchpad}
            config = synthetic_config("addition", options, MODELS[name], steps=settings["steps"],
                                      batch_size=settings["batch_size"], learning_rate=LEARNING_RATES[name],
                                      weight_decay=0.0, device=settings["device"])
            metrics, checkpoint, seconds = train_synthetic(config)
            row: dict[str, Any] = {"model": name, "answer": "scratchpad" if scratchpad else "direct"}
            for digits in settings["test_digits"]:
                examples = held_out_set("addition", {**options, "val_digits_min": digits, "val_digits_max": digits},
                                        settings["test_examples"])
                row[f"{digits}_digits"] = round(float(sequence_correct(checkpoint, examples).float().mean()), 3)
            row["train_s"] = round(seconds, 1)
            rows.append(row)
    return ExperimentResult(rows=rows, figures=[_figure(rows, settings, out_dir)])


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
