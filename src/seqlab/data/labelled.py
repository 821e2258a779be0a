"""Labelled texts from CSV/TSV files: one example a row, a label column and one or more text columns.

A file of JSON Lines (one object a line, as datasets libraries export text: ``{"text": "...", "label": 1}``) is
a table too: its first object's keys are the header, each object a row.

The layout is chosen by three settings (``task.label_column``,
``task.text_columns``, ``task.header``): columns by index (``0``, ``-1``) or by
header name, and a header row that is present, absent, or guessed. By default
(``auto``, see ``guess_label_column``) the last column is the label, unless it
holds text and exactly one other column holds classes (``label,text``), and
the text is every other column joined with a space, so a sentence with
unquoted commas still reads whole.

TSV files (and tab-separated ``.txt``) are read without quoting, as TSV is
usually written, so a stray ``"`` in a sentence stays a character.
"""
from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..errors import SeqlabError
from .batches import Batch
from .text import UTF8, csv_reader, excel_separator, read_text, row_numbers_first, split_lines, table_suffix

SNIFF_LINES = 50
AUTO = "auto"  # task.label_column: the last column, or the one column of classes where the last holds text


@dataclass
class LabelledTexts:
    texts: list[str]
    labels: list[str]
    line_numbers: list[int]  # 1-based line of each example in its file, for error messages
    # the header's names of the label and text columns ({"label": name, "text": [names]}), None without a header
    layout: dict[str, Any] | None = None
    label_index: int = -1  # the label's column, counted from 0 (-1: the last), as read_labelled chose it


def delimiter_for(path: Path, text: str) -> str:
    """Tab for .tsv, comma for .csv; otherwise tab when every one of the first lines has one, else comma."""
    suffix = table_suffix(path)
    if suffix == ".tsv":
        return "\t"
    if suffix == ".csv":
        return ","
    sample = [line for line in split_lines(text)[:SNIFF_LINES] if line.strip()]
    return "\t" if sample and all("\t" in line for line in sample) else ","


KEYS_LINE = 0  # the line "number" of a JSON Lines file's header row: its first object's keys


def _json_lines(path: Path, lines: list[str]) -> list[tuple[int, list[str]]] | None:
    """A file of JSON objects, one a line, as rows: its first object's keys (as line ``KEYS_LINE``), then each
    object's values in that order, as text; None where the first line is not a JSON object. Blank lines are
    skipped; a line that is not an object with those keys, or a value that is a list or an object, is refused."""
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]
    opening = numbered[0][1].strip() if numbered else ""
    if opening.startswith("[") and (opening == "[" or opening[1:].lstrip().startswith("{")
                                    or table_suffix(path) in (".json", ".jsonl", ".ndjson")):
        raise SeqlabError(f"{path} is a JSON array; write it as JSON Lines, one object a line (pandas: "
                          "to_json(path, orient='records', lines=True)), or as CSV")
    if not opening.startswith("{"):
        return None
    try:
        first = json.loads(opening)
    except json.JSONDecodeError:
        return None  # a CSV whose first cell starts with a brace
    if not isinstance(first, dict):
        return None
    keys = list(first)
    rows: list[tuple[int, list[str]]] = [(KEYS_LINE, keys)]
    for position, (number, line) in enumerate(numbered):
        try:
            record = first if position == 0 else json.loads(line)  # the first line is read once
        except json.JSONDecodeError as error:
            raise SeqlabError(f"{path} line {number}: not a JSON object ({error.msg}); a file of JSON Lines holds "
                              "one object a line") from None
        if not isinstance(record, dict) or set(record) != set(keys):
            got = ", ".join(record) if isinstance(record, dict) else type(record).__name__
            raise SeqlabError(f"{path} line {number} has keys {got}, line {numbered[0][0]} {', '.join(keys)}; give "
                              "every object the same keys")
        cells = []
        for key in keys:
            value = record[key]
            if isinstance(value, (list, dict)):
                raise SeqlabError(f"{path} line {number}: {key!r} holds a JSON {type(value).__name__}, not text or "
                                  "a label; give a string or a number")
            cells.append("" if value is None else value if isinstance(value, str) else json.dumps(value))
        rows.append((number, cells))
    return rows


