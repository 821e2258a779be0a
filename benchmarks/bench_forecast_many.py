"""Many series in one file (long format): how long the forecaster takes to read it before training, with ETS fitted to
its columns in one process and in several.

A seeded CSV of S series (``store,date,sales``: a weekly season, a level per store, noise) is read by the forecast
task as ``seqlab train`` reads it (``ForecastTask.load_data``: the file, the season, the history, ETS fitted to
every column on the training rows, the classical forecasts that choose the anchor). The time is measured with the
worker processes ``fit_ets_columns`` may use set to 1 and to each given count (the forecaster uses its torch thread
count); the fits must come out the same.

    python benchmarks/bench_forecast_many.py --series 200 --days 150 --workers 1,2
"""
from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from common import machine
from seqlab.config import Config
from seqlab.tasks.forecast import ForecastTask


def write_long_csv(path: Path, *, series: int, days: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    dates = np.arange(np.datetime64("2023-01-01"), np.datetime64("2023-01-01") + days)
    lines = ["store,date,sales"]
    for store in range(series):
        level = 10 + store % 7
        noise = rng.normal(0, 1, days)
        lines += [f"s{store},{date},{level + 3 * math.sin(2 * math.pi * day / 7) + noise[day]:.2f}"
                  for day, date in enumerate(dates)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--series", type=int, default=200)
    parser.add_argument("--days", type=int, default=150)
    parser.add_argument("--horizon", type=int, default=7)
    parser.add_argument("--workers", default="1,2", help="comma-separated counts; the first is the reference")
    arguments = parser.parse_args()
    warnings.simplefilter("ignore")  # statsmodels' optimiser notes
    print(f"`python benchmarks/bench_forecast_many.py {' '.join(sys.argv[1:])}`\n\n{machine()}\n")
    print(f"{arguments.series} series x {arguments.days} days, horizon {arguments.horizon}\n")
    print("| workers | seconds to read and fit | against the first |\n|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "many.csv"
        write_long_csv(path, series=arguments.series, days=arguments.days)
        first, fits = None, None
        for workers in [int(count) for count in arguments.workers.split(",")]:
            torch.set_num_threads(workers)
            config = Config()
            config.task.name, config.data.path, config.task.horizon = "forecast", str(path), arguments.horizon
            config.data.val_fraction, config.data.block_size = 0.1, 0
            task = ForecastTask(config)
            started = time.perf_counter()
            task.load_data()
            seconds = time.perf_counter() - started
            found = [fit.to_dict() for fit in task.ets_fits]
            if fits is not None and found != fits:
                raise SystemExit(f"the fits with {workers} workers differ from those with the first count")
            first, fits = first or seconds, fits or found
            print(f"| {workers} | {seconds:.1f} | {first / seconds:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
