"""The forecaster's 80% intervals on held-out tails, calibrated on the validation part by each rule, from checkpoints
that ``bench_forecast_real.py`` trained: no training here, so a set of series takes a minute or two.

For each run folder (``--out`` of ``bench_forecast_real.py``: ``NAME.csv`` beside ``NAME-BACKBONE/best``) the
validation part's forecasts give the conformity scores E = max(lower - y, y - upper) of the chosen method's interval
before any margin (the anchors fitted on the training rows, as in training); each rule turns them into a margin per
column; the held-out tail's forecasts (as ``seqlab eval`` makes them) are scored with it. Rules, all conformalised
quantile regression at the level ceil((n + 1) 0.8) / n for n exchangeable units (capped at 1):
- ``origins``: n = W, the validation origins (``conformal_margin``, since session 15);
- ``values``: n = W H, every value (before session 15);
- ``whole windows``: n = ceil(W / H), the windows that do not overlap;
- ``per step``: a margin per step ahead h, from the W scores at h, n = W.
Per folder: the mean coverage of the tails, the mean MSIS (lower is better) and the share of tails covered less
than 80%.

    python benchmarks/bench_forecast_intervals.py runs/f9-lstm runs/f10-lstm runs/f11-lstm
"""
from __future__ import annotations

import argparse
import math
import sys
import warnings
from pathlib import Path

import numpy as np

from seqlab.data.timeseries import interval_coverage, interval_score, naive_scale
from seqlab.models.forecaster import INTERVAL_LEVEL
from seqlab.train.checkpoint import load_checkpoint

RULES = ("origins", "values", "whole windows", "per step")


def margin(scores: np.ndarray, units: int) -> np.ndarray:
    """(N, C) scores -> per column the ceil(N ceil((n + 1) level) / n)-th smallest, for n = ``units``."""
    covered = min(math.ceil((units + 1) * INTERVAL_LEVEL), units)
    return np.sort(scores, axis=0)[-(-len(scores) * covered // units) - 1]


def score_run(run: Path, csv: Path) -> dict[str, tuple[float, float]]:
    """Each rule's (coverage, MSIS) on the held-out tail of one trained run."""
    checkpoint = load_checkpoint(run / "best")
    task, model = checkpoint.task, checkpoint.model
    series = task._read(csv)
    fit_rows, cut = task._parts(series)
    horizon = task.config.task.horizon
    validation, tail = np.arange(fit_rows, cut - horizon + 1), np.arange(cut, len(series) - horizon + 1)
    truth = series.values[validation[:, None] + np.arange(horizon)]  # (W, H, C)
    forecasts = task._forecasts(model, series, validation, anchors=task._anchors(series, validation))
    forecasts.margin = np.zeros_like(forecasts.margin)
    lower, upper = forecasts.interval(task.method)
    scores = np.maximum(lower - truth, truth - upper)  # (W, H, C)
    flat, origins = scores.reshape(-1, scores.shape[-1]), len(validation)
    margins = {"origins": margin(flat, origins), "values": margin(flat, len(flat)),
               "whole windows": margin(flat, math.ceil(origins / horizon)),
               "per step": np.stack([margin(scores[:, step], origins) for step in range(horizon)])}  # (H, C)
    held_out = task._forecasts(model, series, tail)
    tail_truth, scale = series.values[tail[:, None] + np.arange(horizon)], naive_scale(series.values[:cut])
    results = {}
    for rule in RULES:
        held_out.margin = margins[rule]
        interval = held_out.interval(task.method)
        results[rule] = (interval_coverage(tail_truth, *interval),
                         interval_score(tail_truth, *interval, scale, INTERVAL_LEVEL))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", help="bench_forecast_real.py --out folders")
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")  # statsmodels' optimiser notes
    print("| coverage / MSIS / share of tails under 80% | series | " + " | ".join(RULES) + " |\n|---|---:|"
          + "---|" * len(RULES))
    every = []
    for folder in map(Path, arguments.folders):
        runs = [run for run in sorted(folder.iterdir()) if (run / "best").is_dir()]
        scored = [score_run(run, folder / f"{run.name.rsplit('-', 1)[0]}.csv") for run in runs]
        every += scored
        for name, rows in ((folder.name, scored), *((("all", every),) if folder == Path(arguments.folders[-1])
                                                    and len(arguments.folders) > 1 else ())):
            cells = [f"{np.mean([row[rule][0] for row in rows]):.3f} / {np.mean([row[rule][1] for row in rows]):.2f}"
                     f" / {np.mean([row[rule][0] < INTERVAL_LEVEL for row in rows]):.2f}" for rule in RULES]
            print(f"| {name} | {len(rows)} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
