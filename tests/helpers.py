"""Shared test helpers: small configs and texts, paths to the shared data."""
from __future__ import annotations

import hashlib
import random
from pathlib import Path

from seqlab.config import Config

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"

PARAGRAPH = (
    "It was the best of times, it was the worst of times, it was the age of wisdom, it was the age of "
    "foolishness, it was the epoch of belief, it was the epoch of incredulity, it was the season of Light."
)


def words_text(length: int, seed: int = 0) -> str:
    """A deterministic text of roughly ``length`` characters with some structure to learn."""
    rng = random.Random(seed)
    vocabulary = ["the", "cat", "sat", "on", "a", "mat", "and", "dog", "ran", "to", "it", "was", "good"]
    words = []
    while sum(len(word) + 1 for word in words) < length:
        words.append(rng.choice(vocabulary))
    return " ".join(words)[:length] + "\n"


def small_config(data_path: Path | str, **train_overrides) -> Config:
    config = Config()
    config.data.path = str(data_path)
    config.data.block_size = 16
    config.model.hidden_size = 24
    config.model.embedding_size = 12
    config.train.batch_size = 4
    config.train.max_steps = 12
    config.train.warmup_steps = 3
    config.train.eval_interval = 4
    config.train.log_interval = 1
    config.train.threads = 1
    for name, value in train_overrides.items():
        setattr(config.train, name, value)
    return config


def tree_digest(directory: Path) -> dict[str, str]:
    """SHA-256 of every file below a directory, to prove nothing on disk changed."""
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(directory.rglob("*")) if path.is_file()}


def run_bad(capsys, arguments: list[str]) -> str:
    """Run the CLI and expect what bad input gets: exit code 2 (returned, or raised by argparse as SystemExit) and
    one line on stderr, seqlab's, without a traceback. Returns that line."""
    from seqlab.cli import main

    capsys.readouterr()
    try:
        code = main(arguments)
    except SystemExit as exit_info:
        code = exit_info.code
    assert code == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("seqlab") and "Traceback" not in error, error
    return error
