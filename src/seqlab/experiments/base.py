"""The experiment registry and the files every experiment writes.

An experiment is a function ``run(preset, out_dir) -> ExperimentResult`` that
trains and measures what its claim needs, saves its figures (PNG) into
``out_dir`` and returns its table and a verdict. ``run_experiment`` adds the
bookkeeping: ``result.json`` (everything, machine and time included) and
``table.md`` (the markdown table and the verdict), which ``seqlab report``
gathers into one HTML page.

Presets: ``quick`` runs in a few minutes on 2 CPU cores (small models, short
training, few lengths); ``full`` is the closer-to-the-paper version.
"""
from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import SeqlabError, did_you_mean

PRESETS = ("quick", "full")
RESULT_FILE = "result.json"
TABLE_FILE = "table.md"


@dataclass
class ExperimentResult:
    """What one experiment found.

    rows: the table, one dict per row (same keys in every row, in column order).
    figures: PNG file names inside the output directory.
    verdict: in words, whether the claim reproduced, with the numbers that say so (and why not, if not).
    reproduced: True / False, or None when the claim is not a yes-or-no one.
    extra: any further JSON-able numbers (curves, per-step values) for those who want them.
    """

    rows: list[dict[str, Any]]
    verdict: str
    reproduced: bool | None = None
    figures: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    claim: str  # the classic claim under test, with its source
    run: Callable[[str, Path], ExperimentResult]


EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(name: str, *, title: str, claim: str) -> Callable[[Callable[[str, Path], ExperimentResult]],
                                                                          Callable[[str, Path], ExperimentResult]]:
    def register(run: Callable[[str, Path], ExperimentResult]) -> Callable[[str, Path], ExperimentResult]:
        if name in EXPERIMENTS:
            raise AssertionError(f"experiment {name!r} registered twice")
        EXPERIMENTS[name] = Experiment(name=name, title=title, claim=claim, run=run)
        return run

    return register


def experiment_names() -> list[str]:
    return list(EXPERIMENTS)


def _format(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return str(value)
        return f"{value:.3g}" if abs(value) < 1e-3 or abs(value) >= 1e5 else f"{value:.4g}"
    return str(value)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "(no rows)\n"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_format(row.get(column, "")) for column in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def machine() -> str:
    """CPU model, torch threads and versions: the line every measurement is reported with."""
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{model}, {torch.get_num_threads()} torch threads, torch {torch.__version__}, "
            f"Python {platform.python_version()}")


def check_experiment(name: str, preset: str) -> Experiment:
    if name not in EXPERIMENTS:
        raise SeqlabError(f"unknown experiment {name!r}; seqlab experiment --list names them "
                          f"({', '.join(EXPERIMENTS)}){did_you_mean(name, EXPERIMENTS)}")
    if preset not in PRESETS:
        raise SeqlabError(f"unknown preset {preset!r}; choose {' or '.join(PRESETS)}"
                          f"{did_you_mean(preset, PRESETS, prefix='--preset ')}")
    return EXPERIMENTS[name]


def run_experiment(name: str, *, preset: str = "quick", out_dir: str | Path) -> dict[str, Any]:
    """Run one experiment into ``out_dir`` (created), write result.json and table.md, return the record."""
    experiment = check_experiment(name, preset)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SeqlabError(f"--out {out_dir} is a file; give a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    from .common import experiment_progress  # matplotlib and the trainer load only when an experiment runs

    started = time.perf_counter()
    with experiment_progress(name, preset):
        result = experiment.run(preset, out_dir)
    record = {"name": experiment.name, "title": experiment.title, "claim": experiment.claim, "preset": preset,
              "seconds": round(time.perf_counter() - started, 1), "machine": machine(), **asdict(result)}
    (out_dir / RESULT_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    table = (f"## {experiment.title} (`{name}`, preset {preset})\n\n**Claim.** {experiment.claim}\n\n"
             f"{markdown_table(result.rows)}\n**Found.** {result.verdict}\n\n"
             f"{record['seconds']} s on {record['machine']}.\n")
    (out_dir / TABLE_FILE).write_text(table, encoding="utf-8")
    return record
