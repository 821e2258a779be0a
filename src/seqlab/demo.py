"""``make demo``: a character LSTM learns Irish folk tunes in about two minutes, then writes three."""
from __future__ import annotations

import random
import sys
from pathlib import Path

from .config import Config, load_config_file
from .data.abc import music21_tunes
from .generate import generate
from .train.checkpoint import load_checkpoint
from .train.trainer import BEST_DIRECTORY, train


def run_demo(out_dir: str | Path, *, seconds: float = 120.0, tunes: int = 3) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    collected = music21_tunes()
    random.Random(0).shuffle(collected)  # mix the collections so validation is not one book
    data_path = out_dir / "tunes.abc"
    data_path.write_text("\n\n".join(collected) + "\n\n", encoding="utf-8")
    print(f"{len(collected)} tunes ({data_path.stat().st_size:,} bytes) from music21's corpora -> {data_path}")
    config = Config.from_dict(load_config_file("demo"), source="demo preset")
    config.data.path = str(data_path)
    config.train.max_seconds = seconds
    checkpoint_dir = out_dir / "model"
    train(config, checkpoint_dir, overwrite=True)
    best = checkpoint_dir / BEST_DIRECTORY
    checkpoint = load_checkpoint(best if best.exists() else checkpoint_dir)
    for number in range(1, tunes + 1):
        print(f"\n--- generated tune {number} ---\nX:{number}\nT:", end="")
        for piece in generate(checkpoint.model, checkpoint.tokenizer, "\n\nT:", max_tokens=800, temperature=0.8,
                              seed=number, stop="\n\n"):
            sys.stdout.write(piece)
        print()
    print(f"\nsample more with: seqlab sample {best} --prompt 'T:' --stop $'\\n\\n' --temperature 0.8")
