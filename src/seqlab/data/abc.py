"""ABC music notation: tunes from files or from the corpora the music21 package ships."""
from __future__ import annotations

from pathlib import Path

from ..errors import SeqlabError

# Header fields that describe a tune's music (title, meter, unit length, tempo, key);
# the rest (sources, transcribers, notes, numbering) is bookkeeping a model need not learn.
MUSICAL_HEADERS = ("T:", "M:", "L:", "Q:", "K:")
MUSIC21_ABC_CORPORA = ("oneills1850", "ryansMammoth")


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
