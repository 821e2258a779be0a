"""Tokenizers (characters, words, byte-level BPE): text <-> integer ids, saved as JSON inside every checkpoint."""
from __future__ import annotations

import json
import re
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, Container, Iterable

import numpy as np
import torch
from torch import Tensor

from ..errors import SeqlabError
from .text import text_pieces

UNKNOWN_TOKEN = "<unk>"
UNKNOWN_TEXT = "\ufffd"  # what <unk> decodes to: the Unicode replacement character
FIT_PIECE_CHARACTERS = 1 << 16  # BPE trains from pieces this long, so the trainer's read-ahead stays small


class CharTokenizer:
    """One id per Unicode character seen in the training text, in code-point order.

    With ``unknown="unk"`` id 0 is ``<unk>`` and stands for any character not in
    the vocabulary; with ``unknown="error"`` such a character is refused. With
    ``lowercase`` text is case-folded (``str.lower``) before it is fitted or encoded.
    """

    kind = "char"

    def __init__(self, characters: list[str], *, unknown: str = "unk", lowercase: bool = False) -> None:
        if unknown not in ("unk", "error"):
            raise ValueError(f"unknown must be 'unk' or 'error', got {unknown!r}")
        if any(len(character) != 1 for character in characters) or len(set(characters)) != len(characters):
            raise ValueError("characters must be distinct single characters")
        self.characters = list(characters)
        self.unknown = unknown
        self.lowercase = lowercase
        offset = 1 if unknown == "unk" else 0
        codepoints = np.array([ord(character) for character in self.characters], dtype=np.int64)
        # code point -> id, -1 for characters outside the vocabulary: one lookup per character
        self._ids = np.full(int(codepoints.max(initial=0)) + 1, -1, dtype=np.int64)
        self._ids[codepoints] = np.arange(len(codepoints)) + offset
        self._pieces = ([UNKNOWN_TEXT] if unknown == "unk" else []) + self.characters

    @classmethod
    def fit(cls, text: str, *, unknown: str = "unk", min_count: int = 1, lowercase: bool = False) -> "CharTokenizer":
        return cls.from_counts(count_pieces("char", [text], lowercase=lowercase), unknown=unknown, min_count=min_count,
                               lowercase=lowercase)

    @classmethod
    def from_counts(cls, counts: Counter, *, unknown: str = "unk", vocab_size: int = 0, min_count: int = 1,
                    lowercase: bool = False) -> "CharTokenizer":
        """Every character ``count_pieces`` counted in the training text at least ``min_count`` times, in
        code-point order."""
        return cls(sorted(character for character, count in counts.items() if count >= min_count), unknown=unknown,
                   lowercase=lowercase)

    @property
    def vocab_size(self) -> int:
        return len(self._pieces)

    def encode(self, text: str) -> Tensor:
        """text -> (N,) int64 ids."""
        if self.lowercase:
            text = text.lower()
        codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        inside = codepoints < len(self._ids)
        ids = self._ids[np.where(inside, codepoints, 0)]
        known = inside & (ids >= 0)
        if not known.all():
            if self.unknown == "error":
                missing = sorted({chr(code) for code in codepoints[~known]})
                shown = "".join(missing[:10])
                raise SeqlabError(
                    f"text has {len(missing)} character(s) the model never saw in training ({shown!r}); "
                    "remove them, or train with --unknown unk")
            ids = np.where(known, ids, 0)
        return torch.from_numpy(ids)

    def decode(self, ids: Tensor | list[int]) -> str:
        values = ids.tolist() if isinstance(ids, Tensor) else ids
        return "".join(self._pieces[index] for index in values)

    def token_characters(self) -> np.ndarray:
        """(V,) the characters each token decodes to: one each."""
        return np.ones(self.vocab_size, dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "unknown": self.unknown, "characters": self.characters, "lowercase": self.lowercase}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "CharTokenizer":
        return cls(list(values["characters"]), unknown=values["unknown"], lowercase=values.get("lowercase", False))


