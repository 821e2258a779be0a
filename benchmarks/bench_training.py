"""Training throughput against sequence length, for every backbone at a matched parameter count.

Tokens per second of one training step (forward + backward of a ~1M-parameter
character language model, no optimizer) at T = 128, 512 and 2048, with
B*T = 16,384 tokens per step. Sequential recurrences pay T steps in a Python
or ATen loop; the parallel scan, convolutions and attention do not.

    python benchmarks/bench_training.py
    python benchmarks/bench_training.py --markdown
"""
from __future__ import annotations

import argparse
import statistics
import sys

import torch
from rich.console import Console
from rich.table import Table

from common import VOCAB, available, machine, matched_language_model, parameter_count, training_step_times

BACKBONES = ["lstm", "gru", "mingru", "minlstm", "tcn", "linear_attention", "transformer"]
TOKENS_PER_STEP = 16_384


def tokens_per_second(name: str, time_steps: int, repeats: int) -> tuple[int, float]:
    torch.manual_seed(0)
    options = {"context_length": time_steps} if name == "transformer" else {}
    model = matched_language_model(name, **options).train()
    batch = TOKENS_PER_STEP // time_steps
    tokens = torch.randint(VOCAB, (batch, time_steps + 1))
    times = training_step_times(model, tokens, repeats=repeats)
    return parameter_count(model), batch * time_steps / statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lengths", default="128,512,2048")
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    arguments = parser.parse_args()
    lengths = [int(value) for value in arguments.lengths.split(",")]
    rows = []
    for name in available(arguments.backbones.split(",")):
        results = [tokens_per_second(name, length, arguments.repeats) for length in lengths]
        rows.append([name, f"{results[0][0]:,}", *(f"{rate:,.0f}" for _, rate in results)])
    title = f"training tokens/s (forward + backward, {TOKENS_PER_STEP:,} tokens a step); {machine()}"
    header = ["backbone", "parameters", *(f"T={length}" for length in lengths)]
    if arguments.markdown:
        print(f"{title}\n\n| {' | '.join(header)} |\n|{'---|' * len(header)}")
        for row in rows:
            print(f"| {' | '.join(row)} |")
        return 0
    table = Table(title=title)
    for column in header:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
