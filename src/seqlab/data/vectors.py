"""Pretrained word vectors (GloVe, word2vec or fastText text files) as the start of a word embedding.

The text format each of those tools writes: one word per line, then its D
numbers, separated by spaces; word2vec and fastText put a first line "COUNT D".
The files list their words most frequent first. A file whose name ends in .gz
is read through gzip.
"""
from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Container, Iterator

import numpy as np
import torch
from torch import nn

from ..errors import SeqlabError


@dataclass
class WordVectors:
    """Some words' vectors from a file: ``vectors[index[word]]`` is ``word``'s (D,) vector."""

    words: list[str]  # in the file's order (most frequent first)
    index: dict[str, int]  # each word's row
    folded: dict[str, int]  # each lower-cased word's: its first form's row
    vectors: np.ndarray  # (N, D) float32
    path: str

    @property
    def dimension(self) -> int:
        return self.vectors.shape[1]

    def lookup(self, word: str) -> np.ndarray | None:
        """``word``'s vector, else its lower-case form's (GloVe's files are lower case), else that of the first
        form of it the file has in any case, else None."""
        row = self.index.get(word)
        if row is None:
            row = self.index.get(word.lower(), self.folded.get(word.lower()))
        return None if row is None else self.vectors[row]

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self.lookup(word) is not None


def read_word_vectors(path: str | Path, wanted: Container[str], *, first: int = 0) -> WordVectors:
    """The vectors of the words in ``wanted`` (or whose lower-case form is), and of the file's ``first`` words.

    Only those lines are parsed, so a file of millions of words is read in
    seconds. A word that holds spaces (some fastText files have such) is every
    field before the last D; as no tokenizer here makes such words, it is
    looked for only by its first part. Of two lines with one word the first is
    kept. Refuses, naming the line, a file that is not one: no vectors; among
    the lines parsed, a vector of another length than the first line's, a
    number that is not one, or one that is not finite.
    """
    path = Path(path)
    if not path.is_file():
        raise SeqlabError(f"word-vectors file {path} does not exist; pass a GloVe, word2vec or fastText text file")
    words: list[str] = []
    index: dict[str, int] = {}
    folded: dict[str, int] = {}
    rows: list[np.ndarray] = []
    dimension = seen = 0

    def parsed(word: str) -> bool:  # only these lines are parsed: the reason a large file reads fast
        return seen <= first or word in wanted or word.lower() in wanted

    for number, line in _text_lines(path):
        if not line:
            continue
        if not dimension:
            fields = line.split(" ")
            if number == 1 and len(fields) == 2 and all(field.isdigit() for field in fields):
                continue  # word2vec's and fastText's first line: COUNT D
            dimension = len(fields) - 1
            if dimension < 1:
                raise SeqlabError(f"{path} line {number} holds no numbers after {fields[0]!r}; a word-vectors "
                                  "file holds a word and its numbers on each line")
        seen += 1
        if not parsed(line.partition(" ")[0]):
            continue
        fields = line.split(" ")
        if len(fields) <= dimension:
            raise SeqlabError(f"{path} line {number} has {len(fields) - 1} numbers where the first vector has "
                              f"{dimension}; every line must hold a word and {dimension} numbers")
        word = " ".join(fields[:len(fields) - dimension])
        if word in index or not parsed(word):  # a word holding spaces is looked for by its first part alone
            continue
        try:
            row = np.array(fields[len(fields) - dimension:], dtype=np.float32)
        except ValueError:
            raise SeqlabError(f"{path} line {number}: the vector of {word!r} holds something that is not a "
                              "number; a word-vectors file holds a word and its numbers on each line") from None
        if not np.isfinite(row).all():
            raise SeqlabError(f"{path} line {number}: the vector of {word!r} holds nan or inf; fix or remove "
                              "that line")
        rows.append(row)
        words.append(word)
        index[word] = len(rows) - 1
        folded.setdefault(word.lower(), len(rows) - 1)
    if not dimension:
        raise SeqlabError(f"{path} holds no word vectors; pass a GloVe, word2vec or fastText text file")
    vectors = np.stack(rows) if rows else np.zeros((0, dimension), dtype=np.float32)
    return WordVectors(words, index, folded, vectors, str(path))


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(number, line) of a UTF-8 text file, read through gzip where its name ends in .gz (fastText's .vec.gz). A
    line is what b"\\n" ends: a word may hold any other separator."""
    opened = gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
    try:
        with opened as file:
            for number, raw in enumerate(file, start=1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError:
                    raise SeqlabError(f"{path} line {number} is not UTF-8 text (word2vec's binary format?); pass the "
                                      "vectors as text: a word and its numbers on each line") from None
                yield number, line.removeprefix("\ufeff").rstrip("\r\n").rstrip(" ")
    except (gzip.BadGzipFile, EOFError) as error:  # only gzip raises these here
        raise SeqlabError(f"{path} is not a whole gzip file ({error}); unpack it, or pass it packed again") from None


class VectorEmbedding:
    """A word embedding started from pretrained vectors, applied to a fresh model as ``--init-from`` 's weights are.

    Row i is the vector of token i where the file has one; every other row (the
    unknown token's, words without a vector) is drawn from N(0, s^2), s the
    standard deviation of the vectors found, so both kinds start on one scale.
    """

    def __init__(self, vectors: WordVectors, pieces: list[str], *, seed: int) -> None:
        found = [vectors.lookup(piece) for piece in pieces]  # per token: (D,) or None
        known = [vector for vector in found if vector is not None]
        scale = float(np.std(np.stack(known))) if known else 1.0
        weight = torch.randn(len(pieces), vectors.dimension, generator=torch.Generator().manual_seed(seed)) * scale
        for row, vector in enumerate(found):
            if vector is not None:
                weight[row] = torch.from_numpy(vector)
        self.weight = weight  # (V, D)

    def apply(self, model: nn.Module, *, optional: tuple[str, ...] = ()) -> None:
        """Copy the rows into ``model.embedding``, built as wide as the vectors."""
        del optional  # the one part there is
        with torch.no_grad():
            model.embedding.weight.copy_(self.weight)
