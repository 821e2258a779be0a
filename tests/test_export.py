"""ONNX export: onnxruntime runs the exported forward and step as torch runs the model, for every backbone."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seqlab.backbones.base import state_tensors
from seqlab.cli import main
from seqlab.config import Config
from seqlab.generate import generate, repeat_state
from seqlab.registry import backbone_class, backbone_names
from seqlab.tasks import task_class
from seqlab.train.checkpoint import load_checkpoint, save_checkpoint

from helpers import words_text

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "onnx_generate.py"
OPTIONS = {"transformer": {"context_length": 6, "positional": "learned"}}  # generation runs past its 6 positions


def make_checkpoint(directory, backbone, text, *, tokenizer="char", **options):
    """An untrained language model saved as a checkpoint (what is exported is the graph, trained or not)."""
    data = directory / "text.txt"
    data.write_text(text, encoding="utf-8")
    config = Config()
    config.data.path = str(data)
    config.data.tokenizer = tokenizer
    config.data.vocab_size = 280 if tokenizer == "bpe" else 0
    config.model.backbone = backbone
    config.model.hidden_size = 8
    config.model.num_layers = 2
    config.model.options = options
    task = task_class("lm")(config)
    task.load_data()
    torch.manual_seed(0)
    model = task.build_model().eval()
    with torch.no_grad():  # sharper logits than the initialisation's, so greedy choices are not near-ties
        model.head.weight.mul_(8)
    save_checkpoint(directory / "run", config=config, model=model, assets=task.assets())
    return directory / "run"


def run_graph(session, feeds):
    return [torch.from_numpy(value) for value in session.run(None, {name: value.numpy() for name, value in feeds.items()})]


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize("backbone", [name for name in backbone_names() if not backbone_class(name).reads_frames])
def test_onnxruntime_equals_torch_for_other_batches_and_lengths_and_greedy_generation(tmp_path, backbone):
    run = make_checkpoint(tmp_path, backbone, words_text(600), **OPTIONS.get(backbone, {}))
    out = tmp_path / "onnx"
    assert main(["export", str(run), "--format", "onnx", "--out", str(out)]) == 0
    manifest = json.loads((out / "seqlab-onnx.json").read_text())
    model = load_checkpoint(run).model
    forward = onnxruntime.InferenceSession(str(out / "forward.onnx"))
    step = onnxruntime.InferenceSession(str(out / "step.onnx"))
    names = [entry["name"] for entry in manifest["state"]]
    generator = torch.Generator().manual_seed(1)
    # the step was traced with batch 2: run batches 3 and 1 and several lengths, from a fresh and a carried state
    # (within the transformer's 6 learned positions, which torch's forward does not pass; the steps below do)
    for batch, lengths in ((3, (4, 2)), (1, (1, 5))):
        state = model.init_state(batch)
        for length in lengths:
            tokens = torch.randint(0, model.vocab_size, (batch, length), generator=generator)
            with torch.no_grad():
                expected_logits, expected_state = model(tokens, state)
            logits, *onnx_state = run_graph(forward, {"tokens": tokens, **dict(zip(names, state_tensors(state)))})
            torch.testing.assert_close(logits, expected_logits, atol=1e-4, rtol=0)
            for got, expected in zip(onnx_state, state_tensors(expected_state), strict=True):
                torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
            state = expected_state
        token = tokens[:, -1]
        for _ in range(3):
            with torch.no_grad():
                expected_logits, state_after = model.step(token, state)
            logits, *onnx_state = run_graph(step, {"token": token, **dict(zip(names, state_tensors(state)))})
            torch.testing.assert_close(logits, expected_logits, atol=1e-4, rtol=0)
            for got, expected in zip(onnx_state, state_tensors(state_after), strict=True):
                torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
            token, state = expected_logits.argmax(-1), state_after
    # the exported fresh state, repeated along its batch axes, is the model's fresh state
    fresh = [torch.from_numpy(np.load(out / entry["initial"])) for entry in manifest["state"]]
    for got, expected in zip(state_tensors(repeat_state(model, model.init_state(1), 2)), state_tensors(model.init_state(2))):
        torch.testing.assert_close(got, expected)
    assert all(torch.equal(got, expected) for got, expected in zip(fresh, state_tensors(model.init_state(1))))
    # greedy generation through the exported graphs: the prompt through forward, then one step per token
    tokenizer = load_checkpoint(run).tokenizer
    prompt = tokenizer.encode("the cat ")
    logits, *state = run_graph(forward, {"tokens": prompt.unsqueeze(0), **dict(zip(names, fresh))})
    logits, generated = logits[:, -1], []
    for position in range(12):
        if position:
            logits, *state = run_graph(step, {"token": torch.tensor(generated[-1:]), **dict(zip(names, state))})
        generated.append(int(logits[0].argmax()))
    assert tokenizer.decode(generated) == "".join(generate(model, tokenizer, "the cat ", max_tokens=12, temperature=0))


def python_without_torch(tmp_path):
    """An environment in which importing torch or seqlab fails, to show the example needs neither."""
    blocker = tmp_path / "blocker"
    for name in ("torch", "seqlab"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('{name} is not available here')\n")
    return {"PYTHONPATH": str(blocker), "PATH": "/usr/bin:/bin"}


@pytest.mark.parametrize("backbone, tokenizer, prompt", [
    ("lstm", "bpe", "the ☃ cat "), ("transformer", "word", "the dog "), ("gru", "char", ""),
])
def test_the_standalone_example_prints_what_seqlab_sample_prints_greedily(tmp_path, capsys, backbone, tokenizer, prompt):
    text = words_text(800) + "snow ☃ man ☃ 日本語\n" * 5
    run = make_checkpoint(tmp_path, backbone, text, tokenizer=tokenizer, **OPTIONS.get(backbone, {}))
    out = tmp_path / "onnx"
    assert main(["export", str(run), "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["sample", str(run), "--prompt", prompt, "--max-tokens", "20", "--temperature", "0"]) == 0
    expected = capsys.readouterr().out
    result = subprocess.run([sys.executable, str(EXAMPLE), str(out), "--prompt", prompt, "--max-tokens", "20"],
                            capture_output=True, text=True, timeout=120, env=python_without_torch(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected


def test_export_refuses_what_it_cannot_export_in_one_line(tmp_path, capsys, monkeypatch):
    capsys.readouterr()
    assert main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    run = make_checkpoint(tmp_path, "rnn", words_text(300))
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert main(["export", str(run), "--out", str(tmp_path / "onnx")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "seqlab[export]" in error
    monkeypatch.undo()
    # a classifier reads a sequence but gives one label: not a sequence in and out
    table = tmp_path / "labels.csv"
    table.write_text("".join(f"{'good day' if index % 2 else 'bad night'} {index},{index % 2}\n" for index in range(40)))
    config = Config()
    config.task.name, config.data.path, config.model.hidden_size = "classify", str(table), 8
    task = task_class("classify")(config)
    task.load_data()
    save_checkpoint(tmp_path / "classifier", config=config, model=task.build_model(), assets=task.assets())
    assert main(["export", str(tmp_path / "classifier"), "--out", str(tmp_path / "onnx")]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "'classify'" in error and not (tmp_path / "onnx").exists()