def _rows(path: Path, encoding: str) -> list[tuple[int, list[str]]]:
    """(line number, cells) of every row; blank lines at the end of the file are not rows. A JSON Lines file's
    first row is its keys, numbered ``KEYS_LINE``."""
    text = read_text(path, encoding)
    lines = split_lines(text)
    keyed = _json_lines(path, lines)
    if keyed is not None:
        return keyed
    separator = excel_separator(lines)
    skipped = 1 if separator else 0
    lines = lines[skipped:]
    delimiter = separator or delimiter_for(path, text)
    quoting = csv.QUOTE_NONE if delimiter == "\t" else csv.QUOTE_MINIMAL
    while lines and not lines[-1].strip():
        lines.pop()
    # each line with the newline that ended it, so that a quoted cell spanning lines (a review of two paragraphs)
    # keeps its line break instead of gluing the last word of one line to the first of the next
    reader = csv_reader((line + "\n" for line in lines), delimiter=delimiter, quoting=quoting)
    try:
        # the reader's line_num counts lines consumed, so a quoted field spanning lines is reported where it ends
        return [(reader.line_num + skipped, row) for row in reader]
    except csv.Error as error:
        raise SeqlabError(f"{path} line {reader.line_num + skipped}: not valid CSV ({error}); fix the "
                          "quoting") from None


def _is_index(selector: str) -> bool:
    return selector.lstrip("-").isdigit()


def _selectors(text_columns: str) -> list[str]:
    return [selector.strip() for selector in text_columns.split(",") if selector.strip()]


def _has_header(rows: list[tuple[int, list[str]]], *, header: str, label_column: str, text_columns: str) -> bool:
    """``yes``/``no`` as told; ``auto``: a header when a column is chosen by name, or when the first row's
    label appears nowhere else in its column while every other label repeats (a label set, then its name); a
    JSON Lines file's keys always."""
    if rows and rows[0][0] == KEYS_LINE:
        return True
    if header in ("yes", "no"):
        return header == "yes"
    if header != "auto":
        raise SeqlabError(f"task.header must be auto, yes or no, got {header!r}")
    if not all(_is_index(selector) for selector in [label_column, *_selectors(text_columns)]):
        return True
    if len(rows) < 3 or not _is_index(label_column):
        return False
    index = int(label_column)

    def label_of(cells: list[str]) -> str | None:
        return cells[index].strip() if -len(cells) <= index < len(cells) else None

    first = label_of(rows[0][1])
    rest = [label_of(cells) for _, cells in rows[1:]]
    counts: dict[str | None, int] = {}
    for label in rest:
        counts[label] = counts.get(label, 0) + 1
    return first not in counts and all(count >= 2 for count in counts.values())


def holds_text(values: list[str]) -> bool:
    """Whether a column's values are texts (or ids), not classes: more than half of them occur once."""
    return sum(count == 1 for count in Counter(values).values()) > len(values) / 2


