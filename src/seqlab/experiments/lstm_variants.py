r"""LSTM variants at the same budget: vanilla, peephole, coupled input-forget gate (CIFG), no forget gate.

Each variant (the lstm backbone's ``variant`` option) trains as a character LM
on the ABC tunes for the same number of steps from several seeds. Batches are
contiguous streams with the state carried from window to window (truncated
BPTT), so the cell state runs on through tune after tune: the continual-input
setting in which Gers et al. (2000) introduced the forget gate, because
without one c_t = c_{t-1} + i_t * g_t can only accumulate. Validation carries
the state the same way. We also read 2,000 validation characters from a fresh
state and report the mean |c_t| at the end, to see that accumulation.

Significance: Welch's t statistic of each variant's final validation losses
against vanilla's, t = (m_v - m_0) / sqrt(s_v^2 / n_v + s_0^2 / n_0), against
Student's two-sided 5% critical value at the Welch-Satterthwaite degrees of freedom.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ..data.text import split_text
from ..diagnostics.reading import read_sequence
from .base import ExperimentResult, Finding, register_experiment
from .common import save_figure, train_run
from .common_abc import charlm_config, write_abc_corpus

VARIANTS = ("vanilla", "peephole", "coupled", "no_forget")
SETTINGS = {"smoke": {"seeds": 2, "steps": 5, "hidden": 8, "characters": 20_000, "read": 100},
            "quick": {"seeds": 3, "steps": 500, "hidden": 64, "characters": 200_000, "read": 2000},
            # full: more seeds, 6 x the steps, the whole corpus; the quick width (at 128 the 20 runs take hours). Five
            # seeds took 48 minutes on one quiet core: the vanilla LSTM runs torch's fused kernel (65 s a run), the
            # other variants our own cells, 2.5 x slower at this width (165 s); four seeds fit 45 minutes
            "full": {"seeds": 4, "steps": 3000, "hidden": 64, "characters": 876_000, "read": 2000, "memory_gib": 2.0}}
GREW = 10.0  # a variant's cell "grew large" when its mean |c| after the reading is above this many times vanilla's
# two-sided 5% critical values of Student's t by degrees of freedom (a fractional df takes the row below it)
T_CRITICAL = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
              12: 2.179, 15: 2.131, 20: 2.086, 30: 2.042}
NORMAL_CRITICAL = 1.960


def welch_t(sample: list[float], reference: list[float]) -> float:
    """Welch's t of mean(sample) - mean(reference); nan when both spreads are zero or a sample has one value."""
    if len(sample) < 2 or len(reference) < 2:
        return float("nan")
    error = math.sqrt(np.var(sample, ddof=1) / len(sample) + np.var(reference, ddof=1) / len(reference))
    return float((np.mean(sample) - np.mean(reference)) / error) if error > 0 else float("nan")


def welch_degrees_of_freedom(sample: list[float], reference: list[float]) -> float:
    """Welch-Satterthwaite: (a + b)^2 / (a^2 / (n_1 - 1) + b^2 / (n_2 - 1)), a = s_1^2 / n_1, b = s_2^2 / n_2."""
    a = np.var(sample, ddof=1) / len(sample)
    b = np.var(reference, ddof=1) / len(reference)
    denominator = a ** 2 / (len(sample) - 1) + b ** 2 / (len(reference) - 1)
    return float((a + b) ** 2 / denominator) if denominator > 0 else float("nan")


def t_critical(degrees_of_freedom: float) -> float:
    """The two-sided 5% critical value for ``degrees_of_freedom`` (rounded down to a tabulated row)."""
    if not degrees_of_freedom >= 1:
        return float("nan")
    rows = [df for df in T_CRITICAL if df <= degrees_of_freedom]
    return NORMAL_CRITICAL if degrees_of_freedom > max(T_CRITICAL) else T_CRITICAL[max(rows)]


