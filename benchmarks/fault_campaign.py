"""Fault campaign: training runs killed with SIGKILL at random instants, each resumed to the end.

Every resume must succeed and every final model must be bit-identical to the uninterrupted run's.
Kills are drawn uniformly over each run's life after its first checkpoint is committed; on every
other run the save is slowed at each of its stages (``SEQLAB_CHECKPOINT_PAUSE``) so that many kills
land inside a checkpoint write, and the stage each kill landed after is read from the save's trace
(``SEQLAB_CHECKPOINT_TRACE``). Two tiny configurations alternate: random windows, and contiguous
streams with the state carried between batches (both with dropout, so the RNG must resume too).

    python benchmarks/fault_campaign.py --runs 20 --threads 1

Not part of ``make test``: it takes a few minutes.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import torch
from safetensors.torch import load_file

from seqlab.train.checkpoint import PAUSE_VARIABLE, TRACE_VARIABLE

BATCHINGS = ("random", "stream")
COMPLETE = "retired .incoming"  # the last stage of a save


def corpus(path: Path) -> None:
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "it", "was", "good", "\n"]
    rng = random.Random(0)
    path.write_text(" ".join(rng.choice(words) for _ in range(6000)), encoding="utf-8")


def train_command(data: Path, out: Path, arguments: argparse.Namespace, batching: str) -> list[str]:
    return [sys.executable, "-m", "seqlab.cli", "train", "--data", str(data), "--out", str(out),
            "--max-steps", str(arguments.steps), "--eval-interval", str(arguments.eval_interval),
            "--hidden-size", "32", "--embedding-size", "16", "--num-layers", "2", "--dropout", "0.1",
            "--block-size", "32", "--batch-size", "8", "--batching", batching, "--warmup-steps", "5",
            "--threads", str(arguments.threads), "--quiet"]


def resume_command(out: Path, arguments: argparse.Namespace) -> list[str]:
    return [sys.executable, "-m", "seqlab.cli", "train", "--out", str(out), "--resume", "--threads",
            str(arguments.threads)]


def stages(trace: Path, process_id: int) -> list[str]:
    if not trace.exists():
        return []
    lines = [line.split(" ", 2) for line in trace.read_text(encoding="utf-8").splitlines()]
    return [stage for _, writer, stage in lines if writer == str(process_id)]


def same_model(first: Path, second: Path) -> bool:
    expected, found = load_file(str(first / "model.safetensors")), load_file(str(second / "model.safetensors"))
    return expected.keys() == found.keys() and all(torch.equal(expected[name], found[name]) for name in expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--steps", type=int, default=60, help="each run's --max-steps")
    parser.add_argument("--eval-interval", type=int, default=5, help="steps between checkpoints")
    parser.add_argument("--pause", type=float, default=0.02, help="seconds slept at each save stage on odd runs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/fault_campaign")
    arguments = parser.parse_args()
    root = Path(arguments.out)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    data = root / "text.txt"
    corpus(data)
    started = time.perf_counter()
    references: dict[str, Path] = {}
    spans: dict[tuple[str, bool], float] = {}  # (batching, slowed): seconds from the first commit to the end
    for batching in BATCHINGS:
        references[batching] = root / f"reference-{batching}"
        trace = root / f"reference-{batching}.trace"
        subprocess.run(train_command(data, references[batching], arguments, batching), check=True,
                       env={**os.environ, TRACE_VARIABLE: str(trace)})
        lines = trace.read_text().splitlines()
        first = next(index for index, line in enumerate(lines) if line.endswith(" committed"))
        spans[batching, False] = float(lines[-1].split()[0]) - float(lines[first].split()[0])
        spans[batching, True] = spans[batching, False] + (len(lines) - first) * arguments.pause

    rng = random.Random(arguments.seed)
    tally: Counter[str] = Counter()
    landings: Counter[str] = Counter()
    failures: list[str] = []
    for run in range(arguments.runs):
        batching = BATCHINGS[run % 2]
        paused = run % 4 >= 2  # pauses on half the runs of each configuration
        out, trace = root / f"run-{run:02d}", root / f"run-{run:02d}.trace"
        environment = {**os.environ, TRACE_VARIABLE: str(trace)}
        if paused:
            environment[PAUSE_VARIABLE] = str(arguments.pause)
        process = subprocess.Popen(train_command(data, out, arguments, batching), env=environment)
        while "committed" not in stages(trace, process.pid) and process.poll() is None:
            time.sleep(0.005)
        delay = rng.uniform(0.0, spans[batching, paused])  # any instant of the rest of the run
        deadline = time.monotonic() + delay
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.001)
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.wait()
            reached = stages(trace, process.pid)
            last = reached[-1] if reached else "none"
            where = "in training" if last == COMPLETE else f"in a save, after '{last}'"
            tally["killed"] += 1
            tally["killed inside a save" if last != COMPLETE else "killed while training"] += 1
            landings[where] += 1
        else:
            where = "finished before the kill"
            tally["finished before the kill"] += 1
        resumed = subprocess.run(resume_command(out, arguments), capture_output=True, text=True)
        identical = resumed.returncode == 0 and same_model(references[batching], out)
        tally["resumed"] += resumed.returncode == 0
        tally["bit-identical"] += identical
        if not identical:
            failures.append(f"run {run}: {where}; resume exit {resumed.returncode}: {resumed.stderr.strip()[-300:]}")
        print(f"run {run:2d} ({batching}{', slowed saves' if paused else ''}): killed {where}; "
              f"resume {'ok' if resumed.returncode == 0 else 'FAILED'}; "
              f"{'bit-identical' if identical else 'DIFFERENT'}", flush=True)

    print(f"\n{arguments.runs} runs, {arguments.steps} steps each, a checkpoint every {arguments.eval_interval} steps "
          f"({time.perf_counter() - started:.0f} s in all)")
    print(f"killed: {tally['killed']} ({tally['killed inside a save']} inside a checkpoint write, "
          f"{tally['killed while training']} while training); finished before the kill: "
          f"{tally['finished before the kill']}")
    for where, count in sorted(landings.items()):
        print(f"  {count:3d}  {where}")
    print(f"resumed to the end: {tally['resumed']}/{arguments.runs}; final model bit-identical to the "
          f"uninterrupted run: {tally['bit-identical']}/{arguments.runs}")
    for failure in failures:
        print("FAILED", failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
