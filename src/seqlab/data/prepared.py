"""Corpora of any size: tokenized once into a folder of memory-mapped tokens, then read as windows.

``prepare_corpus`` turns documents (files, folders searched recursively, globs) into

    DIR/train.bin, DIR/val.bin   the tokens: raw little-endian integers of the smallest unsigned type
                                 that holds the vocabulary (uint8, uint16 or uint32)
    DIR/tokenizer.json           the tokenizer, fitted on the training part only
    DIR/manifest.json            every input (path, bytes, SHA-256, characters, tokens, part), the split,
                                 each part's token and character counts, each output file's bytes and SHA-256

in three streaming passes over the input, each reading bounded chunks (``text.chunk_ranges``), never
the whole corpus: a scan (hashes, UTF-8 check, character counts), the tokenizer's fit (characters and
words counted chunk by chunk, BPE trained by the tokenizers library from an iterator of pieces) and
the encoding, spread over worker processes and written in order. The folder appears only when it is
complete: everything is written into a hidden temporary folder beside it, renamed at the end. Inputs
compressed whole (gzip, bzip2, xz) are first decompressed, streamed, into another hidden folder beside it
(or the system's temporary folder), read from there and removed at the end; the manifest names each by
its own path, with its text's bytes and SHA-256.

The validation part is held out by documents (in a fixed pseudo-random order, by their SHA-256, so
the split does not depend on how the paths were written and copies of a document fall on one side;
until they hold ``val_fraction`` of the characters, always leaving one document to train on), or,
for one document, is its last ``val_fraction`` of characters. Training and evaluation read a
prepared folder through ``numpy.memmap``, so their memory does not grow with the corpus; a single
file or a folder of text given to ``seqlab train`` goes through the same code, prepared in memory.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
import time
from collections import Counter, deque
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn

from ..errors import SeqlabError
from ..manifest import file_entries, verify_files
from .text import (UTF8, WINDOWS_WESTERN, byte_offset_of_character, check_encoding, chunk_ranges, compression,
                   decompress_to, list_documents, read_range, scan_document, text_pieces, transcode_to)
from .tokenizers import (FIT_PIECE_CHARACTERS, TOKENIZERS, BPETokenizer, Tokenizer, count_pieces,
                         tokenizer_from_dict)

FORMAT = "seqlab prepared corpus"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
TOKENIZER_FILE = "tokenizer.json"
PART_FILES = {"train": "train.bin", "val": "val.bin"}
CHUNK_BYTES = 1 << 23  # text per encoding task
SHOWN_NAMES = 3  # skipped files named in the warning
# inputs compressed whole that are decompressed to be read (a zip archive, which may hold many files or be an Office
# document, is skipped as not text, as is zstd, which Python 3.11 cannot read)
STREAMED_COMPRESSIONS = ("gzip", "bzip2", "xz")


@dataclass
class Corpus:
    """A tokenized corpus: the training and validation tokens, memory-mapped from a prepared folder
    (``directory``) or held in memory, with the characters each part spells (for bits per character)."""

    tokenizer: Tokenizer
    train: np.ndarray  # (N_train,) unsigned integers
    val: np.ndarray  # (N_val,) unsigned integers, possibly empty
    train_characters: int
    val_characters: int
    val_fraction: float
    directory: Path | None = None


@dataclass
class Document:
    path: Path  # where it is read: for a compressed input, its decompressed copy
    size: int
    source: Path | None = None  # a compressed input's own path, which the manifest and messages name
    sha256: str = ""
    characters: int = 0
    problem: str = ""  # why it is not UTF-8 text, "" when it is
    part: str = "train"
    tokens: int = 0

    @property
    def named(self) -> Path:
        """The path the user gave: a compressed input's own, not its decompressed copy's."""
        return self.source or self.path


@dataclass
class Part:
    """One part (train or val): byte ranges of documents, in order, and the characters they hold."""

    ranges: list[tuple[Document, int, int]] = field(default_factory=list)
    characters: int = 0


def smallest_dtype(vocab_size: int) -> np.dtype:
    """The smallest unsigned integer type holding ids 0 .. vocab_size - 1."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if vocab_size - 1 <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise SeqlabError(f"a vocabulary of {vocab_size} tokens is too large to store; use a smaller --vocab-size")


