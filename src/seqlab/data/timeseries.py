"""Time series: CSV reading, built-in synthetic series, the chronological split, scaling, windows, metrics, plots.

A series is N rows (times) of C numeric columns, held as a (N, C) float64
array. The first ``1 - val_fraction`` of the rows train; the rest are held out
(no shuffling: the future must not leak into the past).

CSV layout: comma-, tab- or semicolon-separated (the last with decimal commas,
``12,5``, as spreadsheets write it where the comma is the decimal mark; the first with numbers as spreadsheets and
banks write them, ``"$1,234.50"``, ``12.5%``), one row per time; compressed whole or
not (``seqlab.data.text.read_text``). A header is detected
(``header="auto"``) when some cell of the first row is not a number while the
cell below it is; ``"yes"``/``"no"`` force it. The time column (dates, stamps)
is named or indexed by ``time_column``; left empty, it is recognised (see
``read_series``); ``none``, no column is time. Time values are not used beyond their order: rows are
assumed evenly spaced. Without a header, columns are named by their index
("0", "1", ...), so ``--target-columns 1,2`` works either way. A file in long
format, several series stacked with columns naming each row's series
(``symbol,date,price``), is read as one row per time with each series'
columns side by side (see ``_id_columns``).

Built-in series, usable offline as ``--data builtin:NAME``, are generated with
a fixed seed so the same name is always the same series:

- ``builtin:ball``: 120 throws of a ball, one after another, sampled every
  0.05 s: columns x and y (metres). Each throw leaves the hand at a height of
  1.5-2 m with a speed of 8-14 m/s at 35-65 degrees, flies under gravity
  (g = 9.81 m/s^2, no drag) until it reaches the ground, and the next throw
  starts from x = 0. Every position has Gaussian measurement noise
  (sigma 5 cm). About 4,300 rows: a forecaster must learn the parabola and
  the jump back at each new throw.
- ``builtin:sines``: 4,000 rows of sin(2 pi t / 24) + 0.5 sin(2 pi t / 60 + 1)
  plus Gaussian noise (sigma 0.1): one column, jointly periodic every 120 steps.
"""
from __future__ import annotations

import collections
import csv
import datetime
import itertools
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import SeqlabError
from .batches import Batch
from .text import UTF8, csv_reader, excel_separator, is_number, read_text, row_numbers_first, split_lines

BUILTIN_PREFIX = "builtin:"
BUILTIN_SEED = 2006  # fixed, so evaluation regenerates exactly the series a model was trained on
GRAVITY = 9.81  # m/s^2
MAX_GUESSED_SEASON = 500
SEASON_THRESHOLD = 0.2  # weaker autocorrelation peaks are noise, not a season


@dataclass
class TimeSeries:
    """C numeric columns observed at N evenly spaced times: row t is x_t in R^C."""

    values: np.ndarray  # (N, C) float64
    columns: list[str]
    source: str  # the path or builtin:NAME, for messages and plot names
    named: bool = True  # the column names came from a header (or a builtin), not from positions
    interpolated: dict[str, int] = field(default_factory=dict)  # missing values filled in, per column
    stacked_by: list[str] = field(default_factory=list)  # the id columns of a file in long format, read side by side
    time_name: str = ""  # the time column's name, where one column of numbers or dates holds the time
    times: list[str] = field(default_factory=list)  # its cell at each row, as written
    # read from a table with its times across the header and a series on each row (``_times_across``)
    transposed: bool = False
    # series without a value, left out: rows of that table, or series of a file in long format
    empty_rows: list[str] = field(default_factory=list)
    notes_lines: int = 0  # lines of notes above the table, ended by an empty line, skipped (``_notes_lines``)
    sdmx: bool = False  # SDMX-CSV, its observations (``SDMX_VALUE``) the series, its other columns labels
    below_limit: dict[str, int] = field(default_factory=dict)  # cells "<1" read as half their limit, per column
    newest_first: bool = False  # the file's rows run from the newest time to the oldest; read oldest first

    def __len__(self) -> int:
        return self.values.shape[0]


# ----------------------------------------------------------------- builtins
def ball_series(*, throws: int = 120, step_seconds: float = 0.05, noise: float = 0.05,
                seed: int = BUILTIN_SEED) -> np.ndarray:
    """Noisy (x, y) positions of consecutive throws of a ball under gravity: (N, 2)."""
    generator = np.random.default_rng(seed)
    pieces = []
    for _ in range(throws):
        speed = generator.uniform(8.0, 14.0)
        angle = math.radians(generator.uniform(35.0, 65.0))
        height = generator.uniform(1.5, 2.0)
        velocity_x, velocity_y = speed * math.cos(angle), speed * math.sin(angle)
        # y(t) = height + v_y t - g t^2 / 2 reaches 0 at the positive root
        flight = (velocity_y + math.sqrt(velocity_y ** 2 + 2 * GRAVITY * height)) / GRAVITY
        times = np.arange(0.0, flight, step_seconds)
        pieces.append(np.stack([velocity_x * times, height + velocity_y * times - 0.5 * GRAVITY * times ** 2], axis=1))
    clean = np.concatenate(pieces)  # (N, 2)
    return clean + generator.normal(0.0, noise, clean.shape)


def sines_series(*, length: int = 4000, noise: float = 0.1, seed: int = BUILTIN_SEED) -> np.ndarray:
    """A sum of two sines (periods 24 and 60) with Gaussian noise: (N, 1)."""
    generator = np.random.default_rng(seed)
    steps = np.arange(length)
    clean = np.sin(2 * np.pi * steps / 24) + 0.5 * np.sin(2 * np.pi * steps / 60 + 1.0)
    return (clean + generator.normal(0.0, noise, length))[:, None]


BUILTINS = {"ball": (ball_series, ["x", "y"]), "sines": (sines_series, ["value"])}


def builtin_series(name: str) -> TimeSeries:
    if name not in BUILTINS:
        raise SeqlabError(f"unknown built-in series {BUILTIN_PREFIX}{name}; choose one of "
                          f"{', '.join(BUILTIN_PREFIX + known for known in BUILTINS)}")
    generate, columns = BUILTINS[name]
    return TimeSeries(generate(), list(columns), f"{BUILTIN_PREFIX}{name}")


# ---------------------------------------------------------------------- CSV
def _resolve_column(spec: str, names: list[str], source: str) -> int:
    """A column by header name, or else by index (negative counts from the end)."""
    spec = spec.strip()
    if spec in names:
        return names.index(spec)
    try:
        index = int(spec)
    except ValueError:
        raise SeqlabError(f"{source} has no column {spec!r}; its columns are {', '.join(names)}") from None
    if not -len(names) <= index < len(names):
        raise SeqlabError(f"{source} has no column {index}: it has {len(names)} columns ({', '.join(names)})")
    return index % len(names)


# lower-cased cells that mean "no value": R's NA, pandas' and databases' writing of it, Excel's #N/A, the World Bank
# DataBank's "..", Eurostat's ":", FRED's "." and the dash of statistical tables (hyphen, en dash, em dash)
MISSING_CELLS = {"", "nan", "na", "n/a", "null", "none", "?", "#n/a", "#na", "<na>", "..", ":", ".", "-", "\u2013",
                 "\u2014"}
MISSING_CHOICES = ("interpolate", "error")
# header names that say a column is time, not a series: such a column is the time column wherever it stands (a unit
# after the name, "Date (MM/DD/YYYY)" or "time [UTC]", is not part of it: ``_time_name``)
TIME_NAMES = frozenset({"t", "time", "date", "datetime", "timestamp", "ds", "index", "year", "quarter", "month", "week",
                        "day", "hour", "minute", "period", "step", "yr", "qtr", "mnth", "wk", "hr",
                        # SDMX-CSV (Eurostat, the OECD, the ECB, the IMF), Statistics Canada, FRED
                        "time_period", "ref_date", "observation_date"})
NO_TIME_COLUMN = "none"  # time_column: no column is time; the rows are in time order as they stand
# SDMX-CSV's column of observations (Eurostat, the OECD, the ECB, the IMF): its series, where no target is named; the
# file's other columns name the series (geo), the time (TIME_PERIOD) or hold attributes (units, flags, decimals)
SDMX_VALUE = "OBS_VALUE"
# a value known only to lie below a limit: "<1" (Google Trends: searched, but under 1 on its 0-100 scale), "<0.05" (a
# laboratory's detection limit)
BELOW_LIMIT = re.compile(r"<\s*(\d+(?:\.\d*)?|\.\d+)")
# 7:30, 07:30:15, 24:00 (a day's end, as TMY3 files write it)
TIME_OF_DAY = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}(?:\.\d*)?))?")


def _time_name(name: str) -> str:
    """A header name as ``TIME_NAMES`` holds it: lower case, without a unit in brackets after it."""
    return re.sub(r"\s*[(\[].*$", "", name.strip()).lower()


