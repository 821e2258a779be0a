"""``seqlab diagnose``: run the analyses on one checkpoint and one stretch of text, write figures and numbers.

Each analysis writes NAME.png (matplotlib, no display needed) and NAME.json
into the output directory. With the default selection every analysis that
applies to the backbone runs and the rest are named as skipped; an analysis
asked for by name that does not apply is an error.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from torch import Tensor

from ..data.text import read_text, split_text
from ..errors import SeqlabError
from .attention import attention_maps, has_attention_maps, plot_attention
from .gates import gate_saturation, has_gates, plot_gates
from .gradients import gradient_flow, plot_gradient_flow, plot_jacobians, step_jacobians
from .reading import is_recurrent, read_sequence
from .trajectories import plot_trajectory, state_trajectory

ANALYSES = ("gradients", "jacobians", "gates", "attention", "trajectories")
DEFAULT_LENGTH = 100
DEFAULT_DIRECTORY = "diagnostics"


def parse_analyses(text: str) -> list[str]:
    """``"gradients,gates"`` -> ["gradients", "gates"]; an unknown or empty item is a SeqlabError."""
    names = [name.strip() for name in text.split(",")]
    unknown = [name for name in names if name not in ANALYSES]
    if unknown:
        raise SeqlabError(f"unknown --what item {', '.join(repr(name) for name in unknown)}; "
                          f"choose from {','.join(ANALYSES)}")
    return list(dict.fromkeys(names))


def select_tokens(checkpoint: Any, data_path: str | Path, *, length: int, offset: int | None) -> tuple[Tensor, int]:
    """length + 1 tokens of the data and where they start: the validation part's start, or token ``offset`` of the whole text.

    Returns (tokens (length + 1,), the offset of the first one in the whole text's tokens,
    or within the validation part when no offset was given).
    """
    if length < 2:
        raise SeqlabError(f"--length must be at least 2, got {length}")
    text = read_text(data_path)
    tokenizer = checkpoint.tokenizer
    if offset is None:
        _, validation = split_text(text, checkpoint.config.data.val_fraction)
        part, where, offset = (validation, "the validation part", 0) if validation else (text, "the text", 0)
    else:
        if offset < 0:
            raise SeqlabError(f"--offset must be 0 or more, got {offset}")
        part, where = text, f"the text from token {offset}"
    tokens = tokenizer.encode(part)[offset:offset + length + 1]
    if len(tokens) < length + 1:
        raise SeqlabError(f"{data_path}: {where} has {len(tokens)} tokens, fewer than --length {length} + 1; "
                          "use a longer file, a smaller --length or an earlier --offset")
    return tokens, offset


@dataclass
class Diagnosis:
    """What ``diagnose`` did: one summary line and the files of each analysis run, and what it skipped."""

    directory: Path
    summaries: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def render(self) -> str:
        lines = [*self.summaries, *(f"skipped {reason}" for reason in self.skipped)]
        lines += [f"wrote {path}" for path in self.paths]
        return "\n".join(lines)


def _applicable(analysis: str, backbone: Any, name: str) -> str | None:
    """Why ``analysis`` does not apply to the backbone, or None when it does."""
    if analysis == "gates" and not has_gates(backbone):
        return f"backbone {name} has no gates; gates exist for lstm, gru, mingru and minlstm"
    if analysis == "jacobians" and not is_recurrent(backbone):
        return (f"backbone {name} has no fixed-size hidden state to differentiate step by step; "
                "jacobians exist for rnn, lstm, gru, mingru and minlstm")
    if analysis == "attention" and not has_attention_maps(backbone):
        return f"backbone {name} has no attention maps; they exist for transformer"
    return None


def diagnose(checkpoint_directory: str | Path, data_path: str | Path, *, out: str | Path | None = None,
             length: int = DEFAULT_LENGTH, offset: int | None = None, what: Sequence[str] | None = None) -> Diagnosis:
    """Run the analyses ``what`` (None: every one that applies) on ``length`` tokens of ``data_path``.

    Writes NAME.png and NAME.json per analysis into ``out`` (default CHECKPOINT/diagnostics).
    """
    from ..train.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(checkpoint_directory)
    if checkpoint.config.task.name != "lm":
        raise SeqlabError(f"diagnose reads text through a language model; checkpoint {checkpoint_directory} "
                          f"holds a {checkpoint.config.task.name!r} task")
    model, backbone, name = checkpoint.model, checkpoint.model.backbone, checkpoint.config.model.backbone
    chosen = list(ANALYSES) if what is None else list(what)
    unknown = [analysis for analysis in chosen if analysis not in ANALYSES]
    if unknown:
        raise SeqlabError(f"unknown analysis {unknown[0]!r}; choose from {','.join(ANALYSES)}")
    diagnosis = Diagnosis(directory=Path(out) if out is not None else Path(checkpoint_directory) / DEFAULT_DIRECTORY)
    runnable = []
    for analysis in chosen:
        reason = _applicable(analysis, backbone, name)
        if reason is None:
            runnable.append(analysis)
        elif what is None:
            diagnosis.skipped.append(f"{analysis}: {reason}")
        else:
            raise SeqlabError(f"{reason} (choose other --what items)")
    limit = backbone.forward_limit
    if limit is not None and length > limit:
        raise SeqlabError(f"--length {length} is longer than this backbone's {limit} learned positions; give --length {limit} or less")
    tokens, start = select_tokens(checkpoint, data_path, length=length, offset=offset)
    try:
        diagnosis.directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SeqlabError(f"cannot write diagnostics into {diagnosis.directory} ({error.strerror}); give another --out") from None
    header = {"checkpoint": str(checkpoint_directory), "data": str(data_path), "offset": start, "length": length,
              "backbone": name}
    reading = read_sequence(model, tokens[:-1])
    labels = [checkpoint.tokenizer.decode([int(token)]) for token in tokens[:-1]]

    def write(analysis: str, numbers: dict[str, Any], draw: Any) -> None:
        figure_path, numbers_path = diagnosis.directory / f"{analysis}.png", diagnosis.directory / f"{analysis}.json"
        draw(figure_path)
        numbers_path.write_text(json.dumps({**header, **numbers}) + "\n", encoding="utf-8")
        diagnosis.paths += [figure_path, numbers_path]

    for analysis in runnable:
        if analysis == "gradients":
            flows = [gradient_flow(model, tokens, loss=loss) for loss in ("last", "sum")]
            write(analysis, {"flows": [flow.to_json() for flow in flows]}, lambda path: plot_gradient_flow(flows, path))
            norms = flows[0].norms
            symbol = "h_t" if flows[0].quantity == "hidden" else "x_t (input embeddings)"
            diagnosis.summaries.append(
                f"gradients: ||dL/d{symbol}|| for the loss at the last position is {norms[-1]:.3g} at t={length} "
                f"and {norms[0]:.3g} at t=1 (ratio {norms[0] / max(norms[-1], 1e-300):.3g})")
        elif analysis == "jacobians":
            result = step_jacobians(backbone, reading.inputs, reading.states)
            write(analysis, result.to_json(), lambda path: plot_jacobians(result, path))
            diagnosis.summaries.append(
                f"jacobians: spectral norm of ds_t/ds_(t-1) (state size {result.jacobians.shape[1]}) "
                f"mean {result.spectral.mean():.3g}, min {result.spectral.min():.3g}, max {result.spectral.max():.3g}")
        elif analysis == "gates":
            result = gate_saturation(backbone, reading)
            write(analysis, result.to_json(), lambda path: plot_gates(result, path))
            shares = "; ".join(
                f"layer {layer} {gate} <0.1 {numbers['near_zero']:.0%} >0.9 {numbers['near_one']:.0%}"
                for layer, gates in enumerate(result.layers) for gate, numbers in gates.items())
            diagnosis.summaries.append(f"gates: {shares}")
        elif analysis == "attention":
            result = attention_maps(model, tokens[:-1])
            write(analysis, result.to_json(), lambda path: plot_attention(result, path, labels=labels))
            reach = ", ".join(f"layer {layer} {row.mean():.2f}" for layer, row in enumerate(result.distance))
            diagnosis.summaries.append(f"attention: {result.maps.shape[0]} layers x {result.maps.shape[1]} heads; "
                                       f"mean look-back in positions: {reach}")
        else:
            result = state_trajectory(reading.outputs.double().numpy(), labels)
            write(analysis, result.to_json(), lambda path: plot_trajectory(result, path))
            diagnosis.summaries.append(f"trajectories: the top two principal components hold "
                                       f"{result.explained[0]:.0%} and {result.explained[1]:.0%} of the state's variance")
    return diagnosis