def _class_like(values: list[str]) -> bool:
    """At least two distinct values and at most one per ten rows: a column of classes."""
    return 2 <= len(set(values)) <= max(2, len(values) // 10)


def guess_label_column(rows: list[tuple[int, list[str]]]) -> int:
    """The label column ``auto`` chooses, counted from 0, or -1 for the last: the last, unless its values are texts
    (``holds_text``) and exactly one other column is a column of classes, as in a file laid out ``label,text``. The
    rows after the first are judged, so that a header is not counted; a row with more cells (a text's unquoted
    commas) counts up to the shortest row's width."""
    body = rows[1:]
    width = min((len(cells) for _, cells in body), default=0)
    if width < 2:
        return -1
    columns = [[cells[index].strip() for _, cells in body] for index in range(width)]
    last = [cells[-1].strip() for _, cells in body]
    classes = [index for index in range(width - 1) if _class_like(columns[index])]
    return classes[0] if holds_text(last) and len(classes) == 1 else -1


def _resolve(selector: str, names: list[str] | None, cells: list[str], *, what: str, where: str) -> int:
    """A column selector (index or header name) -> a non-negative index into ``cells``."""
    if _is_index(selector):
        index = int(selector)
        if not -len(cells) <= index < len(cells):
            raise SeqlabError(f"{where} has {len(cells)} column(s), so {what} {index} does not exist; "
                              "check --label-column / --text-columns")
        return index % len(cells)
    if names is None:
        raise SeqlabError(f"{what} {selector!r} is a name but the file has no header row; "
                          "choose columns by index (0, 1, -1) or pass --header yes")
    if selector not in names:
        raise SeqlabError(f"{what} {selector!r} is not in the header; its columns are {', '.join(names)}")
    index = names.index(selector)
    if index >= len(cells):
        raise SeqlabError(f"{where} has {len(cells)} column(s), too few for {what} {selector!r}")
    return index


def read_labelled(path: str | Path, *, label_column: str = "-1", text_columns: str = "",
                  header: str = "auto", encoding: str = UTF8) -> LabelledTexts:
    """Read every example of a CSV/TSV file, refusing with one clear line what does not fit the layout.

    Args:
        label_column: the label's column, an index (negative counts from the end) or a header name; ``auto``: see
            ``guess_label_column`` (``LabelledTexts.label_index`` says which).
        text_columns: comma-separated indices or names joined (with a space) into the text;
            "" for every column but the label.
        header: "yes", "no" or "auto" (see ``_has_header``).
    """
    path = Path(path)
    rows = _rows(path, encoding)
    if not rows:
        raise SeqlabError(f"{path} has no rows; give a CSV/TSV file with a label and text on each line")
    if label_column == AUTO:
        label_column = str(guess_label_column(rows))
    names: list[str] | None = None
    chosen_text = _selectors(text_columns)
    layout = None
    first_text = 0  # 1 past a first column of row numbers, as pandas and R write a table's index: not text
    if _has_header(rows, header=header, label_column=label_column, text_columns=text_columns):
        names = [name.strip() for name in rows[0][1]]
        first_text = 1 if not chosen_text and row_numbers_first(names, rows[1:]) else 0
        # the columns the header names (a row may hold more cells: a text's own unquoted commas)
        where = f"{path} line {rows[0][0]} (the header)"
        label_index = _resolve(label_column, names, names, what="label column", where=where)
        text_indices = ([_resolve(selector, names, names, what="text column", where=where) for selector in chosen_text]
                        or [index for index in range(first_text, len(names)) if index != label_index])
        layout = {"label": names[label_index], "text": [names[index] for index in text_indices]}
        rows = rows[1:]
        if not rows:
            raise SeqlabError(f"{path} has a header row and nothing else; add examples below it")
    texts, labels, line_numbers = [], [], []
    for line_number, cells in rows:
        where = f"{path} line {line_number}"
        if not any(cell.strip() for cell in cells):
            raise SeqlabError(f"{where} is empty; remove the empty row or fill it in")
        if names is not None and [cell.strip() for cell in cells] == names:
            raise SeqlabError(f"{where} repeats the header (files joined one after another?); remove it")
        label_index = _resolve(label_column, names, cells, what="label column", where=where)
        if chosen_text:
            text_indices = [_resolve(selector, names, cells, what="text column", where=where) for selector in chosen_text]
        else:
            text_indices = [index for index in range(first_text, len(cells)) if index != label_index]
        label = cells[label_index].strip()
        text = " ".join(cells[index].strip() for index in text_indices).strip()
        if not label:
            raise SeqlabError(f"{where} has an empty label; give every row a label")
        if not text:
            raise SeqlabError(f"{where} has no text (only a label); give every row some text")
        texts.append(text)
        labels.append(label)
        line_numbers.append(line_number)
    chosen = int(label_column) if _is_index(label_column) else names.index(label_column)  # type: ignore[union-attr]
    return LabelledTexts(texts=texts, labels=labels, line_numbers=line_numbers, layout=layout, label_index=chosen)


def read_unlabelled(path: str | Path, *, layout: dict[str, Any] | None, header: str = "auto",
                    encoding: str = UTF8) -> list[str] | None:
    """The texts of a CSV/TSV file without labels, to predict on; None where the file is not one (read it with
    ``read_labelled``, its labels unused).

    A file without labels is one whose header names the training file's text columns (``layout``, from
    ``LabelledTexts.layout``) but not its label column: the texts are those columns, joined as in training. Or
    it is a file of one column: each row a text, the first row a header when ``header`` is ``yes`` or when it is
    the training file's one text column's name."""
    path = Path(path)
    rows = _rows(path, encoding)
    if not rows:
        raise SeqlabError(f"{path} has no rows; give a text on each line")
    first = [cell.strip() for cell in rows[0][1]]
    if layout and header != "no" and layout["label"] not in first and all(name in first for name in layout["text"]):
        indices = [first.index(name) for name in layout["text"]]
        texts = []
        for line_number, cells in rows[1:]:
            if len(cells) != len(first):
                raise SeqlabError(f"{path} line {line_number} has {len(cells)} cells, its header {len(first)}")
            texts.append(" ".join(cells[index].strip() for index in indices).strip())
        return texts
    if any(len(cells) != 1 for _, cells in rows):
        return None
    named = (header == "yes" or rows[0][0] == KEYS_LINE
             or (header == "auto" and layout is not None and first == layout["text"]))
    return [cells[0] for _, cells in rows[1 if named else 0:]]


def class_columns(path: str | Path, *, header: bool, encoding: str = UTF8) -> list[str]:
    """The columns of a CSV/TSV file that look like labels: at most one distinct value per ten rows (at least two
    values), by header name (or by index without a header); to name where a label column holds text."""
    every = _rows(Path(path), encoding)
    rows = every[1 if header else 0:]
    width = min((len(cells) for _, cells in rows), default=0)
    names = [cell.strip() for cell in every[0][1]] if header else [str(index) for index in range(width)]
    return [names[index] for index in range(width) if _class_like([cells[index].strip() for _, cells in rows])]


def split_indices(count: int, val_fraction: float, *, seed: int) -> tuple[list[int], list[int]]:
    """A deterministic shuffled (train, validation) split of ``count`` examples, seeded by ``seed``.

    The validation part is round(count * val_fraction) examples, at least one
    when val_fraction > 0; both parts must be non-empty.
    """
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed)).tolist()
    validation_size = max(1, round(count * val_fraction)) if val_fraction > 0 else 0
    if count - validation_size < 1:
        raise SeqlabError(f"{count} example(s) are too few to split into training and validation parts; "
                          "add rows or pass --val-fraction 0")
    return sorted(order[validation_size:]), sorted(order[:validation_size])


