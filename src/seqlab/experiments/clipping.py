r"""Gradient clipping on an RNN started in the exploding regime.

A tanh RNN whose recurrent matrix is W_hh = g Q (Q orthogonal, so every
singular value is g > 1: the backbone's ``init="orthogonal"`` with
``recurrent_gain=g``) trains as a character LM on the ABC tunes with plain SGD,
as Pascanu et al. did (Adam's per-parameter normalisation would itself bound
every update to about the learning rate and hide what clipping does), under
three rules:

    none:   theta <- theta - lr g
    norm:   theta <- theta - lr g min(1, c / ||g||)       (c = 1; keeps the direction, caps the size)
    value:  theta <- theta - lr clamp(g, -v, v)          (v = 0.1; per component, turns the direction)

The trainer logs the pre-clip norm ||g|| at every step. A run *diverges* when
its loss or weights stop being finite; it is *stuck* when its validation loss
ends within 10% of where it started.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from .base import ExperimentResult, register_experiment
from .common import save_figure, train_run
from .common_abc import charlm_config, write_abc_corpus

RULES = {"none": {"clip_norm": 0.0, "clip_value": 0.0}, "norm 1": {"clip_norm": 1.0, "clip_value": 0.0},
         "value 0.1": {"clip_norm": 0.0, "clip_value": 0.1}}
SETTINGS = {"quick": {"gains": (2.5, 3.0), "seeds": 3, "steps": 500, "hidden": 64, "characters": 200_000},
            "full": {"gains": (1.5, 2.5, 3.0, 5.0), "seeds": 5, "steps": 2000, "hidden": 128, "characters": 876_000}}
LEARNING_RATE = 0.5
STUCK_FRACTION = 0.9
EXPLODING = 100.0  # a gain whose unclipped runs saw a pre-clip norm above this counts as exploding


def run_outcome(losses: list[float], weights_finite: bool, val_loss: float, initial_loss: float) -> str:
    """"diverged" (a loss or a weight not finite), "stuck" (val loss >= 0.9 x the first loss) or "learned"."""
    if not weights_finite or not all(math.isfinite(loss) for loss in losses) or not math.isfinite(val_loss):
        return "diverged"
    return "stuck" if val_loss >= STUCK_FRACTION * initial_loss else "learned"


@register_experiment(
    "clipping", title="Gradient clipping on an exploding RNN",
    claim="Rescaling the gradient when its norm exceeds a threshold keeps exploding gradients from throwing "
          "training off: clipped runs train where unclipped ones are derailed (Pascanu, Mikolov & Bengio 2013).")
def run(preset: str, out_dir: Path) -> ExperimentResult:
    import matplotlib.pyplot as plt

    settings = SETTINGS[preset]
    corpus = write_abc_corpus(out_dir, characters=settings["characters"])
    rows, curves = [], {}
    for gain in settings["gains"]:
        for rule, clip in RULES.items():
            for seed in range(settings["seeds"]):
                values = charlm_config(corpus, backbone="rnn", hidden_size=settings["hidden"], steps=settings["steps"],
                                       seed=seed, options={"init": "orthogonal", "recurrent_gain": gain},
                                       optimizer="sgd", learning_rate=LEARNING_RATE, warmup_steps=0, weight_decay=0.0,
                                       log_interval=1, **clip)
                summary, checkpoint = train_run(values, out_dir / "run", best=False)
                steps = [record for record in summary.history if record["kind"] == "train"]
                losses = [record["loss"] for record in steps]
                norms = [record["grad_norm"] for record in steps]
                curves[(gain, rule, seed)] = (losses, norms)
                recurrent = checkpoint.model.backbone.weight_hh_l0.detach().double()
                weights_finite = all(bool(torch.isfinite(p).all()) for p in checkpoint.model.parameters())
                val_loss = (summary.metrics or {}).get("val_loss", float("nan"))
                rows.append({
                    "gain": gain, "rule": rule, "seed": seed,
                    "outcome": run_outcome(losses, weights_finite, val_loss, losses[0]),
                    "val_loss": val_loss, "first_loss": losses[0],
                    "max_grad_norm": max(norms), "median_grad_norm": float(np.median(norms)),
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
        row_axes[0].set_title(f"training loss, W_hh = {gain:g} x orthogonal")
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
    sentences, helped = [], {}
    for gain in gains:
        by_rule = {row["rule"]: row for row in summary_rows if row["gain"] == gain}
        none, norm, value = by_rule["none"], by_rule["norm 1"], by_rule["value 0.1"]
        failures = {rule: row["diverged"] + row["stuck"] for rule, row in by_rule.items()}
        if none["max_grad_norm"] > EXPLODING:
            helped[gain] = bool(failures["norm 1"] <= failures["none"] and norm["val_loss_mean"] < none["val_loss_mean"])
        sentences.append(
            f"W_hh = {gain:g} x orthogonal: pre-clip norms up to {none['max_grad_norm']:.3g} (median over steps "
            f"{none['median_grad_norm']:.3g} unclipped, {norm['median_grad_norm']:.3g} under norm clipping); "
            f"diverged/stuck of {none['runs']}: none {none['diverged']}/{none['stuck']}, norm 1 "
            f"{norm['diverged']}/{norm['stuck']}, value 0.1 {value['diverged']}/{value['stuck']}; mean val loss none "
            f"{none['val_loss_mean']:.3f}, norm 1 {norm['val_loss_mean']:.3f}, value 0.1 {value['val_loss_mean']:.3f}; "
            f"spectral norm of W_hh at the end none {none['W_hh_spectral_end']:.3g}, norm 1 "
            f"{norm['W_hh_spectral_end']:.3g}, value 0.1 {value['W_hh_spectral_end']:.3g}.")
    reproduced = bool(helped) and all(helped.values())
    helped_at = ", ".join(f"{gain:g}" for gain, yes in helped.items() if yes)
    not_at = ", ".join(f"{gain:g}" for gain, yes in helped.items() if not yes)
    if reproduced:
        finding = ("Wherever the gradient exploded (a pre-clip norm above 100), norm clipping ended with a lower loss "
                   "than no clipping: the claim reproduces. ")
    elif helped_at:
        finding = f"Norm clipping ended with a lower loss at gain {helped_at} but not at {not_at}: the claim reproduced in part. "
    else:
        finding = ("Norm clipping did not end with a lower loss than no clipping at any gain, so the claim did not "
                   "reproduce in this budget. ")
    verdict = (
        f"SGD at lr {LEARNING_RATE}, {settings['steps']} steps, {settings['seeds']} seeds per rule. " + " ".join(sentences)
        + " " + finding
        + "What the curves show: a tanh state is bounded, so nothing became NaN; an explosion does its damage "
          "through the step it causes. Unclipped, the first steps (lr x ||g||) throw W_hh far out (its spectral "
          "norm at the end, in the table) and saturate the units: the loss drops at once, then stalls on a network "
          "whose recurrence is mostly switched off. Norm clipping does tame the explosion (W_hh stays near its "
          "start), but every step is capped at lr x 1, so a run that starts deep in the exploding regime first "
          "crawls out of it; once out, its loss falls fast. When ||g|| is ~1e5 at every step even the output "
          "layer's share of the clipped step is negligible and the run stays stuck at the uniform prediction. "
          "Clip-by-value at 0.1 caps each component instead, so the output layer's small gradients pass whole while "
          "the exploding recurrent ones are cut: not the gradient's direction, but here the rule that learned best. "
        + (f"A quick run: {settings['seeds']} seeds of {settings['steps']} steps." if preset == "quick" else ""))
    return ExperimentResult(rows=summary_rows, verdict=verdict, reproduced=reproduced, figures=figures,
                            extra={"runs": rows, "curves": {f"{gain}|{rule}|{seed}": {"loss": losses, "grad_norm": norms}
                                              for (gain, rule, seed), (losses, norms) in curves.items()}})
