"""Reading text: whole small files, and corpora of any size as documents read in bounded chunks."""
from __future__ import annotations

import bz2
import codecs
import csv
import errno
import glob
import gzip
import hashlib
import io
import lzma
import os
import re
import shutil
import zipfile
import zlib
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Sequence, TypeVar

from ..errors import SeqlabError

BINARY_PROBE_BYTES = 8192
T = TypeVar("T")
# what a compressed file starts with (its "magic number"), whatever its name: the format's name
COMPRESSED = {b"\x1f\x8b": "gzip", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"PK\x03\x04": "zip",
              b"\x28\xb5\x2f\xfd": "zstd"}


# files that are not text and not compressed text, by their first bytes: what they are, and how to make text of them
SAVE_AS_CSV = "save the sheet as CSV UTF-8 and pass that"
NOT_TEXT = {b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1": ("an Excel 97-2003 workbook (or another old Office file)",
                                                   SAVE_AS_CSV),
            b"PAR1": ("a Parquet file", "write it as CSV (pandas.read_parquet(path).to_csv(...)) and pass that"),
            b"%PDF": ("a PDF", "give the text or the table it holds as a text file")}


def not_text(start: bytes) -> str:
    """What a file whose first bytes are ``start`` is, where they say it is a spreadsheet, Parquet file or PDF."""
    return next((what for magic, (what, _) in NOT_TEXT.items() if start.startswith(magic)), "")


def _refuse_not_text(raw: bytes, path: Path) -> None:
    """Refuse a spreadsheet, Parquet file or PDF naming it and the way to text; an Office file is a zip archive
    (its parts beside [Content_Types].xml, an OpenDocument one's beside its mimetype)."""
    known = next((f"{what}; {fix}" for magic, (what, fix) in NOT_TEXT.items() if raw.startswith(magic)), "")
    if not known and raw.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(raw)) as archive:
                names = archive.namelist()
                mimetype = archive.read("mimetype").decode("ascii", "replace") if "mimetype" in names else ""
        except zipfile.BadZipFile:
            return  # damaged: said where it is decompressed
        if "[Content_Types].xml" in names:
            kind = next((kind for folder, kind in (("xl/", "an Excel workbook"), ("word/", "a Word document"),
                                                   ("ppt/", "a PowerPoint file")) if any(
                name.startswith(folder) for name in names)), "an Office file")
            known = f"{kind}, not text; " + (SAVE_AS_CSV if kind == "an Excel workbook" else "save it as text")
        elif mimetype.startswith("application/vnd.oasis.opendocument"):
            known = f"an OpenDocument file ({mimetype.rsplit('.', 1)[-1]}), not text; {SAVE_AS_CSV}"
    if known:
        raise SeqlabError(f"data file {path} is {known}")


COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zip", ".zst")


def table_suffix(path: str | Path) -> str:
    """A file's suffix, lower-cased, as its name tells its layout: the one before a compression suffix
    (reviews.csv.gz -> .csv)."""
    suffixes = [suffix.lower() for suffix in Path(path).suffixes]
    while suffixes and suffixes[-1] in COMPRESSED_SUFFIXES:
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def compression(start: bytes) -> str:
    """The compression a file's first bytes announce ("gzip", "bzip2", "xz", "zip", "zstd"), or "" for none."""
    return next((name for magic, name in COMPRESSED.items() if start.startswith(magic)), "")


def decompressed(path: Path, kind: str, consume: Callable[[BinaryIO], T]) -> T:
    """``consume`` (read it whole, or copy it in blocks) of a compressed file's content: gzip, bzip2, xz, or a zip
    archive of one file, by the standard library. A damaged file, a zip of several files, zstd (no reader in
    Python 3.11's library) and a disk that fills up are refused in one line; other system errors are raised."""
    if kind == "zstd":
        raise SeqlabError(f"data file {path} is zstd-compressed; decompress it first (zstd -d {path})")
    try:
        with ExitStack() as stack:
            if kind == "zip":
                archive = stack.enter_context(zipfile.ZipFile(path))
                members = [member for member in archive.infolist() if not member.is_dir()]
                if len(members) != 1:
                    raise SeqlabError(f"data file {path} is a zip archive of {len(members)} files "
                                      f"({', '.join(member.filename for member in members[:5])}); extract the one "
                                      "to read and pass it")
                stream = stack.enter_context(archive.open(members[0]))
            else:
                stream = stack.enter_context({"gzip": gzip.open, "bzip2": bz2.open, "xz": lzma.open}[kind](path))
            return consume(stream)
    except OSError as error:
        if error.errno == errno.ENOSPC:
            raise SeqlabError(f"not enough disk space to decompress {path}; free some space, or decompress it where "
                              "there is room and pass that") from None
        if error.errno is not None:  # the system's (a file that cannot be opened, ...), not the format's
            raise
        damaged = error
    # each library's "this is damaged" (bzip2 says a stream that ends early with ValueError)
    except (EOFError, ValueError, zlib.error, lzma.LZMAError, zipfile.BadZipFile) as error:
        damaged = error
    raise SeqlabError(f"data file {path} is {kind}-compressed but cannot be decompressed ({damaged}); check the "
                      "file is whole")


