"""The cost of ``--encoding`` for a corpus: ``seqlab prepare`` on the same text saved in UTF-8 (read in place, the
reference) and in Latin-1 (``--encoding latin-1``: each file first written as UTF-8 beside --out, then read).

The corpus is the French text that music21 ships (languageExcerpts/trainingData/fr.txt), repeated into --files files
of --megabytes in all, in each encoding. Each prepare runs as its own process, one after the other, --repeats times;
the table gives the median seconds, MB/s of the input, and the UTF-8 run's time divided by each (below 1: slower than
reading UTF-8 in place), and checks that both prepared the same tokens.

    python benchmarks/bench_encoding.py --megabytes 200 --files 20 --workers 2
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def build(root: Path, megabytes: float, files: int) -> None:
    """root/utf8/ and root/latin1/: the same text, ``files`` files of ``megabytes`` in all."""
    source = Path(importlib.util.find_spec("music21").submodule_search_locations[0]) / "languageExcerpts" / \
        "trainingData" / "fr.txt"
    text = source.read_text(encoding="utf-8")
    text = "".join(character for character in text if character.encode("latin-1", "ignore"))  # Latin-1's own
    each = int(megabytes * 1e6 / files)
    body = (text * (each // len(text.encode("utf-8")) + 1))
    for folder, encoding in (("utf8", "utf-8"), ("latin1", "latin-1")):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for index in range(files):
            (root / folder / f"part-{index:03d}.txt").write_bytes(body[:each].encode(encoding))


def prepare(data: Path, out: Path, workers: int, encoding: str | None) -> float:
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "seqlab.cli", "prepare", "--data", str(data), "--out", str(out), "--tokenizer",
               "char", "--workers", str(workers), "--quiet"] + (["--encoding", encoding] if encoding else [])
    started = time.perf_counter()
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--megabytes", type=float, default=200)
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--root", default="/tmp/seqlab-bench-encoding")
    arguments = parser.parse_args()
    root = Path(arguments.root)
    shutil.rmtree(root, ignore_errors=True)
    build(root, arguments.megabytes, arguments.files)
    sizes = {folder: sum(path.stat().st_size for path in (root / folder).iterdir()) for folder in ("utf8", "latin1")}
    runs = {"utf8": [], "latin1": []}
    for _ in range(arguments.repeats):
        runs["utf8"].append(prepare(root / "utf8", root / "out-utf8", arguments.workers, None))
        runs["latin1"].append(prepare(root / "latin1", root / "out-latin1", arguments.workers, "latin-1"))
    same = all(np.array_equal(np.fromfile(root / "out-utf8" / name, dtype=np.uint8),
                              np.fromfile(root / "out-latin1" / name, dtype=np.uint8))
               for name in ("train.bin", "val.bin"))
    reference = statistics.median(runs["utf8"])
    print(f"`python benchmarks/bench_encoding.py --megabytes {arguments.megabytes:g} --files {arguments.files} "
          f"--workers {arguments.workers} --repeats {arguments.repeats}`\n")
    print("| corpus | input MB | median seconds (runs) | MB/s | UTF-8's time / this |\n|---|---:|---:|---:|---:|")
    for folder, label in (("utf8", "UTF-8, read in place"), ("latin1", "Latin-1, --encoding latin-1")):
        median = statistics.median(runs[folder])
        shown = ", ".join(f"{run:.2f}" for run in runs[folder])
        print(f"| {label} | {sizes[folder] / 1e6:.1f} | {median:.2f} ({shown}) | {sizes[folder] / 1e6 / median:.1f} "
              f"| {reference / median:.2f} |")
    print(f"\nthe same tokens from both: {same}")
    shutil.rmtree(root, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