def _times_of_day(cells: list[str]) -> np.ndarray | None:
    """Cells that are all times of day (HH:MM or HH:MM:SS, up to 24:00) as seconds since midnight, else None."""
    matches = [TIME_OF_DAY.fullmatch(cell) for cell in cells]
    if not cells or not all(matches):
        return None
    return np.array([int(hours) * 3600 + int(minutes) * 60 + float(seconds or 0)
                     for hours, minutes, seconds in (match.groups() for match in matches)])


def read_series(path: str | Path, *, target_columns: str = "", time_column: str = "", header: str = "auto",
                missing: str = "interpolate", encoding: str = UTF8) -> TimeSeries:
    """Read ``builtin:NAME`` or a CSV file into a series of its target columns, refusing bad values with one line.

    Time columns are never targets (``time_column``; or else every column whose
    header names time, such as ``t``, ``date``, ``year`` or ``month``, see
    ``TIME_NAMES``, and a first column of dates or of evenly increasing integers
    such as 0, 1, 2, ... or 1949, 1950, ..., the row names R and pandas write; and every column of times of
    day, 13:30, read after the first column's dates or with the named ones). ``time_column="none"``: none is.
    They must increase: the named ones read together left to right (a year,
    month and day in three columns), a first column of row numbers on its own;
    a row out of order is refused, not forecast as a series. Rows whose times all decrease (newest first, as
    brokers' and exchanges' downloads list prices) are read in reverse (``TimeSeries.newest_first``). A file in long
    format (its times repeat, and increase within the rows of each series,
    named by one to three columns of repeating labels or integers: ``symbol``;
    ``store,item``) is read with its series side by side
    (``TimeSeries.stacked_by`` names those columns; see ``_id_columns``); a
    time a series lacks is a missing value. A cell below a limit (``<1``, ``<0.05``) is read as half the limit and
    counted in ``TimeSeries.below_limit``. In SDMX-CSV (a header with ``OBS_VALUE``, ``SDMX_VALUE``) that column is
    the target unless ``target_columns`` names others. Any other column of text
    is refused naming the numeric columns to give ``--target-columns``. Missing values (``MISSING_CELLS``: empty,
    nan, NA, ...; in a file of one column, an empty line or ``""``, as pandas writes a NaN there) are filled by
    linear interpolation between their neighbours (the nearest value at either end) and counted in
    ``TimeSeries.interpolated``, or refused with ``missing="error"``.
    """
    source = str(path)
    if missing not in MISSING_CHOICES:
        raise SeqlabError(f"task.missing must be one of {', '.join(MISSING_CHOICES)}, got {missing!r}")
    if source.startswith(BUILTIN_PREFIX):
        series = builtin_series(source[len(BUILTIN_PREFIX):])
        if target_columns:
            chosen = [_resolve_column(spec, series.columns, source) for spec in target_columns.split(",")]
            series = TimeSeries(series.values[:, chosen], [series.columns[index] for index in chosen], source)
        return series
    if header not in ("auto", "yes", "no"):
        raise SeqlabError(f"task.header must be auto, yes or no, got {header!r}")
    lines = split_lines(read_text(path, encoding))
    separator = excel_separator(lines)
    skipped = 1 if separator else 0  # lines before the table, so that the lines named in messages are the file's
    lines = lines[skipped:]
    first_line = next((line for line in lines if line.strip()), "")
    # a comma, or a tab or a semicolon where the first line holds one and no comma (as spreadsheets write CSV
    # where the comma is the decimal mark: 2020-01-01;12,5)
    eurostat = EUROSTAT_FIRST_CELL.match(first_line) is not None  # geo\TIME_PERIOD, then a tab
    delimiter = separator or ("\t" if eurostat else next(
        (mark for mark in ("\t", ";") if mark in first_line and "," not in first_line), ","))
    reader = csv_reader(lines, delimiter=delimiter)
    try:
        rows = [[cell.strip() for cell in row] for row in reader]
    except csv.Error as error:
        raise SeqlabError(f"{source} line {reader.line_num + skipped}: not valid CSV ({error}); fix the "
                          "quoting") from None
    if eurostat:
        rows = _eurostat(rows)
    rows = [[_typeset_number(cell) for cell in row] for row in rows]
    if delimiter == ";" or (delimiter == "\t" and _decimal_commas(rows)):
        rows = [[_decimal_point(cell) for cell in row] for row in rows]
    elif delimiter == ",":
        rows = [[_plain_number(cell) for cell in row] for row in rows]
    while rows and not any(rows[-1]):  # trailing blank lines are not data
        rows.pop()
    if not rows:
        raise SeqlabError(f"data file {source} has no rows")
    notes = _notes_lines(rows)
    rows, skipped = rows[notes:], skipped + notes
    if len(rows[0]) > 1 and all(len(row) == len(rows[0]) and not row[-1] for row in rows if any(row)):
        rows = [row[:-1] for row in rows]  # a separator at the end of every line (t,load,): no column after it
    if all(len(row) <= 1 for row in rows):  # one column: an empty line in it is an empty cell, a missing value
        rows = [row or [""] for row in rows]
    across = _times_across(rows) if header != "no" else 0
    empty_rows: list[str] = []
    if across:  # the World Bank's and Eurostat's layout: read as one row per time, a series in each column
        rows, empty_rows = _transposed(rows, across, source, skipped, missing)
        header = "yes"
    if header == "auto":
        has_header = len(rows) > 1 and (any(not is_number(cell) and is_number(below)
                                            for cell, below in zip(rows[0], rows[1])) or _unnamed_by_pandas(rows))
        if not has_header and len(rows) > 2 and not any(map(is_number, rows[0] + rows[1])) and any(
                not is_number(cell) and is_number(below) for cell, below in zip(rows[1], rows[2])):
            if len(rows[1]) != len(rows[0]):
                raise SeqlabError(f"{source}: line {2 + skipped} ({delimiter.join(rows[1])!r}) is text under the "
                                  "header, as units are written, but not one cell per column; delete that line")
            # a line of units under the names (date,temp / ,degC), as instruments write it: each unit joins its
            # column's name (temp (degC)), and the two lines are the header
            rows = [[f"{name} ({unit})" if unit else name for name, unit in zip(rows[0], rows[1])], *rows[2:]]
            skipped += 1
            has_header = True
    else:
        has_header = header == "yes"
    width = len(rows[0])
    names = rows[0] if has_header else [str(index) for index in range(width)]
    first_data_line = (2 if has_header else 1) + skipped
    data_rows = rows[1:] if has_header else rows
    if not data_rows:
        raise SeqlabError(f"data file {source} has a header but no data rows")
    for row_index, row in enumerate(data_rows):
        if width > 1 and not any(row):
            raise SeqlabError(_notes_above(source, rows, width, skipped)
                              or f"{source}: line {first_data_line + row_index} is empty; remove it or fill it in")
        if len(row) != width:
            raise SeqlabError(_ragged(source, rows, first_data_line + row_index, width, skipped))
        if has_header and row == rows[0]:
            raise SeqlabError(f"{source}: line {first_data_line + row_index} repeats the header (files joined one "
                              "after another?); remove it")
    if (has_header and width > 2 and not time_column and not target_columns
            and row_numbers_first(names, [(0, row) for row in data_rows])
            and (any(_time_name(name) in TIME_NAMES for name in names[1:])
                 or (not is_number(data_rows[0][1]) and _dates([row[1] for row in data_rows]) is not None))):
        # the row numbers DataFrame.to_csv writes (or R's row names) beside the time: neither data nor the time,
        # where they would hide it from predict and, in long format, read as the times that do not increase
        names, data_rows, width = names[1:], [row[1:] for row in data_rows], width - 1

    column_cells = [[row[index] for row in data_rows] for index in range(width)]
    if time_column == NO_TIME_COLUMN:
        clocks = []
    elif time_column:
        clocks = [[_resolve_column(time_column, names, source)]]
    elif width > 1:
        # calendar parts (year, month, day) may be split over several named columns, which increase read together;
        # a first column of dates or of row numbers (as R and pandas write row names) is time too, on its own, or
        # with the columns of times of day (a date, then 13:30) that follow it
        named = ([index for index, name in enumerate(names) if _time_name(name) in TIME_NAMES] if has_header else [])
        compact = _compact_dates(column_cells[0]) is not None  # 20200131 or 202001, as finance writes dates
        first = 0 not in named and (not is_number(column_cells[0][0]) or _is_integer_index(column_cells[0])
                                    or compact)
        of_day = [index for index in range(1, width)
                  if index not in named and _times_of_day(column_cells[index]) is not None]
        dated = first and (not is_number(column_cells[0][0]) or compact)
        clocks = [part for part in ([0, *of_day] if dated else [0] if first else [],
                                    sorted(named + ([] if dated else of_day))) if part]
        if sum(map(len, clocks)) == width:  # nothing left to forecast: the first of them is time, the rest data
            clocks = [[min(map(min, clocks))]]
    else:
        clocks = []
    time_columns = [index for clock in clocks for index in clock]
    parsed = {index: _clock(column_cells[index]) for index in time_columns}  # read once: dates are slow to read
    for index in time_columns:
        stray = _stray_time_cell(column_cells[index]) if parsed[index] is None else None
        if stray is not None:  # a total or a note below the table would otherwise be read as one more time
            cell = column_cells[index][stray]
            raise SeqlabError(f"{source}: line {first_data_line + stray}, time column {names[index]!r}: "
                              f"{cell!r} is not a time, where the column's other cells are (a "
                              "total or a note below the table?); remove the row or fix the cell")
    stacked_by = _id_columns(column_cells, clocks, time_columns, parsed)
    readable = [parsed[index] for clock in clocks for index in clock if parsed[index] is not None]
    newest_first = (not stacked_by and bool(readable) and len(data_rows) > 2
                    and _first_fall([clock[::-1] for clock in readable], np.arange(len(data_rows))) is None)
    if newest_first:  # a download that lists the newest row first (as brokers' sites write prices): oldest first
        data_rows, column_cells = data_rows[::-1], [cells[::-1] for cells in column_cells]
        parsed = {index: None if clock is None else clock[::-1] for index, clock in parsed.items()}
    if not stacked_by:
        for clock in clocks:
            _check_time_increases([column_cells[index] for index in clock], [parsed[index] for index in clock],
                                  [names[index] for index in clock], source, first_data_line)
    time_columns = [index for index in time_columns if index not in stacked_by]
    sdmx = has_header and not target_columns and SDMX_VALUE in names  # the other columns: labels and attributes
    if sdmx:
        target_columns = SDMX_VALUE
    if target_columns:
        targets = [_resolve_column(spec, names, source) for spec in target_columns.split(",")]
        for index in targets:
            if index in time_columns:
                raise SeqlabError(f"{source}: column {names[index]!r} is a time column and cannot be a target")
            if index in stacked_by:
                raise SeqlabError(f"{source}: column {names[index]!r} names the series of a file in long format and "
                                  "cannot be a target")
        if len(set(targets)) < len(targets):
            raise SeqlabError(f"--target-columns {target_columns!r} names a column twice")
    else:
        targets = [index for index in range(width) if index not in time_columns and index not in stacked_by]
    if not targets:
        raise SeqlabError(f"{source} has no numeric column besides its time column")
    if not stacked_by and time_column != NO_TIME_COLUMN and all(parsed[index] is None for index in time_columns):
        stacked = _stacked_without_time(column_cells, targets)  # a first column of labels taken as time too
        if stacked is not None:  # else each series would be read as the next rows of one
            labels = first_few(list(dict.fromkeys(column_cells[stacked])), 3)
            raise SeqlabError(f"{source}: column {names[stacked]!r} holds labels in blocks of rows ({labels}), as a "
                              "file of several series stacked one after another does, but no column reads as their "
                              "time; name it with --time-column, or pass --time-column none if the rows are one "
                              "series in time order")
    counts = collections.Counter(names[index] for index in targets)
    named_twice = next((name for name, count in counts.items() if count > 1), None) if has_header else None
    if named_twice is not None:  # its forecasts, metrics and plots would be told apart by position alone
        twice = [str(index) for index in targets if names[index] == named_twice]
        raise SeqlabError(f"{source}: columns {' and '.join(twice)} (counting from 0) are both named "
                          f"{named_twice!r}; rename one, or leave one out with --target-columns")

    values = np.empty((len(data_rows), len(targets)))
    below_limit: collections.Counter[str] = collections.Counter()
    for row_index, row in enumerate(data_rows):
        line = first_data_line + (len(data_rows) - 1 - row_index if newest_first else row_index)
        for position, column in enumerate(targets):
            cell = row[column]
            below = BELOW_LIMIT.fullmatch(cell)
            if below:  # known only to lie between 0 and the limit: half of it, as a detection limit is commonly read
                values[row_index, position] = float(below.group(1)) / 2
                below_limit[names[column]] += 1
                continue
            if cell.lower() in MISSING_CELLS:
                if missing == "error":
                    raise SeqlabError(f"{source}: line {line}, column {names[column]!r} is missing "
                                      f"({cell or 'empty'}); fill it in, or drop --missing error to interpolate")
                values[row_index, position] = np.nan
                continue
            try:
                value = float(cell)
            except ValueError:
                raise SeqlabError(_not_a_number(source, line, cell, column, names, targets, column_cells)) from None
            if not math.isfinite(value):
                raise SeqlabError(f"{source}: line {line}, column {names[column]!r} is {cell}; give a finite number")
            values[row_index, position] = value
    columns = [names[index] for index in targets]
    clock = [index for index in time_columns if parsed[index] is not None]
    times = column_cells[clock[0]] if clock else []
    if stacked_by:
        values, columns, times, empty_rows = _side_by_side(
            values, columns, [column_cells[index] for index in stacked_by], [column_cells[index] for index in clock],
            [parsed[index] for index in clock], [names[index] for index in stacked_by],
            [names[index] for index in clock], source, first_data_line, missing)
    values, interpolated = _interpolate(values, columns, source)
    single = len(clock) == 1  # one column of numbers or dates holds the time: predict can go on from it
    return TimeSeries(values, columns, source, named=has_header, interpolated=interpolated,
                      stacked_by=[names[index] for index in stacked_by],
                      time_name=names[clock[0]] if single else "", times=times if single else [],
                      transposed=bool(across), empty_rows=empty_rows, notes_lines=notes, sdmx=sdmx,
                      below_limit=dict(below_limit), newest_first=newest_first)


