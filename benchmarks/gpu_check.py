"""One script for a machine with a GPU: is seqlab right there, and how fast is it?

Sections (each prints PASS / FAIL lines; a failing section is reported and the next one runs):

1. environment: torch, the device, bfloat16, Triton, and which of seqlab's requirements this Python lacks.
2. backbones: every registered backbone's forward (logits, loss, gradients) and step (streaming) on the
   device against the same model on the CPU, in float32 (TF32 off), to float32 tolerance.
3. tasks: every task trains a few steps on the device in fp32, bf16 and (CUDA) fp16, with --accumulate 2;
   the losses must be finite.
4. verbs: eval, sample and diagnose (attention maps) of a checkpoint with --device.
5. transformer, lstm: bf16 + compiled training of a GPU-sized Transformer (6 x 384, context 256) and LSTM
   (2 x 1024) on tinyshakespeare for --seconds each: tokens/s and validation loss. If compilation fails
   the run is repeated without it (and says so).
6. generation: cached generation tokens/s (batch 1) of both trained models.

Everything runs within --budget seconds: the long sections shrink to what is left.

    python benchmarks/gpu_check.py --device cuda --out DIR        # the real thing (~7 minutes)
    python benchmarks/gpu_check.py --device cpu --smoke           # every section in seconds, on the CPU

tinyshakespeare is read from ../shared/data/tinyshakespeare.txt next to the repository (or shared/data/
inside it), or --data.
The summary goes to DIR/gpu_check.json with --out.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

REPOSITORY = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPOSITORY / "src"))

import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

# beside the repository (../shared), or inside it (a copy that carries shared/ along)
DATA_PLACES = [root / "shared" / "data" / "tinyshakespeare.txt" for root in (REPOSITORY.parent, REPOSITORY)]
DEFAULT_DATA = next((place for place in DATA_PLACES if place.is_file()), DATA_PLACES[0])
RESULTS: dict[str, Any] = {}


class Clock:
    """The whole script's budget: sections ask how many seconds are left."""

    def __init__(self, budget: float) -> None:
        self.started = time.perf_counter()
        self.budget = budget

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def left(self) -> float:
        return self.budget - self.elapsed()


def say(text: str) -> None:
    print(text, flush=True)


def section(name: str, run: Callable[[], Any]) -> Any:
    """Run one section; report its failure in a few lines and carry on."""
    say(f"\n== {name} ==")
    started = time.perf_counter()
    try:
        result = run()
        RESULTS.setdefault(name, {})["status"] = RESULTS.get(name, {}).get("status", "ok")
        return result
    except Exception as error:  # noqa: BLE001 - a diagnostic script: report and go on to the next section
        say(f"FAIL {name}: {type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}")
        say("".join(traceback.format_exception(error)[-6:]).rstrip())
        RESULTS.setdefault(name, {})["status"] = f"error: {type(error).__name__}: {str(error)[:300]}"
        return None
    finally:
        say(f"({name}: {time.perf_counter() - started:.1f} s)")


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------ 1. environment
def environment(device: torch.device) -> None:
    from seqlab.experiments.base import machine

    info: dict[str, Any] = {"torch": torch.__version__, "machine": machine(), "device": str(device)}
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        info.update(gpu=torch.cuda.get_device_name(device), bf16=torch.cuda.is_bf16_supported(), triton=has_triton(),
                    cuda=torch.version.cuda, memory_gib=round(torch.cuda.get_device_properties(device).total_memory / 2 ** 30))
    info["missing"] = missing_requirements()
    for key, value in info.items():
        say(f"{key}: {value}")
    if info["missing"]:
        say(f"MISSING: {', '.join(info['missing'])}: what needs them fails below; carry them as wheels and rerun")
    RESULTS["environment"] = info


