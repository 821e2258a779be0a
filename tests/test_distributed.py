"""Many processes take the one-process step: every task under a 2-process torchrun (gloo, CPU), in one launch.

Each task's data gives the two processes' rows different numbers of counted
positions (padding, masks, class weights, tune lengths), so a per-process mean
would not match; the trainer's global count must, and so must the validation
metrics and what the forecaster fits before training (its ETS anchor and the
anchor's refit). Also: dropout masks differ
between processes, a 2-process stream run interrupted and resumed ends
bit-identical, and --accumulate equals one step on the whole batch in float64.
"""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from seqlab.config import Config
from seqlab.train.trainer import Trainer

from helpers import small_config, words_text

TIMEOUT_SECONDS = 300
WORKER = Path(__file__).with_name("distributed_runs.py")


def _losses(run_directory: Path) -> list[float]:
    records = [json.loads(line) for line in (run_directory / "metrics.jsonl").read_text().splitlines()]
    return [record["loss"] for record in records if record["kind"] == "train"]


def _evaluations(run_directory: Path) -> list[dict[str, float]]:
    records = [json.loads(line) for line in (run_directory / "metrics.jsonl").read_text().splitlines()]
    return [{key: value for key, value in record.items() if key != "kind" and not key.endswith("_seconds")}
            for record in records if record["kind"] == "eval"]


def _weights(run_directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_directory / "model.safetensors"))


def _common(config: Config, *, steps: int = 4, batch_size: int = 8) -> Config:
    config.train.max_steps = steps
    config.train.batch_size = batch_size
    config.train.warmup_steps = 1
    config.train.eval_interval = steps
    config.train.log_interval = 1
    config.train.threads = 1
    config.model.hidden_size = 16
    config.model.embedding_size = 8
    return config