YEAR_HEADER = re.compile(r"(1[0-9]{3}|2[0-9]{3})(?: \[YR\1\])?")  # 1990, or 1990 [YR1990] as the World Bank writes


# Eurostat's TSV: its first cell names the label columns, joined by commas, and the dimension across the header after
# a backslash (freq,unit,geo\TIME_PERIOD; geo\time in older files), then a tab
EUROSTAT_FIRST_CELL = re.compile(r"[^\t\\]*\\(?i:time|time_period) *\t")
FLAGGED = re.compile(r"(\S+) +([a-z]{1,4})")  # a value and Eurostat's flags after it: "12.3 p" (provisional), ": c"


def _eurostat(rows: list[list[str]]) -> list[list[str]]:
    """Eurostat's TSV as a plain table with its times across the header (``_times_across``): the comma-joined labels
    of each row's first cell in a cell each (the header's before the backslash), and each value without its flags
    ("12.3 p" -> "12.3"; ": c", confidential, -> ":", missing)."""
    table = []
    for index, row in enumerate(rows):
        if not row:
            table.append(row)
            continue
        labels = row[0].split("\\")[0] if index == 0 else row[0]
        cells = row[1:] if index == 0 else [_unflagged(cell) for cell in row[1:]]
        table.append([label.strip() for label in labels.split(",")] + cells)
    return table


def _unflagged(cell: str) -> str:
    """A Eurostat value without the flags after it ("12.3 p" -> "12.3"), or the cell as it is."""
    match = FLAGGED.fullmatch(cell)
    return match.group(1) if match else cell


def _times_across(rows: list[list[str]]) -> int:
    """Where a table's times run across its header, the first of their columns, else 0: labels first (a country,
    its code: text on every row), then three or more years (1990, or 1990 [YR1990]) or dates with a year (2020-01,
    Jan 2020) that increase, with numbers below them. Read as usual, each year would be forecast as a series over
    the countries. Columns named by years over rows of days or dates (day,2019,2020) are series, as usual."""
    if len(rows) < 2:
        return 0
    header = rows[0]
    first = next((index for index, cell in enumerate(header) if re.search(r"\d{4}", cell)), 0)
    times, labels = header[first:], [row[index] for row in rows[1:] for index in range(min(first, len(row)))]
    if (first == 0 or len(times) < 3 or any(not cell or is_number(cell) for cell in header[:first] + labels)
            or _dates([row[0] for row in rows[1:] if row]) is not None):
        return 0
    years = [YEAR_HEADER.fullmatch(cell) for cell in times]
    if all(years):
        clock = np.array([int(year.group(1)) for year in years])
    elif all(re.search(r"\d{4}", cell) and not is_number(cell) for cell in times) and _dates(times) is not None:
        clock = _clock(times)
    else:
        return 0
    below = [cell for row in rows[1:] for cell in row[first:]]
    numbers = sum(is_number(cell) for cell in below)
    return first if clock is not None and np.all(np.diff(clock) > 0) and numbers > len(below) / 2 else 0