class LabelledBatches:
    """Random right-padded batches of labelled sequences: a fresh shuffle every epoch, seeded.

    ``next_batch`` gives ``batch_size`` rows (wrapping into the next epoch's
    shuffle when the current one runs out), padded with id 0 to the longest
    row of the batch, with their lengths. The state (generator, shuffle,
    position) resumes exactly.

    With ``bucketing`` each epoch's shuffle is cut into pools of
    ``BUCKET_POOL`` batches, each pool is sorted by length and cut into
    batches, and the batches are shuffled: rows of a batch have similar
    lengths, so little padding is computed, while batches still come in a
    random order.
    """

    carries_state = False

    BUCKET_POOL = 50

    def __init__(self, sequences: list[Tensor], labels: Tensor, *, batch_size: int, seed: int,
                 bucketing: bool = False) -> None:
        if not sequences:
            raise SeqlabError("there are no training examples to batch")
        self.sequences = sequences
        self.labels = labels
        self.batch_size = batch_size
        self.bucketing = bucketing
        self.lengths = torch.tensor([len(sequence) for sequence in sequences])
        self.generator = torch.Generator().manual_seed(seed)
        self.order = self.epoch_order()
        self.position = 0

    def epoch_order(self) -> Tensor:
        """The order in which an epoch visits the sequences: a fresh shuffle, bucketed when asked."""
        order = torch.randperm(len(self.sequences), generator=self.generator)
        if not self.bucketing:
            return order
        batches: list[Tensor] = []
        for pool in order.split(self.batch_size * self.BUCKET_POOL):
            # stable sort: rows of equal length keep their shuffled order
            batches += pool[torch.sort(self.lengths[pool], stable=True).indices].split(self.batch_size)
        # a short batch (the epoch's remainder) goes last, so every other batch starts on a bucket's edge
        full = [batch for batch in batches if len(batch) == self.batch_size]
        shuffled = torch.randperm(len(full), generator=self.generator).tolist()
        return torch.cat([full[index] for index in shuffled] + [batch for batch in batches if len(batch) < self.batch_size])

    def next_batch(self) -> Batch:
        chosen: list[int] = []
        while len(chosen) < self.batch_size:
            if self.position == len(self.order):
                self.order = self.epoch_order()
                self.position = 0
            taken = self.order[self.position:self.position + self.batch_size - len(chosen)].tolist()
            chosen += taken
            self.position += len(taken)
        return self.batch(chosen)

    def batch(self, chosen: list[int]) -> Batch:
        """The rows ``chosen`` (indices into the sequences) as one batch; subclasses lay out their own."""
        inputs, lengths = pad_right([self.sequences[index] for index in chosen])
        return Batch(inputs, self.labels[chosen], reset=True, lengths=lengths)

    def state_dict(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state(), "order": self.order.clone(),
                "position": torch.tensor(self.position)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])
        self.order = state["order"].clone()
        self.position = int(state["position"])


