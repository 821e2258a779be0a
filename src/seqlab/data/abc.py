"""ABC music notation: tunes from files, folders or the corpora the music21 package ships; their key and meter."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import SeqlabError
from .text import UTF8, read_text

# Header fields that describe a tune's music (title, meter, unit length, tempo, key);
# the rest (sources, transcribers, notes, numbering) is bookkeeping a model need not learn.
MUSICAL_HEADERS = ("T:", "M:", "L:", "Q:", "K:")
MUSIC21_ABC_CORPORA = ("oneills1850", "ryansMammoth")
BUILTIN_MUSIC21 = "builtin:music21"  # --data value naming the corpora inside the music21 wheel
KEY_MODES = {"": "", "maj": "", "ion": "", "m": "m", "min": "m", "aeo": "m",
             "dor": "dor", "phr": "phr", "lyd": "lyd", "mix": "mix", "loc": "loc"}
METER_SYMBOLS = {"C": "4/4", "C|": "2/2"}


def split_tunes(text: str) -> list[str]:
    """ABC text -> tunes, each from its X: line up to the next blank line, headers cut to the musical ones."""
    tunes = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line.rstrip() for line in block.strip("\n").split("\n")]
        if not lines or not lines[0].startswith("X:"):
            continue
        kept = [line for line in lines[1:] if line and not line.startswith("%")
                and (line[:2] in MUSICAL_HEADERS or not (len(line) > 1 and line[1] == ":" and line[0].isalpha()))]
        if any(line.startswith("K:") for line in kept) and kept[-1][:2] not in MUSICAL_HEADERS:
            tunes.append("\n".join(kept))
    return tunes


def music21_tunes(corpora: tuple[str, ...] = MUSIC21_ABC_CORPORA) -> list[str]:
    """Every tune in the ABC corpora shipped inside the music21 wheel (no network)."""
    try:
        import music21
    except ImportError:
        raise SeqlabError("music21 is not installed; pip install music21") from None
    root = Path(music21.__file__).parent / "corpus"
    tunes: list[str] = []
    for corpus in corpora:
        for path in sorted((root / corpus).rglob("*.abc")):
            tunes.extend(split_tunes(path.read_text(encoding="utf-8", errors="replace")))
    if not tunes:
        raise SeqlabError(f"found no ABC tunes in music21's corpora {', '.join(corpora)}")
    return tunes


def read_tunes(path: str | Path, encoding: str = UTF8) -> list[str]:
    """Tunes from an ABC file, from every .abc file below a folder (sorted by path), or ``builtin:music21``."""
    if str(path) == BUILTIN_MUSIC21:
        return music21_tunes()
    folder = Path(path)
    if folder.is_dir():
        files = sorted(folder.rglob("*.abc"))
        if not files:
            raise SeqlabError(f"folder {folder} holds no .abc files; point --data at ABC files or {BUILTIN_MUSIC21}")
        tunes = [tune for file in files for tune in split_tunes(read_text(file, encoding))]
    else:
        tunes = split_tunes(read_text(path, encoding))
    if not tunes:
        raise SeqlabError(f"{path} holds no ABC tunes (each starts with an X: line and has a K: line); "
                          f"check the file, or use --data {BUILTIN_MUSIC21}")
    return tunes


def header(tune: str, field: str) -> str | None:
    """The value of the first header line ``field`` ("K:", "M:", ...) of a tune, stripped; None if absent."""
    for line in tune.split("\n"):
        if line.startswith(field):
            return line[len(field):].strip()
    return None


def normalize_key(text: str | None) -> str | None:
    """A K: value -> tonic, accidental and mode: "D Major" -> "D", "A Dorian" -> "Ador", "Em" -> "Em";
    None when it names no tonic and mode we know (e.g. "none", "HP")."""
    match = re.match(r"([A-Ga-g])([#b]?)\s*([A-Za-z]*)", text or "")
    if not match:
        return None
    tonic, accidental, mode = match.groups()
    mode = mode.lower()
    mode = KEY_MODES.get(mode if mode in ("m", "") else mode[:3])
    if mode is None or (match.end() < len(text) and text[match.end()] not in " \t%"):
        return None
    return tonic.upper() + accidental + mode


def normalize_meter(text: str | None) -> str | None:
    """An M: value -> "6/8" form: "C" -> "4/4", "C|" -> "2/2", "6 / 8" -> "6/8"; None for free meter or nonsense."""
    compact = re.sub(r"\s+", "", text or "")
    compact = METER_SYMBOLS.get(compact, compact)
    return compact if re.fullmatch(r"[1-9][0-9]*/[1-9][0-9]*", compact) else None


def _header_end(lines: list[str]) -> int:
    """The index of a tune's first K: line (the end of its header), or -1."""
    return next((index for index, line in enumerate(lines) if line.startswith("K:")), -1)


TUNE_START, TUNE_END = "\n", "\n\n"  # how a tune is framed in a music model's text (as the blank line between tunes)
CONDITION_FIELDS = ("M:", "K:")  # the header fields a tune is conditioned on, in the order a tune opens with them


def conditions_first(tune: str) -> str:
    """A tune opening with the fields a model is conditioned on: its header's M: and K: lines first, then the
    rest of its header in order, then its body: "T:Jig\nM:6/8\nL:1/8\nK:D\n..." -> "M:6/8\nK:D\nT:Jig\nL:1/8\n...".
    Title, unit length and tempo lines after K: are body fields in ABC, read before any note, so music21
    gives the same notes and title."""
    lines = tune.split("\n")
    end = _header_end(lines)
    if end < 0:
        return tune
    head = lines[:end + 1]
    first = [line for field in CONDITION_FIELDS for line in head if line.startswith(field)]
    return "\n".join(first + [line for line in head if line[:2] not in CONDITION_FIELDS] + lines[end + 1:])


def titles_first(tune: str) -> str:
    """The usual ABC header order back (the inverse of ``conditions_first`` for tunes written T:, M:, the other
    fields, K:): the header-field lines (T:, L:, Q:, ...) right after the first K: join the header, titles first,
    then the meter, the others, and K: last."""
    lines = tune.split("\n")
    end = _header_end(lines)
    if end < 0:
        return tune
    after = end + 1
    while after < len(lines) and lines[after][:2] in MUSICAL_HEADERS and lines[after][:2] not in CONDITION_FIELDS:
        after += 1
    head = lines[:end] + lines[end + 1:after]  # the header without K:
    titles = [line for line in head if line.startswith("T:")]
    meters = [line for line in head if line.startswith("M:")]
    others = [line for line in head if line[:2] not in ("T:", "M:")]
    return "\n".join(titles + meters + others + [lines[end]] + lines[after:])


def tune_conditions(tune: str) -> dict[str, str | None]:
    """{"K": key, "M": meter} of a tune, normalized, from its header."""
    return {"K": normalize_key(header(tune, "K:")), "M": normalize_meter(header(tune, "M:"))}