def _transposed(rows: list[list[str]], first: int, source: str, skipped: int,
                missing: str) -> tuple[list[list[str]], list[str]]:
    """A table with its times across the header from column ``first`` on (``_times_across``) and a series on each
    row, named by the label cells before it -> the same table with one row per time (a time column, ``year``
    where the header holds years, then a column per series), and the labels of the rows without a value (left
    out: a country the indicator has no figure for). Each series is named by its first label column that tells
    the rows apart (the country's name), else by all the labels that vary, joined by " / ". Every cell is
    checked here, where its line in the file is known."""
    header, body = rows[0], [(line, row) for line, row in enumerate(rows[1:], 2 + skipped) if any(row)]
    for line, row in body:
        if len(row) != len(header):
            raise SeqlabError(_ragged(source, rows, line, len(header), skipped))
    labels = [row[:first] for _, row in body]
    varying = [index for index in range(first) if len({row[index] for row in labels}) > 1] or [0]
    unique = next((index for index in varying if len({row[index] for row in labels}) == len(labels)), None)
    names = [row[unique] if unique is not None else " / ".join(row[index] for index in varying) for row in labels]
    valued = [any(cell.lower() not in MISSING_CELLS for cell in row[first:]) for _, row in body]
    for (line, row), name, kept in zip(body, names, valued):
        for time, cell in zip(header[first:], row[first:]):
            if cell.lower() in MISSING_CELLS:
                if missing == "error" and kept:
                    raise SeqlabError(f"{source}: line {line}, {name!r} in {time!r} is missing ({cell or 'empty'}); "
                                      "fill it in, or drop --missing error to interpolate")
            elif not is_number(cell) or not math.isfinite(float(cell)):
                raise SeqlabError(f"{source}: line {line}, {name!r} in {time!r} is {cell!r}, not a number; fix the "
                                  "cell, or leave it empty as missing")
    series = [(name, row[first:]) for (_, row), name, kept in zip(body, names, valued) if kept]
    years = [YEAR_HEADER.fullmatch(cell) for cell in header[first:]]
    times = [year.group(1) for year in years] if all(years) else header[first:]
    table = [["year" if all(years) else "time"] + [name for name, _ in series]]
    table += [[time] + [cells[offset] for _, cells in series] for offset, time in enumerate(times)]
    return table, [name for name, kept in zip(names, valued) if not kept]


def _notes_lines(rows: list[list[str]]) -> int:
    """How many lines of notes lie above the table, where an empty line ends them (the World Bank's download starts
    with its source and date, each followed by an empty line): the lines up to the last empty one, where the table
    below it has no empty line and at least two lines, and every line of the notes has fewer cells than the table's
    first line. A file with none, or with notes the table follows at once, gives 0: a line with fewer cells directly
    above is as likely a header one cell short (R's ``write.table`` leaves the row names' cell out), and is named
    by ``_notes_above``."""
    last_empty = max((index for index, row in enumerate(rows) if not any(row)), default=-1)
    table = rows[last_empty + 1:]
    if last_empty < 1 or len(table) < 2 or len(table[0]) < 2:
        return 0
    return last_empty + 1 if all(len(row) < len(table[0]) for row in rows[:last_empty] if any(row)) else 0


def _ragged(source: str, rows: list[list[str]], line: int, width: int, skipped: int) -> str:
    """The one line for a row whose cells are not as many as the first row's: most often a stray cell, but see
    ``_notes_above``. ``skipped``: the file's lines before ``rows``."""
    return (_notes_above(source, rows, width, skipped)
            or f"{source}: line {line} has {len(rows[line - 1 - skipped])} cells, the first row has {width}")


def _stacked_without_time(column_cells: list[list[str]], used: list[int]) -> int | None:
    """A column, not in ``used``, of labels (text, neither numbers nor times) that come in blocks of at least three
    rows, each label in one block (AT, AT, ..., BE, BE, ...), as the series' names of a file in long format do; or
    None."""
    for index, cells in enumerate(column_cells):
        if index in used or all(cell.lower() in MISSING_CELLS or is_number(cell) for cell in cells):
            continue
        blocks = [label for label, _ in itertools.groupby(cells)]
        if 2 <= len(blocks) == len(set(blocks)) and len(cells) >= 3 * len(blocks) and _clock(cells) is None:
            return index
    return None


def first_few(names: list[str], count: int) -> str:
    """The first ``count`` names, comma-separated, and ", ..." where there are more."""
    return ", ".join(names[:count]) + (", ..." if len(names) > count else "")


def _unnamed_by_pandas(rows: list[list[str]]) -> bool:
    """Whether the first row is the header pandas writes for an index without a name and columns without names (a
    Series without a name, a frame of an array): an empty cell, then 0, 1, 2, ...; the rows below all have an index."""
    first = rows[0]
    return (len(first) > 1 and first[0] == "" and first[1:] == [str(index) for index in range(len(first) - 1)]
            and all(row and row[0] for row in rows[1:] if any(row)))


def _notes_above(source: str, rows: list[list[str]], width: int, skipped: int) -> str | None:
    """Where most lines agree with each other and not with the first, the one line naming notes above the table
    (a title, a station's details, as instruments write them; the World Bank's source and date), else None."""
    counts = collections.Counter(len(row) for row in rows[1:] if any(row))  # blank lines are neither
    common, how_many = counts.most_common(1)[0]
    if common != width and how_many > counts.total() // 2:
        start = next(index for index, row in enumerate(rows) if len(row) == common) + 1 + skipped
        lines = "the first line has" if start == 2 else f"the first {start - 1} lines have"  # a sep= line counts
        return (f"{source}: {lines} {width} cells and most lines after {common}: if line{'s' if start > 2 else ''} "
                f"above line {start} are notes, not the table, delete them so that the file starts with its header")
    return None


# digits grouped in threes by a space, as French, Swiss and ISO typesetting writes thousands (a no-break space, a
# narrow one or a thin one where a spreadsheet or a word processor wrote them): "1 234,5", "12 345.6"
GROUP_SPACE = "[ \u00a0\u202f\u2009]"
SPACED_THOUSANDS = re.compile(rf"[+-]?\d{{1,3}}(?:{GROUP_SPACE}\d{{3}})+(?:[.,]\d+)?")
PARENTHESISED = re.compile(r"\(([^()-]*\d[^()]*)\)")  # an accountant's negative number: (1,234.50)
# a number with a currency symbol before it or a currency symbol or percent sign after it, a space between or not, as
# spreadsheets write money and shares in every locale: "$1,234.50", "-€12.00", "€ 1.234,50", "5.000,00 €", "12,5 %"
UNIT_MARKED = re.compile(rf"([+-]?)(?:[$€£¥]{GROUP_SPACE}?)?([+-]?\d(?:[\d.,]|{GROUP_SPACE}(?=\d))*)"
                         rf"(?:{GROUP_SPACE}?[$€£¥%])?")


def _typeset_number(cell: str) -> str:
    """A number as typesetting and accounting write it, in the plain form the file's other readings start from:
    the minus sign U+2212 as "-", without a currency symbol or percent sign (in the unit written: "12.5%" -> 12.5),
    thousands grouped by spaces without them, and a number in parentheses as its negative ("(1,234.50)" ->
    "-1,234.50"); any other cell as it is."""
    cell = cell.replace("\u2212", "-")
    match = PARENTHESISED.fullmatch(cell)
    if match:
        cell = "-" + match.group(1).strip()
    marked = UNIT_MARKED.fullmatch(cell) if any(mark in cell for mark in "$€£¥%") else None
    if marked:
        cell = marked.group(1) + marked.group(2)
    if SPACED_THOUSANDS.fullmatch(cell):
        cell = re.sub(GROUP_SPACE, "", cell)
    return cell


# a number as a spreadsheet or a bank writes it in a comma-separated file (where a comma in a cell was quoted), its
# currency symbol or percent sign already gone (``_typeset_number``): with commas between thousands ("1,234.50")
THOUSANDS_COMMAS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")


def _plain_number(cell: str) -> str:
    """A number with commas between thousands as the number it writes ("1,234.50" -> 1234.50); any other cell as it
    is."""
    return cell.replace(",", "") if THOUSANDS_COMMAS.fullmatch(cell) else cell


DECIMAL_COMMA = re.compile(r"[+-]?(\d+|\d{1,3}(\.\d{3})+),\d+([eE][+-]?\d+)?")  # 12,5 or 1.234,5


def _decimal_point(cell: str) -> str:
    """A number written with a decimal comma (and points between thousands), as a number: 1.234,5 -> 1234.5."""
    if DECIMAL_COMMA.fullmatch(cell):
        return cell.replace(".", "").replace(",", ".")
    return cell


THOUSANDS_OR_DECIMAL = re.compile(r"[+-]?\d{1,3},\d{3}")  # 1,234: a thousand and more, or one and a fraction


def _decimal_commas(rows: list[list[str]]) -> bool:
    """Whether a tab-separated file writes decimal commas: some cell is a number written so that cannot be read as
    commas between thousands (12,5; 1.234,5), as a spreadsheet set to German or French exports text."""
    return any(DECIMAL_COMMA.fullmatch(cell) and not THOUSANDS_OR_DECIMAL.fullmatch(cell) for row in rows
               for cell in row)


