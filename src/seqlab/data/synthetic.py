"""Synthetic tasks with known answers, by name: ``--task synthetic --data builtin:NAME``.

A *source* is a seeded generator of examples. One example shape covers every
source: inputs (token ids, or float vectors), targets at every position (class
ids or real values) and a mask of the positions that count (many-to-one: the
last position only). Batches are right-padded; the padding is never in the
mask, and since every output we score comes from a causal model at a real
position, padding never changes a scored output either.

    adding        Hochreiter & Schmidhuber 1997, as in Le et al. 2015 and Bai et al. 2018: T pairs
                  (u_t, m_t), u_t ~ U(0, 1), m_t = 1 at one position in each half of the sequence;
                  predict sum_t m_t u_t at the last position (MSE; predicting 1 scores ~1/6).
    copy_memory   Bai et al. 2018: 10 symbols from 1..8, T-1 blanks (0), the delimiter 9, then 10
                  more 9s; output the 10 symbols over the last 10 positions (guessing: accuracy 1/8).
    anbn, anbncn  ^ a^n b^n (c^n) $, next-symbol prediction (Gers & Schmidhuber 2001, Weiss et al.
                  2018): only deterministic next symbols are scored (after ^, and from the first b
                  on); a model *accepts* n when it predicts all of them. ``mode membership``:
                  classify ^w$ as in or out of the language, against hard negatives.
    addition      ^12+345=357$ answered directly, or (``scratchpad``) with the working shown column
                  by column, least significant first: a_k b_k c_k s_k ; (digits, carry in, sum digit).

A thrown ball's trajectory is the built-in forecast series ``builtin:ball``
(``seqlab.data.timeseries``), trained by the forecast task; it is not repeated here.

Options (``--length 200``, ``--n-max 10``, ...) are the keyword arguments of a
source's constructor; validation sets may use other ranges than training (the
``val_*`` options), which is what length-generalisation experiments need.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, TypeVar

import torch
from torch import Tensor

from ..errors import SeqlabError, did_you_mean

BUILTIN_PREFIX = "builtin:"
SOURCES: dict[str, type["Source"]] = {}

# One line of help per source option (its flag: --length, --n-max, ...), written once for every source that takes
# it; `seqlab train --task synthetic --data builtin:NAME --help` shows it, and a test fails for one without.
SOURCE_OPTION_HELP: dict[str, str] = {
    "val_examples": "the fixed validation set's size",
    "length": "T, the sequence length in training",
    "val_length": "T in validation; 0: as in training",
    "copy_length": "symbols to remember (10 in Bai et al. 2018)",
    "n_min": "the smallest n in training",
    "n_max": "the largest n in training",
    "val_n_min": "the smallest n in validation; 0: as in training",
    "val_n_max": "the largest n in validation; 0: as in training",
    "mode": "predict (the next symbol) or membership (in the language or not, against hard negatives)",
    "digits_min": "the fewest digits of an operand in training",
    "digits_max": "the most digits of an operand in training",
    "val_digits_min": "the fewest digits in validation; 0: as in training",
    "val_digits_max": "the most digits in validation; 0: as in training",
    "scratchpad": "write the working column by column before the answer",
}
SPLITS = ("train", "val")
T = TypeVar("T")


def register_source(name: str) -> Callable[[T], T]:
    """Class decorator: make a synthetic source available as ``builtin:name``."""

    def register(cls: T) -> T:
        if name in SOURCES:
            raise AssertionError(f"synthetic source {name!r} is registered twice")
        cls.name = name  # type: ignore[attr-defined]
        SOURCES[name] = cls  # type: ignore[assignment]
        return cls

    return register


def source_name(path: str) -> str | None:
    """``builtin:NAME`` of a registered source -> NAME; anything else -> None."""
    if path.startswith(BUILTIN_PREFIX) and path[len(BUILTIN_PREFIX):] in SOURCES:
        return path[len(BUILTIN_PREFIX):]
    return None


def source_options(name: str) -> dict[str, inspect.Parameter]:
    """The keyword options a source accepts (its own and its base classes'), with their defaults."""
    options: dict[str, inspect.Parameter] = {}
    for cls in reversed(SOURCES[name].__mro__):
        if "__init__" in vars(cls) and cls is not object:
            for parameter in inspect.signature(vars(cls)["__init__"]).parameters.values():
                if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                    options[parameter.name] = parameter
    return options


def build_source(path: str, options: dict[str, Any] | None = None) -> "Source":
    """The source named by ``builtin:NAME`` with ``options``; bad names, options or values -> SeqlabError."""
    name = source_name(path)
    if name is None:
        raise SeqlabError(f"--data {path!r} is not a synthetic source; choose one of "
                          f"{', '.join(BUILTIN_PREFIX + known for known in sorted(SOURCES))}")
    options = dict(options or {})
    known = source_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise SeqlabError(f"source {name!r} has no option {', '.join(unknown)}; its options are "
                          f"{', '.join('--' + option.replace('_', '-') for option in sorted(known))}")
    for option, value in options.items():
        default = known[option].default
        if isinstance(default, bool) and not isinstance(value, bool):
            raise SeqlabError(f"--{option.replace('_', '-')} takes true or false, got {value!r}")
        if isinstance(default, int) and not isinstance(default, bool) and (isinstance(value, bool) or not isinstance(value, int)):
            raise SeqlabError(f"--{option.replace('_', '-')} takes a whole number, got {value!r}")
        if isinstance(default, str) and not isinstance(value, str):
            raise SeqlabError(f"--{option.replace('_', '-')} takes a word, got {value!r}")
    return SOURCES[name](**options)


@dataclass
class Examples:
    """A right-padded set of examples; row i's real positions are 0..lengths[i]-1."""

    inputs: Tensor  # (N, T) int64 token ids, or (N, T, F) float32 vectors
    targets: Tensor  # (N, T) int64 class ids, or (N, T) float32 values
    mask: Tensor  # (N, T) bool, the positions the loss and the metrics count
    lengths: Tensor  # (N,) int64

    def __len__(self) -> int:
        return len(self.inputs)

    def select(self, rows: slice | Tensor) -> "Examples":
        return Examples(self.inputs[rows], self.targets[rows], self.mask[rows], self.lengths[rows])


def pad_examples(inputs: list[list[int]], targets: list[list[int]], masks: list[list[bool]]) -> Examples:
    """Lists of per-example token ids, targets and mask flags -> one right-padded Examples (padding 0, unmasked)."""
    lengths = torch.tensor([len(row) for row in inputs], dtype=torch.long)
    width = int(lengths.max())
    padded = torch.zeros(3, len(inputs), width, dtype=torch.long)
    for row, parts in enumerate(zip(inputs, targets, masks)):
        for index, values in enumerate(parts):
            padded[index, row, :len(values)] = torch.tensor(values, dtype=torch.long)
    return Examples(padded[0], padded[1], padded[2].bool(), lengths)


def _uniform_int(low: int, high: int, generator: torch.Generator) -> int:
    """One integer drawn uniformly from low..high inclusive."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def _check_range(low_name: str, low: int, high_name: str, high: int, *, minimum: int) -> None:
    if low < minimum:
        raise SeqlabError(f"--{low_name.replace('_', '-')} must be at least {minimum}, got {low}")
    if high < low:
        raise SeqlabError(f"--{high_name.replace('_', '-')} ({high}) is below --{low_name.replace('_', '-')} ({low})")


class Source:
    """Base class of synthetic sources; subclasses register with ``@register_source(name)``.

    Class attributes say what the model reads and writes:
        input_symbols: token sources, one token per character (id = index); "" for vector inputs.
        input_features: vector sources, F values per position.
        output_symbols: the classes at every position (names for ``predict``); () for a real value.
        generative: the target at t is the input at t+1, so ``predict`` continues a prompt greedily.

    Args:
        val_examples: size of the fixed validation set.
    """

    name: ClassVar[str]
    input_symbols: str = ""
    input_features: int = 0
    output_symbols: tuple[str, ...] = ()
    generative: bool = False
    end_symbol: str = "$"

    def __init__(self, *, val_examples: int = 512) -> None:
        if val_examples < 1:
            raise SeqlabError(f"--val-examples must be at least 1, got {val_examples}")
        self.val_examples = val_examples

    def sample(self, count: int, generator: torch.Generator, split: str) -> Examples:
        """``count`` fresh examples of ``split`` (train or val ranges), drawn with ``generator``."""
        raise NotImplementedError

    def longest(self) -> int:
        """The most positions any example of either split has."""
        raise NotImplementedError

    def encode(self, text: str) -> list[int]:
        """A token source's text -> ids; unknown characters -> SeqlabError."""
        unknown = sorted(set(text) - set(self.input_symbols))
        if unknown:
            raise SeqlabError(f"{text!r} has characters {''.join(unknown)!r} that source {self.name!r} does not "
                              f"use; its symbols are {self.input_symbols!r}")
        return [self.input_symbols.index(character) for character in text]


# ------------------------------------------------------------------- adding
@register_source("adding")
class Adding(Source):
    """The adding problem: x_t = (u_t, m_t), predict y = sum_t m_t u_t at t = T (MSE).

    u_t ~ U(0, 1); m_t is 1 at one position drawn from the first half and one
    from the second, 0 elsewhere. y has mean 1 and variance 1/6, so predicting
    1 everywhere gives MSE ~0.167 (the baseline Bai et al. 2018 compare with).

    Args:
        length: T for training; val_length: T for validation (0: the same).
    """

    input_features = 2

    def __init__(self, *, length: int = 100, val_length: int = 0, **options: Any) -> None:
        super().__init__(**options)
        if length < 2 or val_length < 0 or val_length == 1:
            raise SeqlabError(f"the adding problem needs --length (and --val-length) of at least 2, got "
                              f"{length if length < 2 else val_length}")
        self.lengths = {"train": length, "val": val_length or length}

    def longest(self) -> int:
        return max(self.lengths.values())

    def sample(self, count: int, generator: torch.Generator, split: str) -> Examples:
        length = self.lengths[split]
        half = length // 2
        values = torch.rand(count, length, generator=generator)  # (N, T)
        first = torch.randint(0, half, (count,), generator=generator)
        second = torch.randint(half, length, (count,), generator=generator)
        markers = torch.zeros(count, length)
        rows = torch.arange(count)
        markers[rows, first] = 1.0
        markers[rows, second] = 1.0
        targets = torch.zeros(count, length)
        targets[:, -1] = (values * markers).sum(1)
        mask = torch.zeros(count, length, dtype=torch.bool)
        mask[:, -1] = True
        return Examples(torch.stack([values, markers], dim=2), targets, mask,
                        torch.full((count,), length, dtype=torch.long))


# -------------------------------------------------------------- copy memory
@register_source("copy_memory")
class CopyMemory(Source):
    """Copy memory (Bai et al. 2018): remember 10 symbols across T blanks.

    Input, T + 20 positions: s_1..s_10 (each from 1..8), T-1 blanks (0), the
    delimiter 9, then 10 more 9s. Target: 0 everywhere but the last 10
    positions, which must repeat s_1..s_10; only those 10 are scored (cross
    entropy; accuracy by guessing: 1/8).

    Args:
        length: T for training; val_length: T for validation (0: the same).
        copy_length: symbols to remember (10 in Bai et al.).
    """

    input_symbols = "0123456789"
    output_symbols = tuple(input_symbols)
    symbols = 8

    def __init__(self, *, length: int = 100, val_length: int = 0, copy_length: int = 10, **options: Any) -> None:
        super().__init__(**options)
        if length < 1 or val_length < 0:
            raise SeqlabError(f"copy memory needs --length of at least 1 blank, got {min(length, val_length)}")
        if copy_length < 1:
            raise SeqlabError(f"--copy-length must be at least 1, got {copy_length}")
        self.lengths = {"train": length, "val": val_length or length}
        self.copy_length = copy_length

    def longest(self) -> int:
        return max(self.lengths.values()) + 2 * self.copy_length

    def sample(self, count: int, generator: torch.Generator, split: str) -> Examples:
        blanks, copied = self.lengths[split], self.copy_length
        length = blanks + 2 * copied
        symbols = torch.randint(1, self.symbols + 1, (count, copied), generator=generator)
        inputs = torch.zeros(count, length, dtype=torch.long)
        inputs[:, :copied] = symbols
        inputs[:, copied + blanks - 1:] = self.symbols + 1  # the delimiter, then the 9s
        targets = torch.zeros(count, length, dtype=torch.long)
        targets[:, -copied:] = symbols
        mask = torch.zeros(count, length, dtype=torch.bool)
        mask[:, -copied:] = True
        return Examples(inputs, targets, mask, torch.full((count,), length, dtype=torch.long))


# -------------------------------------------------------- counting languages
class CountingLanguage(Source):
    """a^n b^n (c^n): next-symbol prediction, or membership against hard negatives.

    ``mode predict``: input ^ a^n b^n c^n, target the next symbol (the last is $).
    The scored positions are those whose next symbol is determined: after ^ (an
    a, as n >= 1) and from the first b on (the remaining b's, c's and $); within
    the a's the next symbol may be a or b and is not scored. A model *accepts*
    n when every scored prediction is right (Weiss, Goldberg & Yahav 2018).

    ``mode membership``: input ^ w $, one label (in / out) at the last position.
    Half the strings are in the language; the others are hard negatives: one
    letter's count off by 1 or 2, or two neighbouring letters swapped at a
    boundary (a^(n-1) b a b^(n-1)), so length and letters alone do not decide.

    Args:
        n_min, n_max: n for training, drawn uniformly.
        val_n_min, val_n_max: n for validation (0: the training value).
        mode: ``predict`` or ``membership``.
    """

    letters: ClassVar[str] = "ab"
    modes = ("predict", "membership")

    def __init__(self, *, n_min: int = 1, n_max: int = 10, val_n_min: int = 0, val_n_max: int = 0,
                 mode: str = "predict", **options: Any) -> None:
        super().__init__(**options)
        _check_range("n_min", n_min, "n_max", n_max, minimum=1)
        val_n_min, val_n_max = val_n_min or n_min, val_n_max or n_max
        _check_range("val_n_min", val_n_min, "val_n_max", val_n_max, minimum=1)
        if mode not in self.modes:
            raise SeqlabError(f"--mode must be one of {', '.join(self.modes)}, got {mode!r}{did_you_mean(mode, self.modes)}")
        self.ranges = {"train": (n_min, n_max), "val": (val_n_min, val_n_max)}
        self.mode = mode
        self.input_symbols = "^$" + self.letters
        self.generative = mode == "predict"
        self.output_symbols = tuple(self.input_symbols) if mode == "predict" else ("out", "in")

    def longest(self) -> int:
        # membership negatives may have up to 2 extra letters
        return len(self.letters) * max(high for _, high in self.ranges.values()) + 4

    def strings(self, ns: list[int]) -> Examples:
        """Next-symbol prediction examples, one per n, in order (the whole test set of a length sweep)."""
        inputs, targets, masks = [], [], []
        for n in ns:
            text = "^" + "".join(letter * n for letter in self.letters) + "$"
            ids = self.encode(text)
            inputs.append(ids[:-1])
            targets.append(ids[1:])
            masks.append([index == 0 or index > n for index in range(len(ids) - 1)])
        return pad_examples(inputs, targets, masks)

    def _negative(self, n: int, generator: torch.Generator) -> str:
        counts = [n] * len(self.letters)
        if _uniform_int(0, 2, generator) == 0 and n >= 2:  # same counts, one swap at a boundary
            boundary = _uniform_int(1, len(self.letters) - 1, generator)
            blocks = [letter * count for letter, count in zip(self.letters, counts)]
            left, right = blocks[boundary - 1], blocks[boundary]
            blocks[boundary - 1], blocks[boundary] = left[:-1] + right[0], left[-1] + right[1:]
            return "".join(blocks)
        letter = _uniform_int(0, len(self.letters) - 1, generator)
        change = [-2, -1, 1, 2][_uniform_int(0, 3, generator)]
        counts[letter] = n + change if n + change >= 0 else n - change
        return "".join(letter * count for letter, count in zip(self.letters, counts))

    def sample(self, count: int, generator: torch.Generator, split: str) -> Examples:
        low, high = self.ranges[split]
        ns = [_uniform_int(low, high, generator) for _ in range(count)]
        if self.mode == "predict":
            return self.strings(ns)
        inputs, targets, masks = [], [], []
        for n in ns:
            member = _uniform_int(0, 1, generator) == 1
            word = "".join(letter * n for letter in self.letters) if member else self._negative(n, generator)
            ids = self.encode("^" + word + "$")
            inputs.append(ids)
            targets.append([0] * (len(ids) - 1) + [int(member)])
            masks.append([False] * (len(ids) - 1) + [True])
        return pad_examples(inputs, targets, masks)


@register_source("anbn")
class AnBn(CountingLanguage):
    __doc__ = CountingLanguage.__doc__
    letters = "ab"


@register_source("anbncn")
class AnBnCn(CountingLanguage):
    __doc__ = CountingLanguage.__doc__
    letters = "abc"


# ------------------------------------------------------------------ addition
@register_source("addition")
class Addition(Source):
    """Multi-digit addition as next-symbol prediction: ``^12+345=357$``.

    Each operand has a number of digits drawn uniformly from the split's range
    (no leading zeros). Direct: the answer follows ``=``. Scratchpad: the
    working comes first, one column per group, least significant first:
    a_k b_k c_k s_k ; with the operands' digits (0 past their end), the carry
    in and the sum digit, then ``>`` and the answer, e.g.
    ``^57+68=7805;6814;0011;>125$``. Only the positions after ``=`` are scored
    (working, answer and $); an example is right when all of them are, which
    is exactly when greedy decoding reproduces the working and the answer.

    Args:
        digits_min, digits_max: operand digits for training.
        val_digits_min, val_digits_max: for validation (0: the training value).
        scratchpad: show the working.
    """

    input_symbols = "0123456789+=;>^$"
    output_symbols = tuple(input_symbols)
    generative = True

    def __init__(self, *, digits_min: int = 1, digits_max: int = 2, val_digits_min: int = 0, val_digits_max: int = 0,
                 scratchpad: bool = False, **options: Any) -> None:
        super().__init__(**options)
        _check_range("digits_min", digits_min, "digits_max", digits_max, minimum=1)
        val_digits_min, val_digits_max = val_digits_min or digits_min, val_digits_max or digits_max
        _check_range("val_digits_min", val_digits_min, "val_digits_max", val_digits_max, minimum=1)
        if max(digits_max, val_digits_max) > 18:
            raise SeqlabError("addition operands are limited to 18 digits")
        self.ranges = {"train": (digits_min, digits_max), "val": (val_digits_min, val_digits_max)}
        self.scratchpad = scratchpad

    def longest(self) -> int:
        digits = max(high for _, high in self.ranges.values())
        return 2 * digits + 3 + (5 * (digits + 1) + 1 if self.scratchpad else 0) + digits + 2

    def working(self, left: int, right: int) -> str:
        """The scratchpad text for left + right (without the answer)."""
        a, b = str(left)[::-1], str(right)[::-1]
        columns, carry, parts = max(len(a), len(b)), 0, []
        for index in range(columns):
            digit_a = int(a[index]) if index < len(a) else 0
            digit_b = int(b[index]) if index < len(b) else 0
            total = digit_a + digit_b + carry
            parts.append(f"{digit_a}{digit_b}{carry}{total % 10};")
            carry = total // 10
        if carry:
            parts.append(f"00{carry}{carry};")
        return "".join(parts) + ">"

    def text(self, left: int, right: int) -> tuple[str, str]:
        """(prompt, continuation) for left + right: '^12+345=' and '357$' (with the working first if scratchpad)."""
        working = self.working(left, right) if self.scratchpad else ""
        return f"^{left}+{right}=", f"{working}{left + right}$"

    def _operand(self, digits: int, generator: torch.Generator) -> int:
        low = 0 if digits == 1 else 10 ** (digits - 1)
        return int(torch.randint(low, 10 ** digits, (1,), generator=generator, dtype=torch.long))

    def sample(self, count: int, generator: torch.Generator, split: str) -> Examples:
        low, high = self.ranges[split]
        inputs, targets, masks = [], [], []
        for _ in range(count):
            left = self._operand(_uniform_int(low, high, generator), generator)
            right = self._operand(_uniform_int(low, high, generator), generator)
            prompt, continuation = self.text(left, right)
            ids = self.encode(prompt + continuation)
            inputs.append(ids[:-1])
            targets.append(ids[1:])
            masks.append([index >= len(prompt) - 1 for index in range(len(ids) - 1)])
        return pad_examples(inputs, targets, masks)
