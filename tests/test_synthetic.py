"""Synthetic sources against hand-written answers, the synthetic task's scoring, and the CLI around them."""
from __future__ import annotations

import json
import re

import pytest
import torch
from torch import nn

from seqlab.cli import main
from seqlab.config import Config
from seqlab.data.synthetic import SOURCES, Examples, build_source, source_options
from seqlab.errors import SeqlabError
from seqlab.registry import backbone_names, backbone_options
from seqlab.tasks.synthetic import SyntheticTask, masked_loss, score_examples
from seqlab.train.checkpoint import load_checkpoint
from seqlab.train.trainer import train

from helpers import tree_digest


def generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_adding_targets_are_the_sum_of_the_two_marked_values():
    source = build_source("builtin:adding", {"length": 9, "val_length": 12})
    examples = source.sample(50, generator(), "train")
    assert examples.inputs.shape == (50, 9, 2) and examples.targets.shape == (50, 9)
    for row in range(50):
        values, markers = examples.inputs[row, :, 0], examples.inputs[row, :, 1]
        marked = [t for t in range(9) if markers[t] == 1]
        assert len(marked) == 2 and marked[0] < 4 <= marked[1]  # one in each half (half = 4)
        assert examples.targets[row, -1] == pytest.approx(float(values[marked[0]] + values[marked[1]]))
    assert examples.mask[:, -1].all() and not examples.mask[:, :-1].any()
    assert source.sample(3, generator(), "val").inputs.shape[1] == 12


def test_copy_memory_layout_is_bai_et_al():
    source = build_source("builtin:copy_memory", {"length": 4, "copy_length": 3})
    examples = source.sample(20, generator(), "train")
    for row in range(20):
        text = "".join(source.input_symbols[index] for index in examples.inputs[row].tolist())
        symbols = text[:3]
        assert re.fullmatch(r"[1-8]{3}0009999", text), text  # 3 symbols, T-1 = 3 blanks, the delimiter, 3 nines
        target = "".join(str(value) for value in examples.targets[row].tolist())
        assert target == "0" * 7 + symbols
    assert examples.mask.sum(1).eq(3).all() and examples.mask[:, -3:].all()


def test_anbn_scores_exactly_the_deterministic_positions():
    source = build_source("builtin:anbn", {})
    examples = source.strings([2])
    symbols = source.input_symbols
    assert "".join(symbols[i] for i in examples.inputs[0].tolist()) == "^aabb"
    assert "".join(symbols[i] for i in examples.targets[0].tolist()) == "aabb$"
    assert examples.mask[0].tolist() == [True, False, False, True, True]  # after ^, then from the first b
    abc = build_source("builtin:anbncn", {}).strings([1, 3])
    assert abc.mask[1].tolist() == [True, False, False, False, True, True, True, True, True, True]
    assert abc.lengths.tolist() == [4, 10] and not abc.mask[0, 4:].any()


@pytest.mark.parametrize("name,letters", [("anbn", "ab"), ("anbncn", "abc")])
def test_membership_labels_match_a_counting_recogniser(name, letters):
    source = build_source(f"builtin:{name}", {"mode": "membership", "n_max": 6})
    examples = source.sample(300, generator(), "train")
    pattern = "".join(f"({letter}+)" for letter in letters)
    labels = []
    for row in range(300):
        length = int(examples.lengths[row])
        word = "".join(source.input_symbols[i] for i in examples.inputs[row, :length].tolist())
        assert word[0] == "^" and word[-1] == "$" and examples.mask[row].nonzero().flatten().tolist() == [length - 1]
        match = re.fullmatch(pattern, word[1:-1])
        member = bool(match) and len({len(group) for group in match.groups()}) == 1
        assert int(examples.targets[row, length - 1]) == int(member)
        labels.append(member)
    assert 0.35 < sum(labels) / len(labels) < 0.65