def _not_a_number(source: str, line: int, cell: str, column: int, names: list[str], targets: list[int],
                  column_cells: list[list[str]]) -> str:
    """The one line for a cell that is not a number: a column of text (labels such as "rain", ids such as
    "002-001", mostly not numbers) is left out by naming the numeric columns; a stray cell in a numeric column is
    fixed."""
    numeric = [names[index] for index in targets
               if all(value.lower() in MISSING_CELLS or is_number(value) for value in column_cells[index])]
    choose = f"--target-columns {','.join(numeric)}" if numeric else ""
    name = names[column]
    if THOUSANDS_OR_DECIMAL.fullmatch(cell):  # a tab-separated file that nowhere says which its commas are
        return (f"{source}: line {line}, column {name!r}: {cell!r} could be {cell.replace(',', '')} or "
                f"{cell.replace(',', '.')}; write the numbers without commas between thousands, or with decimal "
                "points (or separate the cells with semicolons, which say the comma is the decimal mark)")
    if sum(is_number(value) for value in column_cells[column]) < len(column_cells[column]) / 2:  # mostly text
        return (f"{source}: column {name!r} holds text, not numbers ({cell!r} on line {line}); "
                + (f"forecast the numeric columns with {choose}" if choose else "give numeric columns to forecast"))
    return (f"{source}: line {line}, column {name!r}: {cell!r} is not a number; fix the cell"
            + (f", or leave the column out with {choose}" if choose else ""))


def _is_integer_index(cells: list[str]) -> bool:
    """Whether the cells are integers rising by one fixed step: a row index or a year, not a measurement."""
    if len(cells) < 3 or not all(cell.lstrip("-").isdigit() for cell in cells):
        return False
    steps = np.diff(np.array([int(cell) for cell in cells]))
    return bool(steps[0] > 0 and np.all(steps == steps[0]))


def _clock(cells: list[str]) -> np.ndarray | None:
    """A time column's cells as numbers, times of day (seconds) or dates (int64 ticks since the epoch), or None for
    labels that are none of these ("Q1", "monday", "MSFT"): nothing to order them by."""
    if all(is_number(cell) for cell in cells) and _compact_dates(cells) is None:
        return np.array([float(cell) for cell in cells])
    seconds = _times_of_day(cells)
    if seconds is not None:
        return seconds
    import pandas

    dates = _dates(cells)
    # epoch ticks; where the cells carry a UTC offset (2022-03-20T11:00:00+01:00, ...Z), UTC's
    return None if dates is None else pandas.DatetimeIndex(dates[0]).asi8