# ------------------------------------------------------------------ work spread over processes
def _ordered_map(pool: Executor | None, workers: int, function: Callable, tasks: Iterable) -> Iterator:
    """``map`` in task order with at most 2 * workers tasks in flight, so memory stays bounded."""
    if pool is None:
        yield from map(function, tasks)
        return
    pending: deque = deque()
    for task in tasks:
        pending.append(pool.submit(function, task))
        if len(pending) >= 2 * workers:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _start_pool(workers: int) -> ProcessPoolExecutor | None:
    """Forked workers, all started now: before the BPE trainer's threads run (forking after them
    would disable the tokenizers library's parallelism with a warning)."""
    if workers <= 1:
        return None
    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork"))
    for future in [pool.submit(os.getpid) for _ in range(workers)]:
        future.result()
    return pool


def _scan_batch(paths: list[Path]) -> list[Any]:
    return [scan_document(path) for path in paths]


def _count_batch(kind: str, reading: dict[str, bool], ranges: list[tuple[str, int, int]]) -> Counter:
    return count_pieces(kind, [read_range(path, start, end) for path, start, end in ranges], **reading)


_WORKER_TOKENIZERS: dict[str, Tokenizer] = {}


def _encode_batch(tokenizer: Tokenizer | str, dtype: str, ranges: list[tuple[str, int, int]]
                  ) -> tuple[np.ndarray, list[int]]:
    """Encode byte ranges of files, each on its own: (their tokens concatenated, each one's token count)."""
    if isinstance(tokenizer, str):  # a worker process: the tokenizer travels as its JSON, built once
        if tokenizer not in _WORKER_TOKENIZERS:
            _WORKER_TOKENIZERS.clear()
            _WORKER_TOKENIZERS[tokenizer] = tokenizer_from_dict(json.loads(tokenizer))
        tokenizer = _WORKER_TOKENIZERS[tokenizer]
    arrays, counts = [], []
    for path, start, end in ranges:
        text = read_range(path, start, end)
        ids = tokenizer.encode(text).numpy().astype(dtype)
        arrays.append(ids)
        counts.append(len(ids))
    return (np.concatenate(arrays) if arrays else np.zeros(0, dtype)), counts


def _batched(chunks: Iterable[tuple[Document, int, int]], limit: int) -> Iterator[list[tuple[Document, int, int]]]:
    """Group chunks into lists of about ``limit`` bytes (many small files make one task)."""
    batch, size = [], 0
    for chunk in chunks:
        batch.append(chunk)
        size += chunk[2] - chunk[1]
        if size >= limit:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _chunks(part: Part, chunk_bytes: int) -> Iterator[tuple[Document, int, int]]:
    for document, start, end in part.ranges:
        for first, last in chunk_ranges(document.path, start, end, chunk_bytes):
            yield document, first, last


# ------------------------------------------------------------------------------ preparation
class _Report:
    """On stderr: the progress bar (bytes read, MB/s) on a terminal and the summary, unless quiet;
    warnings always."""

    def __init__(self, quiet: bool) -> None:
        self.console = Console(stderr=True, quiet=quiet, soft_wrap=True, highlight=False)
        self.warnings = Console(stderr=True, soft_wrap=True, highlight=False)
        self.progress = Progress(TextColumn("[bold]{task.description:8}"), BarColumn(), TransferSpeedColumn(),
                                 TimeRemainingColumn(), console=self.console,
                                 disable=quiet or not self.console.is_terminal)

    def stage(self, name: str, total: int) -> Callable[[int], None]:
        task = self.progress.add_task(name, total=total)
        return lambda advance: self.progress.update(task, advance=advance)