def word_pieces(text: str, *, lowercase: bool = False, words_only: bool = False) -> list[str]:
    """How the word tokenizer reads text: words, single punctuation marks and runs of white space, in order;
    ``lowercase`` case-folds first, ``words_only`` leaves the white space out. Fitting and encoding both read so."""
    pieces = WordTokenizer.pattern.findall(text.lower() if lowercase else text)
    return [piece for piece in pieces if not piece.isspace()] if words_only else pieces


SUBWORD_PIECE_LIMIT = 32  # a longer piece (a URL, a hash, a run of digits) is no word: it has no subwords


def subword_ids(pieces: list[str], longest: int, buckets: int) -> Tensor:
    """Each piece's character n-grams of 3..``longest`` characters, the piece framed as "<piece>" (so a prefix or
    suffix differs from the same letters inside a word, as in fastText), each hashed by CRC-32 to 1..``buckets``
    -> (L, K) int64, K the most any piece has, 0 where a piece has fewer. A piece too short for any n-gram has
    its whole framed self; one longer than ``SUBWORD_PIECE_LIMIT`` characters has none (its n-grams would make
    every row of a batch that wide)."""
    rows: list[list[int]] = []
    for piece in pieces:
        if len(piece) > SUBWORD_PIECE_LIMIT:
            rows.append([])
            continue
        framed = f"<{piece}>"
        grams = [framed[start:start + n] for n in range(3, longest + 1) for start in range(len(framed) - n + 1)]
        rows.append([zlib.crc32(gram.encode("utf-8")) % buckets + 1 for gram in grams or [framed]])
    ids = torch.zeros(len(rows), max(map(len, rows), default=0), dtype=torch.long)
    for row, values in enumerate(rows):
        ids[row, :len(values)] = torch.tensor(values, dtype=torch.long)
    return ids


class WordTokenizer:
    """Words, single punctuation marks and runs of white space, so decoding gives the text back exactly.

    The vocabulary is the ``vocab_size - 1`` most frequent pieces of the training
    text (ties broken by first appearance) after ``<unk>`` (id 0), which stands
    for every other piece, or, with ``unknown="error"``, makes encoding refuse it.
    With ``words_only`` white space is not a token (neither counted nor encoded)
    and decoding puts one space between tokens; with ``lowercase`` the text is
    case-folded first. Both are saved with the vocabulary, so every model built
    on the tokenizer reads text the same way (``word_pieces``).
    """

    kind = "word"
    pattern = re.compile(r"\w+|\s+|[^\w\s]")
    default_vocab_size = 10_000

    def __init__(self, pieces: list[str], *, unknown: str = "unk", lowercase: bool = False,
                 words_only: bool = False) -> None:
        if unknown not in ("unk", "error"):
            raise ValueError(f"unknown must be 'unk' or 'error', got {unknown!r}")
        self.pieces = [UNKNOWN_TOKEN, *pieces]
        self.unknown = unknown
        self.lowercase = lowercase
        self.words_only = words_only
        self._ids = {piece: index for index, piece in enumerate(self.pieces)}

    @classmethod
    def fit(cls, text: str, *, unknown: str = "unk", vocab_size: int = 0, min_count: int = 1,
            lowercase: bool = False, words_only: bool = False) -> "WordTokenizer":
        return cls.from_counts(count_pieces("word", [text], lowercase=lowercase, words_only=words_only),
                               unknown=unknown, vocab_size=vocab_size, min_count=min_count, lowercase=lowercase,
                               words_only=words_only)

    @classmethod
    def from_counts(cls, counts: Counter, *, unknown: str = "unk", vocab_size: int = 0, min_count: int = 1,
                    lowercase: bool = False, words_only: bool = False, keep: Container[str] = (),
                    extra: Iterable[str] = ()) -> "WordTokenizer":
        """The most frequent pieces ``count_pieces`` counted in the training text (in text order), read with the
        same ``lowercase`` and ``words_only``; a piece in ``keep`` (one with a pretrained vector, say) is kept
        below ``min_count``. The pieces of ``extra`` not among them follow."""
        pieces = [piece for piece, count in counts.most_common((vocab_size or cls.default_vocab_size) - 1)
                  if count >= min_count or piece in keep]
        known = set(pieces)
        pieces += [piece for piece in dict.fromkeys(extra) if piece not in known]
        return cls(pieces, unknown=unknown, lowercase=lowercase, words_only=words_only)

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    @property
    def separator(self) -> str:
        """What decoding puts between tokens: a space where white space is not a token, else nothing."""
        return " " if self.words_only else ""

    def encode(self, text: str) -> Tensor:
        """text -> (L,) ids of its pieces (``word_pieces``)."""
        return self.encode_pieces(self.read_pieces(text))

    def read_pieces(self, text: str) -> list[str]:
        """text -> its pieces, as ``word_pieces`` reads them with this tokenizer's settings."""
        return word_pieces(text, lowercase=self.lowercase, words_only=self.words_only)

    def encode_pieces(self, pieces: list[str]) -> Tensor:
        """Pieces as ``read_pieces`` gives them -> their (L,) ids."""
        ids = [self._ids.get(piece, 0) for piece in pieces]
        if self.unknown == "error" and 0 in ids:
            missing = sorted({piece for piece in pieces if piece not in self._ids})
            raise SeqlabError(f"text has {len(missing)} word(s) outside the vocabulary "
                              f"({', '.join(map(repr, missing[:5]))}): unseen in training, or seen fewer than "
                              "--min-count times, or past --vocab-size; train with --unknown unk")
        return torch.tensor(ids, dtype=torch.long)

    def decode(self, ids: Tensor | list[int]) -> str:
        values = ids.tolist() if isinstance(ids, Tensor) else ids
        return self.separator.join(UNKNOWN_TEXT if index == 0 else self.pieces[index] for index in values)

    def token_characters(self) -> np.ndarray:
        """(V,) the characters each token decodes to (<unk>: its one replacement character), with
        ``words_only`` counting the space that separates it from the next."""
        return np.array([1, *map(len, self.pieces[1:])], dtype=np.int64) + len(self.separator)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "unknown": self.unknown, "pieces": self.pieces[1:], "lowercase": self.lowercase,
                "words_only": self.words_only}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "WordTokenizer":
        return cls(list(values["pieces"]), unknown=values["unknown"], lowercase=values.get("lowercase", False),
                   words_only=values.get("words_only", False))