def _stray_time_cell(cells: list[str]) -> int | None:
    """The first of the few cells (at most one in twenty) of a column of ten or more numbers, or dates in one
    layout, that are neither, or None: a "Total" row under a table of dates. A missing cell is not one, nor is
    any cell of a column of labels ("Q1", "monday", R's row names), whose first cell is not a date pandas can
    lay out."""
    import pandas

    present = [(index, cell) for index, cell in enumerate(cells) if cell.lower() not in MISSING_CELLS]
    if not present:
        return None
    numbers = [is_number(cell) for _, cell in present]
    if sum(numbers) >= len(present) / 2:
        neither = [index for (index, _), number in zip(present, numbers) if not number]
    else:
        layout = pandas.tseries.api.guess_datetime_format(present[0][1])
        if layout is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            dates = pandas.to_datetime(pandas.Series([cell for _, cell in present]), format=layout, errors="coerce")
        neither = [index for (index, _), date in zip(present, dates) if pandas.isna(date)]
    few = 0 < len(neither) <= max(1, len(present) // 20) and len(present) - len(neither) >= 10
    return neither[0] if few else None


def _dates(cells: list[str]) -> tuple[Any, bool] | None:
    """Cells as dates (a pandas Series of datetimes) and whether they were read day first; None if they are not.

    One format for the whole column, guessed from its first cell month first (01/13/2020) or else day first
    (13/01/2020, 13.01.2020); times with UTC offsets that change (+01:00, then +02:00 in summer) read in UTC;
    quarters and months as statistics offices label them (1990 Q1, Q1 1990, 1990M01) at their first day;
    cells in several formats are each read on their own."""
    import pandas

    cells = _period_starts(cells) or _compact_dates(cells) or cells
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # pandas' note that it could not guess a format
        for options in ({}, {"dayfirst": True}, {"utc": True}, {"format": "mixed"}):
            try:
                return pandas.to_datetime(pandas.Series(cells), **options), bool(options.get("dayfirst"))
            except (ValueError, OverflowError):
                continue
    return None


# 1990M01, as the IMF, Eurostat and Statistics Norway write months, and 1990m1, as Stata writes them (%tm)
STATISTICS_MONTH = re.compile(r"(\d{4})([Mm])(\d{1,2})")
# a month and a two-digit year, as Excel's mmm-yy writes them (Jan-15: January 2015); pandas reads Jan-15 as the
# 15th of January of year 1
MONTH_YEAR = re.compile(r"([A-Za-z]{3})[- ]?(\d{2})")  # Jan-15, Jan 15, Jan15
MONTH_ABBREVIATIONS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# a date as an integer, as finance and statistics files write them: 20200131 (a day) or 202001 (a month; Kenneth
# French's data library, CRSP), years 1700 to 2199
COMPACT_DATE = re.compile(r"(1[7-9]\d{2}|2[01]\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])?")
COMPACT_MONTHS_AT_LEAST = 6  # a column of fewer 6-digit integers could be counts whose last two digits fall in 01-12


def _compact_dates(cells: list[str]) -> list[str] | None:
    """Cells that write dates as integers (20200131, or 202001 for a month: all of one length) as ISO dates, or None
    where some cell is not one, or the cells are too few to tell months from other integers."""
    lengths = {len(cell) for cell in cells}
    if lengths not in ({6}, {8}) or (lengths == {6} and len(cells) < COMPACT_MONTHS_AT_LEAST):
        return None
    matches = [COMPACT_DATE.fullmatch(cell) for cell in cells]
    if not all(matches):
        return None
    return [f"{match.group(1)}-{match.group(2)}-{match.group(3) or '01'}" for match in matches]


def _period_starts(cells: list[str]) -> list[str] | None:
    """Quarter, month or week labels pandas cannot read (1990 Q1, Q1 1990, 1990M01, 1990m1, Jan-15; ISO 8601 weeks,
    2020-W05 or 2020W05; pandas' weekly periods, 2015-01-05/2015-01-11) as their first days (ISO: a week's Monday),
    or None where some cell is not one."""
    months = _months_of_years(cells)
    if months is not None:
        return months
    starts = []
    for cell in cells:
        quarter, month, week = QUARTER.fullmatch(cell), STATISTICS_MONTH.fullmatch(cell), ISO_WEEK.fullmatch(cell)
        span = PERIOD_SPAN.fullmatch(cell)
        if quarter:
            year, number = (quarter.group(1), quarter.group(4)) if quarter.group(1) else (quarter.group(8),
                                                                                        quarter.group(6))
            starts.append(f"{year}-{3 * int(number) - 2:02d}-01")
        elif month and 1 <= int(month.group(3)) <= 12:
            starts.append(f"{month.group(1)}-{int(month.group(3)):02d}-01")
        elif week:
            try:  # week 53 only in the years that have one
                starts.append(datetime.date.fromisocalendar(int(week.group(1)), int(week.group(3)), 1).isoformat())
            except ValueError:
                return None
        elif span:
            starts.append(span.group(1))
        else:
            return None
    return starts


def _months_of_years(cells: list[str]) -> list[str] | None:
    """Cells of a month and a two-digit year (Jan-15, as Excel's mmm-yy writes them) as their first days, the year
    read as strptime's %y reads it (69-99: 1900s, else 2000s), or None. Jan-15 can also be a day without a year (the
    15th of January): cells are months of years only where no two in a row name the same month, as in a monthly or
    quarterly series, and not in a daily one (Jan-14, Jan-15)."""
    matches = [MONTH_YEAR.fullmatch(cell) for cell in cells]
    if not cells or not all(match and match.group(1).lower() in MONTH_ABBREVIATIONS for match in matches):
        return None
    names = [match.group(1).lower() for match in matches]
    if any(name == following for name, following in zip(names, names[1:])):
        return None
    years = [int(match.group(2)) for match in matches]
    return [f"{year + (1900 if year >= 69 else 2000)}-{MONTH_ABBREVIATIONS.index(name) + 1:02d}-01"
            for name, year in zip(names, years)]


def future_times(cells: list[str], horizon: int) -> list[str] | None:
    """The ``horizon`` times after a time column's last cells, written as it writes them, or None where they cannot
    be told: numbers that rise by one fixed step (0, 1, 2; 1990, 1995, 2000) go on by it; dates go on at the
    frequency pandas infers from the last ones (daily, business days, month starts or ends, quarters, hours), or
    where a gap hides it, by the step that at least 80% of them take; written in the layout that writes the last
    ones back (1997Q3 after 1997Q2, Jul 1992 after Jun 1992), else in ISO 8601."""
    import pandas

    last = cells[-50:]
    if len(last) < 3:
        return None
    if all(is_number(cell) for cell in last) and _compact_dates(last) is None:
        numbers = np.array([float(cell) for cell in last])
        steps = np.diff(numbers[-3:])
        if not (steps[0] > 0 and np.all(steps == steps[0])):
            return None
        future = numbers[-1] + steps[0] * np.arange(1, horizon + 1)
        integers = all(cell.lstrip("+-").isdigit() for cell in last)
        return [str(int(value)) if integers else format(value, ".10g") for value in future]
    read = _dates(last)
    if read is None:
        return None
    dates, dayfirst = read
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            frequency = pandas.infer_freq(pandas.DatetimeIndex(dates))
        except (TypeError, ValueError):
            return None
        if frequency is None:  # a gap or two among the last times: the step most of them take, if one does
            steps = pandas.Series(np.diff(pandas.DatetimeIndex(dates))).value_counts()
            if steps.index[0] <= pandas.Timedelta(0) or steps.iloc[0] < 0.8 * (len(dates) - 1):
                return None
            frequency = steps.index[0]
        future = pandas.date_range(dates.iloc[-1], periods=horizon + 1, freq=frequency)[1:]
        layouts = [pandas.tseries.api.guess_datetime_format(cell, dayfirst=first)
                   for first in (dayfirst, not dayfirst) for cell in last[::-1]]
    # the first way of writing a date that writes every one of the last cells back as it was (01/01/2020 alone is
    # either order): ISO 8601 with its offset, the layouts pandas guesses, then those it cannot (months, quarters)
    writers = [*(lambda date, sep=sep, parts=parts, zulu=zulu: _iso(date, sep, parts, zulu)  # 12:00:00.000Z too
                 for sep in ("T", " ") for parts in ("auto", "milliseconds", "microseconds") for zulu in (False, True)),
               *(_strftime(layout) for layout in dict.fromkeys([*layouts, *MONTH_LAYOUTS]) if layout is not None),
               *(_strftime(layout, upper=True) for layout in MONTH_LAYOUTS if "%b" in layout or "%B" in layout),
               *_quarter_writers(last[-1]), *_month_writers(last[-1]), *_week_writers(last[-1]),
               *_span_writers(last[-1])]
    written = next((writer for writer in writers if all(writer(date) == cell for date, cell in zip(dates, last))),
                   None)
    if written is None and dates.dt.tz is not None:  # offsets that changed, read in UTC: ISO 8601 in UTC
        written = writers[0]
    if written is None:  # a layout pandas cannot write back ("Jan 1 2000"): ISO, to the second or the microsecond
        parts = "microseconds" if any(date.microsecond for date in future) else "seconds"
        written = (_strftime("%Y-%m-%d") if all(date == date.normalize() for date in future)
                   else lambda date: _iso(date, " ", parts, False))
    return [written(date) for date in future]


# month layouts pandas does not guess (it guesses layouts with a day): May 1992, 1992/05, May-92; days without a
# year, Jan-14 (pandas reads them in year 1); and Excel's dd-mmm-yy, 01-Jan-15. Each also in capitals (JAN-15)
MONTH_LAYOUTS = ("%b %Y", "%B %Y", "%b-%Y", "%B-%Y", "%b-%y", "%b %y", "%b%y", "%Y/%m", "%m/%Y", "%m-%Y", "%m.%Y",
                 "%Y%m", "%Y %b", "%Y %B", "%YM%m", "%b-%d", "%d-%b-%y", "%d-%b-%Y")
# 1990Q1, 1990-Q1, Q1 1990; 1990q1 as Stata writes quarters (%tq)
QUARTER = re.compile(r"(\d{4})([ -]?)([Qq])([1-4])|([Qq])([1-4])([ -]?)(\d{4})")
ISO_WEEK = re.compile(r"(\d{4})(-?)W(\d{2})")  # 2020-W05 or 2020W05: ISO 8601 weeks, Monday to Sunday
PERIOD_SPAN = re.compile(r"(\d{4}-\d{2}-\d{2})/(\d{4}-\d{2}-\d{2})")  # pandas' weekly periods: 2015-01-05/2015-01-11


def _iso(date: Any, sep: str, parts: str, zulu: bool) -> str:
    """A time in ISO 8601 (``sep`` between date and time, to the ``parts`` of isoformat's timespec), UTC as Z where
    ``zulu``."""
    text = date.isoformat(sep=sep, timespec=parts)
    return text.replace("+00:00", "Z") if zulu else text


def _strftime(layout: str, *, upper: bool = False) -> Any:
    return (lambda date: date.strftime(layout).upper()) if upper else (lambda date: date.strftime(layout))


def _quarter_writers(cell: str) -> list[Any]:
    """A writer of quarters laid out as ``cell`` is (1990Q1, 1990-Q1, Q1 1990, 1990q1), or none where it is not one."""
    match = QUARTER.fullmatch(cell)
    if match is None:
        return []
    if match.group(1):
        return [lambda date, mark=match.group(2), q=match.group(3): f"{date.year}{mark}{q}{(date.month - 1) // 3 + 1}"]
    return [lambda date, mark=match.group(7), q=match.group(5): f"{q}{(date.month - 1) // 3 + 1}{mark}{date.year}"]


def _month_writers(cell: str) -> list[Any]:
    """A writer of months laid out as ``cell`` is (1990M01, 1990m1), or none where it is not one."""
    match = STATISTICS_MONTH.fullmatch(cell)
    if match is None:
        return []
    # 1990M01 pads the month, Stata's 1990m1 does not: both, the likelier first; the one that writes the last cells
    # back is taken
    widths = (2, 1) if match.group(2) == "M" else (1, 2)
    return [lambda date, mark=match.group(2), width=width: f"{date.year}{mark}{date.month:0{width}d}"
            for width in widths]


def _span_writers(cell: str) -> list[Any]:
    """A writer of periods laid out as ``cell`` is, their first and last days (2015-01-05/2015-01-11, as pandas
    writes a weekly period), or none where it is not one."""
    match = PERIOD_SPAN.fullmatch(cell)
    if match is None:
        return []
    span = datetime.date.fromisoformat(match.group(2)) - datetime.date.fromisoformat(match.group(1))
    return [lambda date: f"{date:%Y-%m-%d}/{date + span:%Y-%m-%d}"]


def _week_writers(cell: str) -> list[Any]:
    """A writer of ISO 8601 weeks laid out as ``cell`` is (2020-W05, 2020W05), or none where it is not one."""
    match = ISO_WEEK.fullmatch(cell)
    if match is None:
        return []
    return [lambda date, mark=match.group(2): "{0}{mark}W{1:02d}".format(*date.isocalendar()[:2], mark=mark)]


def _first_fall(clocks: list[np.ndarray], rows: np.ndarray) -> int | None:
    """The position in ``rows`` of the first row that is not later than the one before it, reading the clocks
    together left to right (year, then month, then day); None where every row is later."""
    order = np.zeros(len(rows) - 1, dtype=int)  # per pair of rows: +1 later, -1 earlier, 0 not told yet
    for clock in clocks:
        times = clock[rows]
        step = (times[1:] > times[:-1]).astype(int) - (times[1:] < times[:-1]).astype(int)
        order = np.where(order == 0, step, order)
    falls = np.flatnonzero(order <= 0)
    return int(falls[0]) + 1 if len(falls) else None


def _id_columns(column_cells: list[list[str]], clocks: list[list[int]], time_columns: list[int],
                parsed: dict[int, np.ndarray | None]) -> list[int]:
    """The columns that name the series of a file in long format (several series stacked, one row per series
    and time: ``symbol,date,price``, ``store,item,date,sales``), or none.

    The file is in long format when its time does not increase from row to row but does within the rows of each
    series, and most rows share their time with another row (a repeated hour where clocks go back, or a row
    out of place, is not long format). The series are named by the fewest columns (one, two or three) that make it so, among the columns of
    labels (neither numbers nor dates) first, then of integers, each repeating (at most one distinct value per two
    rows, and at least two of them); columns of labels constant within each series name it too. A first column
    of repeating labels was taken as time; it may be one of them. ``parsed``: each time column read (``_clock``)."""
    rows = len(column_cells[0])

    def labels(index: int) -> bool:
        cells = column_cells[index]
        return not all(cell.lower() in MISSING_CELLS or is_number(cell) for cell in cells) and _clock(cells) is None

    def integers(index: int) -> bool:
        cells = column_cells[index]
        return all(cell.lstrip("-").isdigit() for cell in cells) and not _is_integer_index(cells)

    first_alone = len(clocks) > 1 and clocks[0] == [0]  # a first column taken as time beside named ones
    candidates = [index for index, cells in enumerate(column_cells)
                  if (index not in time_columns or index == 0 and first_alone)
                  and 2 <= len(set(cells)) <= rows // 2 and (labels(index) or integers(index))]
    if not candidates:
        return []
    times = [parsed[index] for index in time_columns if index not in candidates and parsed[index] is not None]
    if not times or _first_fall(times, np.arange(rows)) is None:
        return []
    order = np.lexsort(times[::-1])  # the first clock varies slowest
    later = np.any(np.diff(np.stack(times, axis=1)[order], axis=0) != 0, axis=1)
    rank = np.empty(rows, dtype=np.int64)
    rank[order] = np.concatenate([[0], np.cumsum(later)])  # each row's time, as a dense rank
    if (np.bincount(rank)[rank] > 1).mean() < 0.5:  # stacked series share most of their times: not a stray row
        return []
    codes = {index: np.unique(column_cells[index], return_inverse=True)[1] for index in candidates}
    named = [index for index in candidates if labels(index)]
    ordered = named + [index for index in candidates if index not in named]
    for size in (1, 2, 3):
        for chosen in itertools.combinations(ordered, size):
            series = np.unique(np.stack([codes[index] for index in chosen], axis=1), axis=0, return_inverse=True)[1]
            by_series = np.lexsort((np.arange(rows), series))  # each series' rows in file order
            same = series[by_series][1:] == series[by_series][:-1]
            if np.all(np.diff(rank[by_series])[same] > 0):
                constant = [index for index in named if index not in chosen and len(np.unique(
                    np.stack([series, codes[index]], axis=1), axis=0)) == series.max() + 1]
                return sorted([*chosen, *constant])
    return []


def _side_by_side(values: np.ndarray, columns: list[str], ids: list[list[str]], clocks: list[list[str]],
                  times: list[np.ndarray], id_names: list[str], clock_names: list[str], source: str,
                  first_data_line: int, missing: str) -> tuple[np.ndarray, list[str], list[str], list[str]]:
    """A file in long format, (rows, C) values with each row's series ``ids`` and time ``clocks``, as one row per
    time of (times, S x C) values: series after series (in the order they first appear), each with its C
    columns, named by the series' id (and the column, where C > 1). A time a series has no row at is missing;
    a series column without any value (an id whose rows are all NA) is left out. ``times``: the clocks read
    (``_clock``). Also each time's first clock cell, as written, and the names of the series left out."""
    keys = list(zip(*(clock.tolist() for clock in times)))  # per row, its time, comparable
    order = sorted(set(keys))
    position = {key: index for index, key in enumerate(order)}
    series: dict[tuple[str, ...], int] = {}
    for key in zip(*ids):
        series.setdefault(key, len(series))
    count = len(columns)
    wide = np.full((len(order), len(series) * count), np.nan)
    written = [""] * len(order)
    for row, (key, time) in enumerate(zip(zip(*ids), keys)):
        first = series[key] * count
        wide[position[time], first:first + count] = values[row]
        written[position[time]] = clocks[0][row]
    labels = [" ".join(key) for key in series]
    named = [label if count == 1 else " ".join(part for part in (label, column) if part)  # an unnamed column: the id
             for label in labels for column in columns]
    valued = ~np.isnan(wide).all(axis=0)
    if not valued.any():
        raise SeqlabError(f"{source}: in long format (series by {', '.join(map(repr, id_names))}), no series has a "
                          "value; fill the file in")
    empty = [name for name, kept in zip(named, valued) if not kept]
    wide, named = wide[:, valued], [name for name, kept in zip(named, valued) if kept]
    if missing == "error":
        gaps = np.argwhere(np.isnan(wide))
        if len(gaps):
            time, column = gaps[0]
            row = next((row for row, key in enumerate(keys) if key == order[time]), 0)
            shown = ", ".join(f"{name} {cells[row]}" for name, cells in zip(clock_names, clocks))
            raise SeqlabError(f"{source}: in long format (series by {', '.join(map(repr, id_names))}), "
                              f"{named[column]!r} has no value at {shown} (line {first_data_line + row} has that "
                              "time); fill it in, or drop --missing error to interpolate")
    return wide, named, written, empty


def _check_time_increases(columns: list[list[str]], parsed: list[np.ndarray | None], names: list[str], source: str,
                          first_data_line: int) -> None:
    """Refuse time columns of numbers or dates (``parsed``: each read by ``_clock``) that do not strictly increase,
    read together left to right (year, then month, then day); columns of other labels ("Q1", "monday") are not
    checked."""
    clocks = [clock for clock in parsed if clock is not None]
    if not clocks:
        return
    row = _first_fall(clocks, np.arange(len(columns[0])))
    if row is not None:
        shown = [", ".join(cells[line] for cells in columns) for line in (row, row - 1)]
        named = (f"time column {names[0]!r} does" if len(names) == 1 else
                 "time columns " + ", ".join(map(repr, names)) + ", read together, do")
        raise SeqlabError(f"{source}: the {named} not increase at line {first_data_line + row} "
                          f"({shown[0]} after {shown[1]}); sort the rows by time or fix the value, or if the rows are "
                          f"in time order as they stand, pass --time-column {NO_TIME_COLUMN} (and --target-columns)")


def _interpolate(values: np.ndarray, columns: list[str], source: str) -> tuple[np.ndarray, dict[str, int]]:
    """Fill NaNs per column linearly in the row index (the nearest value at the ends); count them per column."""
    counts: dict[str, int] = {}
    rows = np.arange(len(values))
    for index, name in enumerate(columns):
        gaps = np.isnan(values[:, index])
        if not gaps.any():
            continue
        if gaps.all():
            raise SeqlabError(f"{source}: column {name!r} has no values; drop it with --target-columns")
        values[gaps, index] = np.interp(rows[gaps], rows[~gaps], values[~gaps, index])
        counts[name] = int(gaps.sum())
    return values, counts


# ------------------------------------------------------- split and scaling
def split_point(length: int, val_fraction: float) -> int:
    """Rows before this index train; the last ``int(length * val_fraction)`` rows are held out."""
    return length - int(length * val_fraction)


@dataclass
class Scaler:
    r"""Per-column standardisation z = (x - mean) / std, fitted on the training rows only.

    A constant column gets std 1, so it maps to zeros rather than to NaN.
    """

    mean: np.ndarray  # (C,)
    std: np.ndarray  # (C,)

    @classmethod
    def fit(cls, values: np.ndarray) -> "Scaler":
        std = values.std(axis=0)
        return cls(values.mean(axis=0), np.where(std > 1e-12, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.mean) / self.std

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "Scaler":
        return cls(np.asarray(values["mean"], dtype=np.float64), np.asarray(values["std"], dtype=np.float64))


# ------------------------------------------------------------------ windows
def gather_windows(values: Tensor, starts: Tensor, length: int) -> Tensor:
    """(N, C) series, (B,) start rows -> (B, length, C) consecutive rows from each start."""
    return values[starts.unsqueeze(1) + torch.arange(length, device=starts.device)]


def calendar_features(rows: np.ndarray, season: int) -> np.ndarray:
    r"""Each row's position p = row mod m in the season as (sin 2 pi p / m, cos 2 pi p / m): (N, 2); (N, 0) if m = 1."""
    if season <= 1:
        return np.zeros((len(rows), 0))
    angle = 2 * np.pi * (rows % season) / season
    return np.stack([np.sin(angle), np.cos(angle)], axis=1)


class ForecastWindows:
    """Training batches: B windows of T history + H future rows at seeded random starts.

    inputs (B, T+H, D): every column of the window (the C values and any
    calendar features; the model sees the future part only through teacher
    forcing); targets (B, H, C): the H future rows' first ``columns`` columns;
    condition (B, H, C): the anchors, a classical forecast of those rows from
    the rows before them (``anchors`` holds one per window start).
    """

    carries_state = False

    def __init__(self, values: Tensor, *, block_size: int, horizon: int, batch_size: int, seed: int,
                 columns: int, anchors: Tensor) -> None:
        self.span = block_size + horizon
        if len(values) < self.span:
            raise SeqlabError(f"{len(values)} rows are fewer than one window of {block_size} + {horizon}")
        if len(anchors) != len(values) - self.span + 1:
            raise AssertionError(f"{len(anchors)} anchors for {len(values) - self.span + 1} window starts")
        self.anchors = anchors
        self.values = values
        self.block_size = block_size
        self.batch_size = batch_size
        self.columns = columns
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> Batch:
        starts = torch.randint(len(self.values) - self.span + 1, (self.batch_size,), generator=self.generator)
        window = gather_windows(self.values, starts, self.span)  # (B, T+H, D)
        return Batch(window, window[:, self.block_size:, :self.columns], reset=True, condition=self.anchors[starts])

    def state_dict(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])


# ------------------------------------------------------------------ metrics
def naive_scale(train: np.ndarray) -> np.ndarray:
    r"""Per-column in-sample MAE of the one-step naive forecast, the MASE denominator: mean_t |y_t - y_{t-1}|."""
    return np.abs(np.diff(train, axis=0)).mean(axis=0)  # (C,)


def forecast_metrics(truth: np.ndarray, forecast: np.ndarray, scale: np.ndarray) -> dict[str, float]:
    r"""MAE, RMSE and MASE of (W, H, C) forecasts against the truth, in original units.

    mae and rmse pool every window, step and column; mase (Hyndman & Koehler
    2006) is the mean over columns of each column's MAE divided by its
    ``scale`` (see ``naive_scale``), so columns in different units weigh alike.
    Below 1, a forecast beats the in-sample one-step naive forecast.
    """
    error = forecast - truth  # (W, H, C)
    column_mae = np.abs(error).mean(axis=(0, 1))  # (C,)
    return {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error ** 2).mean())),
            "mase": float((column_mae / scale).mean())}


