"""Sampling throughput: batched samples through one step, and onnxruntime's step against torch's.

1. ``seqlab.generate.generate_batch`` with N = 1, 8, 64 samples of one prompt:
   generated tokens per second over all samples (the prompt's pass included),
   for an LSTM and a Transformer (context 256, rotary) of about 1M parameters.
2. The exported ``step.onnx`` run by onnxruntime against ``model.step`` in
   torch, greedy, batch 1 and 8, one thread each: tokens per second.

Rows are measured side by side in one process, so their ratios hold up better
than their absolute numbers on a shared machine.

    python benchmarks/bench_sampling.py                 # 200 tokens per sample, 300 ONNX steps
    python benchmarks/bench_sampling.py --tokens 50     # quicker
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from common import machine, matched_language_model, parameter_count
from seqlab.backbones.base import state_tensors
from seqlab.data.tokenizers import CharTokenizer
from seqlab.generate import generate_batch

BACKBONES = {"lstm": {}, "transformer": {"context_length": 256}}
BATCHES = (1, 8, 64)


def sampling_rate(model: torch.nn.Module, tokenizer: CharTokenizer, *, samples: int, tokens: int) -> float:
    started = time.perf_counter()
    for _ in generate_batch(model, tokenizer, "ab", num_samples=samples, max_tokens=tokens, temperature=1.0, seed=0):
        pass
    return samples * tokens / (time.perf_counter() - started)


@torch.no_grad()
def torch_step_rate(model: torch.nn.Module, *, batch: int, steps: int) -> float:
    state, token = model.init_state(batch), torch.zeros(batch, dtype=torch.long)
    started = time.perf_counter()
    for _ in range(steps):
        logits, state = model.step(token, state)
        token = logits.argmax(-1)
    return batch * steps / (time.perf_counter() - started)


def onnx_step_rate(directory: Path, model: torch.nn.Module, *, batch: int, steps: int) -> float:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(directory / "step.onnx"), options)
    state = [tensor.numpy() for tensor in state_tensors(model.init_state(batch))]
    names = [f"state_{index}" for index in range(len(state))]
    token = np.zeros(batch, dtype=np.int64)
    started = time.perf_counter()
    for _ in range(steps):
        logits, *state = session.run(None, {"token": token, **dict(zip(names, state))})
        token = logits.argmax(-1)
    return batch * steps / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=200, help="tokens per sample")
    parser.add_argument("--steps", type=int, default=300, help="steps per ONNX/torch step measurement")
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    from seqlab.export.onnx import export_language_model

    print(f"machine: {machine()}; load average {' '.join(f'{value:.1f}' for value in os.getloadavg())}")
    tokenizer = CharTokenizer([chr(33 + index) for index in range(64)])  # + <unk>: 65 tokens
    print("\n| backbone | parameters | N=1 tok/s | N=8 tok/s | N=64 tok/s | N=8 / N=1 | N=64 / N=1 |")
    print("|---|---|---|---|---|---|---|")
    models = {}
    for name, options in BACKBONES.items():
        torch.manual_seed(0)
        model = models[name] = matched_language_model(name, **options).eval()
        sampling_rate(model, tokenizer, samples=1, tokens=5)  # warm up
        rates = [sampling_rate(model, tokenizer, samples=samples, tokens=arguments.tokens) for samples in BATCHES]
        print(f"| {name} | {parameter_count(model):,} | {rates[0]:,.0f} | {rates[1]:,.0f} | {rates[2]:,.0f} | "
              f"{rates[1] / rates[0]:.1f}x | {rates[2] / rates[0]:.1f}x |")
    print("\n| backbone | batch | torch step tok/s | onnxruntime step tok/s | onnxruntime / torch |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, model in models.items():
            directory = export_language_model(model, tokenizer, Path(folder) / name, about={"backbone": name})
            for batch in (1, 8):
                torch_step_rate(model, batch=batch, steps=10)  # warm up both
                onnx_step_rate(directory, model, batch=batch, steps=10)
                torch_rate = torch_step_rate(model, batch=batch, steps=arguments.steps)
                onnx_rate = onnx_step_rate(directory, model, batch=batch, steps=arguments.steps)
                print(f"| {name} | {batch} | {torch_rate:,.0f} | {onnx_rate:,.0f} | {onnx_rate / torch_rate:.2f}x |")
    print(f"\nload average after: {' '.join(f'{value:.1f}' for value in os.getloadavg())}")


if __name__ == "__main__":
    main()