def prepare_corpus(paths: Sequence[str | Path], *, out: str | Path | None = None, tokenizer_kind: str = "char",
                   vocab_size: int = 0, val_fraction: float = 0.1, unknown: str = "unk", min_count: int = 1,
                   lowercase: bool = False, words_only: bool = False, tokenizer: Tokenizer | None = None,
                   strict: bool = False, workers: int = 1, chunk_bytes: int = CHUNK_BYTES,
                   quiet: bool = True, encoding: str = UTF8) -> Corpus:
    """Tokenize documents into training and validation tokens: into the folder ``out`` (memory-mapped
    on return), or in memory when ``out`` is None. ``tokenizer`` given: encode with it, fit nothing;
    otherwise fit one of ``tokenizer_kind`` that reads text as ``fit_tokenizer`` would with the same
    ``min_count``, ``lowercase`` and ``words_only``. Files in another ``encoding`` than UTF-8 are first written
    as UTF-8 (``transcode_to``) beside the decompressed ones."""
    if tokenizer is None and tokenizer_kind not in TOKENIZERS:
        raise SeqlabError(f"unknown tokenizer {tokenizer_kind!r}; choose one of {', '.join(TOKENIZERS)}")
    if not 0.0 <= val_fraction < 1.0:
        raise SeqlabError(f"--val-fraction must be in [0, 1), got {val_fraction}")
    encoding = check_encoding(encoding)
    started = time.perf_counter()
    documents = [Document(path, path.stat().st_size) for path in list_documents(paths)]
    out = Path(out) if out is not None else None
    if out is not None:
        _check_out(out)
    report = _Report(quiet)
    pool = None
    temporary = staging = None
    try:
        with report.progress:
            compressed = [(document, kind) for document in documents
                          if (kind := _compression_of(document.path)) in STREAMED_COMPRESSIONS]
            if compressed or encoding != UTF8:  # read in place by byte ranges: UTF-8 copies first, beside --out
                staging = Path(tempfile.mkdtemp(prefix=".seqlab-staged-",
                                                dir=out.parent if out is not None and out.parent.exists() else None))
            if compressed:
                _decompress_documents(compressed, staging, report)
            if encoding != UTF8:
                _transcode_documents(documents, staging, encoding, report)
            input_bytes = sum(document.size for document in documents)
            if out is not None:
                _check_disk(out, input_bytes, 2 if tokenizer is None else smallest_dtype(tokenizer.vocab_size).itemsize)
            pool = _start_pool(workers)
            documents = _scan(documents, pool, workers, report, strict=strict, encoding=encoding)
            parts = _split(documents, val_fraction)
            if tokenizer is None:
                tokenizer = _fit(tokenizer_kind, parts["train"], pool, workers, report, unknown=unknown,
                                 vocab_size=vocab_size, min_count=min_count, lowercase=lowercase,
                                 words_only=words_only, chunk_bytes=chunk_bytes)
            dtype = smallest_dtype(tokenizer.vocab_size)
            if out is not None:
                _check_disk(out, input_bytes, dtype.itemsize)
                temporary = out.parent / f".{out.name}.partial-{os.getpid()}"
                shutil.rmtree(temporary, ignore_errors=True)
                temporary.mkdir(parents=True)
            tokens = {name: _encode(part, tokenizer, dtype, pool, workers, report, name=name,
                                    chunk_bytes=chunk_bytes, directory=temporary)
                      for name, part in parts.items()}
        manifest = _manifest(documents, parts, tokenizer, dtype, val_fraction,
                             {name: count for name, (_, count) in tokens.items()}, encoding)
        if out is None:
            corpus = Corpus(tokenizer, tokens["train"][0], tokens["val"][0], parts["train"].characters,
                            parts["val"].characters, val_fraction)
        else:
            _finish(temporary, out, tokenizer, manifest)
            temporary = None
            corpus = _open_prepared(out, manifest, tokenizer)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
        if temporary is not None:  # failed or interrupted: leave nothing half-written
            shutil.rmtree(temporary, ignore_errors=True)
        if staging is not None:  # the tokens are written (or in memory): the UTF-8 copies are not needed
            shutil.rmtree(staging, ignore_errors=True)
    seconds = time.perf_counter() - started
    report.console.print(
        f"prepared {len(documents)} file(s), {input_bytes / 1e6:.1f} MB: {len(corpus.train):,} training and "
        f"{len(corpus.val):,} validation tokens ({tokenizer.kind}, vocabulary {tokenizer.vocab_size}, {dtype.name}) "
        f"in {seconds:.1f} s, {input_bytes / 1e6 / max(seconds, 1e-9):.1f} MB/s" + (f"; in {out}" if out else ""),
        markup=False)
    return corpus


def _compression_of(path: Path) -> str:
    with open(path, "rb") as handle:
        return compression(handle.read(8))


def _decompress_documents(compressed: list[tuple[Document, str]], staging: Path, report: _Report) -> None:
    """Each compressed document decompressed into ``staging`` (streamed, never whole in memory), to be read from
    there; named by its own path (``Document.source``) in the manifest and in messages."""
    advance = report.stage("decompress", sum(document.size for document, _ in compressed))
    for index, (document, kind) in enumerate(compressed):
        target = staging / f"{index}-{document.path.name}"
        decompress_to(document.path, kind, target)
        advance(document.size)
        document.source, document.path, document.size = document.path, target, target.stat().st_size