def clearly_best(truth: np.ndarray, forecasts: dict[str, np.ndarray], scale: np.ndarray, *, default: str,
                 spacing: int = 1) -> str:
    r"""The forecast (W, H, C) with the lowest MASE among ``default`` and those that beat it by more than one
    standard error, widened by Student's t for the few independent origins; ``default`` where none does.

    Choosing the lowest MASE on a few dozen validation origins picks noise as often as skill (a one-standard-error
    rule, Breiman et al. 1984, keeps the simpler choice unless the evidence is clear). Per origin w the scaled
    error is e_w = mean_c mean_h |y^ - y| / scale_c (their mean over w is the MASE); a candidate counts as better
    when the mean paired difference d_w = e_w - e_w(default) is below -k SE, with SE = std(d) / sqrt(n): forecasts
    from origins less than H apart share target rows, so W origins ``spacing`` s rows apart (s <= H) hold about
    n = W s / H independent ones. SE is itself estimated from those n, so k is Student's t quantile with n - 1
    degrees of freedom at the confidence one standard error gives a normal mean (84%): 1.0 for many origins, 1.3
    for n = 3, 1.8 for n = 2; with n <= 1 (a validation part about one horizon long) nothing can be told apart
    and ``default`` is kept.
    """
    import scipy.stats  # heavy, and only forecasting needs it (statsmodels' ETS loads it there anyway)

    windows, horizon = truth.shape[0], truth.shape[1]
    independent = windows * min(spacing, horizon) / horizon
    if independent <= 1:
        return default
    errors = {name: (np.abs(forecast - truth).mean(axis=1) / scale).mean(axis=-1)  # (W,)
              for name, forecast in forecasts.items()}
    widen = float(scipy.stats.t.ppf(scipy.stats.norm.cdf(1.0), independent - 1))
    chosen = default
    for name, error in errors.items():
        difference = error - errors[default]
        standard_error = difference.std(ddof=1) / np.sqrt(independent)
        if difference.mean() + widen * standard_error < 0 and error.mean() < errors[chosen].mean():
            chosen = name
    return chosen


