"""Text files -> token tensors split into training and validation parts."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import SeqlabError
from .tokenizers import Tokenizer, fit_tokenizer

BINARY_PROBE_BYTES = 8192


def read_text(path: str | Path) -> str:
    """Read a UTF-8 text file, refusing with one clear line what is not one."""
    if not str(path):  # before Path(), which reads "" as "."
        raise SeqlabError("no data file given: pass --data PATH")
    path = Path(path)
    if not path.exists():
        raise SeqlabError(f"data file {path} does not exist; check the path")
    if path.is_dir():
        raise SeqlabError(f"data path {path} is a directory; pass a text file")
    raw = path.read_bytes()
    if not raw:
        raise SeqlabError(f"data file {path} is empty; give a file with text in it")
    if b"\x00" in raw[:BINARY_PROBE_BYTES]:
        raise SeqlabError(f"data file {path} looks binary (it has NUL bytes); give a UTF-8 text file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise SeqlabError(
            f"data file {path} is not valid UTF-8 (bad byte at offset {error.start}); convert it to UTF-8") from None


def split_text(text: str, val_fraction: float) -> tuple[str, str]:
    """The first (1 - val_fraction) of the characters train, the rest validate (as nanoGPT and char-rnn)."""
    cut = len(text) - int(len(text) * val_fraction)
    return text[:cut], text[cut:]


@dataclass
class TextData:
    tokenizer: Tokenizer
    train: Tensor  # (N_train,) int64
    val: Tensor  # (N_val,) int64, possibly empty
    val_characters: int  # characters the validation tokens spell: bits per character = bits per token * N_val / this


def load_text_data(path: str | Path, *, tokenizer_kind: str, unknown: str, val_fraction: float,
                   block_size: int, vocab_size: int = 0, tokenizer: Tokenizer | None = None) -> TextData:
    """Read, split, fit a tokenizer on the training part (unless one is given) and encode both parts."""
    text = read_text(path)
    train_text, val_text = split_text(text, val_fraction)
    tokenizer = tokenizer or fit_tokenizer(tokenizer_kind, train_text, unknown=unknown, vocab_size=vocab_size)
    train = tokenizer.encode(train_text)
    val = tokenizer.encode(val_text) if val_text else torch.zeros(0, dtype=torch.long)
    if len(train) < block_size + 1:
        raise SeqlabError(
            f"{path}: the training part has {len(train)} tokens, fewer than one training window "
            f"(block size {block_size} + 1); use a longer file or a smaller --block-size")
    if val_fraction > 0 and len(val) < 2:
        raise SeqlabError(
            f"{path}: the validation part has {len(val)} tokens, too few to measure; "
            "use a longer file, a larger --val-fraction, or --val-fraction 0")
    return TextData(tokenizer=tokenizer, train=train, val=val, val_characters=len(val_text))
