"""``seqlab diagnose``: run the analyses on one checkpoint and one stretch of text, write figures and numbers.

Each analysis writes NAME.png (matplotlib, no display needed) and NAME.json
into the output directory (and, for a run that logs to TensorBoard, the figure
into its log). With the default selection every analysis that
applies to the backbone runs and the rest are named as skipped; an analysis
asked for by name that does not apply is an error.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from torch import Tensor

from ..data.text import read_text, split_text
from ..errors import SeqlabError
from ..progress import ProgressReport, console_for
from .attention import attention_maps, has_attention_maps, plot_attention
from .gates import NEAR_ONE, NEAR_ZERO, gate_saturation, has_gates, plot_gates
from .gradients import LOSSES, gradient_flow, jacobian_norms, plot_gradient_flow, plot_jacobians
from .reading import Reading, is_recurrent, read_sequence
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


def select_tokens(checkpoint: Any, data_path: str | Path, *, length: int, offset: int | None) -> tuple[Tensor, str]:
    """length + 1 tokens of the data: from the start of the validation part (the part the model never
    trained on; the whole text when it had none), or from token ``offset`` of the whole text.

    Returns (tokens (length + 1,), where they come from, in words for the JSON files).
    """
    if length < 2:
        raise SeqlabError(f"--length must be at least 2, got {length}")
    if offset is not None and offset < 0:
        raise SeqlabError(f"--offset must be 0 or more, got {offset}")
    text = read_text(data_path, checkpoint.config.data.encoding)
    if offset is None:
        _, validation = split_text(text, checkpoint.config.data.val_fraction)
        part, where = (validation, "the start of the validation part") if validation else (text, "the start of the text")
        offset = 0
    else:
        part, where = text, f"token {offset} of the text"
    tokens = checkpoint.tokenizer.encode(part)[offset:offset + length + 1]
    if len(tokens) < length + 1:
        raise SeqlabError(f"{data_path}: from {where} there are {len(tokens)} tokens, fewer than --length {length} + 1; "
                          "use a longer file, a smaller --length or an earlier --offset")
    return tokens, where


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


@dataclass
class Material:
    """What every analysis reads: the model, the tokens (T + 1,), their reading by ``step`` and their text."""

    model: Any
    tokens: Tensor
    reading: Reading
    labels: list[str]


Outcome = tuple[dict[str, Any], Callable[[Path], None], str]  # (numbers for the JSON, the figure's painter, a summary line)


def _gradients(material: Material) -> Outcome:
    flows = [gradient_flow(material.model, material.tokens, loss=loss) for loss in LOSSES]
    norms = flows[0].norms  # the loss at the last position: the gradient that travels back through time
    symbol = "h_t" if flows[0].quantity == "hidden" else "x_t (input embeddings)"
    summary = (f"gradients: ||dL/d{symbol}|| for the loss at the last position is {norms[-1]:.3g} at t={len(norms)} "
               f"and {norms[0]:.3g} at t=1")
    return {"flows": [flow.to_json() for flow in flows]}, lambda path: plot_gradient_flow(flows, path), summary


def _jacobians(material: Material) -> Outcome:
    result = jacobian_norms(material.model.backbone, material.reading.inputs, material.reading.states)
    summary = (f"jacobians: spectral norm of ds_t/ds_(t-1) (state size {result.state_size}) mean {result.spectral.mean():.3g}, "
               f"min {result.spectral.min():.3g}, max {result.spectral.max():.3g}")
    return result.to_json(), lambda path: plot_jacobians(result, path), summary


def _gates(material: Material) -> Outcome:
    result = gate_saturation(material.model.backbone, material.reading)
    shares = "; ".join(f"layer {layer} {gate} <{NEAR_ZERO} {numbers['near_zero']:.0%} >{NEAR_ONE} {numbers['near_one']:.0%}"
                       for layer, gates in enumerate(result.layers) for gate, numbers in gates.items())
    return result.to_json(), lambda path: plot_gates(result, path), f"gates: {shares}"


def _attention(material: Material) -> Outcome:
    result = attention_maps(material.model, material.tokens[:-1])
    reach = ", ".join(f"layer {layer} {row.mean():.2f}" for layer, row in enumerate(result.distance))
    summary = (f"attention: {result.maps.shape[0]} layers x {result.maps.shape[1]} heads; "
               f"mean look-back in positions: {reach}")
    return result.to_json(), lambda path: plot_attention(result, path, labels=material.labels), summary


def _trajectories(material: Material) -> Outcome:
    result = state_trajectory(material.reading.outputs.double().cpu().numpy(), material.labels)
    summary = (f"trajectories: the top two principal components hold {result.explained[0]:.0%} and "
               f"{result.explained[1]:.0%} of the state's variance")
    return result.to_json(), lambda path: plot_trajectory(result, path), summary


RUNNERS: dict[str, Callable[[Material], Outcome]] = {
    "gradients": _gradients, "jacobians": _jacobians, "gates": _gates, "attention": _attention, "trajectories": _trajectories,
}


def diagnose(checkpoint_directory: str | Path, data_path: str | Path, *, out: str | Path | None = None,
             length: int = DEFAULT_LENGTH, offset: int | None = None, what: Sequence[str] | None = None,
             device: str = "cpu", encoding: str | None = None) -> Diagnosis:
    """Run the analyses ``what`` (None: every one that applies) on ``length`` tokens of ``data_path`` (read in
    ``encoding``: see ``seqlab.evaluate.use_encoding``).

    Writes NAME.png and NAME.json per analysis into ``out`` (default CHECKPOINT/diagnostics).
    Cost: the Jacobians take one batched step of S rows per position (S the state size),
    the rest a few passes over the sequence. ``device``: where the model runs (auto, cpu, cuda, cuda:N).
    """
    from ..evaluate import use_encoding
    from ..train.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(checkpoint_directory, device=device)
    if checkpoint.config.task.name != "lm":
        raise SeqlabError(f"diagnose reads text through a language model; checkpoint {checkpoint_directory} "
                          f"holds a {checkpoint.config.task.name!r} task")
    use_encoding(checkpoint, encoding)
    model, name = checkpoint.model, checkpoint.config.model.backbone
    chosen = list(ANALYSES) if what is None else list(what)
    unknown = [analysis for analysis in chosen if analysis not in ANALYSES]
    if unknown:
        raise SeqlabError(f"unknown analysis {unknown[0]!r}; choose from {','.join(ANALYSES)}")
    diagnosis = Diagnosis(directory=Path(out) if out is not None else Path(checkpoint_directory) / DEFAULT_DIRECTORY)
    runnable = []
    for analysis in chosen:
        reason = _applicable(analysis, model.backbone, name)
        if reason is None:
            runnable.append(analysis)
        elif what is None:
            diagnosis.skipped.append(f"{analysis}: {reason}")
        else:
            raise SeqlabError(f"{reason} (choose other --what items)")
    limit = model.backbone.forward_limit
    if limit is not None and length > limit:
        raise SeqlabError(f"--length {length} is longer than this backbone's {limit} learned positions; "
                          f"give --length {limit} or less")
    tokens, where = select_tokens(checkpoint, data_path, length=length, offset=offset)
    tokens = tokens.to(next(model.parameters()).device)
    try:
        diagnosis.directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise SeqlabError(f"cannot write diagnostics into {diagnosis.directory} ({error.strerror}); give another --out") from None
    header = {"checkpoint": str(checkpoint_directory), "data": str(data_path), "from": where, "length": length, "backbone": name}
    material = Material(model=model, tokens=tokens, reading=read_sequence(model, tokens[:-1]),
                        labels=[checkpoint.tokenizer.decode([int(token)]) for token in tokens[:-1]])
    with ProgressReport("diagnose", len(runnable), console=console_for()) as progress:
        for number, analysis in enumerate(runnable):
            progress.update(number, f"{analysis} ({number + 1} of {len(runnable)})")
            numbers, paint, summary = RUNNERS[analysis](material)
            figure_path, numbers_path = diagnosis.directory / f"{analysis}.png", diagnosis.directory / f"{analysis}.json"
            paint(figure_path)
            numbers_path.write_text(json.dumps({**header, **numbers}) + "\n", encoding="utf-8")
            diagnosis.summaries.append(summary)
            diagnosis.paths += [figure_path, numbers_path]
    _add_to_tensorboard(Path(checkpoint_directory), checkpoint, runnable, diagnosis.directory)
    return diagnosis


def _add_to_tensorboard(directory: Path, checkpoint: Any, analyses: list[str], figures: Path) -> None:
    """A run that logs to TensorBoard gets the figures too, at the step its checkpoint holds."""
    from ..train import tensorboard

    if "tensorboard" not in checkpoint.config.train.log_format.split(",") or not (directory / tensorboard.DIRECTORY).is_dir():
        return
    trainer_file = directory / "trainer.json"
    step = json.loads(trainer_file.read_text(encoding="utf-8"))["step"] if trainer_file.is_file() else 0
    tensorboard.log_figures(directory, {analysis: figures / f"{analysis}.png" for analysis in analyses}, step=step)
