"""The forecaster's anchor rule on the classical forecasts alone: which baseline it picks, and how that forecast does on
the held-out tail, when the rule judges the validation origins only (seqlab before session 7), every origin before
the held-out part (now), or (tried in session 10) only the origins after the first half or two thirds of the
training rows, with ETS fitted on the rows before them, so that ETS is judged out of sample. No network is trained,
so it runs in a few minutes. ``history, refitted`` is the shipped rule's anchor with its ETS refitted on every row
before the held-out part, as ``eval``'s ETS baseline is (tried in session 11, not kept: benchmarks/RESULTS.md).

Each series of ``bench_forecast_real.py`` is cut as ``seqlab train --task forecast`` cuts it with that benchmark's
flags (the held-out tail, then the validation part of max(2H, a tenth) before it, the season guessed from the
training rows). The anchor is ``clearly_best`` (seasonal-naive unless naive or ETS is better by more than one
standard error) over the chosen origins; ETS is fitted on the training rows, as the forecaster's anchor is. On the
tail, MASE of that anchor alone, and of ``eval``'s ETS and seasonal-naive (ETS refitted on every row before the tail).

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

RULES = ("validation", "history", "after_half", "after_two_thirds")
COLUMNS = (*RULES, "history, refitted")  # the tail MASE of each rule's anchor, and of the shipped one refitted
SPLITS = {"after_half": 1 / 2, "after_two_thirds": 2 / 3}  # of the training rows: ETS fitted before, judged after


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", default=",".join(SERIES))
    parser.add_argument("--roles", default="", help="only the series of these roles, comma-separated (tuning, seen, "
                                                    "fresh, ..., fresh7)")
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
        scale = naive_scale(values[:fit_rows])
        fits = fit_ets_columns(values[:fit_rows], season)  # the forecaster's anchor ETS: on the training rows
        first = max(season, 1)
        origins = {"validation": np.arange(fit_rows, cut - horizon + 1), "history": np.arange(first, cut - horizon + 1),
                   **{rule: np.arange(max(int(fit_rows * share), first), cut - horizon + 1)
                      for rule, share in SPLITS.items()}}
        chosen = {}
        for rule, judged in origins.items():
            judging_fits = fit_ets_columns(values[:int(fit_rows * SPLITS[rule])], season) if rule in SPLITS else fits
            truth = values[judged[:, None] + np.arange(horizon)]
            chosen[rule] = clearly_best(truth, baseline_forecasts(values, judged, horizon, season,
                                                                  ets_fits=judging_fits),
                                        scale, default="seasonal_naive")
        tail = np.arange(cut, len(values) - horizon + 1)
        truth, tail_scale = values[tail[:, None] + np.arange(horizon)], naive_scale(values[:cut])
        anchors = baseline_forecasts(values, tail, horizon, season, ets_fits=fits)
        refitted = baseline_forecasts(values, tail, horizon, season, fit_rows=cut)
        score = {rule: forecast_metrics(truth, anchors[chosen[rule]], tail_scale)["mase"] for rule in RULES}
        score["history, refitted"] = forecast_metrics(truth, refitted[chosen["history"]], tail_scale)["mase"]
        ets, naive_season = (forecast_metrics(truth, refitted[key], tail_scale)["mase"] for key in ("ets",
                                                                                                    "seasonal_naive"))
        rows.append([score[column] for column in COLUMNS] + [ets, naive_season])
        print(f"| {name} | {role} | {season} | " + " | ".join(chosen[rule] for rule in RULES) + " | "
              + " | ".join(f"{score[column]:.3f}" for column in COLUMNS) + f" | {ets:.3f} | {naive_season:.3f} |",
              flush=True)
    table = np.array(rows)
    print(f"\n{len(rows)} series, average tail MASE of the anchor: "
          + ", ".join(f"{column} {mean:.3f}" for column, mean in zip(COLUMNS, table.mean(axis=0)))
          + f"; ets {table[:, -2].mean():.3f}, seasonal_naive {table[:, -1].mean():.3f}")
    for index, rule in enumerate(COLUMNS):
        worse = [name for name, row in zip(names, table) if row[index] > row[-1] + 1e-12]
        print(f"- the anchor from {rule} is worse than seasonal-naive on {len(worse)}: {', '.join(worse) or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
