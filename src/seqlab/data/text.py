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
    """Read a UTF-8 text file (without its byte-order mark, if any), refusing with one clear line what is not one.

    Only NUL bytes in the first ``BINARY_PROBE_BYTES`` mark a file as binary; later ones are text.
    """
    path = Path(path)
    if not str(path):
        raise SeqlabError("no data file given: pass --data PATH")
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
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise SeqlabError(
            f"data file {path} is not valid UTF-8 (bad byte at offset {error.start}); convert it to UTF-8") from None


def split_lines(text: str) -> list[str]:
    """A text's lines: each is what a "\n" or "\r\n" ends (the last may end without one).

    Unlike ``str.splitlines``, which also breaks at U+2028, U+2029, U+0085 (NEL), \\v, \\f and
    the other separators that real text carries inside its lines, so one line stays one input.
    """
    lines = text.split("\n")
    if lines[-1] == "":  # the newline that ends the last line starts no new one
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_lines(path: str | Path) -> list[str]:
    """One input per line of a plain text file; blank lines at the end are ignored, blank lines between refused."""
    lines = split_lines(read_text(path))
    while lines and not lines[-1].strip():
        lines.pop()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise SeqlabError(f"{path} line {number} is blank; give one input per line")
    return lines


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
