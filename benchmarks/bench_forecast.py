"""Forecasting: the MASE of a small recurrent forecaster against the naive and seasonal-naive baselines.

For each built-in series (``builtin:sines``, ``builtin:ball``) and forecast
mode, trains a small model with ``seqlab train --task forecast`` under a time
budget, then scores the *last* checkpoint with ``seqlab eval --json`` on the held-out last
10% of the series, forecasting H steps from every origin there. MASE below 1
beats the in-sample one-step naive forecast; the baselines are scored on the
same origins and horizon, so the columns compare directly.

    python benchmarks/bench_forecast.py --seconds 45

One torch thread per run by default: on a shared, oversubscribed machine two
threads spin at their barriers and a step can take 100 times longer.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import torch

from common import machine
from seqlab.cli import main as seqlab_main

ROOT = Path(__file__).resolve().parents[1]
SERIES = ("sines", "ball")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=45.0, help="training-time budget per run")
    parser.add_argument("--backbone", default="lstm")
    parser.add_argument("--hidden-size", type=int, default=64)
    parser.add_argument("--block-size", type=int, default=48, help="history rows T")
    parser.add_argument("--horizon", type=int, default=12, help="forecast steps H")
    parser.add_argument("--modes", default="direct,autoregressive")
    parser.add_argument("--series", default=",".join(SERIES))
    parser.add_argument("--threads", type=int, default=1, help="torch threads (training and evaluation)")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench-forecast"))
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    print("`" + shlex.join(["python", "benchmarks/bench_forecast.py", *sys.argv[1:]]) + "`")
    print(f"\n{machine()}\n")
    rows = []
    for name in arguments.series.split(","):
        for mode in arguments.modes.split(","):
            out = Path(arguments.out) / f"{name}-{mode}"
            command = ["train", "--task", "forecast", "--data", f"builtin:{name}", "--out", str(out), "--overwrite",
                       "--forecast-mode", mode, "--backbone", arguments.backbone,
                       "--hidden-size", str(arguments.hidden_size), "--block-size", str(arguments.block_size),
                       "--horizon", str(arguments.horizon), "--batch-size", "64", "--learning-rate", "3e-3",
                       "--warmup-steps", "50", "--max-steps", "0", "--max-seconds", str(arguments.seconds),
                       "--eval-interval", "500", "--threads", str(arguments.threads), "--quiet"]
            print(f"    seqlab {shlex.join(command)}", file=sys.stderr)
            started = time.perf_counter()
            code = seqlab_main(command)
            if code:
                return code
            wall = time.perf_counter() - started
            captured = StringIO()
            with redirect_stdout(captured):
                code = seqlab_main(["eval", str(out), "--data", f"builtin:{name}", "--json"])
            if code:
                return code
            metrics = json.loads(captured.getvalue())
            steps = json.loads((out / "trainer.json").read_text())["step"]
            rows.append((name, mode, steps, wall, metrics))
    print(f"{arguments.backbone}, hidden {arguments.hidden_size}, T = {arguments.block_size}, "
          f"H = {arguments.horizon}, {arguments.seconds:g} s of training per run; "
          "scores on the held-out last 10% (every origin), last checkpoint\n")
    print("| series | mode | steps | wall s | model MASE | naive MASE | seasonal-naive MASE | model MAE | naive MAE "
          "| seasonal-naive MAE | model / best baseline MASE |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, mode, steps, wall, metrics in rows:
        best_baseline = min(metrics["naive_mase"], metrics["seasonal_naive_mase"])
        print(f"| {name} | {mode} | {steps} | {wall:.0f} | {metrics['mase']:.3f} | {metrics['naive_mase']:.3f} "
              f"| {metrics['seasonal_naive_mase']:.3f} | {metrics['mae']:.4f} | {metrics['naive_mae']:.4f} "
              f"| {metrics['seasonal_naive_mae']:.4f} | {metrics['mase'] / best_baseline:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
