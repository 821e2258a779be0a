"""Date normalisation (builtin:dates -> ISO 8601): attention against none, recurrent against the Transformer.

Every model trains with ``seqlab train --task seq2seq --data builtin:dates``
(19,800 training pairs; 2,200 validate and pick ``best/``) and is scored on
``builtin:dates-test``: 2,000 pairs drawn with another seed, none of whose
sources occurs in the training set, decoded greedily. "none" is the
encoder-decoder whose decoder sees only the encoder's final state.

    python benchmarks/bench_seq2seq.py                  # every model (about half an hour at one thread)
    python benchmarks/bench_seq2seq.py --models gru-bahdanau,transformer --steps 300
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from common import machine, parameter_count
from seqlab.config import Config
from seqlab.evaluate import evaluate_checkpoint
from seqlab.train.checkpoint import load_checkpoint
from seqlab.train.trainer import train

SEED = 1337
RECURRENT = {"model": {"hidden_size": 128, "embedding_size": 64}, "task": {"bidirectional": True}}
MODELS: dict[str, dict[str, dict]] = {
    **{f"{cell}-{attention}": {"model": {**RECURRENT["model"], "backbone": cell},
                               "task": {**RECURRENT["task"], "attention": attention}}
       for cell in ("gru", "lstm") for attention in ("bahdanau", "luong", "none")},
    "transformer": {"model": {"backbone": "transformer", "hidden_size": 128, "num_layers": 2,
                              "options": {"num_heads": 4}}},
}
COMMON = {
    "task": {"name": "seq2seq", "max_target_length": 16},
    "data": {"path": "builtin:dates", "val_fraction": 0.1},
    "train": {"batch_size": 64, "learning_rate": 3e-3, "min_learning_rate": 1e-4, "warmup_steps": 50,
              "eval_interval": 500, "eval_max_batches": 8, "log_interval": 1000, "seed": SEED, "threads": 1},
}


def run(name: str, steps: int, directory: Path) -> dict[str, float]:
    config = Config()
    config.update(COMMON, source="COMMON")
    config.update(MODELS[name], source=name)
    config.train.max_steps = steps
    summary = train(config, directory / name, quiet=True)
    best = directory / name / "best"
    metrics = evaluate_checkpoint(best, "builtin:dates-test")
    return {"parameters": parameter_count(load_checkpoint(best).model), "steps": summary.steps,
            "train_seconds": summary.train_seconds, **metrics}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--steps", type=int, default=1500)
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    names = [name.strip() for name in arguments.models.split(",") if name.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        parser.error(f"unknown model {unknown[0]}; choose from {', '.join(MODELS)}")
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        for name in names:
            result = run(name, arguments.steps, Path(directory))
            rows.append((name, result))
            print(f"{name}: exact match {result['exact_match']:.4f}, BLEU {result['bleu']:.4f}, "
                  f"{result['train_seconds']:.0f} s", flush=True)
    print(f"\n{machine()}; {time.perf_counter() - started:.0f} s in all\n")
    print("| model | parameters | steps | train s | test exact match | test BLEU | test loss |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, result in rows:
        print(f"| {name} | {result['parameters']:,} | {result['steps']} | {result['train_seconds']:.0f} | "
              f"{result['exact_match']:.4f} | {result['bleu']:.4f} | {result['val_loss']:.4f} |")


if __name__ == "__main__":
    main()