def test_addition_text_and_working():
    direct = build_source("builtin:addition", {})
    assert "".join(direct.text(12, 345)) == "^12+345=357$"
    pad = build_source("builtin:addition", {"scratchpad": True})
    assert "".join(pad.text(57, 68)) == "^57+68=7805;5612;0011;>125$"
    examples = pad.sample(100, generator(), "train")
    for row in range(100):
        length = int(examples.lengths[row])
        ids = [examples.inputs[row, 0].item()] + examples.targets[row, :length].tolist()
        text = "".join(pad.input_symbols[i] for i in ids)
        left, right, working, answer = re.fullmatch(r"\^(\d+)\+(\d+)=((?:\d{4};)+)>(\d+)\$", text).groups()
        assert int(answer) == int(left) + int(right)
        digits = "".join(column[3] for column in working.split(";")[:-1])  # sum digits, least significant first
        assert int(digits[::-1]) == int(answer)
        scored = examples.mask[row, :length].tolist()
        assert scored == [index >= text.index("=") for index in range(length)]  # the input '=' predicts the first one


def test_source_options_do_not_collide_with_backbone_options():
    backbone = {option for name in backbone_names() for option in backbone_options(name)}
    for name in SOURCES:
        assert not backbone & set(source_options(name)), name


@pytest.mark.parametrize("path,options,message", [
    ("builtin:adding", {"length": 1}, "at least 2"),
    ("builtin:adding", {"depth": 3}, "has no option depth"),
    ("builtin:anbn", {"n_min": 0}, "--n-min must be at least 1"),
    ("builtin:anbn", {"val_n_min": 9, "val_n_max": 3}, "below --val-n-min"),
    ("builtin:addition", {"scratchpad": 1}, "true or false"),
    ("builtin:copy_memory", {"length": "long"}, "whole number"),
    ("builtin:sines", {}, "not a synthetic source"),
])
def test_bad_source_options_are_refused(path, options, message):
    with pytest.raises(SeqlabError, match=message):
        build_source(path, options)


class Oracle(nn.Module):
    """Logits that pick the target everywhere but at the listed (row, position)s; serves the rows in order."""

    def __init__(self, examples: Examples, classes: int, wrong: list[tuple[int, int]]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))
        self.logits = nn.functional.one_hot(examples.targets, classes).float() * 5  # (N, T, K)
        for row, position in wrong:
            self.logits[row, position] = self.logits[row, position].roll(1)
        self.offset = 0

    def forward(self, inputs):
        logits = self.logits[self.offset:self.offset + len(inputs), :inputs.shape[1]]
        self.offset += len(inputs)
        return logits, None


def test_scores_count_whole_examples_right():
    source = build_source("builtin:anbn", {})
    examples = source.strings([1, 2, 3, 4])
    oracle = Oracle(examples, len(source.output_symbols), wrong=[(1, 3), (2, 1)])  # (2, 1) is not scored
    scores = score_examples(oracle, examples, batch_size=3)
    assert scores["all_correct"].tolist() == [True, False, True, True]
    assert scores["scored"].tolist() == [2, 3, 4, 5]  # after ^, after each b
    assert scores["correct"].tolist() == [2, 2, 4, 5]


def test_masked_loss_matches_a_loop():
    torch.manual_seed(0)
    logits, targets = torch.randn(2, 4, 5), torch.randint(0, 5, (2, 4))
    mask = torch.tensor([[True, False, True, False], [False, False, False, True]])
    expected = sum(nn.functional.cross_entropy(logits[b, t:t + 1], targets[b, t:t + 1])
                   for b, t in mask.nonzero().tolist())
    assert float(masked_loss(logits, targets, mask)) == pytest.approx(float(expected), rel=1e-6)
    values, real = torch.randn(2, 4), torch.randn(2, 4)
    assert float(masked_loss(values, real, mask)) == pytest.approx(float(((values - real)[mask] ** 2).sum()))