def verdict(rows: list[dict[str, Any]], settings: dict[str, Any]) -> Finding:
    """Reproduced: no variant beats vanilla significantly (Welch t below minus the 5% critical value) and the
    variant without a forget gate has the highest mean loss. Cells whose mean |c| after the reading exceeds GREW
    x vanilla's are named."""
    by = {row["variant"]: row for row in rows}
    others = [variant for variant in VARIANTS if variant != "vanilla"]
    better = [variant for variant in others if by[variant]["welch_t"] < -by[variant]["t_critical_5%"]]
    worse = [variant for variant in others if by[variant]["welch_t"] > by[variant]["t_critical_5%"]]
    worst = max(others, key=lambda variant: by[variant]["val_loss_mean"])
    reproduced = bool(not better and worst == "no_forget")
    cell_key = f"mean_abs_c_after_{settings['read']}"
    grew = [variant for variant in others if by[variant][cell_key] > GREW * by["vanilla"][cell_key]]
    text = (
        "Final validation loss (nats, mean +- std over seeds): "
        + ", ".join(f"{row['variant']} {row['val_loss_mean']:.4f} +- {row['val_loss_std']:.4f}" for row in rows)
        + "; Welch t against vanilla (5% critical value): "
        + ", ".join(f"{variant} {by[variant]['welch_t']:+.2f} ({by[variant]['t_critical_5%']:.2f})" for variant in others)
        + ". "
        + (f"Significantly better than vanilla: {', '.join(better)}; " if better else
           "No variant beats vanilla significantly; ")
        + (f"significantly worse: {', '.join(worse)}; " if worse else "none is significantly worse; ")
        + f"the worst is {worst}. "
        + ("Removing the forget gate hurts most and nothing beats vanilla: the claim reproduces. " if reproduced else
           "The claim did not reproduce: it needs no variant significantly better than vanilla and no_forget the "
           "worst. ")
        + f"After {settings['read']} characters from a fresh state the mean |c| is "
        + ", ".join(f"{row['variant']} {row[cell_key]:.3g}" for row in rows) + "; "
        + (f"above {GREW:g} x vanilla's: {', '.join(grew)}." if grew else f"none above {GREW:g} x vanilla's."))
    return Finding(text, reproduced)


@register_experiment(
    "lstm-variants", title="LSTM variants: vanilla, peephole, coupled gates, no forget gate", settings=SETTINGS,
    verdict=verdict,
    claim="Across variants none beats the vanilla LSTM significantly; coupling the input and forget gates (CIFG) "
          "costs little, and removing the forget gate hurts most (Greff et al. 2017, 'LSTM: A Search Space Odyssey').")
def run(settings: dict[str, Any], out_dir: Path) -> ExperimentResult:
    import matplotlib.pyplot as plt

    corpus = write_abc_corpus(out_dir, characters=settings["characters"])
    _, val_text = split_text(corpus.read_text(encoding="utf-8"), 0.1)
    losses: dict[str, list[float]] = {}
    cells: dict[str, list[float]] = {}
    curves: dict[str, list[tuple[list[int], list[float]]]] = {}
    for variant in VARIANTS:
        for seed in range(settings["seeds"]):
            values = charlm_config(corpus, backbone="lstm", hidden_size=settings["hidden"], steps=settings["steps"],
                                   seed=seed, options={"variant": variant}, device=settings["device"])
            values["data"]["batching"] = "stream"
            values["train"].update({"eval_interval": max(1, settings["steps"] // 4), "eval_max_batches": 0})
            summary, checkpoint = train_run(values, out_dir / "run", best=False)
            evaluations = [record for record in summary.history if record["kind"] == "eval"]
            curves.setdefault(variant, []).append(([record["step"] for record in evaluations],
                                                   [record["val_loss"] for record in evaluations]))
            losses.setdefault(variant, []).append(evaluations[-1]["val_loss"])
            reading = read_sequence(checkpoint.model.eval(), checkpoint.tokenizer.encode(val_text[:settings["read"]]))
            _, cell = reading.states[-1]  # (L, 1, H)
            cells.setdefault(variant, []).append(float(cell.abs().mean()))

    rows = []
    for variant in VARIANTS:
        rows.append({"variant": variant, "seeds": len(losses[variant]),
                     "val_loss_mean": float(np.mean(losses[variant])), "val_loss_std": float(np.std(losses[variant], ddof=1)),
                     "diff_vs_vanilla": float(np.mean(losses[variant]) - np.mean(losses["vanilla"])),
                     "welch_t": welch_t(losses[variant], losses["vanilla"]) if variant != "vanilla" else float("nan"),
                     "t_critical_5%": (t_critical(welch_degrees_of_freedom(losses[variant], losses["vanilla"]))
                                       if variant != "vanilla" else float("nan")),
                     f"mean_abs_c_after_{settings['read']}": float(np.mean(cells[variant]))})

    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for index, variant in enumerate(VARIANTS):
        for seed, (steps, values) in enumerate(curves[variant]):
            left.plot(steps, values, color=f"C{index}", alpha=0.8, marker=".", label=variant if seed == 0 else None)
        right.scatter([index] * len(losses[variant]), losses[variant], color=f"C{index}")
        right.errorbar([index + 0.15], [np.mean(losses[variant])], yerr=[np.std(losses[variant], ddof=1)], color="black",
                       capsize=4, marker="_")
    left.set_xlabel("step")
    left.set_ylabel("validation cross-entropy (nats)")
    left.set_title("validation loss during training")
    left.legend()
    right.set_xticks(range(len(VARIANTS)), VARIANTS)
    right.set_ylabel("final validation loss")
    right.set_title("final loss per seed, mean +- std")
    figures = [save_figure(figure, out_dir, "lstm_variants.png")]

    return ExperimentResult(rows=rows, figures=figures,
                            extra={"final_val_losses": losses, "mean_abs_c": cells,
                                   "curves": {variant: [{"steps": steps, "val_loss": values} for steps, values in runs]
                                              for variant, runs in curves.items()}})