def missing_requirements() -> list[str]:
    """The distributions pyproject.toml's dependencies name that this Python lacks (a lent machine has its own)."""
    import importlib.metadata
    import re
    import tomllib

    project = tomllib.loads((REPOSITORY / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    missing = []
    for requirement in project["dependencies"]:
        name = re.match(r"[A-Za-z0-9._-]+", requirement).group(0)
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


# ------------------------------------------------------------------ 2. backbones
def backbones(device: torch.device, smoke: bool) -> None:
    """forward + backward and step, device against CPU, float32 (TF32 off so the GPU computes in float32)."""
    from seqlab import backbone_names
    from seqlab.models import LanguageModel
    from seqlab.registry import backbone_class, build_backbone

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    # language models read token vectors; a backbone that reads frames (convlstm) is checked by the ball task below
    variants = [(name, {}) for name in backbone_names() if not backbone_class(name).reads_frames]
    variants += [("transformer", {"positional": positional}) for positional in ("learned", "sinusoidal", "alibi")]
    failures = []
    table = {}
    for name, options in variants:
        label = name + "".join(f" {key}={value}" for key, value in options.items())
        try:
            torch.manual_seed(0)
            extra = {"num_heads": 2, "context_length": 64, **options} if name == "transformer" else {}
            model = LanguageModel(65, build_backbone(name, input_size=32, hidden_size=32, num_layers=2, **extra))
            tokens = torch.randint(65, (4, 33))
            differences = {}
            results = {}
            for where in ("cpu", device):
                copy_ = copy.deepcopy(model).to(where).train()
                batch = tokens.to(where)
                logits, _ = copy_(batch[:, :-1])  # (B, T, V)
                loss = F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
                loss.backward()
                copy_.eval()
                with torch.no_grad():
                    state = copy_.init_state(4)
                    stepped = []
                    for position in range(8):
                        step_logits, state = copy_.step(batch[:, position], state)  # (B, V)
                        stepped.append(step_logits)
                results[str(where)] = {
                    "logits": logits.detach().cpu(), "loss": loss.detach().cpu(),
                    "gradients": [parameter.grad.cpu() for parameter in copy_.parameters() if parameter.grad is not None],
                    "steps": torch.stack(stepped, 1).cpu()}
            cpu, other = results["cpu"], results[str(device)]
            differences["logits"] = float((cpu["logits"] - other["logits"]).abs().max())
            differences["loss"] = abs(float(cpu["loss"] - other["loss"]))
            differences["gradients"] = max(float(((a - b).abs() / (a.abs().max() + 1e-12)).max())
                                           for a, b in zip(cpu["gradients"], other["gradients"]))
            differences["steps"] = float((cpu["steps"] - other["steps"]).abs().max())
            differences["steps_vs_forward"] = float((other["steps"] - other["logits"][:, :8]).abs().max())
            ok = (differences["logits"] < 1e-4 and differences["loss"] < 1e-5 and differences["gradients"] < 1e-3
                  and differences["steps"] < 1e-4 and differences["steps_vs_forward"] < 1e-4)
            table[label] = {key: float(f"{value:.2e}") for key, value in differences.items()} | {"ok": ok}
            say(f"{'PASS' if ok else 'FAIL'} {label:34} " + "  ".join(f"{key} {value:.1e}" for key, value in differences.items()))
            if not ok:
                failures.append(label)
        except Exception as error:  # noqa: BLE001 - one backbone's failure must not hide the others'
            failures.append(label)
            table[label] = {"ok": False, "error": f"{type(error).__name__}: {str(error)[:200]}"}
            say(f"FAIL {label}: {type(error).__name__}: {str(error)[:200]}")
    say("tolerances: logits, steps 1e-4 abs; loss 1e-5; gradients 1e-3 of each tensor's largest")
    RESULTS["backbones"] = {"results": table, "status": "ok" if not failures else f"failed: {', '.join(failures)}"}


# ------------------------------------------------------------------ 3. tasks
def write_task_data(root: Path, text: Path) -> dict[str, dict[str, Any]]:
    """A small dataset per task (the music tunes are written out here; the rest are builtin or from the text)."""
    import random

    rng = random.Random(0)
    rows = [" ".join(rng.choice(["good", "bad", "film", "plot"]) for _ in range(rng.randint(2, 9))) + "\t"
            + rng.choice(["yes", "no"]) for _ in range(200)]
    (root / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    tunes = []
    for number in range(24):
        key, meter, bar = ("D", "6/8", 6) if number % 2 else ("G", "3/4", 3)
        body = "|".join("".join(rng.choice("DEFGABc") for _ in range(bar)) for _ in range(4))
        tunes.append(f"X:{number + 1}\nT:Tune {number}\nM:{meter}\nL:1/8\nK:{key}\n{body}|]")
    (root / "tunes.abc").write_text("\n\n".join(tunes) + "\n", encoding="utf-8")
    return {
        "lm": {"data": {"path": str(text), "block_size": 64}},
        "classify": {"task": {"name": "classify", "class_weights": True}, "data": {"path": str(root / "labels.tsv")}},
        "forecast": {"task": {"name": "forecast", "horizon": 4}, "data": {"path": "builtin:sines", "block_size": 32}},
        "seq2seq": {"task": {"name": "seq2seq"}, "data": {"path": "builtin:dates"}, "model": {"backbone": "gru"}},
        "seq2seq-transformer": {"task": {"name": "seq2seq"}, "data": {"path": "builtin:dates"},
                                "model": {"backbone": "transformer", "options": {"num_heads": 2}}},
        "music": {"task": {"name": "music"}, "data": {"path": str(root / "tunes.abc"), "block_size": 80}},
        "synthetic": {"task": {"name": "synthetic"}, "data": {"path": "builtin:addition", "options": {"val_examples": 64}}},
        "ball-convlstm": {"task": {"name": "ball"}, "model": {"backbone": "convlstm"},
                          "data": {"path": "builtin:ball", "options": {"frame_size": 8, "frames": 6, "radius": 1.0,
                                                                       "val_examples": 16}}},
        "lm-transformer-stream": {"data": {"path": str(text), "block_size": 64, "batching": "stream"},
                                  "model": {"backbone": "transformer", "options": {"num_heads": 2, "context_length": 64}}},
    }


def tasks(device: torch.device, text: Path, work: Path, smoke: bool) -> None:
    from seqlab.config import Config
    from seqlab.train.trainer import Trainer

    precisions = ["bf16"] if smoke else ["fp32", "bf16"] + (["fp16"] if device.type == "cuda" else [])
    failures = []
    table = {}
    for name, settings in write_task_data(work, text).items():
        for precision in precisions:
            label = f"{name} {precision}"
            try:
                config = Config()
                config.update(settings)
                config.model.hidden_size, config.model.embedding_size = 32, 16
                train = config.train
                train.batch_size, train.max_steps, train.eval_interval, train.accumulate = 8, 4, 4, 2
                train.eval_max_batches, train.warmup_steps, train.threads = 2, 1, 1
                train.device, train.precision = str(device), precision
                summary = Trainer(config, work / f"task-{name}-{precision}", overwrite=True, quiet=True).fit()
                ok = math.isfinite(summary.loss) and summary.steps == 4
                table[label] = {"loss": round(summary.loss, 4), "ok": ok}
                say(f"{'PASS' if ok else 'FAIL'} {label:30} loss {summary.loss:.4f} after {summary.steps} steps")
            except Exception as error:  # noqa: BLE001 - one task's failure must not hide the others'
                ok = False
                table[label] = {"ok": False, "error": f"{type(error).__name__}: {str(error)[:200]}"}
                say(f"FAIL {label}: {type(error).__name__}: {str(error)[:200]}")
            if not ok:
                failures.append(label)
    RESULTS["tasks"] = {"results": table, "status": "ok" if not failures else f"failed: {', '.join(failures)}"}


# ------------------------------------------------------------------ 4. verbs
def verbs(device: torch.device, text: Path, work: Path) -> None:
    from seqlab.cli import main

    checkpoint = next(work.glob("task-lm-transformer-stream-*"), None)
    if checkpoint is None:
        raise RuntimeError("the tasks section left no transformer checkpoint to read")
    failures = []
    for verb in (["eval", str(checkpoint), "--data", str(text), "--json"],
                 ["sample", str(checkpoint), "--max-tokens", "20", "--seed", "0"],
                 ["diagnose", str(checkpoint), "--data", str(text), "--length", "32", "--what", "gradients,attention",
                  "--out", str(work / "diagnostics")]):
        code = main([*verb, "--device", str(device)])
        say(f"{'PASS' if code == 0 else 'FAIL'} seqlab {verb[0]} --device {device} (exit {code})")
        if code != 0:
            failures.append(verb[0])
    RESULTS["verbs"] = {"status": "ok" if not failures else f"failed: {', '.join(failures)}"}


# ------------------------------------------------------------------ 5. training
def big_config(kind: str, text: Path, device: torch.device, *, seconds: float, smoke: bool, compile_model: bool):
    from seqlab.config import Config

    config = Config()
    config.data.path = str(text)
    model, data, train = config.model, config.data, config.train
    if kind == "transformer":  # nanoGPT's shakespeare-char model
        model.backbone, model.hidden_size, model.num_layers, model.dropout = "transformer", 384, 6, 0.2
        model.options = {"num_heads": 6, "context_length": 256, "positional": "rotary"}
        data.block_size, train.batch_size = 256, 64
        train.learning_rate, train.min_learning_rate, train.warmup_steps, train.weight_decay = 1e-3, 1e-4, 100, 0.1
    else:  # char-rnn's LSTM, wider
        model.backbone, model.hidden_size, model.num_layers, model.dropout, model.embedding_size = "lstm", 1024, 2, 0.2, 128
        data.block_size, data.batching, train.batch_size = 256, "stream", 64
        train.learning_rate, train.min_learning_rate, train.warmup_steps = 2e-3, 1e-4, 50
    if smoke:
        model.hidden_size, model.num_layers = 32, 1
        if kind == "transformer":
            model.options = {"num_heads": 2, "context_length": 32, "positional": "rotary"}
        data.block_size, train.batch_size = 32, 8
    train.max_steps, train.max_seconds = 0, seconds
    train.eval_interval, train.eval_max_batches, train.log_interval = 500, 0 if not smoke else 4, 10
    train.device, train.threads = str(device), 0 if device.type == "cuda" else 1
    train.precision = "bf16" if device.type != "cuda" or torch.cuda.is_bf16_supported() else "fp16"
    train.compile = compile_model
    return config


def training(kind: str, device: torch.device, text: Path, work: Path, clock: Clock, *, seconds: float, smoke: bool,
             compile_model: bool, reserve: float) -> Any:
    """Train for ``seconds`` (less if the budget is short); returns the checkpoint directory."""
    from seqlab.train.trainer import Trainer

    out = work / f"big-{kind}"
    # what to try, in order: a failure (which shows in the first steps) falls back to the next, and says so
    attempts = [(compile_model, None), (False, None), (False, "fp32")][0 if compile_model else 1:]
    for number, (compiled, precision) in enumerate(attempts):
        budget = min(seconds, max(5.0, clock.left() - reserve))
        config = big_config(kind, text, device, seconds=budget, smoke=smoke, compile_model=compiled)
        config.train.precision = precision or config.train.precision
        say(f"{kind}: {config.model.num_layers} x {config.model.hidden_size}, batch {config.train.batch_size} x "
            f"{config.data.block_size}, {config.train.precision}, compile {config.train.compile}, {budget:.0f} s")
        try:
            summary = Trainer(config, out, overwrite=True, quiet=True).fit()
            break
        except Exception as error:  # noqa: BLE001 - whatever broke this run, measure the next setting
            if number == len(attempts) - 1:
                raise
            cause = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            say(f"FAIL {kind} ({config.train.precision}, compile {compiled}): {type(error).__name__}: {cause[:300]}; "
                "trying the next setting")
            RESULTS.setdefault(kind, {}).setdefault("failed_settings", []).append(
                f"{config.train.precision}, compile {compiled}: {type(error).__name__}: {cause[:300]}")
    records = [record for record in summary.history if record["kind"] == "train"]
    steady = [record["tokens_per_second"] for record in records if record["step"] > 10] or \
        [record["tokens_per_second"] for record in records]
    first = records[0]
    result = {"steps": summary.steps, "train_seconds": round(summary.train_seconds, 1),
              "tokens_per_second": round(statistics.median(steady)), "val_loss": round(summary.metrics["val_loss"], 4),
              "first_step_seconds": round(first["train_seconds"], 2), "precision": config.train.precision,
              "compiled": config.train.compile, "parameters": parameter_count(out)}
    if device.type == "cuda":
        result["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2 ** 30, 2)
        torch.cuda.reset_peak_memory_stats(device)
    say(f"PASS {kind}: {result['steps']} steps in {result['train_seconds']} s (first step {result['first_step_seconds']} s, "
        f"compilation included), {result['tokens_per_second']:,} tokens/s, val loss {result['val_loss']}")
    RESULTS[kind] = {**RESULTS.get(kind, {}), **result}
    if RESULTS[kind].get("failed_settings"):
        RESULTS[kind]["status"] = "fell back: " + "; ".join(RESULTS[kind]["failed_settings"])
    return out


def parameter_count(directory: Path) -> int:
    from safetensors.torch import load_file

    return sum(tensor.numel() for tensor in load_file(str(directory / "model.safetensors")).values())


# ------------------------------------------------------------------ 6. generation
def generation(device: torch.device, checkpoints: dict[str, Path], smoke: bool) -> None:
    from seqlab.generate import generate
    from seqlab.train.checkpoint import load_checkpoint

    tokens = 50 if smoke else 1000
    for kind, directory in checkpoints.items():
        if directory is None:
            say(f"SKIP {kind}: no trained checkpoint")
            continue
        checkpoint = load_checkpoint(directory, device=device)
        list(generate(checkpoint.model, checkpoint.tokenizer, "ROMEO:", max_tokens=10, seed=0))  # warm up
        synchronize(device)
        started = time.perf_counter()
        text = "".join(generate(checkpoint.model, checkpoint.tokenizer, "ROMEO:", max_tokens=tokens, seed=0))
        synchronize(device)
        rate = tokens / (time.perf_counter() - started)
        say(f"PASS {kind}: {rate:,.0f} tokens/s (batch 1, {tokens} tokens, cached step); sample: {text[:80]!r}")
        RESULTS.setdefault("generation", {})[kind] = round(rate)


# ------------------------------------------------------------------ main
def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="tinyshakespeare.txt")
    parser.add_argument("--seconds", type=float, default=120.0, help="training time of each of the two big runs")
    parser.add_argument("--budget", type=float, default=420.0, help="seconds for everything")
    parser.add_argument("--smoke", action="store_true", help="tiny models and seconds: check the script itself")
    parser.add_argument("--compile", choices=("true", "false"), default=None,
                        help="compile the big runs (default: true, but false with --smoke: compiling takes minutes on a CPU)")
    parser.add_argument("--out", default=None, help="write gpu_check.json here")
    arguments = parser.parse_args()
    if arguments.smoke:
        arguments.seconds = min(arguments.seconds, 3.0)
    clock = Clock(arguments.budget)
    device = torch.device(arguments.device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", 0)
    text = Path(arguments.data)
    if not text.is_file():
        say(f"FAIL: no tinyshakespeare at {text}; pass --data PATH")
        return 2
    if arguments.smoke:
        torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp(prefix="gpu_check-"))
    say(f"gpu_check: device {device}, data {text}, work {work}, budget {arguments.budget:.0f} s"
        + (" (smoke)" if arguments.smoke else ""))
    section("environment", lambda: environment(device))
    section("backbones", lambda: backbones(device, arguments.smoke))
    section("tasks", lambda: tasks(device, text, work, arguments.smoke))
    section("verbs", lambda: verbs(device, text, work))
    compile_model = (arguments.compile or ("false" if arguments.smoke else "true")) == "true"
    trained: dict[str, Path | None] = {}
    trained["transformer"] = section("transformer", lambda: training(
        "transformer", device, text, work, clock, seconds=arguments.seconds, smoke=arguments.smoke,
        compile_model=compile_model, reserve=arguments.seconds + 60))
    trained["lstm"] = section("lstm", lambda: training(
        "lstm", device, text, work, clock, seconds=arguments.seconds, smoke=arguments.smoke,
        compile_model=compile_model, reserve=30))
    section("generation", lambda: generation(device, trained, arguments.smoke))
    statuses = {name: value.get("status", "ok") if isinstance(value, dict) else "ok" for name, value in RESULTS.items()}
    say(f"\n== summary ({clock.elapsed():.0f} s) ==")
    for name, status in statuses.items():
        say(f"{'PASS' if status == 'ok' else 'FAIL'} {name}: {status}")
    if arguments.out:
        Path(arguments.out).mkdir(parents=True, exist_ok=True)
        (Path(arguments.out) / "gpu_check.json").write_text(json.dumps(RESULTS, indent=2) + "\n", encoding="utf-8")
    return 0 if all(status == "ok" for status in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
