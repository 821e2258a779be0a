"""The one exception the command line turns into a single clear line and exit code 2."""
from __future__ import annotations

import difflib
from typing import Iterable


class SeqlabError(Exception):
    """A problem with the user's input, named with its fix; never a bug in seqlab."""


class OptionError(SeqlabError, ValueError):
    """A model or backbone option outside what it accepts: a ValueError to code that builds modules
    directly, one clear line on the command line. Only the user's options raise it; every other
    ValueError in seqlab is a bug and shows as one."""


class TrainingDiverged(SeqlabError):
    """Training stopped because the loss or gradient stayed non-finite for more steps in a row than
    ``--max-nonfinite-steps`` allows; the checkpoint on disk is the last good one. Its own class so that code
    measuring divergence (the clipping experiment) can catch exactly this and nothing else."""


def did_you_mean(word: str, candidates: Iterable[str], *, prefix: str = "") -> str:
    """``"; did you mean PREFIX+X?"`` for the closest of ``candidates`` to a mistyped ``word`` (difflib), else ``""``."""
    matches = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {prefix}{matches[0]}?" if matches else ""