def _transcode_documents(documents: list[Document], staging: Path, encoding: str, report: _Report) -> None:
    """Each document in ``encoding`` written as UTF-8 into ``staging``, to be read from there (named by its own path,
    as a decompressed one is); one the encoding cannot read keeps its problem, to be skipped or refused."""
    advance = report.stage(f"read {encoding}", sum(document.size for document in documents))
    for index, document in enumerate(documents):
        target = staging / f"{index}-utf8-{document.path.name}"
        problem = transcode_to(document.path, encoding, target)
        advance(document.size)
        if problem:
            document.problem = problem
        elif problem is not None:
            if document.source is not None:  # a decompressed copy, now written again as UTF-8: one copy on disk
                document.path.unlink()
            document.source = document.source or document.path
            document.path, document.size = target, target.stat().st_size


def _check_out(out: Path) -> None:
    if out.exists() and not (out.is_dir() and not any(out.iterdir())):
        raise SeqlabError(f"--out {out} already exists; choose a new folder (the corpus is written only "
                          "when complete) or remove it")


def _check_disk(out: Path, input_bytes: int, itemsize: int) -> None:
    """Tokens never outnumber the input's bytes, so input bytes x item size bounds the output."""
    parent = out.parent if out.parent.exists() else Path(".")
    needed = input_bytes * itemsize + (1 << 20)
    free = shutil.disk_usage(parent).free
    if free < needed:
        raise SeqlabError(f"not enough disk space for the prepared corpus under {parent.resolve()}: up to "
                          f"{needed / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free; free some space or use "
                          "another --out")


def _scan(documents: list[Document], pool: Executor | None, workers: int, report: _Report, *,
          strict: bool, encoding: str) -> list[Document]:
    """Hash and check every document; skip (or, ``strict``, refuse) what is not text in ``encoding`` (read as UTF-8
    by now), drop empty ones."""
    advance = report.stage("scan", sum(document.size for document in documents))
    batches = list(_batched(((document, 0, document.size) for document in documents), CHUNK_BYTES))
    for batch, scans in zip(batches, _ordered_map(pool, workers, _scan_batch,
                                                  ([document.path for document, _, _ in batch] for batch in batches))):
        for (document, _, _), scan in zip(batch, scans):
            # a problem found before (bytes the --encoding cannot read) stands
            document.sha256, document.characters = scan.sha256, scan.characters
            document.problem = document.problem or scan.problem
        advance(sum(document.size for document, _, _ in batch))
    bad = [document for document in documents if document.problem]
    texts = [document for document in documents if not document.problem and document.characters]
    kind = "UTF-8" if encoding == UTF8 else encoding
    other = (f"pass the encoding they were saved in with --encoding ({WINDOWS_WESTERN} for most files from Windows "
             "programs)")
    if len(documents) == 1 and not texts:
        document = documents[0]
        problem = document.problem or "is empty"
        fix = other.replace("they were", "it was") if problem.startswith("is not valid") else "give a text file"
        raise SeqlabError(f"data file {document.named} {problem}; {fix}")
    if bad and strict:
        raise SeqlabError(f"{len(bad)} of {len(documents)} files are not {kind} text ({_names(bad)}); {other}, "
                          "or leave them out (without --strict they are skipped)")
    if not texts:
        raise SeqlabError(f"none of the {len(documents)} files given is {kind} text with something in it "
                          f"({_names(bad or documents)}); give text files, or {other}")
    if bad:
        report.warnings.print(f"skipped {len(bad)} of {len(documents)} files that are not {kind} text: "
                              f"{_names(bad)} (--strict refuses them instead)", markup=False)
    return texts


def _names(documents: list[Document]) -> str:
    shown = "; ".join(f"{document.named}" + (f" {document.problem}" if document.problem else "")
                      for document in documents[:SHOWN_NAMES])
    return shown + (f"; and {len(documents) - SHOWN_NAMES} more" if len(documents) > SHOWN_NAMES else "")


def _split(documents: list[Document], val_fraction: float) -> dict[str, Part]:
    parts = {"train": Part(), "val": Part()}
    if len(documents) == 1:  # one document: its last val_fraction of characters
        document = documents[0]
        cut_character = document.characters - int(document.characters * val_fraction)
        cut = (byte_offset_of_character(document.path, cut_character) if cut_character < document.characters
               else document.size)
        parts["train"] = Part([(document, 0, cut)], cut_character)
        if cut < document.size:
            parts["val"] = Part([(document, cut, document.size)], document.characters - cut_character)
        return parts
    goal = val_fraction * sum(document.characters for document in documents)
    held = 0
    for document in sorted(documents, key=lambda item: (item.sha256, str(item.named)))[:-1]:
        if held >= goal:
            break
        document.part = "val"
        held += document.characters
    for document in documents:
        part = parts[document.part]
        part.ranges.append((document, 0, document.size))
        part.characters += document.characters
    return parts


