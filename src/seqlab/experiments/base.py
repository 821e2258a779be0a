"""The experiment registry and the files every experiment writes.

An experiment is two functions. ``run(settings, out_dir) -> ExperimentResult``
trains and measures what its claim needs, saves its figures (PNG) into
``out_dir`` and returns its table; ``verdict(rows, settings) -> Finding`` turns
that table, and nothing else, into the sentences and the yes / no of the
verdict, with the thresholds the experiment names. So every word of a verdict
is computed from the run's numbers, and a test can hand ``verdict`` numbers
that contradict the claim without training anything. ``run_experiment`` adds
the bookkeeping: ``result.json`` (everything, machine and time included) and
``table.md`` (the markdown table and the verdict), which ``seqlab report``
gathers into one HTML page.

Presets: ``smoke`` runs in seconds and only proves the wiring (its numbers mean
nothing); ``quick`` runs in at most 5 minutes on 2 CPU cores, at a scale where
the claim is known to hold; ``full`` (at most 45 minutes) is the closer-to-the-
paper version. Each experiment's settings for a preset may declare
``memory_gib``, the peak memory it needs, which is checked before anything runs.
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

PRESETS = ("smoke", "quick", "full")
DEVICES = ("cpu", "cuda")
RESULT_FILE = "result.json"
TABLE_FILE = "table.md"


@dataclass
class ExperimentResult:
    """What one experiment measured (its verdict is computed from ``rows`` by the experiment's ``verdict``).

    rows: the table, one dict per row (same keys in every row, in column order).
    figures: PNG file names inside the output directory.
    extra: any further JSON-able numbers (curves, per-step values) for those who want them.
    """

    rows: list[dict[str, Any]]
    figures: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finding:
    """A verdict: its sentences, and whether the claim reproduced (None: not a yes-or-no claim, or inconclusive)."""

    text: str
    reproduced: bool | None


Settings = dict[str, Any]  # one preset's settings, plus "preset", "device" and "data" (a path, or "": the builtin)
Run = Callable[[Settings, Path], ExperimentResult]
Verdict = Callable[[list[dict[str, Any]], Settings], Finding]


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    claim: str  # the classic claim under test, with its source
    run: Run
    verdict: Verdict
    settings: dict[str, Settings]  # by preset
    devices: tuple[str, ...] = DEVICES  # where it can run
    data: str = ""  # what ``--data`` may give it, in words; "" if it reads only its own builtin data


EXPERIMENTS: dict[str, Experiment] = {}


def register_experiment(name: str, *, title: str, claim: str, settings: dict[str, Settings], verdict: Verdict,
                        devices: tuple[str, ...] = DEVICES, data: str = "") -> Callable[[Run], Run]:
    """Register ``run`` under ``name``, with its ``verdict`` and its ``settings`` for every preset in PRESETS."""
    missing = [preset for preset in PRESETS if preset not in settings]
    if missing:
        raise AssertionError(f"experiment {name!r} has no settings for preset {', '.join(missing)}")

    def register(run: Run) -> Run:
        if name in EXPERIMENTS:
            raise AssertionError(f"experiment {name!r} registered twice")
        EXPERIMENTS[name] = Experiment(name=name, title=title, claim=claim, run=run, verdict=verdict,
                                       settings=settings, devices=devices, data=data)
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


def available_memory_gib() -> float:
    """Memory the system can give a new process without swapping (Linux MemAvailable; inf where unknown)."""
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2 ** 20
    return math.inf


def check_experiment(name: str, preset: str, device: str = "cpu", data: str | Path | None = None) -> Experiment:
    """The experiment, after refusing (one line each) an unknown name or preset, a device it cannot use, data it
    does not read or that is not there, and a preset whose declared peak memory exceeds what this machine has free."""
    if name not in EXPERIMENTS:
        raise SeqlabError(f"unknown experiment {name!r}; seqlab experiment --list names them "
                          f"({', '.join(EXPERIMENTS)}){did_you_mean(name, EXPERIMENTS)}")
    if preset not in PRESETS:
        raise SeqlabError(f"unknown preset {preset!r}; choose {', '.join(PRESETS)}"
                          f"{did_you_mean(preset, PRESETS, prefix='--preset ')}")
    experiment = EXPERIMENTS[name]
    kind = device.split(":")[0]
    if kind not in experiment.devices:
        raise SeqlabError(f"experiment {name} runs on {' or '.join(experiment.devices)}, not {device!r}; "
                          f"drop --device or give --device {experiment.devices[0]}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise SeqlabError(f"--device {device}: torch sees no CUDA device here; use --device cpu")
    if data is not None:
        if not experiment.data:
            readers = ", ".join(other.name for other in EXPERIMENTS.values() if other.data) or "none"
            raise SeqlabError(f"experiment {name} trains on its own builtin data only; drop --data (experiments "
                              f"that read --data: {readers})")
        if not Path(data).is_file():
            raise SeqlabError(f"--data {data}: no such file; give {experiment.data}")
    needed, free = experiment.settings[preset].get("memory_gib", 0.0), available_memory_gib()
    if needed > free:
        raise SeqlabError(f"experiment {name} --preset {preset} needs about {needed:g} GiB of memory and "
                          f"{free:.1f} GiB is free; free some memory or run --preset quick")
    return experiment


def run_experiment(name: str, *, preset: str = "quick", out_dir: str | Path, device: str = "cpu",
                   data: str | Path | None = None) -> dict[str, Any]:
    """Run one experiment into ``out_dir`` (created), write result.json and table.md, return the record.

    ``data``: a file for an experiment that reads one (``Experiment.data`` says what), instead of its builtin data.

    The verdict is ``experiment.verdict`` of the rows the run returned, so it can say nothing the numbers do not.
    """
    experiment = check_experiment(name, preset, device, data)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise SeqlabError(f"--out {out_dir} is a file; give a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    from .common import experiment_progress  # matplotlib and the trainer load only when an experiment runs

    settings = {**experiment.settings[preset], "preset": preset, "device": device,
                "data": "" if data is None else str(data)}
    started = time.perf_counter()
    with experiment_progress(name, preset):
        result = experiment.run(settings, out_dir)
    finding = experiment.verdict(result.rows, settings)
    record = {"name": experiment.name, "title": experiment.title, "claim": experiment.claim, "preset": preset,
              "device": device, "data": settings["data"], "seconds": round(time.perf_counter() - started, 1),
              "machine": machine(), "verdict": finding.text, "reproduced": finding.reproduced, **asdict(result)}
    (out_dir / RESULT_FILE).write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    table = (f"## {experiment.title} (`{name}`, preset {preset})\n\n**Claim.** {experiment.claim}\n\n"
             f"{markdown_table(result.rows)}\n**Found.** {finding.text}\n\n"
             f"{record['seconds']} s on {record['machine']}.\n")
    (out_dir / TABLE_FILE).write_text(table, encoding="utf-8")
    return record