class BPETokenizer:
    """Byte-level byte-pair encoding trained on the user's own text with the ``tokenizers`` library.

    Every byte is in the base alphabet, so any text encodes without ``<unk>`` and
    decodes back exactly. ``vocab_size`` counts the 256 bytes plus the merges;
    ``min_count`` is the fewest times a pair must occur to be merged; ``lowercase``
    adds the library's lower-casing normaliser.
    """

    kind = "bpe"
    default_vocab_size = 1024

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    @classmethod
    def fit(cls, text: str, *, unknown: str = "unk", vocab_size: int = 0, min_count: int = 1,
            lowercase: bool = False) -> "BPETokenizer":
        return cls.fit_pieces(text_pieces(text, FIT_PIECE_CHARACTERS), vocab_size=vocab_size, min_count=min_count,
                              lowercase=lowercase)

    @classmethod
    def fit_pieces(cls, pieces: Iterable[str], *, vocab_size: int = 0, min_count: int = 1,
                   lowercase: bool = False) -> "BPETokenizer":
        """Train on a text given as pieces cut where pre-tokens end (``text_pieces``, ``chunk_ranges``),
        which the trainer counts exactly as it would the whole text."""
        from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

        tokenizer = Tokenizer(models.BPE())
        if lowercase:
            tokenizer.normalizer = normalizers.Lowercase()
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size or cls.default_vocab_size, show_progress=False,
                                      min_frequency=min_count,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
        tokenizer.train_from_iterator(pieces, trainer=trainer)
        return cls(tokenizer)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size()

    def encode(self, text: str) -> Tensor:
        return torch.tensor(self.tokenizer.encode(text).ids, dtype=torch.long)

    def decode(self, ids: Tensor | list[int]) -> str:
        return self.tokenizer.decode(ids.tolist() if isinstance(ids, Tensor) else list(ids))

    def token_bytes(self, token: int) -> bytes:
        """The bytes token ``token`` stands for; a character's UTF-8 bytes may be split across tokens."""
        if not hasattr(self, "_token_bytes"):
            alphabet = byte_level_alphabet()
            self._token_bytes = [bytes(alphabet[character] for character in self.tokenizer.id_to_token(index))
                                 for index in range(self.vocab_size)]
        return self._token_bytes[token]

    def token_characters(self) -> np.ndarray:
        """(V,) the characters each token starts: its bytes that are not UTF-8 continuation bytes
        (10xxxxxx), so a character split across tokens counts once, in the token holding its first byte."""
        return np.array([sum(byte & 0xC0 != 0x80 for byte in self.token_bytes(index))
                         for index in range(self.vocab_size)], dtype=np.int64)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokenizer": self.tokenizer.to_str()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "BPETokenizer":
        from tokenizers import Tokenizer

        return cls(Tokenizer.from_str(values["tokenizer"]))


