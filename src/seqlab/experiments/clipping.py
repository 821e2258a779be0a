r"""Gradient clipping on a recurrent net that explodes without it.

An IRNN, a ReLU RNN whose recurrent matrix starts at W_hh = g I (Le et al.
2015; the backbone's ``nonlinearity="relu"``, ``init="identity"``,
``recurrent_gain=g``), trains as a character LM on the ABC tunes with plain
SGD, as Pascanu et al. did (Adam's per-parameter normalisation would itself
bound every update to about the learning rate and hide what clipping does),
under three rules:

    none:   theta <- theta - lr g
    norm:   theta <- theta - lr g min(1, c / ||g||)       (c = 1; keeps the direction, caps the size)
    value:  theta <- theta - lr clamp(g, -v, v)          (v = 0.1; per component, turns the direction)

A ReLU state is unbounded: one large step that lifts W_hh's spectral radius
above 1 makes h_t grow geometrically through the window, and the loss and
then the weights become inf or NaN. The trainer logs the pre-clip norm ||g||
at every step. A run *diverges* when its loss or weights stop being finite; it
is *stuck* when its validation loss ends within 10% of where it started.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import TrainingDiverged
from ..train.trainer import METRICS_FILE
from .base import ExperimentResult, Finding, register_experiment
from .common import save_figure, train_run
from .common_abc import charlm_config, write_abc_corpus

RULES = {"none": {"clip_norm": 0.0, "clip_value": 0.0}, "norm 1": {"clip_norm": 1.0, "clip_value": 0.0},
         "value 0.1": {"clip_norm": 0.0, "clip_value": 0.1}}
SETTINGS = {"smoke": {"gains": (1.0,), "seeds": 1, "steps": 5, "hidden": 8, "characters": 20_000},
            "quick": {"gains": (1.0,), "seeds": 3, "steps": 300, "hidden": 64, "characters": 200_000},
            # full: five seeds, a larger gain beside 1, wider and longer; the quick preset's 9 runs of 300 steps took
            # 47 s at load ~5, and an unclipped run stops where it diverges, so this is about 20000 steps
            "full": {"gains": (1.0, 1.1), "seeds": 5, "steps": 1000, "hidden": 128, "characters": 876_000,
                     "memory_gib": 2.0}}
MODEL_OPTIONS = {"nonlinearity": "relu", "init": "identity"}
LEARNING_RATE = 0.5
STUCK_FRACTION = 0.9
EXPLODING = 100.0  # a gain whose unclipped runs saw a pre-clip norm above this (or diverged) counts as exploding
THROWN = 2.0  # W_hh was "thrown far" when its spectral norm ended above this many times its start (the gain)


def run_outcome(losses: list[float], weights_finite: bool, val_loss: float, initial_loss: float) -> str:
    """"diverged" (a loss or a weight not finite), "stuck" (val loss >= 0.9 x the first loss) or "learned"."""
    if not weights_finite or not all(math.isfinite(loss) for loss in losses) or not math.isfinite(val_loss):
        return "diverged"
    return "stuck" if val_loss >= STUCK_FRACTION * initial_loss else "learned"


def _mean_or_inf(value: float) -> float:
    """A mean validation loss with nan (every run diverged) read as the worst possible."""
    return math.inf if math.isnan(value) else value


def verdict(rows: list[dict[str, Any]], settings: dict[str, Any]) -> Finding:
    """At each gain whose unclipped runs explode (a pre-clip norm above EXPLODING, or a diverged run), norm clipping
    helps when it has fewer failed runs (diverged or stuck) than no clipping, or as few and a lower mean validation
    loss (a diverged rule's mean counts as infinite). Reproduced: some gain explodes and norm clipping helps at
    every one that does. Clipping by value is judged the same way and reported."""
    sentences, helped, by_value = [], {}, {}
    for gain in settings["gains"]:
        by_rule = {row["rule"]: row for row in rows if row["gain"] == gain}
        none, norm, value = by_rule["none"], by_rule["norm 1"], by_rule["value 0.1"]
        failures = {rule: row["diverged"] + row["stuck"] for rule, row in by_rule.items()}

        def better(rule: str) -> bool:
            return bool(failures[rule] < failures["none"] or (failures[rule] == failures["none"] and
                        _mean_or_inf(by_rule[rule]["val_loss_mean"]) < _mean_or_inf(none["val_loss_mean"])))

        exploded = none["max_grad_norm"] > EXPLODING or none["diverged"] > 0
        if exploded:
            helped[gain], by_value[gain] = better("norm 1"), better("value 0.1")
        sentence = (
            f"W_hh = {gain:g} x I: unclipped pre-clip norms up to {none['max_grad_norm']:.3g} (median over steps "
            f"{none['median_grad_norm']:.3g}; {'exploding' if exploded else 'not exploding'} by the bar of "
            f"{EXPLODING:g} or a diverged run); diverged/stuck of {none['runs']}: none {none['diverged']}/"
            f"{none['stuck']}, norm 1 {norm['diverged']}/{norm['stuck']}, value 0.1 {value['diverged']}/"
            f"{value['stuck']}; mean val loss of the finite runs: none {none['val_loss_mean']:.3f}, norm 1 "
            f"{norm['val_loss_mean']:.3f}, value 0.1 {value['val_loss_mean']:.3f}.")
        thrown = [rule for rule, row in by_rule.items() if row["W_hh_spectral_end"] > THROWN * gain]
        if thrown:
            sentence += (f" W_hh's spectral norm ended above {THROWN:g} x its start under {', '.join(thrown)} "
                         "(" + ", ".join(f"{rule} {by_rule[rule]['W_hh_spectral_end']:.3g}" for rule in thrown) + ").")
        sentences.append(sentence)
    reproduced = bool(helped) and all(helped.values())
    if not helped:
        finding = (f"No gain exploded without clipping (pre-clip norm above {EXPLODING:g} or a diverged run), so the "
                   "claim was not tested.")
        return Finding(f"SGD at lr {LEARNING_RATE}, {settings['steps']} steps, {settings['seeds']} seeds per rule. "
                       + " ".join(sentences) + " " + finding, None)
    helped_at = ", ".join(f"{gain:g}" for gain, yes in helped.items() if yes)
    not_at = ", ".join(f"{gain:g}" for gain, yes in helped.items() if not yes)
    if reproduced:
        finding = ("Wherever training exploded, norm clipping ended with fewer failed runs or, as many, a lower loss "
                   "than no clipping: the claim reproduces.")
    elif helped_at:
        finding = f"Norm clipping helped at gain {helped_at} but not at {not_at}: the claim reproduced in part."
    else:
        finding = "Norm clipping helped at no exploding gain: the claim did not reproduce."
    value_at = [f"{gain:g}" for gain, yes in by_value.items() if yes]
    finding += (f" Clipping by value helped at gain {', '.join(value_at)}." if value_at else
                " Clipping by value helped at no exploding gain.")
    return Finding(f"SGD at lr {LEARNING_RATE}, {settings['steps']} steps, {settings['seeds']} seeds per rule. "
                   + " ".join(sentences) + " " + finding, reproduced)


def train_one(values: dict[str, Any], run_dir: Path) -> tuple[list[float], list[float], bool, float, torch.Tensor | None]:
    """Train one run; return its per-step losses and pre-clip gradient norms, whether its weights ended finite, its
    validation loss (nan once diverged) and W_hh (None once diverged). A run that the trainer stopped at a
    non-finite loss or gradient returns the steps logged before it, with its weights counted as not finite."""
    try:
        summary, checkpoint = train_run(values, run_dir, best=False)
    except TrainingDiverged:
        records = [json.loads(line) for line in (run_dir / METRICS_FILE["jsonl"]).read_text(encoding="utf-8").splitlines()]
        steps = [record for record in records if record["kind"] == "train"]
        return [record["loss"] for record in steps], [record["grad_norm"] for record in steps], False, math.nan, None
    steps = [record for record in summary.history if record["kind"] == "train"]
    weights_finite = all(bool(torch.isfinite(parameter).all()) for parameter in checkpoint.model.parameters())
    return ([record["loss"] for record in steps], [record["grad_norm"] for record in steps], weights_finite,
            (summary.metrics or {}).get("val_loss", math.nan), checkpoint.model.backbone.weight_hh_l0.detach().double())


@register_experiment(
    "clipping", title="Gradient clipping on an exploding RNN", settings=SETTINGS, verdict=verdict,
    claim="Rescaling the gradient when its norm exceeds a threshold keeps exploding gradients from throwing "
          "training off: clipped runs train where unclipped ones are derailed (Pascanu, Mikolov & Bengio 2013).")
def run(settings: dict[str, Any], out_dir: Path) -> ExperimentResult:
    import matplotlib.pyplot as plt

    corpus = write_abc_corpus(out_dir, characters=settings["characters"])
    rows, curves = [], {}
    for gain in settings["gains"]:
        for rule, clip in RULES.items():
            for seed in range(settings["seeds"]):
                # the trainer's guard against non-finite steps is off (0 allowed): a run whose loss or gradient
                # goes non-finite has diverged, which is what the experiment measures, not a step to skip
                values = charlm_config(corpus, backbone="rnn", hidden_size=settings["hidden"], steps=settings["steps"],
                                       seed=seed, options={**MODEL_OPTIONS, "recurrent_gain": gain},
                                       optimizer="sgd", learning_rate=LEARNING_RATE, warmup_steps=0, weight_decay=0.0,
                                       log_interval=1, max_nonfinite_steps=0, device=settings["device"], **clip)
                losses, norms, weights_finite, val_loss, recurrent = train_one(values, out_dir / "run")
                curves[(gain, rule, seed)] = (losses, norms)
                rows.append({
                    "gain": gain, "rule": rule, "seed": seed,
                    # a run that diverged at its first step logged no finite step: its losses and norms are empty
                    "outcome": run_outcome(losses, weights_finite, val_loss, losses[0] if losses else math.nan),
                    "val_loss": val_loss, "first_loss": losses[0] if losses else math.nan,
                    "max_grad_norm": max(norms, default=math.inf),
                    "median_grad_norm": float(np.median(norms)) if norms else math.inf,
                    "steps_norm_over_100": sum(norm > 100 for norm in norms),
                    "W_hh_spectral_end": float(torch.linalg.matrix_norm(recurrent, ord=2)) if weights_finite else float("nan"),
                })

    gains = settings["gains"]
    figure, axes = plt.subplots(len(gains), 2, figsize=(12, 4 * len(gains)), squeeze=False)
    colours = {"none": "tab:red", "norm 1": "tab:blue", "value 0.1": "tab:green"}
    for row_axes, gain in zip(axes, gains):
        for (curve_gain, rule, seed), (losses, norms) in curves.items():
            if curve_gain != gain:
                continue
            label = rule if seed == 0 else None
            row_axes[0].plot(np.arange(1, len(losses) + 1), losses, color=colours[rule], alpha=0.7, linewidth=1, label=label)
            row_axes[1].semilogy(np.arange(1, len(norms) + 1), norms, color=colours[rule], alpha=0.7, linewidth=1, label=label)
        row_axes[0].set_title(f"training loss, W_hh = {gain:g} x I")
        row_axes[0].set_ylabel("cross-entropy (nats)")
        row_axes[1].set_title("pre-clip gradient norm ||g||")
        for axis in row_axes:
            axis.set_xlabel("step")
            axis.legend()
    figures = [save_figure(figure, out_dir, "clipping_curves.png")]

    summary_rows = []
    for gain in gains:
        for rule in RULES:
            chosen = [row for row in rows if row["gain"] == gain and row["rule"] == rule]
            finite = [row["val_loss"] for row in chosen if math.isfinite(row["val_loss"])]
            summary_rows.append({
                "gain": gain, "rule": rule, "runs": len(chosen),
                "diverged": sum(row["outcome"] == "diverged" for row in chosen),
                "stuck": sum(row["outcome"] == "stuck" for row in chosen),
                "val_loss_mean": float(np.mean(finite)) if finite else float("nan"),
                "val_loss_std": float(np.std(finite)) if finite else float("nan"),
                "max_grad_norm": max(row["max_grad_norm"] for row in chosen),
                "median_grad_norm": float(np.median([row["median_grad_norm"] for row in chosen])),
                "steps_norm_over_100": float(np.mean([row["steps_norm_over_100"] for row in chosen])),
                "W_hh_spectral_end": float(np.mean([row["W_hh_spectral_end"] for row in chosen])),
            })
    return ExperimentResult(rows=summary_rows, figures=figures,
                            extra={"runs": rows, "curves": {f"{gain}|{rule}|{seed}": {"loss": losses, "grad_norm": norms}
                                              for (gain, rule, seed), (losses, norms) in curves.items()}})
