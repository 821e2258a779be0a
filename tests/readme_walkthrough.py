"""Run every command block of README.md as written, on small data with tiny budgets; fail on an error or a traceback.

    python tests/readme_walkthrough.py [--all] [--keep DIR]      (make test runs it through tests/test_readme.py)

What runs: every ```sh and ```python block of the README, in order, in one
scratch directory, so a later block reads what an earlier one wrote (sample
reads the checkpoint train wrote). A sh line is one command (a trailing
backslash continues it; a `#` comment is bash's). `.venv/bin/seqlab ARGS`
runs `seqlab.cli.main(ARGS)` in this process, with ARGS split by bash exactly
as typed ($'\\n\\n' included); any other command runs in bash with a
`.venv/bin` on PATH that holds this interpreter's seqlab, python and torchrun.
A python block runs with exec. A command fails when it exits non-zero or
prints "Traceback"; the walk-through fails when any command does.

What changes, and only through the six lists below (so a new README command
is covered with no edit here, and each change is visible in one place):
- DATA: the files the README names, written small into the scratch directory
  (and REPOSITORY_PATHS, such as examples/, linked into it).
- SUBSTITUTE: (pattern, replacement, why) applied to a command's text.
- APPEND: (pattern, flags): flags appended to a matching command; argparse
  keeps the last value of a flag, so this is how budgets shrink.
- SLOW: (pattern, why): commands that run for minutes by design or need more
  than this machine's one process; they run only with --all (or
  README_WALKTHROUGH_ALL=1), and each one left out is printed with its reason.
- NEVER: (pattern, why): commands that cannot run here at all (the suite
  itself, a server that waits for a browser).
- NEEDS: (pattern, available, why): commands left out where ``available()``
  says the machine lacks what they need (a GPU).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import math
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(sh|python)[ \t]*\n(.*?)^```", re.MULTILINE | re.DOTALL)
SEQLAB = re.compile(r"^(?:\.venv/bin/)?seqlab(?=\s|$)")
ALL_VARIABLE = "README_WALKTHROUGH_ALL"

WORDS = ("the", "night", "is", "long", "and", "my", "lord", "speaks", "of", "love", "to", "thee", "with", "good",
         "cheer", "fair", "day", "what", "light", "through", "yonder", "window", "breaks")
POSITIVE = ("a wonderful little place", "great food and friendly staff", "loved every minute", "the best pie in town")
NEGATIVE = ("a terrible wait for cold food", "rude staff and a dirty table", "never again", "the worst pie in town")


def _lines(count: int, seed: int, speakers: bool = False) -> str:
    rng = random.Random(seed)
    out = []
    for number in range(count):
        if speakers and number % 4 == 0:
            out.append(rng.choice(("ROMEO:", "JULIET:", "NURSE:")))
        out.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9))).capitalize() + ".")
    return "\n".join(out) + "\n"


def _reviews(count: int, seed: int, *, labelled: bool) -> str:
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        positive = rng.random() < 0.5
        text = f"{rng.choice(POSITIVE if positive else NEGATIVE)}, {rng.choice(WORDS)} {rng.choice(WORDS)}"
        rows.append(f"{text}\t{'pos' if positive else 'neg'}" if labelled else text)
    return "\n".join(rows) + "\n"


def _tunes(count: int) -> str:
    rng = random.Random(0)
    records = []
    for number in range(count):
        key, meter, notes, beats = ("D", "6/8", "DEFGABcd", 6) if number % 2 else ("G", "3/4", "GABcdefg", 6)
        body = "|".join("".join(rng.choice(notes) for _ in range(beats)) for _ in range(8))
        records.append(f"X:{number + 1}\nT:Tune {number + 1}\nM:{meter}\nL:1/8\nK:{key}\n{body}|]")
    return "\n\n".join(records) + "\n"


def _series(count: int) -> str:
    return "value\n" + "".join(f"{math.sin(2 * math.pi * step / 24) + 0.5 * math.sin(2 * math.pi * step / 60 + 1):.4f}\n"
                               for step in range(count))


def _sales(count: int) -> bytes:
    """A CSV as Excel saves it on a French Windows: semicolons, decimal commas, cp1252 ("€" is byte 0x80)."""
    rows = "".join(f"2021-{1 + day // 28:02d}-{1 + day % 28:02d};{100 + 20 * math.sin(2 * math.pi * day / 7):.2f}\r\n"
                   .replace(".", ",") for day in range(count))
    return ("date;ventes (€)\r\n" + rows).encode("cp1252")


def _vectors(dimension: int) -> str:
    """A GloVe-style file: every word the review stand-ins use, and a few they never do, each a random vector."""
    rng = random.Random(7)
    words = dict.fromkeys(" ".join(WORDS + POSITIVE + NEGATIVE).split() + ["superb", "dreadful"])
    return "".join(word + "".join(f" {rng.gauss(0, 0.5):.4f}" for _ in range(dimension)) + "\n" for word in words)


# the files the README names -> their small stand-ins
DATA = {
    "input.txt": lambda: _lines(400, seed=1, speakers=True),
    "reviews.tsv": lambda: _reviews(200, seed=2, labelled=True),
    "other_reviews.tsv": lambda: _reviews(40, seed=3, labelled=True),
    "new_reviews.txt": lambda: _reviews(3, seed=4, labelled=False),
    "all_reviews.txt": lambda: _reviews(300, seed=5, labelled=False),
    "my_letters.txt": lambda: _lines(100, seed=6),
    "series.csv": lambda: _series(120),
    "tunes.abc": lambda: _tunes(24),
    "glove.6B.100d.txt": lambda: _vectors(100),
    "ventes.csv": lambda: _sales(150),
    "livre.txt": lambda: ("Il était une fois une île où l'on mangeait des crêpes.\n" * 50).encode("latin-1"),
}
REPOSITORY_PATHS = ("examples",)  # linked into the scratch directory, as commands run from the repository root
SUBSTITUTE = [
    (r"^make demo$", ".venv/bin/seqlab demo --out runs/demo", "what the Makefile runs (the venv exists already)"),
    (r"builtin:music21", "tunes.abc", "music21's whole corpus -> 24 small tunes"),
]
APPEND = [
    (r"^seqlab train\b", "--max-steps 2 --max-seconds 0 --eval-interval 2 --eval-max-batches 2 --threads 1"),
    (r"^seqlab train\b.*--config music\b", "--data tunes.abc"),  # the preset reads builtin:music21
    (r"^seqlab train\b.*--task seq2seq\b", "--max-target-length 16"),  # an untrained decoder stops only here
    (r"^seqlab sample\b", "--max-tokens 20"),
    (r"^seqlab music\b", "--tunes 2 --max-tokens 60"),
    (r"^seqlab demo\b", "--seconds 1 --tunes 1"),
    (r"^seqlab diagnose\b", "--length 8"),
    (r"^python examples/onnx_generate\.py\b", "--max-tokens 20"),  # the Jacobians cost one batched step of S rows per position
    (r"^torchrun\b.*\btrain\b", "--max-steps 2 --eval-interval 2 --threads 1"),
]
SLOW = [
    (r"^seqlab experiment (?!--list)", "an experiment trains for minutes by design (its pieces have their own tests)"),
    (r"^seqlab report\b", "gathers the results of the experiments left out above"),
    (r"^torchrun\b", "starts several processes (tests/test_distributed.py trains under torchrun)"),
]
NEVER = [
    (r"^make test\b", "the test suite itself, which runs this walk-through"),
    (r"^pip install\b", "changes the environment (the walk-through runs with the dev extras installed)"),
    (r"^seqlab serve\b", "a server runs until it is stopped"),
]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


NEEDS = [
    (r"--device cuda", _cuda, "needs a CUDA GPU, and this machine has none"),
]


@dataclass
class Outcome:
    command: str
    seconds: float
    cpu_seconds: float  # this process's and its children's: what the wait would be on an idle machine
    code: int | None  # None: left out
    output: str

    @property
    def failed(self) -> bool:
        return self.code is not None and (self.code != 0 or "Traceback (most recent call last)" in self.output)


def readme_commands(text: str) -> list[tuple[str, str]]:
    """(language, command) for every command of every sh and python block, in order; a python block is one."""
    found = []
    for match in FENCE.finditer(text):
        language, body = match.group(1), match.group(2)
        if language == "python":
            found.append((language, body))
            continue
        for line in re.sub(r"\\\n", " ", body).split("\n"):
            if line.strip() and not line.lstrip().startswith("#"):
                found.append((language, line.strip()))
    return found


def without_comment(command: str) -> str:
    """The command without a trailing `# comment` (a # that starts a word outside quotes, as bash reads it)."""
    quote = ""
    for index, character in enumerate(command):
        if quote:
            quote = "" if character == quote and command[index - 1] != "\\" else quote
        elif character in "'\"":
            quote = character
        elif character == "#" and (index == 0 or command[index - 1].isspace()):
            return command[:index].rstrip()
    return command


def prepared(command: str) -> str:
    """The command as run: its comment dropped, SUBSTITUTE, then APPEND (matched with `.venv/bin/` dropped)."""
    command = without_comment(command)
    for pattern, replacement, _ in SUBSTITUTE:
        command = re.sub(pattern, replacement, command)
    bare = command.replace(".venv/bin/", "", 1)
    return " ".join([command, *(flags for pattern, flags in APPEND if re.search(pattern, bare))])


def left_out(command: str, everything: bool) -> str | None:
    """Why a command is not run (a NEVER rule, or a SLOW one without ``everything``), or None."""
    bare = command.replace(".venv/bin/", "", 1)
    rules = NEVER if everything else NEVER + SLOW
    rules += [(pattern, why) for pattern, available, why in NEEDS if not available()]
    return next((why for pattern, why in rules if re.search(pattern, bare)), None)


def bash_words(arguments: str, directory: Path) -> list[str]:
    """The words bash makes of ``arguments`` (quotes, $'...', comments), without running anything else."""
    result = subprocess.run(["bash", "-c", f"printf '%s\\0' {arguments}"], cwd=directory, capture_output=True,
                            check=True)
    return result.stdout.decode().split("\0")[:-1]


def run_seqlab(arguments: list[str], directory: Path) -> tuple[int, str]:
    from seqlab.cli import main

    output = io.StringIO()
    previous = Path.cwd()
    os.chdir(directory)
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            try:
                code = main(arguments)
            except SystemExit as exit:
                code = exit.code if isinstance(exit.code, int) else 1
            except Exception:  # a harness: report the traceback as the command's failure
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(previous)
    return code, output.getvalue()


def run_python(source: str, directory: Path) -> tuple[int, str]:
    output = io.StringIO()
    previous = Path.cwd()
    os.chdir(directory)
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            try:
                exec(compile(source, "README.md python block", "exec"), {"__name__": "__readme__"})
                code = 0
            except Exception:  # a harness: report the traceback as the block's failure
                traceback.print_exc()
                code = 1
    finally:
        os.chdir(previous)
    return code, output.getvalue()


def make_venv_bin(directory: Path) -> Path:
    """scratch/.venv/bin with this interpreter's seqlab, python and torchrun, for commands run by bash."""
    bin_directory = directory / ".venv" / "bin"
    bin_directory.mkdir(parents=True)
    source = str(ROOT / "src")
    # scripts, not links: a venv's python finds its site-packages from where it is started
    for name, module in (("seqlab", "-m seqlab.cli "), ("torchrun", "-m torch.distributed.run "), ("python", "")):
        script = bin_directory / name
        script.write_text(f'#!/bin/sh\nPYTHONPATH="{source}${{PYTHONPATH:+:$PYTHONPATH}}" exec "{sys.executable}" '
                          f'{module}"$@"\n')
        script.chmod(0o755)
    return bin_directory


def cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def walk(readme: Path, directory: Path, *, everything: bool = False, echo=print) -> list[Outcome]:
    """Run the README's commands in ``directory``; return every command's outcome."""
    for name, make in DATA.items():
        content = make()
        (directory / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    for name in REPOSITORY_PATHS:  # what commands name relative to the repository root
        if (ROOT / name).exists():
            (directory / name).symlink_to(ROOT / name)
    bin_directory = make_venv_bin(directory)
    environment = {**os.environ, "PATH": f"{bin_directory}{os.pathsep}{os.environ.get('PATH', '')}",
                   "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")]))}
    outcomes = []
    for language, command in readme_commands(readme.read_text(encoding="utf-8")):
        started, cpu_started = time.perf_counter(), cpu_seconds()
        if language == "python":
            code, output = run_python(command, directory)
            shown = "python block: " + command.strip().splitlines()[-1]
        elif (why := left_out(command, everything)) is not None:
            code, output, shown = None, why, command
        else:
            shown = prepared(command)
            if SEQLAB.match(shown):
                code, output = run_seqlab(bash_words(SEQLAB.sub("", shown, count=1), directory), directory)
            else:
                result = subprocess.run(["bash", "-c", shown], cwd=directory, env=environment, capture_output=True,
                                        text=True)
                code, output = result.returncode, result.stdout + result.stderr
        outcome = Outcome(shown, time.perf_counter() - started, cpu_seconds() - cpu_started, code, output)
        outcomes.append(outcome)
        verdict = "left out: " + output if code is None else ("FAILED" if outcome.failed else "ok")
        echo(f"{outcome.seconds:6.1f} s ({outcome.cpu_seconds:5.1f} s CPU)  {verdict:6}  {shown}")
        if outcome.failed:
            echo(output)
    return outcomes


def main(argv: list[str] | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # one line per command as it finishes, also into a file
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("readme", nargs="?", default=str(README))
    parser.add_argument("--all", action="store_true", help="also run the SLOW commands")
    parser.add_argument("--keep", default=None, help="run in this directory and keep it (default: a temporary one)")
    arguments = parser.parse_args(argv)
    everything = arguments.all or os.environ.get(ALL_VARIABLE) == "1"
    with contextlib.ExitStack() as stack:
        if arguments.keep:
            directory = Path(arguments.keep)
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
        else:
            directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="seqlab-readme-")))
        started = time.perf_counter()
        outcomes = walk(Path(arguments.readme), directory, everything=everything)
    failed = [outcome for outcome in outcomes if outcome.failed]
    ran = sum(outcome.code is not None for outcome in outcomes)
    print(f"{ran} commands ran, {len(outcomes) - ran} left out, {len(failed)} failed, in "
          f"{time.perf_counter() - started:.0f} s ({sum(outcome.cpu_seconds for outcome in outcomes):.0f} s CPU)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