def pad_right(sequences: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Token sequences (L,) -> (B, T_max) int64 padded with id 0 on the right, and their (B,) lengths; sequences
    of (L, K) (a token and its features at each position) -> (B, T_max, K_max), padded with 0 in both."""
    lengths = torch.tensor([len(sequence) for sequence in sequences], dtype=torch.long)
    shape = [max(sequence.shape[dim] for sequence in sequences) for dim in range(sequences[0].dim())]
    padded = torch.zeros(len(sequences), *shape, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        padded[(row, *(slice(0, size) for size in sequence.shape))] = sequence
    return padded, lengths


IGNORED_TARGET = -100  # cross_entropy's ignore_index: the targets at padded positions


def next_token_batch(padded: Tensor, lengths: Tensor, condition: Tensor | None = None) -> Batch:
    """Right-padded whole sequences (B, T+1) with (B,) lengths -> inputs (B, T), targets (B, T) shifted left
    by one with ``IGNORED_TARGET`` past each sequence's end, lengths - 1, and the (B, C) condition."""
    inputs, targets = padded[:, :-1], padded[:, 1:].clone()
    lengths = lengths - 1
    positions = torch.arange(targets.shape[1]).unsqueeze(0)  # (1, T)
    targets[positions >= lengths.unsqueeze(1)] = IGNORED_TARGET
    return Batch(inputs, targets, reset=True, lengths=lengths, condition=condition)


class ConditionedSequenceBatches(LabelledBatches):
    """Random batches of whole sequences for next-token prediction, each with its condition vector.

    The (N, C) conditions ride as ``LabelledBatches``' labels; each batch is
    laid out by ``next_token_batch``. Every sequence must hold at least two
    tokens. Bucketing (see ``LabelledBatches``) is on unless asked otherwise.
    With ``condition_groups`` ((C,) the group of each condition slot), each
    group of a row's condition is hidden (set to zero) with ``hide_probability``,
    drawn here for the whole global batch so that every process count sees the
    same conditions.
    """

    def __init__(self, sequences: list[Tensor], conditions: Tensor, *, batch_size: int, seed: int,
                 bucketing: bool = True, condition_groups: Tensor | None = None, hide_probability: float = 0.0) -> None:
        super().__init__(sequences, conditions, batch_size=batch_size, seed=seed, bucketing=bucketing)
        self.condition_groups = condition_groups
        self.hide_probability = hide_probability

    def batch(self, chosen: list[int]) -> Batch:
        padded, lengths = pad_right([self.sequences[index] for index in chosen])  # (B, T+1)
        condition = self.labels[chosen]  # (B, C)
        if self.condition_groups is not None and self.hide_probability > 0:
            groups = int(self.condition_groups.max()) + 1
            kept = torch.rand(len(chosen), groups, generator=self.generator) >= self.hide_probability  # (B, G)
            condition = condition * kept[:, self.condition_groups]
        return next_token_batch(padded, lengths, condition)
