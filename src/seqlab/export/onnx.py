"""ONNX export of a language model checkpoint: the one-position step and the whole-sequence forward.

    DIR/step.onnx         token (batch,) int64, state_0 .. state_{n-1}
                          -> logits (batch, V), state_out_0 .. state_out_{n-1}
    DIR/forward.onnx      tokens (batch, time) int64, state_0 .. -> logits (batch, time, V), state_out_0 ..
    DIR/state_<i>.npy     the model's fresh state for one sequence (repeat it along its batch axis for more)
    DIR/tokenizer.json    the checkpoint's tokenizer
    DIR/seqlab-onnx.json  the graphs' inputs and outputs (names, shapes with their batch and time axes,
                          dtypes), the state's tensors and batch axes, and the tokenizer

The step is traced with torch.onnx's TorchScript exporter into a straight-line
graph whose batch axis is dynamic. The forward is an ONNX ``Scan`` whose body
is that step graph: the loop over a dynamic time axis, with the state carried
from one position to the next, is then one mechanism shared by every backbone.
Tracing the backbones' own whole-sequence paths would not do: a Python loop over
time, the fused LSTM/GRU kernels and the chunked parallel scans all trace to the
length of the example input. By invariant 1 of every backbone (stepping gives
``forward``), the Scan equals ``forward`` (to float rounding). torch's newer
exporter (torch.export) handles such loops only through ``scan`` and took 30 to
60 s per graph here, against a few seconds for the traced step.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..backbones.base import map_state, state_tensors
from ..data.tokenizers import save_tokenizer
from ..errors import SeqlabError
from ..generate import batch_dimensions

FORMAT = "seqlab-onnx"
MANIFEST = "seqlab-onnx.json"
STEP_FILE = "step.onnx"
FORWARD_FILE = "forward.onnx"
TOKENIZER_FILE = "tokenizer.json"
OPSET = 17
FORMATS = ("onnx",)


def require_onnx() -> Any:
    """The onnx package, or one line naming the extra that brings it."""
    try:
        import onnx
    except ImportError:
        raise SeqlabError("ONNX export needs the export extra: pip install 'seqlab[export]'") from None
    return onnx


class StepGraph(nn.Module):
    """The model's ``step`` with its state as a flat list of tensors, the form a graph's inputs take."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.template = model.init_state(1)

    def forward(self, token: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        """token (B,), state tensors -> logits (B, V), the new state's tensors."""
        given = iter(state)
        logits, new_state = self.model.step(token, map_state(lambda _: next(given), self.template))
        return (logits, *state_tensors(new_state))


def _shape(tensor: Tensor, batch_axis: int | None) -> list[int | str]:
    return [("batch" if axis == batch_axis else size) for axis, size in enumerate(tensor.shape)]


def _dtype(tensor: Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


def _rename(graph: Any, names: dict[str, str]) -> None:
    """Rename values of an ONNX graph (inputs, outputs, node references) in place."""
    for value in [*graph.input, *graph.output]:
        value.name = names.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [names.get(name, name) for name in node.input]
        node.output[:] = [names.get(name, name) for name in node.output]


def _scan_forward(onnx: Any, step: Any, state_specs: list[dict[str, Any]], vocab_size: int) -> Any:
    """forward.onnx: a Scan over the time axis of ``tokens`` whose body is the step graph."""
    from onnx import helper

    count = len(state_specs)
    body = onnx.GraphProto()
    body.CopyFrom(step.graph)
    body.name = "step"
    # a subgraph may not reuse its outer graph's names: the body's values get a prefix
    _rename(body, {value.name: f"step/{value.name}" for value in [*body.input, *body.output]})
    # Scan's body takes the carried state first, then the scanned input; it gives the state, then the scanned output
    token_input, state_inputs = body.input[0], list(body.input[1:])
    logits_output, state_outputs = body.output[0], list(body.output[1:])
    body.ClearField("input")
    body.input.extend([*state_inputs, token_input])
    body.ClearField("output")
    body.output.extend([*state_outputs, logits_output])

    def value(name: str, dtype: str, shape: list[int | str]) -> Any:
        return helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(np.dtype(dtype)), shape)

    inputs = [value("tokens", "int64", ["batch", "time"])]
    inputs += [value(spec["name"], spec["dtype"], spec["shape"]) for spec in state_specs]
    outputs = [value("logits", "float32", ["batch", "time", vocab_size])]
    outputs += [value(f"state_out_{index}", spec["dtype"], spec["shape"]) for index, spec in enumerate(state_specs)]
    scan = helper.make_node(
        "Scan", [spec["name"] for spec in state_specs] + ["tokens"],
        [f"state_out_{index}" for index in range(count)] + ["logits"],
        body=body, num_scan_inputs=1, scan_input_axes=[1], scan_output_axes=[1])
    graph = helper.make_graph([scan], "forward", inputs, outputs)
    model = helper.make_model(graph, opset_imports=step.opset_import, producer_name="seqlab")
    model.ir_version = step.ir_version
    return model


def export_onnx(checkpoint_directory: str | Path, out: str | Path) -> Path:
    """Write the step and forward graphs, the fresh state, the tokenizer and the manifest into ``out``."""
    from ..models.language_model import LanguageModel
    from ..train.checkpoint import load_checkpoint

    require_onnx()
    checkpoint = load_checkpoint(checkpoint_directory)
    if not isinstance(checkpoint.model, LanguageModel):
        raise SeqlabError(f"ONNX export covers language models (tokens in, next-token logits out, a state between); "
                          f"checkpoint {checkpoint_directory} holds a {checkpoint.config.task.name!r} task")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SeqlabError(f"--out {out} is a file; give a directory for the exported graphs")
    return export_language_model(checkpoint.model, checkpoint.tokenizer, out,
                                 about={"checkpoint": str(checkpoint_directory), "task": checkpoint.config.task.name,
                                        "backbone": checkpoint.config.model.backbone})


def export_language_model(model: nn.Module, tokenizer: Any, out: Path, *, about: dict[str, str]) -> Path:
    """The export of a language model and its tokenizer into directory ``out``; ``about`` goes into the manifest."""
    onnx = require_onnx()
    model = model.float().eval()
    out.mkdir(parents=True, exist_ok=True)
    batch_axes = batch_dimensions(model)
    fresh = state_tensors(model.init_state(1))
    state_specs = [{"name": f"state_{index}", "shape": _shape(tensor, axis), "dtype": _dtype(tensor),
                    "batch_axis": axis, "initial": f"state_{index}.npy"}
                   for index, (tensor, axis) in enumerate(zip(fresh, batch_axes))]
    example = state_tensors(model.init_state(2))  # batch 2 for tracing, so no axis of size one is mistaken for it
    dynamic_axes: dict[str, dict[int, str]] = {"token": {0: "batch"}, "logits": {0: "batch"}}
    for index, axis in enumerate(batch_axes):
        if axis is not None:
            dynamic_axes[f"state_{index}"] = {axis: "batch"}
            dynamic_axes[f"state_out_{index}"] = {axis: "batch"}
    step_path = out / STEP_FILE
    with torch.no_grad():
        torch.onnx.export(StepGraph(model), (torch.zeros(2, dtype=torch.long), *example), str(step_path),
                          dynamo=False, opset_version=OPSET, input_names=["token", *[spec["name"] for spec in state_specs]],
                          output_names=["logits", *[f"state_out_{index}" for index in range(len(state_specs))]],
                          dynamic_axes=dynamic_axes)
    step = onnx.load(str(step_path))
    expected_inputs = ["token", *[spec["name"] for spec in state_specs]]
    if [value.name for value in step.graph.input] != expected_inputs:  # the tracer drops inputs the step never reads
        raise SeqlabError(f"the {about.get('backbone', 'model')}'s step does not read all of its state "
                          f"({[value.name for value in step.graph.input]}), so it cannot be exported as a graph")
    onnx.save(_scan_forward(onnx, step, state_specs, model.vocab_size), str(out / FORWARD_FILE))
    for spec, tensor in zip(state_specs, fresh):
        np.save(out / spec["initial"], tensor.detach().cpu().numpy(), allow_pickle=False)
    save_tokenizer(tokenizer, out / TOKENIZER_FILE)
    empty_prompt = tokenizer.encode("\n")[-1:].tolist() or [0]
    state_inputs = [{key: spec[key] for key in ("name", "shape", "dtype")} for spec in state_specs]
    state_outputs = [{**entry, "name": f"state_out_{index}"} for index, entry in enumerate(state_inputs)]
    manifest = {
        "format": FORMAT, "version": 1, **about, "vocab_size": model.vocab_size,
        "forward": {"file": FORWARD_FILE,
                    "inputs": [{"name": "tokens", "shape": ["batch", "time"], "dtype": "int64"}, *state_inputs],
                    "outputs": [{"name": "logits", "shape": ["batch", "time", model.vocab_size], "dtype": "float32"},
                                *state_outputs]},
        "step": {"file": STEP_FILE,
                 "inputs": [{"name": "token", "shape": ["batch"], "dtype": "int64"}, *state_inputs],
                 "outputs": [{"name": "logits", "shape": ["batch", model.vocab_size], "dtype": "float32"},
                             *state_outputs]},
        "state": state_specs,
        "tokenizer": {"file": TOKENIZER_FILE, "kind": tokenizer.kind},
        "empty_prompt": empty_prompt,  # the tokens generation starts from when the prompt is empty
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return out
