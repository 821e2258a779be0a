"""Music: train the music task for a few minutes, generate tunes, report the share music21 parses and how far
conditioned tunes follow the asked key and meter, in their header and in their notes, against unconditioned tunes.

    python benchmarks/bench_music.py --seconds 300 --tunes 100

Trains the ``music`` preset (a character LSTM over the ABC tunes shipped with
music21, each tune written with M:, L:, K: before its title, conditioned on
key and meter through its initial state), then generates ``--tunes`` tunes with
no condition and ``--tunes`` more spread over the common key/meter pairs of
the training tunes, at temperature 0.8. Each tune is parsed by music21 once:
its header K:/M: against the ask, music21's key analysis of its notes against
the asked key (exact; or same tonic or relative key), and its inner bars'
lengths against the asked meter. The unconditioned tunes, scored against the
same asks, are the baseline: what the ask gets by chance. Last, validation
loss with the true conditions, with them zeroed, and shuffled among tunes.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

import torch

from common import machine
from seqlab.cli import main as seqlab_main
from seqlab.data.abc import read_tunes, tune_conditions
from seqlab.music import MusicReport, check_tune, generate_tunes
from seqlab.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ("parse with music21", "header K as asked", "header M as asked", "notes in asked key",
           "notes in asked key or relative", "inner bars of asked meter")


def cells(report: MusicReport) -> list[float]:
    """The table's shares for one report: parse, header K, header M, key exact, key related, bars."""
    header, body = report.agreement(), report.body()
    return [report.parse_share, header["K"], header["M"], body["key exact"], body["key related"], body["bars"]]


def pooled(reports: list[MusicReport]) -> list[float]:
    """Shares over several reports, each weighted by its tunes (bars: by its parsed tunes; close enough)."""
    total = sum(len(report.tunes) for report in reports)
    return [sum(cells(report)[column] * len(report.tunes) for report in reports) / total for column in range(len(COLUMNS))]


def validation_losses(checkpoint, *, seed: int = 0) -> dict[str, float]:
    """Validation loss (nats/char) over the task's whole validation split with the true, zeroed and shuffled conditions."""
    task = checkpoint.task
    task.load_data()
    tunes = task.val_tunes
    rows = list(range(len(tunes.sequences)))
    true_conditions = tunes.conditions
    losses = {}
    generator = torch.Generator().manual_seed(seed)
    for name, conditions in (("true", true_conditions), ("zeroed", torch.zeros_like(true_conditions)),
                             ("shuffled", true_conditions[torch.randperm(len(rows), generator=generator)])):
        tunes.conditions = conditions
        sums = task._sums(checkpoint.model, tunes, rows)
        losses[name] = float(sums[0] / sums[1])
    tunes.conditions = true_conditions
    return losses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="music")
    parser.add_argument("--data", default="builtin:music21")
    parser.add_argument("--seconds", type=float, default=300.0, help="training-time budget")
    parser.add_argument("--tunes", type=int, default=100, help="tunes generated without and with a condition")
    parser.add_argument("--conditions", type=int, default=5, help="the most common key/meter pairs to ask for")
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--out", default=None)
    parser.add_argument("--skip-training", action="store_true", help="reuse the checkpoint in --out")
    parser.add_argument("--write-header", action="store_true",
                        help="write the asked M:/K: for the conditioned tunes (default: the model writes them)")
    arguments, extra = parser.parse_known_args()
    torch.set_num_threads(1)
    out = Path(arguments.out or ROOT / "runs" / "bench-music")
    if not arguments.skip_training:
        code = seqlab_main(["train", "--config", arguments.preset, "--data", arguments.data, "--out", str(out),
                            "--overwrite", "--max-seconds", str(arguments.seconds), "--threads", "1", "--quiet", *extra])
        if code:
            return code
    checkpoint = load_checkpoint(out / "best")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = [record for record in records if record["kind"] == "eval"][-1]
    pairs = Counter((conditions["K"], conditions["M"]) for conditions in map(tune_conditions, read_tunes(arguments.data))
                    if conditions["K"] and conditions["M"])
    asked = [{"K": key, "M": meter} for (key, meter), _ in pairs.most_common(arguments.conditions)]
    started = time.perf_counter()
    free = generate_tunes(checkpoint, arguments.tunes, temperature=arguments.temperature, seed=0)
    rows, baselines = [], []
    for condition in asked:
        count = max(1, arguments.tunes // len(asked))
        text = f"K:{condition['K']} M:{condition['M']}"
        tunes = generate_tunes(checkpoint, count, condition=text, temperature=arguments.temperature, seed=1000,
                               write_header=arguments.write_header)
        rows.append((text, MusicReport(tunes, [check_tune(tune, condition) for tune in tunes], condition)))
        baselines.append(MusicReport(free, [check_tune(tune, condition) for tune in free], condition))
    generation_seconds = time.perf_counter() - started
    losses = validation_losses(checkpoint)
    model = checkpoint.config.model
    print(f"music: {model.backbone} {model.hidden_size} (conditioning {checkpoint.model.conditioning}), trained "
          f"{last['train_seconds']:.0f} s ({last['step']} steps) on {arguments.data}: val_loss {last['val_loss']:.4f}, "
          f"bpc {last['bpc']:.4f}; generation and checks {generation_seconds:.0f} s")
    print(f"machine: {machine()}\n")
    print(f"| asked | tunes | {' | '.join(COLUMNS)} |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for text, report in rows:
        print(f"| {text} | {len(report.tunes)} | " + " | ".join(f"{value:.0%}" for value in cells(report)) + " |")
    conditioned = [report for _, report in rows]
    print(f"| **all conditioned** | {sum(len(report.tunes) for report in conditioned)} | "
          + " | ".join(f"**{value:.0%}**" for value in pooled(conditioned)) + " |")
    print(f"| unconditioned, scored against the same asks (baseline) | {len(free)} | "
          + " | ".join(f"{value:.0%}" for value in pooled(baselines)) + " |")
    print(f"\nvalidation loss, {len(checkpoint.task.val_tunes.sequences)} tunes (nats/char): "
          + ", ".join(f"{name} conditions {value:.4f}" for name, value in losses.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
