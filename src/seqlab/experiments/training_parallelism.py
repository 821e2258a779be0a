r"""Training time against sequence length T: the sequential critical path of recurrences.

An LSTM or GRU must finish h_{t-1} before h_t: a training step on (B, T) runs
T dependent steps per layer, each a product with only B rows, so its critical
path grows with T whatever hardware it is given. A Transformer, a minGRU
(parallel scan) or a TCN (convolution) computes all B x T positions of a layer
together: a few large products, whose critical path hardly grows with T.

We time one epoch of a fixed number of tokens N, in steps of (B, T) (N / (B T)
steps of forward and backward of the next-token loss, no optimiser), for
language models of about the same size, at small batch sizes B (where the
sequential models have least to work on at once), for growing T, on one
thread and on all the threads given, and on the GPU where one is asked for.
With B fixed, a sequential model's epoch time stays about N / B x (the cost of
one step with B rows), flat in T; a parallel model's falls as T grows, because
its products get B T rows and use the hardware better (until attention's
T^2 term). The measure of the claim is the sequential model's epoch time
divided by the best parallel model's (the scan's or the convolution's): it
grows with T where the parallel models pull away.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from .base import ExperimentResult, Finding, register_experiment
from .common import save_figure
from .common_models import matched_language_model, parameter_count, training_step_times

VOCAB = 64
MODELS = ("lstm", "gru", "transformer", "mingru", "tcn")
SEQUENTIAL = ("lstm", "gru")
PARALLEL = ("mingru", "tcn")  # the comparison: no attention, so no T^2 term muddles the trend
PULLS_AWAY = 1.5  # the sequential/parallel epoch-time ratio grows by more than this from the shortest T to the longest
SETTINGS = {
    "smoke": {"tokens": 256, "lengths": (8, 32), "batches": (1,), "threads": (1,), "parameters": 10_000, "repeats": 1},
    "quick": {"tokens": 8192, "lengths": (16, 128, 1024), "batches": (1, 4), "threads": (1, 2),
              "parameters": 200_000, "repeats": 2},
    "full": {"tokens": 65536, "lengths": (16, 64, 256, 1024, 4096), "batches": (1, 4, 16), "threads": (1, 2),
             "parameters": 1_000_000, "repeats": 2, "memory_gib": 4.0},
}


def epoch_seconds(model: nn.Module, batch: int, length: int, tokens: int, *, repeats: int, device: str,
                  seed: int = 0) -> float:
    """Seconds for ``tokens`` / (B T) training steps on random tokens (B, T): the fastest of ``repeats`` timed
    steps (after one untimed one) times the number of steps."""
    model = model.to(device)
    inputs = torch.randint(VOCAB, (batch, length + 1), generator=torch.Generator().manual_seed(seed)).to(device)
    steps = max(1, tokens // (batch * length))
    return steps * min(training_step_times(model, inputs, repeats=repeats))


def verdict(rows: list[dict[str, Any]], settings: dict[str, Any]) -> Finding:
    """For each (batch, threads) measured, a sequential model pulls behind when its epoch time divided by the best
    parallel model's (scan or convolution) grows by more than PULLS_AWAY from the shortest T to the longest.
    Reproduced: both sequential models pull behind at the smallest batch on the most threads measured."""
    lengths = settings["lengths"]
    shortest, longest = lengths[0], lengths[-1]
    by = {(row["model"], row["batch"], row["threads"]): row for row in rows}
    settings_measured = sorted({(row["batch"], row["threads"]) for row in rows})
    parts, behind = [], {}
    for batch, threads in settings_measured:
        def ratio(name: str, length: int) -> float:
            best = min(by[(parallel, batch, threads)][f"epoch_s T={length}"] for parallel in PARALLEL)
            return by[(name, batch, threads)][f"epoch_s T={length}"] / best

        growth = {name: ratio(name, longest) / ratio(name, shortest) for name in SEQUENTIAL}
        behind[(batch, threads)] = {name: value > PULLS_AWAY for name, value in growth.items()}
        parts.append(f"B={batch}, {threads} thread{'s' if threads > 1 else ''}: epoch time / best of scan and "
                     "convolution, T=" + f"{shortest} -> T={longest}: "
                     + ", ".join(f"{name} {ratio(name, shortest):.2f} -> {ratio(name, longest):.2f} (x{growth[name]:.2f})"
                                 for name in SEQUENTIAL))
    key = (min(batch for batch, _ in settings_measured),
           max(threads for batch, threads in settings_measured if batch == min(b for b, _ in settings_measured)))
    reproduced = all(behind[key].values())
    text = (f"Epoch of {settings['tokens']} tokens on {settings['device']}. " + "; ".join(parts) + ". ")
    text += (f"At B={key[0]} on {key[1]} thread(s) both sequential models' ratio grows by more than x{PULLS_AWAY:g} "
             "with T: the parallel models pull away, the claim reproduces." if reproduced else
             f"At B={key[0]} on {key[1]} thread(s) "
             + (", ".join(name for name, yes in behind[key].items() if yes) or "neither sequential model")
             + f" fell behind by more than x{PULLS_AWAY:g} from T={shortest} to T={longest}, and the claim needs "
               "both: it did not reproduce.")
    speedups = [row for row in rows if row["threads"] == max(settings["threads"]) and max(settings["threads"]) > 1]
    if speedups:
        text += (f" Speed-up from 1 to {max(settings['threads'])} threads at T={longest}, B={key[0]}: "
                 + ", ".join(f"{row['model']} x{row['thread_speedup']:.2f}" for row in speedups if row["batch"] == key[0])
                 + ".")
    return Finding(text, reproduced)


@register_experiment(
    "training-parallelism", title="Training time against sequence length: sequential RNNs vs parallel models",
    settings=SETTINGS, verdict=verdict,
    claim="Recurrent training is sequential in T (h_t needs h_{t-1}), while attention and parallel scans process "
          "all positions at once, so they use parallel hardware better on long sequences (Vaswani et al. 2017; "
          "Feng et al. 2024, 'Were RNNs all we needed?').")
def run(settings: dict[str, Any], out_dir: Path) -> ExperimentResult:
    import matplotlib.pyplot as plt

    lengths, tokens, device = settings["lengths"], settings["tokens"], settings["device"]
    threads_before = torch.get_num_threads()
    rows, curves = [], {}
    try:
        for threads in settings["threads"]:
            torch.set_num_threads(threads)
            for batch in settings["batches"]:
                for name in MODELS:
                    seconds = []
                    for length in lengths:
                        # a Transformer trained on T positions has context T: its forward also writes a key/value
                        # cache of context_length slots per row, which a longer context would add to a short T
                        options = {"context_length": length} if name == "transformer" else {}
                        model = matched_language_model(name, target_parameters=settings["parameters"],
                                                       vocab_size=VOCAB, **options)
                        seconds.append(epoch_seconds(model, batch, length, tokens, repeats=settings["repeats"],
                                                     device=device))
                    curves[(name, batch, threads)] = seconds
                    rows.append({"model": name, "batch": batch, "threads": threads,
                                 "parameters": parameter_count(model), "width": model.backbone.hidden_size,
                                 **{f"epoch_s T={length}": value for length, value in zip(lengths, seconds)},
                                 "longest/shortest": seconds[-1] / seconds[0]})
    finally:
        torch.set_num_threads(threads_before)
    fewest = min(settings["threads"])
    for row in rows:
        row["thread_speedup"] = curves[(row["model"], row["batch"], fewest)][-1] / curves[
            (row["model"], row["batch"], row["threads"])][-1]

    figure, axes = plt.subplots(1, len(settings["batches"]), figsize=(6 * len(settings["batches"]), 4.5), squeeze=False)
    for axis, batch in zip(axes[0], settings["batches"]):
        for index, name in enumerate(MODELS):
            for threads in settings["threads"]:
                axis.loglog(lengths, curves[(name, batch, threads)], marker="o", color=f"C{index}",
                            linestyle="-" if threads == max(settings["threads"]) else ":",
                            label=f"{name}, {threads} thread{'s' if threads > 1 else ''}")
        axis.set_xlabel("sequence length T")
        axis.set_ylabel(f"seconds per epoch of {tokens} tokens")
        axis.set_title(f"B = {batch} ({'solid' if len(settings['threads']) > 1 else ''} most threads)")
        axis.legend(fontsize=7)
    figures = [save_figure(figure, out_dir, "training_time_vs_length.png")]
    return ExperimentResult(rows=rows, figures=figures, extra={"lengths": list(lengths), "tokens_per_epoch": tokens})