def decompress_to(path: Path, kind: str, target: Path) -> None:
    """A compressed file's content written to ``target`` in bounded blocks: for a corpus too large to hold whole."""
    with open(target, "wb") as sink:
        decompressed(path, kind, lambda stream: shutil.copyfileobj(stream, sink, READ_BYTES))


UTF8 = "utf-8"
WINDOWS_WESTERN = "cp1252"  # what Excel and other Windows programs save text as in most of Europe and the Americas


def check_encoding(name: str) -> str:
    """A text encoding's canonical name (``--encoding``: any of Python's text codecs, e.g. cp1252, latin-1, shift_jis),
    refusing one Python does not know, or a codec that does not decode bytes to text (base64, rot13)."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise SeqlabError(f"--encoding {name!r} is not a text encoding Python knows; give one such as utf-8, cp1252, "
                          "latin-1, shift_jis or gb18030") from None
    try:
        "a".encode(info.name)  # str.encode refuses the codecs that are not text encodings (base64, rot13)
    except LookupError:
        raise SeqlabError(f"--encoding {name!r} is not a text encoding; give one such as utf-8, cp1252 or "
                          "latin-1") from None
    return info.name


def _undecodable(path: Path, raw: bytes, error: UnicodeDecodeError, encoding: str) -> SeqlabError:
    """The bytes that ``encoding`` cannot read, by line, and the fix. A file that is not UTF-8 was most often saved by a
    Windows program in its legacy encoding: the line is shown as cp1252 reads it, for the user to judge."""
    line = raw.count(b"\n", 0, error.start) + 1
    start = raw.rfind(b"\n", 0, error.start) + 1
    end = raw.find(b"\n", error.start)
    text = raw[start:end if end >= 0 else len(raw)].decode(WINDOWS_WESTERN, "replace").strip()
    column = error.start - start
    shown = text if len(text) <= 60 else text[max(0, column - 30):column + 30]
    bad = ("byte " if error.end - error.start == 1 else "bytes ") + raw[error.start:error.end].hex(" ").upper()
    if encoding == UTF8:
        return SeqlabError(f"data file {path} is not UTF-8: {bad} on line {line} ({shown!r} as {WINDOWS_WESTERN} "
                           f"reads it); pass the encoding it was saved in, --encoding {WINDOWS_WESTERN} for most "
                           "files from Excel and other Windows programs, or convert it to UTF-8")
    return SeqlabError(f"data file {path} is not {encoding}: {bad} on line {line} cannot be read as it; pass "
                       "the encoding it was saved in with --encoding, or convert it to UTF-8")


def writes_nul(encoding: str) -> bool:
    """Whether text in ``encoding`` holds NUL bytes (UTF-16, UTF-32), so that they do not mark a file as binary."""
    return b"\x00" in "a".encode(encoding)


def transcode_to(path: Path, encoding: str, target: Path) -> str | None:
    """A text file in ``encoding`` written to ``target`` as UTF-8, in bounded blocks (a corpus too large to hold
    whole): "" when written; what is wrong with it where ``encoding`` cannot read its bytes; None, and nothing
    written, where the file is not text to transcode (binary, compressed, a spreadsheet: ``scan_document`` says
    what) or a UTF-8 byte-order mark says it is UTF-8 already. A UTF-16 byte-order mark says UTF-16, whatever
    ``encoding`` says (as in ``read_text``)."""
    with open(path, "rb") as source:
        block = source.read(BINARY_PROBE_BYTES)
        if block.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            encoding = "utf-16"
        elif (block.startswith(codecs.BOM_UTF8) or not_text(block) or compression(block)
              or (b"\x00" in block and not writes_nul(encoding))):
            return None
        decoder = codecs.getincrementaldecoder(encoding)()
        offset = 0
        try:
            with open(target, "w", encoding="utf-8", newline="") as sink:
                while block:
                    try:
                        text = decoder.decode(block)
                    except UnicodeDecodeError as error:
                        return f"is not valid {encoding} (bad byte at offset {offset + error.start})"
                    sink.write(text.removeprefix("\ufeff") if offset == 0 else text)  # a byte-order mark: not text
                    offset += len(block)
                    block = source.read(READ_BYTES)
                try:
                    sink.write(decoder.decode(b"", final=True))
                except UnicodeDecodeError:
                    return f"is not valid {encoding} (it ends inside a character)"
        except OSError as error:
            if error.errno == errno.ENOSPC:
                raise SeqlabError(f"not enough disk space to write {path} as UTF-8 beside --out; free some space, or "
                                  "convert the corpus to UTF-8 where there is room and pass that") from None
            raise
    return ""


def read_text(path: str | Path, encoding: str = UTF8) -> str:
    """Read a text file in ``encoding`` (UTF-8 by default, ``--encoding``), refusing in one clear line what is not.

    A file compressed whole (gzip, bzip2, xz, or a zip archive holding one file: ``compression``) is read as the
    text inside it, whatever its name. A byte-order mark says how a file is encoded whatever ``encoding`` says: UTF-8
    (and it is dropped), or UTF-16 (Excel's "Unicode text"). Only NUL bytes in the first ``BINARY_PROBE_BYTES`` mark
    a file as binary (except in an encoding that writes them, such as UTF-16); later ones are text.
    """
    if not str(path):  # before Path(), which reads "" as "."
        raise SeqlabError("no data file given: pass --data PATH")
    path = Path(path)
    if not path.exists():
        raise SeqlabError(f"data file {path} does not exist; check the path")
    if path.is_dir():
        raise SeqlabError(f"data path {path} is a directory; pass a text file")
    raw = path.read_bytes()
    _refuse_not_text(raw, path)
    kind = compression(raw)
    if kind:
        raw = decompressed(path, kind, lambda stream: stream.read())
    if not raw:
        raise SeqlabError(f"data file {path} is empty; give a file with text in it")
    encoding = check_encoding(encoding)
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):  # Excel's "Unicode text", Windows' tools
        try:
            return raw.decode("utf-16").removeprefix("\ufeff")
        except UnicodeDecodeError as error:
            raise SeqlabError(f"data file {path} starts as UTF-16 text but is not (bad bytes at offset "
                              f"{error.start}); convert it to UTF-8") from None
    if raw.startswith(codecs.BOM_UTF8):
        encoding = UTF8
    if b"\x00" in raw[:BINARY_PROBE_BYTES] and not writes_nul(encoding):
        raise SeqlabError(f"data file {path} looks binary (it has NUL bytes); give a text file")
    try:
        return raw.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as error:
        raise _undecodable(path, raw, error, encoding) from None


CELL_LIMIT = 2**31 - 1  # the most a C long holds on every platform


def csv_reader(lines: Iterable[str], **options: Any) -> Iterator[list[str]]:
    """``csv.reader`` over ``lines`` whose cells may be as long as a whole document: the csv module's own limit,
    128 KiB a cell, refuses a long text (an article to classify) as if its quoting were broken."""
    csv.field_size_limit(CELL_LIMIT)
    return csv.reader(lines, **options)


ROW_NAMES_HEADERS = ("", "Unnamed: 0")  # what R's write.csv and pandas' to_csv write above a table's row names


def row_numbers_first(names: list[str], rows: list[tuple[int, list[str]]]) -> bool:
    """Whether a table's first column holds row numbers, as ``DataFrame.to_csv`` (0, 1, 2, ...) and R's ``write.csv``
    (1, 2, 3, ...) write them by default: no name in the header ``names`` (or pandas' "Unnamed: 0"), consecutive
    integers in the (line number, cells) ``rows`` below it, two columns or more beside it."""
    if len(names) < 3 or names[0] not in ROW_NAMES_HEADERS or not rows:
        return False
    cells = [row[0].strip() if row else "" for _, row in rows]
    if not all(cell.isdigit() for cell in cells):
        return False
    start = int(cells[0])
    return start in (0, 1) and all(int(cell) == start + offset for offset, cell in enumerate(cells))


def excel_separator(lines: list[str]) -> str:
    """The separator that Excel's first line ``sep=;`` names (it reads and writes one to say how a CSV's cells are
    split), or "" where the first line is not one; the table starts on the line after it."""
    match = re.fullmatch(r"sep=(.)", lines[0].strip()) if lines else None
    return match.group(1) if match else ""


def is_number(text: str) -> bool:
    """Whether a cell of a table reads as a number (``float`` accepts it: ints, decimals, exponents, nan, inf)."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def split_lines(text: str) -> list[str]:
    """A text's lines: each is what a "\n" or "\r\n" ends (the last may end without one); in a text without a
    "\n", what a "\r" ends (classic Mac OS, and Excel for Mac's "CSV (Macintosh)", end lines with it alone).

    Unlike ``str.splitlines``, which also breaks at U+2028, U+2029, U+0085 (NEL), \\v, \\f and
    the other separators that real text carries inside its lines (and at a lone "\r" in a text of "\n" lines),
    so one line stays one input.
    """
    lines = text.split("\n" if "\n" in text or "\r" not in text else "\r")
    if lines[-1] == "":  # the newline that ends the last line starts no new one
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def read_lines(path: str | Path, encoding: str = UTF8) -> list[str]:
    """One input per line of a plain text file; blank lines at the end are ignored, blank lines between refused."""
    lines = split_lines(read_text(path, encoding))
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


# ---------------------------------------------------------------- corpora larger than memory
# A corpus is read in bounded chunks cut only where every tokenizer's pieces end: just before a
# space or newline that follows a printable ASCII character. A character's pieces, a word's
# (\w+ | \s+ | one mark) and a byte-level BPE pre-token (GPT-2's pattern, whose only pieces
# holding white space either start with it or are made of it) all end there, so encoding chunk
# by chunk gives exactly the tokens of encoding the whole text at once.
SAFE_CUT_BYTES = re.compile(rb"[!-~](?=[ \n])")
SAFE_CUT_TEXT = re.compile(r"[!-~](?=[ \n])")
SEARCH_BYTES = 1 << 16  # how far back from a chunk's end a cut is looked for first
READ_BYTES = 1 << 22  # the block size of streaming reads


def list_documents(paths: Sequence[str | Path]) -> list[Path]:
    """Files named, found under folders (recursively, skipping hidden names) or matching globs; sorted per
    argument, each once. Refuses a path that does not exist, a glob matching nothing and an empty folder."""
    found: dict[Path, None] = {}
    if not paths or not all(str(path) for path in paths):
        raise SeqlabError("no data given: pass --data PATH (files, folders or globs)")
    for given in map(str, paths):
        path = Path(given)
        if path.is_file():
            found[path] = None
        elif path.is_dir():
            files = sorted(_files_under(path))
            if not files:
                raise SeqlabError(f"data folder {path} is empty; give a folder with text files in it")
            found.update(dict.fromkeys(files))
        elif glob.has_magic(given):
            files = sorted(Path(item) for item in glob.glob(given, recursive=True) if Path(item).is_file())
            if not files:
                raise SeqlabError(f"no files match {given!r}; check the pattern")
            found.update(dict.fromkeys(files))
        else:
            raise SeqlabError(f"data path {path} does not exist; check the path")
    return list(found)


def _files_under(folder: Path) -> Iterator[Path]:
    """Regular files below a folder, recursively, leaving out hidden names (.git and the like)."""
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                yield from _files_under(Path(entry.path))
            elif entry.is_file():
                yield Path(entry.path)


@dataclass
class DocumentScan:
    sha256: str
    characters: int
    problem: str  # "" for a UTF-8 text file, else why it is not one


def scan_document(path: Path) -> DocumentScan:
    """One streaming pass: SHA-256, characters, and whether the file is UTF-8 text.

    As in ``read_text``, only NUL bytes in the first ``BINARY_PROBE_BYTES`` mark a file as binary.
    """
    digest = hashlib.sha256()
    decoder = codecs.getincrementaldecoder("utf-8")()
    characters = 0
    offset = 0
    problem = ""
    with path.open("rb") as handle:
        while block := handle.read(READ_BYTES):
            digest.update(block)
            if problem:
                continue
            if offset == 0 and block.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                problem = "is UTF-16 text (convert it to UTF-8: corpora are read in place, by byte ranges)"
                continue
            if offset == 0 and not_text(block):
                problem = f"is {not_text(block)}, not text"
                continue
            if offset == 0 and compression(block):  # what prepare does not decompress: a zip archive, zstd
                problem = f"is {compression(block)}-compressed (decompress it first)"
                continue
            if offset < BINARY_PROBE_BYTES and b"\x00" in block[:BINARY_PROBE_BYTES - offset]:
                problem = "looks binary (it has NUL bytes)"
                continue
            try:
                characters += len(decoder.decode(block))
            except UnicodeDecodeError as error:
                problem = f"is not valid UTF-8 (bad byte at offset {offset + error.start})"
            offset += len(block)
    if not problem:
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            problem = "is not valid UTF-8 (it ends inside a character)"
    characters -= _starts_with_bom(path)  # the byte-order mark is not text (as in read_text)
    return DocumentScan(sha256=digest.hexdigest(), characters=characters, problem=problem)


def _starts_with_bom(path: Path | str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8


def byte_offset_of_character(path: Path, index: int) -> int:
    """Where character ``index`` of a UTF-8 file starts (a byte-order mark not counted), found by streaming through it."""
    index += _starts_with_bom(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    characters = 0
    consumed = 0  # bytes fully decoded into the characters counted so far
    with path.open("rb") as handle:
        while block := handle.read(READ_BYTES):
            text = decoder.decode(block)
            if characters + len(text) >= index:
                return consumed + len(text[:index - characters].encode("utf-8"))
            characters += len(text)
            consumed += len(text.encode("utf-8"))
    return consumed


def read_range(path: Path | str, start: int, end: int) -> str:
    """Bytes [start, end) of a UTF-8 file as text (the range starts and ends on character boundaries),
    without the file's byte-order mark."""
    with open(path, "rb") as handle:
        handle.seek(start)
        text = handle.read(end - start).decode("utf-8")
    return text[1:] if start == 0 and text.startswith("\ufeff") else text


def _last_cut(window: bytes) -> int:
    """The last safe cut inside ``window`` (an offset into it), or -1."""
    last = -1
    for match in SAFE_CUT_BYTES.finditer(window):
        last = match.end()
    return last


def chunk_ranges(path: Path, start: int, end: int, chunk_bytes: int) -> Iterator[tuple[int, int]]:
    """Cut bytes [start, end) of a file into ranges of about ``chunk_bytes`` at safe cuts (see above).

    A chunk with no safe cut inside grows until the next one (or the end), so only a text without a
    single ``x `` or ``x\\n`` over megabytes gives a larger chunk.
    """
    if end - start <= chunk_bytes:  # most files of a code base or a shelf of books: no need to look
        yield start, end
        return
    with path.open("rb") as handle:
        position = start
        while end - position > chunk_bytes:
            target = position + chunk_bytes
            low = max(position + 1, target - SEARCH_BYTES)
            handle.seek(low)
            cut = _last_cut(handle.read(target - low))
            if cut < 0 and low > position + 1:  # nothing near the end: the whole chunk
                handle.seek(position + 1)
                cut, low = _last_cut(handle.read(target - position - 1)), position + 1
            while cut < 0 and target < end:  # nothing before the target: look ahead
                handle.seek(target)
                window = handle.read(min(READ_BYTES, end - target))
                match = SAFE_CUT_BYTES.search(window)
                if match:
                    cut, low = match.end(), target
                else:
                    target += len(window)
            cut = low + cut if cut >= 0 else end
            yield position, cut
            position = cut
        if position < end:
            yield position, end


def text_pieces(text: str, characters: int) -> Iterator[str]:
    """Cut a text into pieces of about ``characters`` at safe cuts (see above); joined they give the text."""
    position = 0
    while len(text) - position > characters:
        target = position + characters
        last = None
        for last in SAFE_CUT_TEXT.finditer(text, max(position + 1, target - SEARCH_BYTES), target):
            pass
        if last is None:
            last = SAFE_CUT_TEXT.search(text, target)
        cut = last.end() if last is not None else len(text)
        yield text[position:cut]
        position = cut
    if position < len(text):
        yield text[position:]
