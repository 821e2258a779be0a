"""Training tokens/s of the presets eager and compiled, in float32 and bfloat16, side by side in one run.

Each setting trains the preset through the real trainer for --steps steps on
tinyshakespeare; tokens/s is the median of the steps after --skip (the first
ones pay for compilation, whose seconds are reported apart). Ratios are to
eager float32 of the same preset, measured in the same run.

    python benchmarks/bench_acceleration.py --markdown
    python benchmarks/bench_acceleration.py --presets shakespeare-lstm --steps 10 --settings eager-fp32,eager-bf16
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

from common import machine
from seqlab.config import Config, load_config_file
from seqlab.train.trainer import Trainer

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "tinyshakespeare.txt"
SETTINGS = {"eager-fp32": (False, "fp32"), "eager-bf16": (False, "bf16"), "compiled-fp32": (True, "fp32"),
            "compiled-bf16": (True, "bf16")}


def measure(preset: str, setting: str, *, data: Path, steps: int, skip: int, threads: int, out: Path) -> dict[str, float]:
    compiled, precision = SETTINGS[setting]
    config = Config.from_dict(load_config_file(preset), source=preset)
    config.data.path = str(data)
    train = config.train
    train.max_steps, train.max_seconds, train.eval_interval, train.eval_max_batches = steps, 0.0, steps, 1
    train.log_interval, train.threads, train.compile, train.precision = 1, threads, compiled, precision
    summary = Trainer(config, out / f"{preset}-{setting}", overwrite=True, quiet=True).fit()
    records = [record for record in summary.history if record["kind"] == "train"]
    return {"tokens_per_second": statistics.median(record["tokens_per_second"] for record in records[skip:]),
            "first_step_seconds": records[0]["train_seconds"], "loss": records[-1]["loss"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", default="shakespeare-transformer,shakespeare-lstm")
    parser.add_argument("--settings", default=",".join(SETTINGS))
    parser.add_argument("--data", default=str(DATA))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--skip", type=int, default=5, help="steps left out of the median (compilation)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", action="store_true")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for preset in arguments.presets.split(","):
            base = None
            for setting in arguments.settings.split(","):
                result = measure(preset, setting, data=Path(arguments.data), steps=arguments.steps, skip=arguments.skip,
                                 threads=arguments.threads, out=Path(scratch))
                base = base or result["tokens_per_second"]
                rows.append([preset, setting, f"{result['tokens_per_second']:,.0f}",
                             f"{result['tokens_per_second'] / base:.2f}", f"{result['first_step_seconds']:.1f}",
                             f"{result['loss']:.3f}"])
                print(" | ".join(rows[-1]), file=sys.stderr, flush=True)  # as it comes: a long run can be cut short
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    title = (f"training tokens/s, median of steps {arguments.skip + 1}..{arguments.steps}; {machine()}; "
             f"load average at the end {load}")
    header = ["preset", "setting", "tokens/s", f"ratio to {arguments.settings.split(',')[0]}", "first step s",
              f"loss at step {arguments.steps}"]
    print(title + "\n")
    print(f"| {' | '.join(header)} |\n|{'---|' * len(header)}")
    for row in rows:
        print(f"| {' | '.join(row)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