def _fit(kind: str, part: Part, pool: Executor | None, workers: int, report: _Report, *, unknown: str,
         vocab_size: int, min_count: int, lowercase: bool, words_only: bool, chunk_bytes: int) -> Tokenizer:
    """Fit on the training part, streamed: char and word by counting pieces chunk by chunk (in
    parallel, added in order), BPE by the tokenizers library's trainer reading pieces from an iterator."""
    advance = report.stage("fit", sum(end - start for _, start, end in part.ranges))
    if kind == "bpe":
        def pieces() -> Iterator[str]:
            for document, start, end in _chunks(part, chunk_bytes):
                yield from text_pieces(read_range(document.path, start, end), FIT_PIECE_CHARACTERS)
                advance(end - start)

        return BPETokenizer.fit_pieces(pieces(), vocab_size=vocab_size, min_count=min_count, lowercase=lowercase)
    reading = {"lowercase": lowercase} | ({"words_only": words_only} if kind == "word" else {})
    counts: Counter = Counter()
    for batch, batch_counts in _ordered_batches(part, chunk_bytes, pool, workers,
                                                partial(_count_batch, kind, reading)):
        counts.update(batch_counts)
        advance(sum(end - start for _, start, end in batch))
    return TOKENIZERS[kind].from_counts(counts, unknown=unknown, vocab_size=vocab_size, min_count=min_count,
                                        **reading)


def _ordered_batches(part: Part, chunk_bytes: int, pool: Executor | None, workers: int,
                     function: Callable) -> Iterator[tuple[list[tuple[Document, int, int]], Any]]:
    """A part's chunks in batches of about ``chunk_bytes``, each with ``function`` of its (path, start,
    end) ranges, in order; the chunks are found lazily, as the workers take them."""
    queue: deque = deque()

    def tasks() -> Iterator[list[tuple[str, int, int]]]:
        for batch in _batched(_chunks(part, chunk_bytes), chunk_bytes):
            queue.append(batch)
            yield [(str(document.path), start, end) for document, start, end in batch]

    for result in _ordered_map(pool, workers, function, tasks()):
        yield queue.popleft(), result


def _encode(part: Part, tokenizer: Tokenizer, dtype: np.dtype, pool: Executor | None, workers: int,
            report: _Report, *, name: str, chunk_bytes: int, directory: Path | None) -> tuple[np.ndarray | None, int]:
    """Encode a part chunk by chunk (each document on its own), in order, into ``directory``'s file
    (returning None and the count) or in memory (returning the tokens and their count)."""
    advance = report.stage(f"encode {name}", sum(end - start for _, start, end in part.ranges))
    encoder = partial(_encode_batch, tokenizer if pool is None else json.dumps(tokenizer.to_dict()), dtype.name)
    arrays: list[np.ndarray] = []
    count = 0
    handle = (directory / PART_FILES[name]).open("wb") if directory is not None else None
    try:
        for batch, (ids, counts) in _ordered_batches(part, chunk_bytes, pool, workers, encoder):
            for (document, _, _), tokens in zip(batch, counts):
                document.tokens += tokens
            if handle is None:
                arrays.append(ids)
            else:
                ids.tofile(handle)
            count += len(ids)
            advance(sum(end - start for _, start, end in batch))
    finally:
        if handle is not None:
            handle.close()
    if handle is not None:
        return None, count
    return (np.concatenate(arrays) if arrays else np.zeros(0, dtype)), count


def _manifest(documents: list[Document], parts: dict[str, Part], tokenizer: Tokenizer, dtype: np.dtype,
              val_fraction: float, token_counts: dict[str, int], encoding: str) -> dict[str, Any]:
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "encoding": encoding,
        "tokenizer": {"kind": tokenizer.kind, "vocab_size": tokenizer.vocab_size},
        "dtype": dtype.name,
        "split": {"val_fraction": val_fraction,
                  "by": "documents" if len(documents) > 1 else "the last fraction of the one document"},
        "parts": {name: {"file": PART_FILES[name], "tokens": token_counts[name], "characters": part.characters,
                         "documents": len(part.ranges)} for name, part in parts.items()},
        "sources": [{"path": str(document.named), "bytes": document.size, "sha256": document.sha256,
                     "characters": document.characters, "tokens": document.tokens, "part": document.part}
                    for document in documents],
    }


