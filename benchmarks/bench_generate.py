"""Generation: tokens per second and peak memory against the number of tokens generated.

Every backbone is sized to about 1M parameters (65-character vocabulary) and
generates through ``seqlab.generate`` (prompt once through ``forward``, then one
``step`` per token). Each measurement runs in a fresh process so that its peak
resident memory (ru_maxrss) is its own; "growth" is the peak minus the
resident memory just before generating.

The Transformer (context 256, rotary positions) also runs the way nanoGPT's
sample.py does: no cache, the whole (cropped) prefix recomputed for every token.

    python benchmarks/bench_generate.py             # 1k, 10k, 100k tokens
    python benchmarks/bench_generate.py --quick     # 1k and 10k
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from rich.console import Console
from rich.table import Table

from common import available, machine, matched_language_model, parameter_count
from seqlab.data.tokenizers import CharTokenizer
from seqlab.generate import generate, sample_tokens

BACKBONES = ["rnn", "lstm", "gru", "mingru", "minlstm", "tcn", "linear_attention", "transformer"]
CONTEXT = 256
RECOMPUTE_TOKENS = (1000, 2000)  # recomputing the prefix is O(context) per token: only short runs


def build(name: str):
    torch.manual_seed(0)
    options = {"context_length": CONTEXT} if name == "transformer" else {}
    return matched_language_model(name, **options).eval()


@torch.no_grad()
def recompute_generate(model, tokens: torch.Tensor, count: int, generator: torch.Generator) -> None:
    """nanoGPT's way: crop to the context, run the whole window, keep the last logits, repeat."""
    for _ in range(count):
        logits, _ = model(tokens[:, -CONTEXT:])
        token = sample_tokens(logits[:, -1], temperature=1.0, top_k=0, top_p=1.0, generators=[generator])
        tokens = torch.cat([tokens, token.unsqueeze(0)], dim=1)


def worker(name: str, count: int, mode: str) -> None:
    model = build(name)
    tokenizer = CharTokenizer([chr(33 + index) for index in range(model.vocab_size - 1)])  # + <unk> = vocab
    prompt = tokenizer.decode(list(range(1, 17)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if mode == "cached":
        for _ in generate(model, tokenizer, prompt, max_tokens=count, seed=0):
            pass
    else:
        recompute_generate(model, tokenizer.encode(prompt).unsqueeze(0), count, torch.Generator().manual_seed(0))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"parameters": parameter_count(model), "seconds": seconds, "tokens_per_second": count / seconds,
                      "peak_mib": peak / 1024, "growth_mib": (peak - before) / 1024}))


def measure(name: str, count: int, mode: str) -> dict:
    command = [sys.executable, __file__, "--worker", name, str(count), mode]
    result = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k and 10k tokens only")
    parser.add_argument("--backbones", default=",".join(BACKBONES))
    parser.add_argument("--markdown", action="store_true")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.worker:
        name, count, mode = arguments.worker
        worker(name, int(count), mode)
        return 0
    counts = (1000, 10000) if arguments.quick else (1000, 10000, 100000)
    rows = []
    for name in available(arguments.backbones.split(",")):
        for count in counts:
            rows.append((name, "cached" if name == "transformer" else "state", count, measure(name, count, "cached")))
        if name == "transformer":
            for count in RECOMPUTE_TOKENS:
                rows.append((name, "recompute prefix", count, measure(name, count, "recompute")))
            rows.append((name, "cached", 2000, measure(name, 2000, "cached")))
    title = f"generation, batch 1, ~1M parameters; {machine()}"
    header = ["backbone", "mode", "parameters", "tokens", "tokens/s", "peak RSS MiB", "growth MiB"]
    lines = [[name, mode, f"{result['parameters']:,}", f"{count:,}", f"{result['tokens_per_second']:,.0f}",
              f"{result['peak_mib']:.0f}", f"{result['growth_mib']:.1f}"] for name, mode, count, result in rows]
    cached = {count: result for name, mode, count, result in rows if name == "transformer" and mode == "cached"}
    recomputed = {count: result for name, mode, count, result in rows if mode == "recompute prefix"}
    if arguments.markdown:
        print(f"{title}\n\n| {' | '.join(header)} |\n|{'---|' * len(header)}")
        for line in lines:
            print(f"| {' | '.join(line)} |")
    else:
        table = Table(title=title)
        for column in header:
            table.add_column(column)
        for line in lines:
            table.add_row(*line)
        Console().print(table)
    if 2000 in cached and 2000 in recomputed:
        speedup = cached[2000]["tokens_per_second"] / recomputed[2000]["tokens_per_second"]
        print(f"\nTransformer, 2,000 tokens, context {CONTEXT}: the key/value cache is {speedup:.1f}x faster "
              "than recomputing the prefix for every token")
    return 0


if __name__ == "__main__":
    sys.exit(main())
