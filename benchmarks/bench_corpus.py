"""Corpora larger than memory: ``seqlab prepare`` and training from its memory-mapped tokens.

Measures, each command as its own process (peak memory = the largest sum over the process tree
of proportional set sizes, polled every 0.2 s, so forked workers' shared pages count once):

1. ``seqlab prepare --tokenizer char`` on the whole corpus: MB/s and peak memory;
2. ``seqlab prepare --tokenizer bpe`` on a slice (--bpe-megabytes): MB/s and peak memory;
3. beside it, nanoGPT's approach as an anchor: tiktoken encoding the same slice with GPT-2's
   pre-tokenizing pattern into a uint16 memmap (a few lines below). GPT-2's own merges must be
   downloaded, which this offline machine cannot, so tiktoken gets the vocabulary seqlab's BPE
   just learned (its merges in order are tiktoken's ranks): the same encoding job for both;
4. ``seqlab train --data DIR``: seconds from the command to its first step, and peak memory,
   on the whole corpus's prepared tokens against 20 MB of them (goal: a ratio of at most 1.2). The
   20 MB folder is the big one's first tokens with the same tokenizer (and so the same model: a
   corpus prepared on its own would have fewer characters, a smaller vocabulary and smaller logits).

The corpus is built offline under /tmp from text already on the machine: every .py, .rst and .txt
file of the project's virtual environment and of Python's standard library, hard-linked into
copy-01/, copy-02/, ... until it holds --gigabytes.

    python benchmarks/bench_corpus.py --gigabytes 2 --workers 2
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import time
from pathlib import Path

SUFFIXES = (".py", ".rst", ".txt")
POLL_SECONDS = 0.2


def source_files() -> list[Path]:
    roots = [Path(sys.prefix), Path(sysconfig.get_paths()["stdlib"])]
    found = []
    for root in roots:
        for directory, _, names in os.walk(root):
            found += [Path(directory) / name for name in names if name.endswith(SUFFIXES)
                      and (Path(directory) / name).is_file() and not (Path(directory) / name).is_symlink()]
    return sorted(found)


def build_corpus(root: Path, gigabytes: float) -> tuple[int, int]:
    """Hard-link the source files into root/copy-NN/ until the corpus holds ``gigabytes``; (bytes, files)."""
    stamp = root / "corpus.json"
    if stamp.exists() and json.loads(stamp.read_text())["gigabytes"] == gigabytes:
        record = json.loads(stamp.read_text())
        return record["bytes"], record["files"]
    shutil.rmtree(root, ignore_errors=True)
    sources = source_files()
    total = files = copy = 0
    while total < gigabytes * 1e9:
        copy += 1
        for number, source in enumerate(sources):
            target = root / f"copy-{copy:02}" / f"{number:06}-{source.name}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.link(source, target)
            total += target.stat().st_size
            files += 1
            if total >= gigabytes * 1e9:
                break
    stamp.write_text(json.dumps({"gigabytes": gigabytes, "bytes": total, "files": files, "copies": copy}))
    return total, files


def slice_corpus(root: Path, destination: Path, megabytes: float) -> int:
    """The first files of copy-01 up to ``megabytes``, hard-linked into ``destination``; its bytes."""
    shutil.rmtree(destination, ignore_errors=True)
    destination.mkdir(parents=True)
    total = 0
    for source in sorted((root / "copy-01").iterdir()):
        if total >= megabytes * 1e6:
            break
        os.link(source, destination / source.name)
        total += source.stat().st_size
    return total


def truncated_copy(source: Path, destination: Path, megabytes: float) -> None:
    """A prepared folder holding the first tokens of ``source``'s parts (9:1), ``megabytes`` in all."""
    import numpy as np

    from seqlab.data.prepared import MANIFEST_FILE, TOKENIZER_FILE, _sha256, load_prepared

    corpus = load_prepared(source)
    manifest = json.loads((source / MANIFEST_FILE).read_text())
    destination.mkdir(parents=True)
    shutil.copy(source / TOKENIZER_FILE, destination / TOKENIZER_FILE)
    total = int(megabytes * 1e6) // corpus.train.dtype.itemsize
    table = corpus.tokenizer.token_characters()
    for name, tokens in (("train", corpus.train[:total * 9 // 10]), ("val", corpus.val[:total // 10])):
        np.asarray(tokens).tofile(destination / manifest["parts"][name]["file"])
        manifest["parts"][name].update(tokens=len(tokens), characters=int(table[np.asarray(tokens)].sum()))
    manifest["sources"] = [{"path": f"the first tokens of {source}"}]
    manifest["files"] = {path.name: {"bytes": path.stat().st_size, "sha256": _sha256(path)}
                         for path in sorted(destination.iterdir())}
    (destination / MANIFEST_FILE).write_text(json.dumps(manifest, indent=1))


def tree_pss_kilobytes(pid: int) -> int:
    """Proportional set size of a process and all its descendants, in kB."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parent = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry))
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack += children.get(current, [])
        try:
            for line in Path(f"/proc/{current}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def measure(command: list[str], *, first_line: str | None = None) -> dict:
    """Run a command; its seconds, peak memory (MB) and, if asked, seconds until a stderr line starts with ``first_line``."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: dict[str, float] = {}
    lines: list[str] = []

    def read_errors() -> None:
        for line in process.stderr:
            lines.append(line)
            if first_line and line.startswith(first_line) and "first" not in seen:
                seen["first"] = time.perf_counter() - started

    reader = threading.Thread(target=read_errors)
    reader.start()
    peak = 0
    while process.poll() is None:
        peak = max(peak, tree_pss_kilobytes(process.pid))
        time.sleep(POLL_SECONDS)
    reader.join()
    seconds = time.perf_counter() - started
    if process.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{''.join(lines[-20:])}")
    return {"seconds": seconds, "peak_mb": peak / 1024, "first_step_seconds": seen.get("first"),
            "stderr": "".join(lines[-3:]).strip()}


def tiktoken_into_memmap(folder: Path, prepared_bpe: Path, out: Path, threads: int) -> None:
    """nanoGPT's way, in a few lines: encode every document with tiktoken, tokens into a uint16 memmap."""
    import numpy as np
    import tiktoken
    from tiktoken_ext.openai_public import r50k_pat_str  # GPT-2's pre-tokenizing pattern

    from seqlab.data.tokenizers import byte_level_alphabet, tokenizer_from_dict

    learned = tokenizer_from_dict(json.loads((prepared_bpe / "tokenizer.json").read_text(encoding="utf-8")))
    byte_of = byte_level_alphabet()
    ranks = {bytes(byte_of[symbol] for symbol in piece): index
             for piece, index in learned.tokenizer.get_vocab().items()}
    encoding = tiktoken.Encoding("gpt2-pattern-seqlab-vocabulary", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                                 special_tokens={})
    paths = sorted(folder.iterdir())
    with out.open("wb") as handle:
        for start in range(0, len(paths), 256):
            texts = [path.read_text(encoding="utf-8", errors="ignore") for path in paths[start:start + 256]]
            for ids in encoding.encode_ordinary_batch(texts, num_threads=threads):
                np.array(ids, dtype=np.uint16).tofile(handle)
    tokens = np.memmap(out, dtype=np.uint16, mode="r")
    print(f"tiktoken: {len(tokens)} tokens", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gigabytes", type=float, default=2.0, help="the corpus's size")
    parser.add_argument("--bpe-megabytes", type=float, default=50.0, help="the slice BPE and tiktoken encode")
    parser.add_argument("--small-megabytes", type=float, default=20.0, help="the small corpus training is compared on")
    parser.add_argument("--workers", type=int, default=2, help="prepare's processes, tiktoken's threads")
    parser.add_argument("--steps", type=int, default=20, help="training steps per run")
    parser.add_argument("--root", default="/tmp/seqlab-bench-corpus", help="where the corpus and outputs go")
    parser.add_argument("--tiktoken-into", nargs=3, metavar=("FOLDER", "PREPARED_BPE", "OUT"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.tiktoken_into:
        folder, prepared_bpe, out = map(Path, arguments.tiktoken_into)
        tiktoken_into_memmap(folder, prepared_bpe, out, arguments.workers)
        return

    root = Path(arguments.root)
    corpus, outputs = root / "corpus", root / "outputs"
    shutil.rmtree(outputs, ignore_errors=True)
    outputs.mkdir(parents=True)
    started = time.perf_counter()
    corpus_bytes, corpus_files = build_corpus(corpus, arguments.gigabytes)
    print(f"corpus: {corpus_bytes / 1e9:.2f} GB in {corpus_files} files under {corpus} "
          f"(built or reused in {time.perf_counter() - started:.0f} s)", flush=True)
    bpe_slice = root / "bpe-slice"
    bpe_bytes = slice_corpus(corpus, bpe_slice, arguments.bpe_megabytes)
    seqlab = [sys.executable, "-m", "seqlab.cli"]
    workers = ["--workers", str(arguments.workers)]
    results = {"machine": os.uname().nodename, "cores": os.cpu_count(), "load_before": os.getloadavg(),
               "corpus_bytes": corpus_bytes, "corpus_files": corpus_files, "workers": arguments.workers}

    def prepare(name: str, folder: Path, size: int, tokenizer: str) -> None:
        result = measure([*seqlab, "prepare", "--data", str(folder), "--out", str(outputs / name),
                          "--tokenizer", tokenizer, *workers])
        result["megabytes_per_second"] = size / 1e6 / result["seconds"]
        results[f"prepare_{name}"] = result
        print(f"prepare {name:10} {size / 1e6:8.1f} MB: {result['seconds']:7.1f} s, "
              f"{result['megabytes_per_second']:6.2f} MB/s, peak {result['peak_mb']:7.0f} MB  "
              f"[{result['stderr'].splitlines()[-1]}]", flush=True)

    prepare("char", corpus, corpus_bytes, "char")
    truncated_copy(outputs / "char", outputs / "small", arguments.small_megabytes)
    prepare("bpe", bpe_slice, bpe_bytes, "bpe")
    result = measure([sys.executable, __file__, "--workers", str(arguments.workers), "--tiktoken-into",
                      str(bpe_slice), str(outputs / "bpe"), str(outputs / "tiktoken.bin")])
    result["megabytes_per_second"] = bpe_bytes / 1e6 / result["seconds"]
    results["tiktoken"] = result
    print(f"tiktoken   {'(anchor)':10} {bpe_bytes / 1e6:8.1f} MB: {result['seconds']:7.1f} s, "
          f"{result['megabytes_per_second']:6.2f} MB/s, peak {result['peak_mb']:7.0f} MB  [{result['stderr']}]",
          flush=True)

    for name in ("char", "small"):
        run = outputs / f"run-{name}"
        result = measure([*seqlab, "train", "--data", str(outputs / name), "--out", str(run), "--max-steps",
                          str(arguments.steps), "--eval-interval", str(arguments.steps), "--eval-max-batches", "2",
                          "--log-interval", "1", "--threads", "1"], first_line="step 1 ")
        results[f"train_{name}"] = result
        tokens = sum(part["tokens"] for part in
                     json.loads((outputs / name / "manifest.json").read_text())["parts"].values())
        print(f"train on {name:6} ({tokens / 1e6:8.1f} M tokens): first step after {result['first_step_seconds']:5.1f} s, "
              f"{arguments.steps} steps in {result['seconds']:5.1f} s, peak {result['peak_mb']:6.0f} MB", flush=True)
    ratio = results["train_char"]["peak_mb"] / results["train_small"]["peak_mb"]
    results["train_memory_ratio"] = ratio
    results["load_after"] = os.getloadavg()
    print(f"training peak memory, {corpus_bytes / 1e9:.2f} GB corpus / {arguments.small_megabytes:.0f} MB of its tokens: "
          f"{ratio:.3f} (goal <= 1.2: {'met' if ratio <= 1.2 else 'not met'})")
    print(f"load average before {results['load_before'][0]:.1f}, after {results['load_after'][0]:.1f} "
          f"on {results['cores']} cores")
    (root / "results.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
