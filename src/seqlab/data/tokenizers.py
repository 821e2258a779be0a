"""Tokenizers: text <-> integer ids, saved as JSON inside every checkpoint."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import SeqlabError

UNKNOWN_TOKEN = "<unk>"
UNKNOWN_TEXT = "\ufffd"  # what <unk> decodes to: the Unicode replacement character


class CharTokenizer:
    """One id per Unicode character seen in the training text, in code-point order.

    With ``unknown="unk"`` id 0 is ``<unk>`` and stands for any character not in
    the vocabulary; with ``unknown="error"`` such a character is refused.
    """

    kind = "char"

    def __init__(self, characters: list[str], *, unknown: str = "unk") -> None:
        if unknown not in ("unk", "error"):
            raise ValueError(f"unknown must be 'unk' or 'error', got {unknown!r}")
        if any(len(character) != 1 for character in characters) or len(set(characters)) != len(characters):
            raise ValueError("characters must be distinct single characters")
        self.characters = list(characters)
        self.unknown = unknown
        offset = 1 if unknown == "unk" else 0
        self._codepoints = np.array([ord(character) for character in self.characters], dtype=np.uint32)
        self._order = np.argsort(self._codepoints)
        self._sorted = self._codepoints[self._order]
        self._ids = (self._order + offset).astype(np.int64)
        self._pieces = ([UNKNOWN_TEXT] if unknown == "unk" else []) + self.characters

    @classmethod
    def fit(cls, text: str, *, unknown: str = "unk") -> "CharTokenizer":
        return cls(sorted(set(text)), unknown=unknown)

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    def encode(self, text: str) -> Tensor:
        """text -> (N,) int64 ids."""
        codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        positions = np.searchsorted(self._sorted, codepoints).clip(max=max(len(self._sorted) - 1, 0))
        known = self._sorted[positions] == codepoints if len(self._sorted) else np.zeros(len(codepoints), bool)
        if not known.all():
            if self.unknown == "error":
                missing = sorted({chr(code) for code in codepoints[~known]})
                shown = "".join(missing[:10])
                raise SeqlabError(
                    f"text has {len(missing)} character(s) the model never saw in training ({shown!r}); "
                    "remove them, or train with --unknown unk")
            ids = np.where(known, self._ids[positions], 0)
        else:
            ids = self._ids[positions]
        return torch.from_numpy(np.ascontiguousarray(ids, dtype=np.int64))

    def decode(self, ids: Tensor | list[int]) -> str:
        values = ids.tolist() if isinstance(ids, Tensor) else ids
        return "".join(self._pieces[index] for index in values)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "unknown": self.unknown, "characters": self.characters}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "CharTokenizer":
        return cls(list(values["characters"]), unknown=values["unknown"])


TOKENIZERS = {CharTokenizer.kind: CharTokenizer}


def fit_tokenizer(kind: str, text: str, *, unknown: str) -> CharTokenizer:
    if kind not in TOKENIZERS:
        raise SeqlabError(f"unknown tokenizer {kind!r}; choose one of {', '.join(TOKENIZERS)}")
    return TOKENIZERS[kind].fit(text, unknown=unknown)


def tokenizer_from_dict(values: dict[str, Any]) -> CharTokenizer:
    kind = values.get("kind")
    if kind not in TOKENIZERS:
        raise SeqlabError(f"tokenizer kind {kind!r} is not one seqlab knows ({', '.join(TOKENIZERS)})")
    return TOKENIZERS[kind].from_dict(values)


def save_tokenizer(tokenizer: CharTokenizer, path: Path) -> None:
    path.write_text(json.dumps(tokenizer.to_dict(), ensure_ascii=False), encoding="utf-8")
