"""Training-step speed of our recurrent backbones next to torch's nn.LSTM / nn.GRU.

One training step is forward + backward of one layer on a (B, T, H) batch with
input size H. Each row times a torch reference and one of our backbones
alternately, so load from other processes hits both alike, and reports the
median of the repeats. ratio = reference time / our time: above 1 we are faster.

    python benchmarks/bench_recurrent.py            # full run
    python benchmarks/bench_recurrent.py --quick    # fewer repeats
    python benchmarks/bench_recurrent.py --markdown # a table for benchmarks/RESULTS.md
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn

from seqlab import build_backbone


@dataclass(frozen=True)
class Case:
    label: str
    reference_label: str
    make_reference: Callable[[int], nn.Module]
    backbone: str
    options: dict[str, Any]


CASES = [
    Case("lstm (fused vanilla)", "nn.LSTM", lambda hidden: nn.LSTM(hidden, hidden, batch_first=True), "lstm", {}),
    Case("lstm vanilla, own cell", "nn.LSTM", lambda hidden: nn.LSTM(hidden, hidden, batch_first=True), "lstm", {"fused": False}),
    Case("lstm peephole", "nn.LSTM", lambda hidden: nn.LSTM(hidden, hidden, batch_first=True), "lstm", {"variant": "peephole"}),
    Case("lstm coupled", "nn.LSTM", lambda hidden: nn.LSTM(hidden, hidden, batch_first=True), "lstm", {"variant": "coupled"}),
    Case("lstm no_forget", "nn.LSTM", lambda hidden: nn.LSTM(hidden, hidden, batch_first=True), "lstm", {"variant": "no_forget"}),
    Case("gru (fused)", "nn.GRU", lambda hidden: nn.GRU(hidden, hidden, batch_first=True), "gru", {}),
    Case("gru, own cell", "nn.GRU", lambda hidden: nn.GRU(hidden, hidden, batch_first=True), "gru", {"fused": False}),
]


def training_step(model: nn.Module, x: Tensor, output_gradient: Tensor) -> None:
    for parameter in model.parameters():
        parameter.grad = None
    x.grad = None
    y, _ = model(x)
    y.backward(output_gradient)


def time_pair(reference: nn.Module, ours: nn.Module, x: Tensor, warmup: int, repeats: int) -> tuple[float, float]:
    """Median seconds per training step of (reference, ours), timed alternately."""
    output_gradient = torch.randn(x.shape[0], x.shape[1], ours.output_size)
    for _ in range(warmup):
        training_step(reference, x, output_gradient)
        training_step(ours, x, output_gradient)
    reference_times, our_times = [], []
    for _ in range(repeats):
        for model, times in ((reference, reference_times), (ours, our_times)):
            start = time.perf_counter()
            training_step(model, x, output_gradient)
            times.append(time.perf_counter() - start)
    return statistics.median(reference_times), statistics.median(our_times)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_summary() -> str:
    return f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__}, {torch.get_num_threads()} threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer warmup steps and repeats")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table instead of a rich one")
    parser.add_argument("--hidden-sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--time-steps", type=int, default=128)
    parser.add_argument("--only", nargs="+", help="run only rows whose label contains one of these words")
    arguments = parser.parse_args()
    warmup, repeats = (1, 5) if arguments.quick else (3, 15)
    cases = [case for case in CASES if not arguments.only or any(word in case.label for word in arguments.only)]

    torch.manual_seed(0)
    rows = []
    for hidden in arguments.hidden_sizes:
        x = torch.randn(arguments.batch, arguments.time_steps, hidden, requires_grad=True)
        for case in cases:
            reference = case.make_reference(hidden)
            ours = build_backbone(case.backbone, input_size=hidden, hidden_size=hidden, **case.options)
            reference_seconds, our_seconds = time_pair(reference, ours, x, warmup, repeats)
            rows.append((hidden, case.label, case.reference_label, reference_seconds * 1e3, our_seconds * 1e3, reference_seconds / our_seconds))

    title = f"forward + backward, B={arguments.batch}, T={arguments.time_steps}, input = H; median of {repeats}"
    headers = ("H", "ours", "reference", "reference ms", "ours ms", "ratio")
    if arguments.markdown:
        print(f"{title}; ratio = reference ms / ours ms (above 1: ours is faster)\n\nMachine: {machine_summary()}\n")
        print("| " + " | ".join(headers) + " |")
        print("|" + "|".join("---:" if index in (0, 3, 4, 5) else "---" for index in range(len(headers))) + "|")
        for hidden, label, reference_label, reference_ms, our_ms, ratio in rows:
            print(f"| {hidden} | {label} | {reference_label} | {reference_ms:.1f} | {our_ms:.1f} | {ratio:.2f} |")
        return
    table = Table(title=title, caption=f"ratio = reference ms / ours ms (above 1: ours is faster)\n{machine_summary()}")
    for index, header in enumerate(headers):
        table.add_column(header, justify="right" if index in (0, 3, 4, 5) else "left")
    for hidden, label, reference_label, reference_ms, our_ms, ratio in rows:
        style = "green" if ratio >= 1.0 else ("yellow" if ratio >= 0.7 else "red")
        table.add_row(str(hidden), label, reference_label, f"{reference_ms:.1f}", f"{our_ms:.1f}", f"[{style}]{ratio:.2f}[/{style}]")
    Console().print(table)


if __name__ == "__main__":
    main()
