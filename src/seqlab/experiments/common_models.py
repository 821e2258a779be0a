"""Language models of roughly equal size for the experiments that compare backbones' costs."""
from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..models import LanguageModel
from ..registry import build_backbone

# Depth per backbone; the width is then chosen for the parameter budget. Attention widths come in
# whole heads of 64 (the Transformer's default num_heads is H // 64).
LAYERS = {"rnn": 2, "lstm": 2, "gru": 2, "mingru": 3, "minlstm": 3, "tcn": 4, "linear_attention": 2, "transformer": 2}
WIDTH_STEP = {"transformer": 64, "linear_attention": 64}


def parameter_count(module: nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def matched_language_model(name: str, *, target_parameters: int, vocab_size: int, seed: int = 0,
                           layers: int | None = None, **options: Any) -> LanguageModel:
    """The language model with backbone ``name`` (depth ``layers``, by default LAYERS[name]) whose width brings
    its parameter count closest to ``target_parameters``; widths step by 16 (64 for attention). Seeded, in eval mode."""
    step = WIDTH_STEP.get(name, 16)
    layers = layers or LAYERS.get(name, 2)
    best: tuple[int, int] | None = None  # (gap, width)
    for width in range(step, 4096 + step, step):
        backbone = build_backbone(name, input_size=width, hidden_size=width, num_layers=layers, **options)
        count = parameter_count(LanguageModel(vocab_size, backbone))
        if best is None or abs(count - target_parameters) < best[0]:
            best = (abs(count - target_parameters), width)
        if count > target_parameters:
            break
    assert best is not None
    torch.manual_seed(seed)
    backbone = build_backbone(name, input_size=best[1], hidden_size=best[1], num_layers=layers, **options)
    return LanguageModel(vocab_size, backbone).eval()


def training_step_times(model: nn.Module, tokens: torch.Tensor, *, repeats: int) -> list[float]:
    """Seconds of ``repeats`` timed training steps (forward, next-token loss, backward) on tokens (B, T + 1),
    after one untimed step; the model is left in training mode."""
    model.train()

    def step() -> None:
        model.zero_grad(set_to_none=True)
        logits, _ = model(tokens[:, :-1])  # (B, T, V)
        F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten()).backward()

    def synchronise() -> None:  # a GPU runs asynchronously: wait for its work before reading the clock
        if tokens.is_cuda:
            torch.cuda.synchronize(tokens.device)

    step()
    times = []
    for _ in range(repeats):
        synchronise()
        started = time.perf_counter()
        step()
        synchronise()
        times.append(time.perf_counter() - started)
    return times