def byte_level_alphabet() -> dict[str, int]:
    """The byte-level pre-tokenizer's stand-in character for each byte, inverted: character -> byte.

    Printable Latin-1 bytes stand for themselves; the others (controls, space,
    soft hyphen, ...) take U+0100 onwards in byte order, so every token is a
    printable string.
    """
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("\u00a1"), ord("\u00ac") + 1),
                 *range(ord("\u00ae"), ord("\u00ff") + 1)]
    alphabet = {chr(byte): byte for byte in printable}
    others = [byte for byte in range(256) if byte not in alphabet.values()]
    alphabet.update({chr(256 + number): byte for number, byte in enumerate(others)})
    return alphabet


Tokenizer = CharTokenizer | WordTokenizer | BPETokenizer
TOKENIZERS: dict[str, type] = {kind.kind: kind for kind in (CharTokenizer, WordTokenizer, BPETokenizer)}


def fit_tokenizer(kind: str, text: str, *, unknown: str, vocab_size: int = 0, min_count: int = 1,
                  lowercase: bool = False, words_only: bool = False) -> Tokenizer:
    """Fit a tokenizer of ``kind`` (char, word, bpe) on training text; ``vocab_size`` 0 is the kind's default,
    ``words_only`` concerns the word tokenizer alone."""
    if kind not in TOKENIZERS:
        raise SeqlabError(f"unknown tokenizer {kind!r}; choose one of {', '.join(TOKENIZERS)}")
    if kind == "char":
        return CharTokenizer.fit(text, unknown=unknown, min_count=min_count, lowercase=lowercase)
    if kind == "word":
        return WordTokenizer.fit(text, unknown=unknown, vocab_size=vocab_size, min_count=min_count,
                                 lowercase=lowercase, words_only=words_only)
    return BPETokenizer.fit(text, vocab_size=vocab_size, min_count=min_count, lowercase=lowercase)


def count_pieces(kind: str, texts: list[str], *, lowercase: bool = False, words_only: bool = False) -> Counter:
    """What fitting a char or word tokenizer counts in texts, read as it will read them (``lowercase``; words:
    ``words_only``): {piece: occurrences}, in order of first appearance for words. Counts of consecutive chunks
    add up (``Counter.update``) to the whole text's."""
    if kind == "word":
        counts: Counter = Counter()
        for text in texts:  # one by one: a word must not run on from one text into the next
            counts.update(word_pieces(text, lowercase=lowercase, words_only=words_only))
        return counts
    if lowercase:
        texts = [text.lower() for text in texts]
    codepoints = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    occurrences = np.bincount(codepoints)
    return Counter({chr(code): int(occurrences[code]) for code in np.flatnonzero(occurrences)})


def tokenizer_from_dict(values: dict[str, Any]) -> Tokenizer:
    kind = values.get("kind")
    if kind not in TOKENIZERS:
        raise SeqlabError(f"tokenizer kind {kind!r} is not one seqlab knows ({', '.join(TOKENIZERS)})")
    return TOKENIZERS[kind].from_dict(values)


def save_tokenizer(tokenizer: Tokenizer, path: Path) -> None:
    path.write_text(json.dumps(tokenizer.to_dict(), ensure_ascii=False), encoding="utf-8")