def small_synthetic(tmp_path, path="builtin:addition", **options) -> Config:
    config = Config()
    config.task.name = "synthetic"
    config.data.path = path
    config.data.options = {"val_examples": 32, **options}
    config.model.backbone = "gru"
    config.model.hidden_size = 16
    config.train.batch_size = 8
    config.train.max_steps = 6
    config.train.warmup_steps = 2
    config.train.eval_interval = 3
    config.train.threads = 1
    return config


def test_resume_continues_the_same_examples(tmp_path):
    whole = train(small_synthetic(tmp_path), tmp_path / "whole", quiet=True)
    config = small_synthetic(tmp_path)
    config.train.max_steps = 3
    train(config, tmp_path / "half", quiet=True)
    config = small_synthetic(tmp_path)
    resumed = train(config, tmp_path / "half", resume=True, quiet=True)
    assert resumed.loss == pytest.approx(whole.loss, rel=1e-6)
    first, second = load_checkpoint(tmp_path / "whole").model, load_checkpoint(tmp_path / "half").model
    for (name, value), other in zip(first.state_dict().items(), second.state_dict().values()):
        torch.testing.assert_close(value, other, msg=name)


def test_cli_trains_predicts_and_evaluates(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["train", "--task", "synthetic", "--data", "builtin:anbn", "--n-max", "4", "--val-n-max", "8",
                 "--val-examples", "16", "--backbone", "lstm", "--hidden-size", "8", "--max-steps", "4",
                 "--eval-interval", "2", "--threads", "1", "--quiet", "--out", str(out)])
    assert code == 0
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["options"] == {"n_max": 4, "val_n_max": 8, "val_examples": 16}
    capsys.readouterr()
    assert main(["predict", str(out), "aab", "ab"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(set(line) <= set("ab") for line in lines)
    assert main(["eval", str(out), "--data", "builtin:anbn", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["examples"] == 16 and 0 <= metrics["sequence_accuracy"] <= 1
    assert main(["eval", str(out), "--data", "builtin:anbncn"]) == 2


def test_cli_refuses_a_bad_source_option_before_touching_disk(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    before = tree_digest(out)
    code = main(["train", "--task", "synthetic", "--data", "builtin:adding", "--lenght", "50", "--out", str(out)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and len(error.splitlines()) == 1 and "--lenght" in error and "--length" in error
    assert main(["train", "--task", "synthetic", "--data", "builtin:adding", "--length", "1", "--out", str(out)]) == 2
    assert tree_digest(out) == before


def test_task_metrics_on_a_regression_source():
    config = small_synthetic(None, "builtin:adding", length=6)
    task = SyntheticTask(config)
    task.load_data()
    model = task.build_model()
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.fill_(1.0)  # predicts 1 everywhere: the trivial baseline
    metrics = task.evaluate(model, context=None)
    targets = task.validation.targets[:, -1]
    assert metrics["val_loss"] == pytest.approx(float(((targets - 1) ** 2).mean()), rel=1e-5)
    assert metrics["baseline_mse"] == pytest.approx(float(targets.var(unbiased=False)), rel=1e-5)


def test_init_from_a_shorter_curriculum_stage(tmp_path):
    common = ["--task", "synthetic", "--data", "builtin:anbn", "--backbone", "gru", "--hidden-size", "8",
              "--eval-interval", "2", "--threads", "1", "--quiet"]
    first, second = tmp_path / "n4", tmp_path / "n8"
    assert main(["train", *common, "--n-max", "4", "--max-steps", "2", "--out", str(first)]) == 0
    assert main(["train", *common, "--n-max", "8", "--max-steps", "1", "--learning-rate", "1e-12",
                 "--min-learning-rate", "0", "--warmup-steps", "0", "--init-from", str(first), "--out", str(second)]) == 0
    from safetensors.torch import load_file

    before, after = load_file(str(first / "model.safetensors")), load_file(str(second / "model.safetensors"))
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[name], after[name], atol=1e-6) for name in before)
