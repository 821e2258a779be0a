r"""The attention alignment of a sequence-to-sequence checkpoint for one input.

The input is decoded (greedy, or beam search with ``task.beam_size``); the
decoded output, EOS included, is then fed back by teacher forcing, which gives
the weights a_ts each output token t put on each source token s (each row sums
to 1 over the real source tokens). For the Transformer they are the last
decoder layer's cross-attention, averaged over heads.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from ..data.pairs import BOS
from ..decode import decode, use_beam_size
from ..errors import SeqlabError

DECIMALS = 5


@dataclass
class Alignment:
    source: list[str]  # S source tokens
    output: list[str]  # T output tokens, </s> last when decoding ended there
    text: str  # the decoded text
    weights: np.ndarray  # (T, S)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "output": self.output, "text": self.text,
                "weights": np.round(self.weights, DECIMALS).tolist()}


@torch.no_grad()
def alignment(checkpoint: Any, text: str) -> Alignment:
    """Decode ``text`` with a seq2seq checkpoint and return the attention of its output on its source."""
    task, model = checkpoint.task, checkpoint.model
    if checkpoint.config.task.name != "seq2seq":
        raise SeqlabError(f"align needs a seq2seq checkpoint; this one is --task {checkpoint.config.task.name}")
    if not model.has_attention:
        raise SeqlabError("this model has no attention (--attention none): there is no alignment to draw")
    if not text.strip():
        raise SeqlabError("give some text to align")
    model.eval()
    device = next(model.parameters()).device
    source = task.encode_source(text).to(device)  # (S,)
    lengths = torch.tensor([len(source)], device=device)
    config = checkpoint.config.task
    (hypothesis,) = decode(model, source.unsqueeze(0), lengths, beam_size=config.beam_size,
                           max_length=config.max_target_length)
    tokens = torch.tensor([[BOS, *hypothesis.tokens[:-1]]], device=device)  # (1, T): y_0 = BOS .. y_{T-1}
    _, weights = model.teacher_forced(source.unsqueeze(0), lengths, tokens)  # (1, T, S)
    vocabulary = task.vocabulary
    return Alignment(source=vocabulary.pieces(source), output=vocabulary.pieces(hypothesis.tokens),
                     text=vocabulary.decode(hypothesis.tokens), weights=weights[0].double().cpu().numpy())


def plot_alignment(result: Alignment, path: Path) -> None:
    """A heat map: source tokens along x, output tokens down y."""
    rows, columns = result.weights.shape
    figure = Figure(figsize=(1.2 + 0.28 * columns, 1.0 + 0.28 * rows), layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(result.weights, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest", aspect="auto")
    axes.set_xticks(range(columns), [repr(piece)[1:-1] or " " for piece in result.source], fontsize=7)
    axes.set_yticks(range(rows), [repr(piece)[1:-1] or " " for piece in result.output], fontsize=7)
    axes.set_xlabel("source")
    axes.set_ylabel("output")
    axes.set_title(f"{''.join(result.source)!r} -> {result.text!r}", fontsize=8)
    figure.colorbar(image, ax=axes, shrink=0.8, label="attention weight")
    figure.savefig(path, dpi=120)


def write_alignment(checkpoint_directory: str | Path, text: str, out: str | Path, *,
                    beam_size: int | None = None, device: str = "cpu") -> tuple[Alignment, Path, Path]:
    """``seqlab align``: the figure at ``out`` and its numbers in JSON beside it (same name, .json);
    ``beam_size`` replaces the checkpoint's; the model runs on ``device``."""
    from ..train.checkpoint import load_checkpoint

    out = Path(out)
    if out.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise SeqlabError(f"--out {out} must name a .png, .pdf or .svg file")
    if out.is_dir():
        raise SeqlabError(f"--out {out} is a directory; name a file such as align.png")
    if not out.parent.exists():
        raise SeqlabError(f"the folder of --out {out} does not exist; create it first")
    checkpoint = load_checkpoint(checkpoint_directory, device=device)
    use_beam_size(checkpoint, beam_size)
    result = alignment(checkpoint, text)
    plot_alignment(result, out)
    json_path = out.with_suffix(".json")
    json_path.write_text(json.dumps(result.to_json(), ensure_ascii=False) + "\n", encoding="utf-8")
    return result, out, json_path