def column_metrics(truth: np.ndarray, forecast: np.ndarray, scale: np.ndarray) -> list[dict[str, float]]:
    """``forecast_metrics`` of each column of (W, H, C) forecasts on its own."""
    return [forecast_metrics(truth[..., [column]], forecast[..., [column]], scale[[column]])
            for column in range(truth.shape[-1])]


def interval_coverage(truth: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """The fraction of true values inside [lower, upper] (an 80% interval should hold about 0.8)."""
    return float(((truth >= lower) & (truth <= upper)).mean())


def interval_score(truth: np.ndarray, lower: np.ndarray, upper: np.ndarray, scale: np.ndarray, level: float) -> float:
    r"""MSIS, the mean scaled interval score of (W, H, C) intervals at ``level`` (the M4 competition's measure,
    Gneiting & Raftery 2007): per value, the width U - L plus 2 / alpha times how far the truth falls outside,
    alpha = 1 - level, divided by the column's ``scale`` (MASE's); lower is better. Coverage alone rewards width;
    this score charges for it."""
    alpha = 1 - level
    score = (upper - lower) + 2 / alpha * (np.maximum(lower - truth, 0) + np.maximum(truth - upper, 0))
    return float((score / scale).mean())


def conformal_margin(truth: np.ndarray, lower: np.ndarray, upper: np.ndarray, level: float) -> np.ndarray:
    r"""Per column, the margin q that widens (W, H, C) intervals [lower - q, upper + q] to cover ``level`` of the truth.

    Conformalised quantile regression (Romano, Patterson & Candes 2019): with
    the scores E_i = max(lower_i - y_i, y_i - upper_i) of the N = W H held-aside
    values, q is the score at the level that n exchangeable units need,
    min(1, ceil((n + 1) level) / n): their ceil(N min(1, ...))-th smallest;
    q < 0 narrows intervals that cover too much. The units are the W origins,
    not the N values: the H values from one origin come from one window and
    miss together, so counting them as N units made the finite-sample
    correction too small, and the intervals covered less than ``level`` of a
    later part (benchmarks/RESULTS.md, session 15).
    """
    scores = np.maximum(lower - truth, truth - upper).reshape(-1, truth.shape[-1])  # (N, C)
    units = truth.shape[0]
    covered = min(math.ceil((units + 1) * level), units)  # of the units
    rank = -(-len(scores) * covered // units)  # ceil(N covered / n), in integers
    return np.sort(scores, axis=0)[rank - 1]  # (C,)


def history_length(fit_rows: int, horizon: int, season: int) -> int:
    """The forecaster's default history T (``--block-size 0``): three seasons or two horizons, whichever is longer,
    at least 12 and at most 128 rows, but short enough to leave 20 training windows (and at least 4).

    Long enough to hold a season's shape and the level and slope before the horizon, short enough that a series of
    a few dozen rows still trains (a fixed 128 refuses every series under about 150 rows)."""
    wanted = min(128, max(3 * season if season > 1 else 0, 2 * horizon, 12))
    return max(4, min(wanted, fit_rows - horizon - 19))


def guess_season(train: np.ndarray, *, max_season: int = MAX_GUESSED_SEASON) -> int:
    r"""The seasonal period m, guessed from the training rows' autocorrelation.

    r_k = sum_t (y_t - ybar)(y_{t+k} - ybar) / sum_t (y_t - ybar)^2, averaged
    over columns; m is the lag k in [2, min(N / 2, max_season)] of the highest
    local maximum of r_k that exceeds 0.2. With no such peak the series has no
    clear season and m = 1, which makes the seasonal-naive forecast the naive one.
    (The estimator's sum over N - k terms shrinks long lags, so among equal
    peaks the shortest wins.)
    """
    length = train.shape[0]
    top = min(length // 2, max_season)
    if top < 3:
        return 1
    centred = train - train.mean(axis=0)
    size = 1 << (2 * length - 1).bit_length()  # zero padding: a linear, not circular, correlation
    spectrum = np.fft.rfft(centred, n=size, axis=0)
    covariance = np.fft.irfft(spectrum * np.conj(spectrum), n=size, axis=0)[:top + 2]  # (K, C)
    energy = np.where(covariance[0] > 0, covariance[0], 1.0)
    correlation = (covariance / energy).mean(axis=1)  # (K,)
    lags = np.arange(2, top + 1)
    peaks = lags[(correlation[lags] >= correlation[lags - 1]) & (correlation[lags] >= correlation[lags + 1])
                 & (correlation[lags] > SEASON_THRESHOLD)]
    if len(peaks) == 0:
        return 1
    return int(peaks[np.argmax(correlation[peaks])])


# ---------------------------------------------------------------------- plot
def plot_forecast(path: str | Path, *, history: np.ndarray, forecast: np.ndarray, columns: list[str],
                  truth: np.ndarray | None = None, interval: tuple[np.ndarray, np.ndarray] | None = None,
                  title: str = "") -> None:
    """One panel per column: the (T, C) history, the (H, C) forecast after it with its (lower, upper) interval
    if given, and the truth if known."""
    from matplotlib.figure import Figure  # no pyplot: no global backend state, renders with Agg

    figure = Figure(figsize=(8, 2.4 * len(columns)), layout="constrained")
    axes = figure.subplots(len(columns), 1, squeeze=False)[:, 0]
    past = np.arange(-len(history), 0)
    future = np.arange(len(forecast))
    for index, (axis, name) in enumerate(zip(axes, columns)):
        axis.plot(past, history[:, index], color="0.3", label="history")
        if truth is not None:
            axis.plot(future, truth[:, index], color="tab:green", label="truth")
        if interval is not None:
            axis.fill_between(future, interval[0][:, index], interval[1][:, index], color="tab:orange", alpha=0.2,
                              label="80% interval")
        axis.plot(future, forecast[:, index], color="tab:orange", marker=".", label="forecast")
        axis.axvline(-0.5, color="0.7", linestyle=":")
        axis.set_ylabel(name)
    axes[0].legend(loc="upper left", fontsize="small")
    axes[-1].set_xlabel("steps from the forecast origin")
    if title:
        figure.suptitle(title)
    figure.savefig(path, dpi=100)
