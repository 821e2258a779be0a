"""Training-step speed of minGRU / minLSTM (parallel scan) next to torch's nn.GRU.

One training step is forward + backward of one layer on a (B, T, D) batch
with D = H and the input requiring a gradient. In every repeat each model runs
once, in turn, so load from other processes hits all of them alike; the table
reports the median over repeats. ratio = nn.GRU time / model time: above 1 the
model is faster than nn.GRU.

Rows: nn.GRU (torch's CPU kernel); our ``mingru`` and ``minlstm`` backbones
(chunked scan with a hand-written reverse-scan backward); and, for reference,
minGRU with the paper's log-space scan (cumulative sums and ``logcumsumexp``,
plain autograd), defined below.

    python benchmarks/bench_scan.py                       # T = 128, 512, 1024, 2048
    python benchmarks/bench_scan.py --time-steps 1024     # the headline size only
    python benchmarks/bench_scan.py --markdown            # a markdown table
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Callable

import torch
from rich.console import Console
from rich.table import Table
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab import build_backbone


class LogSpaceMinGRU(nn.Module):
    r"""minGRU by the paper's log-space scan: h_t = exp(A_t + logcumsumexp(log b - A)_t), A_t = sum_{s<=t} log a_s.

    With a = 1 - z = sigmoid(-k), b = z g(c) > 0, log a = -softplus(k), log z = -softplus(-k),
    log g(c) = log(c + 1/2) for c >= 0, -softplus(-c) below. Starts from h_0 = 0.
    """

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.projection = nn.Linear(input_size, 2 * hidden_size)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        gate, candidate = self.projection(x).chunk(2, dim=-1)  # (B, T, H) each
        log_candidate = torch.where(candidate >= 0, (F.relu(candidate) + 0.5).log(), -F.softplus(-candidate))
        log_a = -F.softplus(gate)
        log_b = -F.softplus(-gate) + log_candidate
        prefix = log_a.cumsum(dim=1)  # (B, T, H)
        h = torch.exp(prefix + torch.logcumsumexp(log_b - prefix, dim=1))
        return h, h[:, -1]


def make_models(hidden: int) -> dict[str, nn.Module]:
    return {
        "nn.GRU": nn.GRU(hidden, hidden, batch_first=True),
        "mingru": build_backbone("mingru", input_size=hidden, hidden_size=hidden),
        "minlstm": build_backbone("minlstm", input_size=hidden, hidden_size=hidden),
        "minGRU, log-space scan": LogSpaceMinGRU(hidden, hidden),
    }


def training_step(model: nn.Module, x: Tensor, output_gradient: Tensor) -> None:
    for parameter in model.parameters():
        parameter.grad = None
    x.grad = None
    y, _ = model(x)
    y.backward(output_gradient)


def median_times(models: dict[str, nn.Module], x: Tensor, *, warmup: int, repeats: int) -> dict[str, float]:
    """Median seconds per training step of each model, the models taking turns."""
    output_gradient = torch.randn(x.shape)
    steps: dict[str, Callable[[], None]] = {
        name: (lambda model=model: training_step(model, x, output_gradient)) for name, model in models.items()
    }
    for _ in range(warmup):
        for step in steps.values():
            step()
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


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
    load = ", load average {:.1f} {:.1f} {:.1f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    return f"{cpu_model()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch {torch.__version__}{load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-steps", type=int, nargs="+", default=[128, 512, 1024, 2048])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=256, help="D = H")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--markdown", action="store_true", help="print a markdown table instead of a rich one")
    arguments = parser.parse_args()

    torch.manual_seed(0)
    models = make_models(arguments.hidden)
    machine_before = machine_summary()
    rows = []
    for time_steps in arguments.time_steps:
        x = torch.randn(arguments.batch, time_steps, arguments.hidden, requires_grad=True)
        seconds = median_times(models, x, warmup=arguments.warmup, repeats=arguments.repeats)
        reference = seconds["nn.GRU"]
        rows.extend((time_steps, name, value * 1e3, reference / value) for name, value in seconds.items())

    title = (f"forward + backward of one layer, B={arguments.batch}, D=H={arguments.hidden}, "
             f"median of {arguments.repeats} after {arguments.warmup} warmup; "
             "ratio = nn.GRU ms / model ms (above 1: faster than nn.GRU)")
    machine = f"Machine before: {machine_before}\nMachine after:  {machine_summary()}"
    headers = ("T", "model", "ms", "ratio")
    if arguments.markdown:
        print(f"{title}\n\n{machine}\n".replace("\n", "  \n"))
        print("| " + " | ".join(headers) + " |")
        print("|---:|---|---:|---:|")
        for time_steps, name, milliseconds, ratio in rows:
            print(f"| {time_steps} | {name} | {milliseconds:.1f} | {ratio:.2f} |")
        return
    console = Console()
    console.print(title)
    console.print(machine)
    table = Table()
    for index, header in enumerate(headers):
        table.add_column(header, justify="left" if index == 1 else "right")
    for time_steps, name, milliseconds, ratio in rows:
        table.add_row(str(time_steps), name, f"{milliseconds:.1f}", f"{ratio:.2f}")
    console.print(table)


if __name__ == "__main__":
    main()
