"""Parallel corpora: (source, target) pairs from a TSV/CSV file or a built-in set, and their batches.

File layout: one pair a line, ``source TAB target`` (``.tsv``, or any file
whose first lines all hold a tab) or ``source,target`` (``.csv``, quoted as CSV
where a field holds a comma). Exactly two columns; neither may be empty. A
first row ``source TAB target`` (any case; also ``input``/``output``,
``src``/``tgt``) is a header and skipped with ``--header auto``; ``yes``/``no``
force it. TSV is read without quoting, so a ``"`` stays a character.

``builtin:dates`` and ``builtin:dates-test`` are the synthetic date
normalisation sets of :mod:`seqlab.data.dates`.

Token ids for sequence-to-sequence models put three specials before the
tokenizer's own ids (``SeqToSeqVocabulary``): 0 is padding, 1 begins and 2
ends a target.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from ..errors import SeqlabError
from .batches import Batch
from .dates import BUILTIN_DATES, builtin_date_pairs
from .labelled import LabelledBatches, delimiter_for, pad_right
from .text import UTF8, csv_reader, read_text, row_numbers_first, split_lines
from .tokenizers import Tokenizer

BUILTIN_PREFIX = "builtin:"
HEADER_NAMES = ({"source", "target"}, {"input", "output"}, {"src", "tgt"})
PAD, BOS, EOS = 0, 1, 2
SPECIALS = 3


@dataclass
class Pairs:
    sources: list[str]
    targets: list[str]
    line_numbers: list[int]  # 1-based line of each pair in its file (its index + 1 for a built-in)


def _is_header(cells: list[str]) -> bool:
    return len(cells) == 2 and {cell.strip().lower() for cell in cells} in HEADER_NAMES


def read_pairs(path: str | Path, *, header: str = "auto", encoding: str = UTF8) -> Pairs:
    """Every (source, target) pair of a file or built-in, refusing with one clear line what is not one."""
    source = str(path)
    if source.startswith(BUILTIN_PREFIX):
        name = source[len(BUILTIN_PREFIX):]
        if name not in BUILTIN_DATES:
            raise SeqlabError(f"unknown built-in pair set {source}; choose one of "
                              f"{', '.join(BUILTIN_PREFIX + known for known in BUILTIN_DATES)}")
        pairs = builtin_date_pairs(name)
        return Pairs([pair[0] for pair in pairs], [pair[1] for pair in pairs], list(range(1, len(pairs) + 1)))
    if header not in ("auto", "yes", "no"):
        raise SeqlabError(f"task.header must be auto, yes or no, got {header!r}")
    path = Path(path)
    text = read_text(path, encoding)
    delimiter = delimiter_for(path, text)
    lines = split_lines(text)
    while lines and not lines[-1].strip():
        lines.pop()
    reader = csv_reader(lines, delimiter=delimiter, quoting=csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL)
    try:
        rows = [(reader.line_num, row) for row in reader]
    except csv.Error as error:
        raise SeqlabError(f"{path} line {reader.line_num}: not valid CSV ({error}); fix the quoting") from None
    if rows and header != "no" and row_numbers_first([cell.strip() for cell in rows[0][1]], rows[1:]):
        rows = [(line_number, cells[1:]) for line_number, cells in rows]  # row numbers, as pandas and R write them
    if rows and (header == "yes" or (header == "auto" and _is_header(rows[0][1]))):
        rows = rows[1:]
    if not rows:
        raise SeqlabError(f"{path} has no pairs; give one 'source TAB target' pair a line")
    layout = "source TAB target" if delimiter == "\t" else "source,target"
    pairs = Pairs([], [], [])
    for line_number, cells in rows:
        where = f"{path} line {line_number}"
        if not any(cell.strip() for cell in cells):
            raise SeqlabError(f"{where} is empty; remove the empty row or fill it in")
        if len(cells) != 2:
            raise SeqlabError(f"{where} has {len(cells)} column(s); every line must be one pair, {layout}")
        source_text, target_text = (cell.strip() for cell in cells)
        if not source_text or not target_text:
            side = "source" if not source_text else "target"
            raise SeqlabError(f"{where} has an empty {side}; give every pair a source and a target")
        pairs.sources.append(source_text)
        pairs.targets.append(target_text)
        pairs.line_numbers.append(line_number)
    return pairs


class SeqToSeqVocabulary:
    """A tokenizer's ids shifted past the specials PAD = 0, BOS = 1, EOS = 2: id' = id + 3.

    ``source(text)`` -> (L,) ids; ``target(text)`` -> (T + 2,) ids, BOS first
    and EOS last; ``decode(ids)`` drops the specials.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer

    @property
    def size(self) -> int:
        return self.tokenizer.vocab_size + SPECIALS

    def source(self, text: str) -> Tensor:
        return self.tokenizer.encode(text) + SPECIALS

    def target(self, text: str) -> Tensor:
        ids = self.source(text)
        return torch.cat([ids.new_tensor([BOS]), ids, ids.new_tensor([EOS])])

    def decode(self, ids: Tensor | list[int]) -> str:
        values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        return self.tokenizer.decode([index - SPECIALS for index in values if index >= SPECIALS])

    def pieces(self, ids: Tensor | list[int]) -> list[str]:
        """One readable label per id, for figures: a token's text, or <s>, </s>, <pad>."""
        names = {PAD: "<pad>", BOS: "<s>", EOS: "</s>"}
        values = ids.tolist() if isinstance(ids, Tensor) else list(ids)
        return [names.get(index) or self.tokenizer.decode([index - SPECIALS]) for index in values]


class PairBatches(LabelledBatches):
    """Random batches of (source, target) id sequences: a fresh seeded shuffle every epoch (``LabelledBatches``'s,
    bucketed by source length with ``bucketing``).

    ``next_batch`` gives ``Batch(inputs, targets, lengths)``: sources (B, L_max)
    and targets (B, T_max) right-padded with PAD = 0, and the sources' (B,)
    lengths (a target's padding is where it holds PAD). The state (generator,
    shuffle, position) resumes exactly.
    """

    def __init__(self, sources: list[Tensor], targets: list[Tensor], *, batch_size: int, seed: int,
                 bucketing: bool = False) -> None:
        if not sources:
            raise SeqlabError("there are no training pairs to batch")
        self.targets = targets
        super().__init__(sources, torch.zeros(len(sources)), batch_size=batch_size, seed=seed, bucketing=bucketing)

    def batch(self, chosen: list[int]) -> Batch:
        inputs, lengths = pad_right([self.sequences[index] for index in chosen])
        targets, _ = pad_right([self.targets[index] for index in chosen])
        return Batch(inputs, targets, reset=True, lengths=lengths)
