"""Music: train the music task for a few minutes, generate tunes, report the share music21 parses and how
often conditioned tunes carry the asked key and meter in their header.

    python benchmarks/bench_music.py --seconds 300 --tunes 100

Trains the ``music`` preset (a character LSTM over the ABC tunes shipped with
music21, conditioned on key and meter through its initial state), then
generates ``--tunes`` tunes with no condition and ``--tunes`` more spread over
the common key/meter pairs of the training tunes, at temperature 0.8.
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
from seqlab.music import MusicReport, generate_tunes, tune_problem
from seqlab.train.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


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
    asked = [f"K:{key} M:{meter}" for (key, meter), _ in pairs.most_common(arguments.conditions)]
    rows = []
    started = time.perf_counter()
    for condition in ["", *asked]:
        count = arguments.tunes if not condition else max(1, arguments.tunes // len(asked))
        tunes = generate_tunes(checkpoint, count, condition=condition, temperature=arguments.temperature, seed=0)
        rows.append((condition, MusicReport(tunes, [tune_problem(tune) for tune in tunes],
                                            checkpoint.task.parse_condition(condition) if condition else {})))
    generation_seconds = time.perf_counter() - started
    conditioned = [report for condition, report in rows if condition]
    print(f"music: {checkpoint.config.model.backbone} {checkpoint.config.model.hidden_size}, trained "
          f"{last['train_seconds']:.0f} s ({last['step']} steps) on {arguments.data}: val_loss {last['val_loss']:.4f}, "
          f"bpc {last['bpc']:.4f}; generation and checks {generation_seconds:.0f} s")
    print(f"machine: {machine()}\n")
    print("| condition | tunes | parse with music21 | header key as asked | header meter as asked |")
    print("|---|---|---|---|---|")
    for condition, report in rows:
        agreement = report.agreement()
        key = f"{agreement['K']:.0%}" if "K" in agreement else "-"
        meter = f"{agreement['M']:.0%}" if "M" in agreement else "-"
        print(f"| {condition or '(none)'} | {len(report.tunes)} | {report.parse_share:.0%} | {key} | {meter} |")
    total = sum(len(report.tunes) for report in conditioned)
    share = sum(report.parse_share * len(report.tunes) for report in conditioned) / total
    key = sum(report.agreement()["K"] * len(report.tunes) for report in conditioned) / total
    meter = sum(report.agreement()["M"] * len(report.tunes) for report in conditioned) / total
    print(f"| all conditioned | {total} | {share:.0%} | {key:.0%} | {meter:.0%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