def _finish(temporary: Path, out: Path, tokenizer: Tokenizer, manifest: dict[str, Any]) -> None:
    (temporary / TOKENIZER_FILE).write_text(json.dumps(tokenizer.to_dict(), ensure_ascii=False), encoding="utf-8")
    manifest["files"] = file_entries(sorted(temporary.iterdir()))
    (temporary / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.exists():
        out.rmdir()  # empty (checked before starting)
    os.rename(temporary, out)


# ---------------------------------------------------------------------------------- reading
def is_prepared(path: str | Path) -> bool:
    return Path(path).is_dir() and (Path(path) / MANIFEST_FILE).is_file()


def load_prepared(directory: str | Path) -> Corpus:
    """A prepared folder, memory-mapped, after checking every file against the manifest's sizes and hashes."""
    directory = Path(directory)
    try:
        manifest = json.loads((directory / MANIFEST_FILE).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeqlabError(f"{directory} is not a prepared corpus (it has no {MANIFEST_FILE}); "
                          "make one with seqlab prepare") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SeqlabError(f"{directory}/{MANIFEST_FILE} is damaged (not JSON); prepare the corpus again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != FORMAT_VERSION:
        raise SeqlabError(f"{directory}/{MANIFEST_FILE} is not a {FORMAT} version {FORMAT_VERSION}; "
                          "prepare the corpus again with this seqlab")
    verify_files(directory, manifest["files"], what=f"prepared corpus {directory}", remedy="prepare it again")
    tokenizer = tokenizer_from_dict(json.loads((directory / TOKENIZER_FILE).read_text(encoding="utf-8")))
    return _open_prepared(directory, manifest, tokenizer)


def _open_prepared(directory: Path, manifest: dict[str, Any], tokenizer: Tokenizer) -> Corpus:
    dtype = np.dtype(manifest["dtype"])
    arrays = {}
    for name, part in manifest["parts"].items():
        path = directory / part["file"]
        if path.stat().st_size != part["tokens"] * dtype.itemsize:
            raise SeqlabError(f"prepared corpus {directory}: {part['file']} does not hold the {part['tokens']} "
                              f"{dtype.name} tokens its manifest counts; prepare it again")
        arrays[name] = np.memmap(path, dtype=dtype, mode="r", shape=(part["tokens"],)) if part["tokens"] \
            else np.zeros(0, dtype)
    return Corpus(tokenizer, arrays["train"], arrays["val"], manifest["parts"]["train"]["characters"],
                  manifest["parts"]["val"]["characters"], manifest["split"]["val_fraction"], directory)


def load_corpus(path: str | Path, *, tokenizer_kind: str, unknown: str, val_fraction: float, vocab_size: int = 0,
                min_count: int = 1, lowercase: bool = False, words_only: bool = False,
                tokenizer: Tokenizer | None = None, encoding: str = UTF8) -> Corpus:
    """``--data PATH``: a prepared folder, memory-mapped (refused if ``tokenizer`` is given and differs
    from its own); otherwise text files (a file, a folder, a glob) in ``encoding``, prepared in memory, the same
    way."""
    if is_prepared(path):
        if check_encoding(encoding) != UTF8:
            raise SeqlabError(f"{path} is a prepared corpus, tokens already; --encoding is for text files: drop it "
                              "(or pass it to seqlab prepare)")
        corpus = load_prepared(path)
        if tokenizer is not None and tokenizer.to_dict() != corpus.tokenizer.to_dict():
            raise SeqlabError(
                f"{path} was prepared with another tokenizer ({corpus.tokenizer.kind}, vocabulary "
                f"{corpus.tokenizer.vocab_size}) than the checkpoint's ({tokenizer.kind}, vocabulary "
                f"{tokenizer.vocab_size}); pass the text files as --data instead, or train afresh on {path}")
        return corpus
    return prepare_corpus([path], tokenizer_kind=tokenizer_kind, unknown=unknown, val_fraction=val_fraction,
                          vocab_size=vocab_size, min_count=min_count, lowercase=lowercase, words_only=words_only,
                          tokenizer=tokenizer, encoding=encoding)


def cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
