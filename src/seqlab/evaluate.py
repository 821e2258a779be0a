"""Evaluate a checkpoint on a text file, on the split its training used."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from .data.text import read_text, split_text
from .errors import SeqlabError
from .train.checkpoint import load_checkpoint
from .train.trainer import evaluate_tokens


def evaluate_checkpoint(checkpoint_dir: str | Path, data_path: str | Path, *, split: str = "val") -> dict[str, Any]:
    """Loss (nats per token) and bits per character of a checkpoint on ``split`` of ``data_path``.

    ``val`` is the last ``val_fraction`` of the file, exactly the part the
    trainer validated on (the whole file when training had no validation);
    ``train`` the rest; ``all`` the whole file. Windows are read as in training:
    with the state carried across them for stream-trained models.
    """
    checkpoint = load_checkpoint(checkpoint_dir)
    config = checkpoint.config
    text = read_text(data_path)
    train_text, val_text = split_text(text, config.data.val_fraction)
    if split == "val" and config.data.val_fraction == 0:
        val_text = text
    chosen = {"val": val_text, "train": train_text, "all": text}[split]
    tokens = checkpoint.tokenizer.encode(chosen)
    if len(tokens) < 2:
        raise SeqlabError(f"the {split} split of {data_path} has {len(tokens)} tokens, too few to evaluate")
    loss, count = evaluate_tokens(checkpoint.model, tokens, block_size=config.data.block_size,
                                  batch_size=config.train.batch_size, carry_state=config.data.batching == "stream")
    bits_per_character = loss / math.log(2) * len(tokens) / len(chosen)  # tokens per character: 1 for characters
    return {"split": split, "tokens": count, "val_loss": loss, "bpc": bits_per_character}
