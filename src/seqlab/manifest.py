"""File manifests: each file's size and SHA-256, written beside the files and checked before any is read.

Checkpoints (``train/checkpoint.py``) and prepared corpora (``data/prepared.py``)
both keep one, so a truncated, missing or altered file is found before it is
loaded, with one line saying which and what to do.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .errors import SeqlabError

HASH_BLOCK_BYTES = 1 << 22


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(HASH_BLOCK_BYTES):
            digest.update(block)
    return digest.hexdigest()


def file_entries(paths: list[Path]) -> dict[str, dict[str, Any]]:
    """The manifest's ``files``: by name, each file's size in bytes and SHA-256."""
    return {path.name: {"bytes": path.stat().st_size, "sha256": sha256(path)} for path in paths}


def verify_files(directory: Path, files: dict[str, dict[str, Any]], *, what: str, remedy: str) -> None:
    """Check every file a manifest lists in ``directory`` against its size and SHA-256; the first that differs
    raises one line naming ``what`` (e.g. "checkpoint runs/x"), the file, and the ``remedy``."""
    for name, expected in files.items():
        path = directory / name
        if not path.is_file():
            raise SeqlabError(f"{what} lacks {name}; {remedy}")
        size = path.stat().st_size
        if size != expected["bytes"]:
            raise SeqlabError(f"{what}: {name} is truncated or damaged ({size} bytes where its manifest says "
                              f"{expected['bytes']}); {remedy}")
        try:
            digest = sha256(path)
        except OSError as error:
            raise SeqlabError(f"cannot read {path} ({error.strerror})") from None
        if digest != expected["sha256"]:
            raise SeqlabError(f"{what}: {name} changed since it was written (its SHA-256 differs from the "
                              f"manifest's); {remedy}")
