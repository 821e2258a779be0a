"""The forecaster's anchor rule on the classical forecasts alone: which baseline each rule picks before the held-out
tail, and the MASE on the tail of that baseline forecasting alone. No network is trained, so all the series take a few
minutes.

Each series of ``bench_forecast_real.py`` is cut as ``seqlab train --task forecast`` cuts it with that benchmark's
flags (the held-out tail, then the validation part of max(2H, a tenth) before it, the season guessed from the
training rows); ETS is fitted on the training rows (the forecaster's and its rules'), and again on every row before
the tail (``eval``'s baseline). The rules, each judging the classical forecasts from some origins before the tail:
- ``se, validation``: seasonal-naive unless naive or ETS is better by more than one standard error (``clearly_best``),
  on the validation origins (seqlab before session 7);
- ``se, history``: the same on every origin before the tail (sessions 7 to 13);
- ``se, after half`` / ``se, after two thirds``: the same on the origins after the first half or two thirds of the
  training rows, ETS fitted on the rows before them, out of sample (tried in session 10);
- ``lowest, history``: the lowest MASE on every origin before the tail (tried in session 14);
- ``lowest, later half``: the lowest MASE on the later half of those origins (the forecaster's since session 14);
- ``margin 5%`` / ``margin 10%``: that pick only where its MASE there is below seasonal-naive's by 5% or 10%, else
  seasonal-naive (tried in session 15);
- ``win rate 0.6``: the lowest MASE there among seasonal-naive and the baselines whose mean error beats seasonal-naive's
  in at least 60% of the runs of consecutive origins as long as the tail's (tried in session 15: the goal "never worse
  than seasonal-naive" asks about one such run, the tail);
- ``relative MAE``: the lowest geometric mean, over those runs on every origin before the tail, of the ratio of its
  mean error to seasonal-naive's (Davydenko and Fildes 2013; tried in session 15).
The tail's columns give the MASE of each rule's pick forecasting alone, ETS by its training rows' fit, and (``,
refitted``) by the fit on every row before the tail, which the anchor alone forecasts with since session 14. Then per
role group (``--groups``) the average MASE and the count of series worse than seasonal-naive.

    python benchmarks/bench_forecast_anchor.py
    python benchmarks/bench_forecast_anchor.py --series barium,traffic2   # some series; --roles fresh6: a role's
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

from bench_forecast_real import SERIES, held_out_fraction, write_csv
from seqlab.data.timeseries import clearly_best, forecast_metrics, guess_season, naive_scale, read_series, split_point
from seqlab.models.forecast_baselines import baseline_forecasts, fit_ets_columns
from seqlab.tasks.forecast import ANCHOR_ORIGINS, ANCHOR_PREFERENCE

RULES = ("se, validation", "se, history", "se, after half", "se, after two thirds", "lowest, history",
         "lowest, later half", "margin 5%", "margin 10%", "win rate 0.6", "relative MAE")
MARGINS = {"margin 5%": 0.05, "margin 10%": 0.10}
SPLITS = {"se, after half": 1 / 2, "se, after two thirds": 2 / 3}  # of the training rows: ETS fitted before
REFITTED = ("se, history", "lowest, later half", "margin 5%", "margin 10%", "win rate 0.6", "relative MAE")
COLUMNS = (*RULES, *(f"{rule}, refitted" for rule in REFITTED))  # the tail MASE of each pick
GROUPS = "tuning+seen+fresh+fresh2+fresh3,fresh4+fresh5+fresh6+fresh7+fresh8,fresh9+fresh10,fresh11"


def _runs(errors: np.ndarray, length: int) -> np.ndarray:
    """(W,) errors at consecutive origins -> the mean of each run of ``length`` of them, the last run ending at the
    last origin (the earliest origins left over)."""
    count = len(errors) // length
    return errors[len(errors) - count * length:].reshape(count, length).mean(axis=1)


def choices(values: np.ndarray, fit_rows: int, cut: int, horizon: int, season: int, fits: list) -> dict[str, str]:
    """Each rule's pick from the origins before the tail (``cut``)."""
    first, last = max(season, 1), cut - horizon
    spacing = max(1, -(-(last - first + 1) // ANCHOR_ORIGINS))  # as the forecaster spaces a long history's origins
    history = np.arange(first, last + 1, spacing)
    scale = naive_scale(values[:fit_rows])
    picks = {}
    for rule in RULES:
        judging_fits = fits
        if rule == "se, validation":
            origins = np.arange(fit_rows, cut - horizon + 1)
        elif rule in SPLITS:
            origins = history[history >= int(fit_rows * SPLITS[rule])]
            judging_fits = fit_ets_columns(values[:int(fit_rows * SPLITS[rule])], season)
        elif rule in ("lowest, later half", "win rate 0.6", *MARGINS):
            origins = history[-max(2, len(history) // 2):]
        else:
            origins = history
        if len(origins) < 2:
            picks[rule] = "seasonal_naive"
            continue
        truth = values[origins[:, None] + np.arange(horizon)]
        forecasts = baseline_forecasts(values, origins, horizon, season, ets_fits=judging_fits)
        if rule.startswith("se"):
            picks[rule] = clearly_best(truth, forecasts, scale, default="seasonal_naive",
                                       spacing=1 if rule == "se, validation" else spacing)
        else:
            scores = {name: forecast_metrics(truth, forecasts[name], scale)["mase"] for name in ANCHOR_PREFERENCE}
            picks[rule] = min(scores, key=scores.get)
            if rule in MARGINS and scores[picks[rule]] >= (1 - MARGINS[rule]) * scores["seasonal_naive"]:
                picks[rule] = "seasonal_naive"
            elif rule in ("win rate 0.6", "relative MAE"):
                # each origin's mean error over horizon and columns (scaled), then over runs as long as the tail
                length = max(1, (len(values) - cut - horizon + 1) // spacing)
                runs = {name: _runs((np.abs(forecasts[name] - truth) / scale).mean(axis=(1, 2)), length)
                        for name in ANCHOR_PREFERENCE}
                if len(runs["seasonal_naive"]) < 2:
                    picks[rule] = "seasonal_naive"
                elif rule == "win rate 0.6":
                    kept = [name for name in ANCHOR_PREFERENCE if name == "seasonal_naive"
                            or (runs[name] < runs["seasonal_naive"]).mean() >= 0.6]
                    picks[rule] = min(kept, key=scores.get)
                else:
                    ratios = {name: np.log((runs[name] + 1e-12) / (runs["seasonal_naive"] + 1e-12)).mean()
                              for name in ANCHOR_PREFERENCE}
                    picks[rule] = min(ratios, key=ratios.get)
    return picks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", default=",".join(SERIES))
    parser.add_argument("--roles", default="", help="only the series of these roles, comma-separated (tuning, seen, "
                                                    "fresh, ..., fresh9)")
    parser.add_argument("--groups", default=GROUPS, help="role groups to average over, comma-separated, roles in a "
                                                         "group joined by +")
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")  # statsmodels' optimiser notes
    names = [name for name in arguments.series.split(",")
             if not arguments.roles or SERIES[name][3] in arguments.roles.split(",")]
    print("| series | role | m | " + " | ".join(f"anchor: {rule}" for rule in RULES) + " | "
          + " | ".join(f"tail: {column}" for column in COLUMNS) + " | ets | seasonal_naive |\n|---|---|---:|"
          + "---|" * len(RULES) + "---:|" * (len(COLUMNS) + 2))
    rows = []
    for name in names:
        load, horizon, _, role = SERIES[name]
        with tempfile.TemporaryDirectory() as folder:  # read as seqlab reads the benchmark's CSV (co2's gaps filled)
            path = Path(folder) / f"{name}.csv"
            write_csv(path, *load())
            values = read_series(path).values
        cut = split_point(len(values), held_out_fraction(len(values), horizon))
        fit_rows = cut - max(2 * horizon, cut // 10)
        season = guess_season(values[:fit_rows])
        fits = fit_ets_columns(values[:fit_rows], season)  # the forecaster's anchor ETS: on the training rows
        picks = choices(values, fit_rows, cut, horizon, season, fits)
        tail = np.arange(cut, len(values) - horizon + 1)
        truth, tail_scale = values[tail[:, None] + np.arange(horizon)], naive_scale(values[:cut])
        anchors = baseline_forecasts(values, tail, horizon, season, ets_fits=fits)
        refitted = baseline_forecasts(values, tail, horizon, season, fit_rows=cut)
        score = {rule: forecast_metrics(truth, anchors[picks[rule]], tail_scale)["mase"] for rule in RULES}
        for rule in REFITTED:
            score[f"{rule}, refitted"] = forecast_metrics(truth, refitted[picks[rule]], tail_scale)["mase"]
        ets, naive_season = (forecast_metrics(truth, refitted[key], tail_scale)["mase"] for key in ("ets",
                                                                                                    "seasonal_naive"))
        rows.append((name, role, [score[column] for column in COLUMNS] + [ets, naive_season]))
        print(f"| {name} | {role} | {season} | " + " | ".join(picks[rule] for rule in RULES) + " | "
              + " | ".join(f"{score[column]:.3f}" for column in COLUMNS) + f" | {ets:.3f} | {naive_season:.3f} |",
              flush=True)
    print("\n| group | series | " + " | ".join(COLUMNS) + " | ets | seasonal_naive |\n|---|---:|"
          + "---:|" * (len(COLUMNS) + 2))
    for group in arguments.groups.split(","):
        members = [(name, scores) for name, role, scores in rows if role in group.split("+")]
        if not members:
            continue
        table = np.array([scores for _, scores in members])
        average = " | ".join(f"{mean:.3f}" for mean in table.mean(axis=0))
        worse = " | ".join(str(int((table[:, index] > table[:, -1] + 1e-12).sum()))
                           for index in range(len(COLUMNS) + 1))
        print(f"| {group}: average MASE | {len(members)} | {average} |")
        print(f"| {group}: worse than seasonal-naive | {len(members)} | {worse} | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
