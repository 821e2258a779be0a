"""Character language model on tinyshakespeare: validation loss against seconds of training.

Trains a preset with `seqlab train` (first 90% of the text trains, last 10%
validates, as nanoGPT and char-rnn split it) under a time budget, validating
on the whole validation split every few steps, then reports the validation
loss reached by given times and the first time it fell to a target (1.886 is
what nanoGPT's CPU "baby GPT" reaches in about 80 s on our 2-core machines).

Times are seconds of training (forward, backward, optimizer), which the
trainer clocks without its validation and checkpoint writing.

    python benchmarks/bench_charlm.py --preset shakespeare-lstm --seconds 300
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common import machine
from seqlab.cli import main as seqlab_main

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="shakespeare-lstm")
    parser.add_argument("--data", default=str(DEFAULT_DATA))
    parser.add_argument("--seconds", type=float, default=300.0, help="training-time budget")
    parser.add_argument("--eval-interval", type=int, default=None, help="steps between validations (finer = sharper times)")
    parser.add_argument("--at", default="10,80,300", help="report the validation loss reached by these seconds")
    parser.add_argument("--target", type=float, default=1.886)
    parser.add_argument("--out", default=None)
    arguments, extra = parser.parse_known_args()
    if not Path(arguments.data).exists():
        print(f"{arguments.data} not found: pass --data tinyshakespeare.txt", file=sys.stderr)
        return 2
    out = Path(arguments.out or ROOT / "runs" / f"bench-charlm-{arguments.preset}")
    command = ["train", "--config", arguments.preset, "--data", arguments.data, "--out", str(out), "--overwrite",
               "--max-seconds", str(arguments.seconds), "--max-steps", "0", "--quiet", *extra]
    if arguments.eval_interval:
        command += ["--eval-interval", str(arguments.eval_interval)]
    code = seqlab_main(command)
    if code:
        return code
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [record for record in records if record["kind"] == "eval"]
    trains = [record for record in records if record["kind"] == "train"]
    reached = next((record for record in evals if record["val_loss"] <= arguments.target), None)
    print(f"# {arguments.preset} on {Path(arguments.data).name}")
    print(f"machine: {machine()}")
    print(f"command: python benchmarks/bench_charlm.py --preset {arguments.preset} --seconds {arguments.seconds:g}"
          + (f" --eval-interval {arguments.eval_interval}" if arguments.eval_interval else "") + "".join(f" {e}" for e in extra))
    print(f"steps: {trains[-1]['step']}, median tokens/s: {sorted(r['tokens_per_second'] for r in trains)[len(trains) // 2]:,}")
    print("| training seconds | validation loss (nats/char) | bits/char |")
    print("|---|---|---|")
    for limit in (float(value) for value in arguments.at.split(",")):
        within = [record for record in evals if record["train_seconds"] <= limit]
        if within and limit <= arguments.seconds:
            best = min(within, key=lambda record: record["val_loss"])
            print(f"| {limit:g} | {best['val_loss']:.4f} | {best['bpc']:.4f} |")
    print(f"| end ({evals[-1]['train_seconds']:.0f}) | {evals[-1]['val_loss']:.4f} | {evals[-1]['bpc']:.4f} |")
    if reached:
        previous = [record for record in evals if record["step"] < reached["step"]]
        lower = previous[-1]["train_seconds"] if previous else 0.0
        print(f"reached val loss {arguments.target} at {reached['train_seconds']:.1f} s of training "
              f"(step {reached['step']}; the previous validation, at {lower:.1f} s, had not)")
    else:
        print(f"did not reach val loss {arguments.target} within {arguments.seconds:g} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