def _task_configs(root: Path) -> dict[str, Config]:
    """One small run per task, on data whose rows count different numbers of positions."""
    rng = random.Random(0)
    configs = {}
    text = root / "text.txt"
    text.write_text(words_text(3000), encoding="utf-8")
    configs["lm"] = _common(small_config(text))

    # classify: skewed labels with class weights, texts of 1 to 8 words
    rows = [" ".join(rng.choice(["good", "bad", "film", "the"]) for _ in range(rng.randint(1, 8))) + "\t"
            + ("yes" if rng.random() < 0.25 else "no") for _ in range(80)]
    (root / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    config = _common(Config())
    config.task.name, config.task.class_weights, config.data.path = "classify", True, str(root / "labels.tsv")
    configs["classify"] = config

    # forecast: a noisy sine, a direct 3-step forecast
    values = [f"{torch.sin(torch.tensor(step / 5.0)).item() + 0.1 * rng.random():.5f}" for step in range(200)]
    (root / "series.csv").write_text("value\n" + "\n".join(values) + "\n", encoding="utf-8")
    config = _common(Config())
    config.task.name, config.task.horizon, config.data.path, config.data.block_size = "forecast", 3, str(root / "series.csv"), 8
    configs["forecast"] = config

    # seq2seq: reverse strings of 1 to 7 letters (targets padded to different lengths)
    words = ["".join(rng.choice("abcdef") for _ in range(rng.randint(1, 7))) for _ in range(80)]
    (root / "pairs.tsv").write_text("\n".join(f"{word}\t{word[::-1]}" for word in words) + "\n", encoding="utf-8")
    config = _common(Config())
    config.task.name, config.data.path, config.task.max_target_length = "seq2seq", str(root / "pairs.tsv"), 10
    config.model.backbone = "gru"
    configs["seq2seq"] = config

    # music: whole tunes of different lengths, conditions hidden at random in the global batch
    from test_music import tunes_text

    (root / "tunes.abc").write_text(tunes_text(16, seed=3), encoding="utf-8")
    config = _common(Config())
    config.task.name, config.data.path, config.data.block_size = "music", str(root / "tunes.abc"), 60
    config.data.val_fraction = 0.25
    configs["music"] = config

    # synthetic: addition, answers of 1 to 3 digits (the mask counts differ per row)
    config = _common(Config())
    config.task.name, config.data.path = "synthetic", "builtin:addition"
    config.data.options = {"val_examples": 16}
    config.model.backbone = "gru"
    configs["synthetic"] = config
    return configs


def _stream_config(text: Path, steps: int) -> Config:
    """Stream batching with dropout and a constant learning rate, so a run stopped early and resumed must
    replay every process's carried state and random stream exactly."""
    config = _common(small_config(text), steps=steps)
    config.data.batching = "stream"
    config.model.num_layers, config.model.dropout = 2, 0.3
    config.train.min_learning_rate = config.train.learning_rate
    config.train.eval_interval = 2
    return config


def _accumulate_config(text: Path, accumulate: int) -> Config:
    config = _common(small_config(text), steps=3, batch_size=32)
    config.train.accumulate = accumulate
    config.data.block_size = 8
    return config


@pytest.mark.slow
def test_two_processes_take_the_one_process_step(tmp_path):
    configs = _task_configs(tmp_path)
    plan = []
    for name, config in configs.items():
        Trainer(config, tmp_path / f"{name}-one", quiet=True).fit()
        # the forecast run speaks (not --quiet), so its notes can be counted below
        plan.append({"config": config.to_dict(), "out": str(tmp_path / f"{name}-two"), "quiet": name != "forecast"})

    text = tmp_path / "text.txt"
    dropout = _common(small_config(text), steps=2)
    dropout.model.backbone, dropout.model.dropout = "transformer", 0.5
    dropout.model.options = {"context_length": 16}
    plan.append({"config": dropout.to_dict(), "out": str(tmp_path / "dropout"), "dropout_probe": True})

    plan.append({"config": _stream_config(text, 6).to_dict(), "out": str(tmp_path / "stream-whole")})
    plan.append({"config": _stream_config(text, 3).to_dict(), "out": str(tmp_path / "stream-resumed")})
    plan.append({"config": _stream_config(text, 6).to_dict(), "out": str(tmp_path / "stream-resumed"), "resume": True})

    torch.set_default_dtype(torch.float64)
    try:
        Trainer(_accumulate_config(text, 1), tmp_path / "whole-batch", quiet=True).fit()
    finally:
        torch.set_default_dtype(torch.float32)
    for accumulate in (1, 4):
        plan.append({"config": _accumulate_config(text, accumulate).to_dict(), "float64": True,
                     "out": str(tmp_path / f"accumulate-{accumulate}-two")})

    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan), encoding="utf-8")
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("RANK", "WORLD_SIZE"))}
    environment["PYTHONPATH"] = os.pathsep.join([str(WORKER.parent), environment.get("PYTHONPATH", "")])
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
               str(WORKER), str(plan_file)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, env=environment)
    assert result.returncode == 0, result.stderr[-3000:]
    # what a task noted while reading its data is said once, by the main process, not once a process
    assert result.stderr.count("forecast: the network corrects") == 1, result.stderr[-3000:]

    for name in configs:
        one, two = tmp_path / f"{name}-one", tmp_path / f"{name}-two"
        assert _losses(two) == pytest.approx(_losses(one), abs=1e-5), name
        first, second = _weights(one), _weights(two)
        assert first.keys() == second.keys()
        for key in first:
            torch.testing.assert_close(second[key], first[key], atol=1e-5, rtol=0, msg=f"{name}: {key}")
        assert _losses(one)[0] != _losses(one)[-1], name  # the run moved, so following it means something
        # the validation metrics (all processes' rows, gathered) are one process's too
        assert _evaluations(one), name
        for single, pair in zip(_evaluations(one), _evaluations(two), strict=True):
            assert pair == pytest.approx(single, rel=1e-4, abs=1e-6), name
    # what the forecaster fitted before training (scaler, season, ETS fits, the anchor and its refit for the anchor
    # alone) and chose on validation is each process's own computation on the same rows: the same as one process's
    fitted = {name: json.loads((tmp_path / f"forecast-{name}" / "scaler.json").read_text()) for name in ("one", "two")}
    assert fitted["one"]["anchor"] == "ets" and fitted["one"]["anchor_ets"]  # the refit happened
    assert fitted["two"] == fitted["one"]

    probe = json.loads((tmp_path / "dropout" / "dropout_probe.json").read_text())
    assert probe == {"train_outputs_differ": True, "eval_outputs_differ": False}

    whole, resumed = tmp_path / "stream-whole", tmp_path / "stream-resumed"
    assert _losses(resumed) == _losses(whole)
    for key, value in _weights(whole).items():
        assert torch.equal(_weights(resumed)[key], value), key

    reference = _weights(tmp_path / "whole-batch")
    assert next(iter(reference.values())).dtype == torch.float64
    for accumulate in (1, 4):
        weights = _weights(tmp_path / f"accumulate-{accumulate}-two")
        for key in reference:
            torch.testing.assert_close(weights[key], reference[key], atol=1e-6, rtol=0, msg=f"{accumulate}: {key}")
