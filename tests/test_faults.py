"""Faults while training: a kill or a failed write during a save, two runs on one --out, non-finite steps.

A kill is simulated by raising an exception that no cleanup in seqlab handles (as SIGKILL runs none) at
each named stage of a save; benchmarks/fault_campaign.py does the same with real SIGKILLs.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import seqlab.manifest as manifest_module
import seqlab.train.checkpoint as checkpoint_module
from seqlab.cli import main
from seqlab.errors import SeqlabError
from seqlab.train.checkpoint import (LOCK_FILE, MANIFEST, load_checkpoint, load_trainer_state,
                                     lock_directory, recover_checkpoint, save_checkpoint)
from seqlab.train.trainer import Trainer

from helpers import small_config, tree_digest, words_text


class SimulatedKill(BaseException):
    """Stands for SIGKILL: not an Exception, so no ``except OSError`` cleanup in seqlab runs."""


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> Path:
    """A finished two-step run: the checkpoint every fault below must leave intact or replace whole."""
    root = tmp_path_factory.mktemp("previous")
    (root / "text.txt").write_text(words_text(2000), encoding="utf-8")
    Trainer(small_config(root / "text.txt", max_steps=2, eval_interval=2), root / "run", quiet=True).fit()
    return root / "run"


def new_checkpoint(directory: Path) -> dict:
    """save_checkpoint's arguments for a checkpoint that differs from ``directory``'s in weights and step."""
    loaded = load_checkpoint(directory)
    state, tensors = load_trainer_state(directory)
    with torch.no_grad():
        for parameter in loaded.model.parameters():
            parameter.add_(1.0)
    return {"config": loaded.config, "model": loaded.model, "assets": loaded.task.assets(),
            "trainer_state": {**state, "step": state["step"] + 100}, "trainer_tensors": tensors}


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return dict(load_checkpoint(directory).model.state_dict())


def same_weights(first: dict[str, torch.Tensor], second: dict[str, torch.Tensor]) -> bool:
    return first.keys() == second.keys() and all(torch.equal(first[name], second[name]) for name in first)


def save_stages(tmp_path: Path, previous: Path, monkeypatch) -> list[str]:
    stages: list[str] = []
    monkeypatch.setattr(checkpoint_module, "reach_stage", stages.append)
    shutil.copytree(previous, tmp_path / "trace")
    save_checkpoint(tmp_path / "trace", **new_checkpoint(tmp_path / "trace"))
    monkeypatch.undo()
    return stages


def test_a_kill_at_every_stage_of_a_save_leaves_a_loadable_checkpoint(tmp_path, previous, monkeypatch):
    stages = save_stages(tmp_path, previous, monkeypatch)
    assert stages[0] == "staging" and "committed" in stages and stages[-1] == "retired .incoming"
    assert {f"wrote {name}" for name in ("config.json", "model.safetensors", MANIFEST)} <= set(stages)
    old_weights = weights(previous)
    new_weights = {name: tensor + 1.0 for name, tensor in old_weights.items()}
    old_step = load_trainer_state(previous)[0]["step"]
    for index, stage in enumerate(stages):
        directory = tmp_path / f"killed-{index}"
        shutil.copytree(previous, directory)
        arguments = new_checkpoint(directory)

        def kill_at(reached: str, stage: str = stage) -> None:
            if reached == stage:
                raise SimulatedKill(stage)

        monkeypatch.setattr(checkpoint_module, "reach_stage", kill_at)
        with pytest.raises(SimulatedKill):
            save_checkpoint(directory, **arguments)
        monkeypatch.undo()
        committed = index >= stages.index("committed")
        # what a reader (sample, eval) sees right after the kill: the whole previous or the whole new checkpoint
        assert same_weights(weights(directory), new_weights if committed else old_weights), stage
        assert load_trainer_state(directory)[0]["step"] == old_step + (100 if committed else 0), stage
        # what the next run does first: finish placing a committed checkpoint, remove the partial files
        recover_checkpoint(directory)
        assert sorted(path.name for path in directory.iterdir() if path.name.startswith(".")) == [], stage
        assert same_weights(weights(directory), new_weights if committed else old_weights), stage
        save_checkpoint(directory, **new_checkpoint(directory))  # and the directory takes the next save
        assert load_trainer_state(directory)[0]["step"] == old_step + (200 if committed else 100), stage


def test_a_reader_during_a_save_reads_the_whole_new_checkpoint(tmp_path, previous, monkeypatch):
    directory = tmp_path / "run"
    shutil.copytree(previous, directory)
    arguments = new_checkpoint(directory)
    original_sha256 = manifest_module.sha256
    reads: list[str] = []

    def sha256_while_a_trainer_saves(path):
        if not reads:  # the reader has the old manifest in hand when a whole save replaces the files
            reads.append(path.name)
            monkeypatch.setattr(manifest_module, "sha256", original_sha256)
            save_checkpoint(directory, **arguments)
        return original_sha256(path)

    monkeypatch.setattr(manifest_module, "sha256", sha256_while_a_trainer_saves)
    assert same_weights(weights(directory), dict(arguments["model"].state_dict())) and reads
    with pytest.raises(SeqlabError, match="damaged"):  # a damaged file nobody is replacing is reported at once
        (directory / "config.json").write_text("{}")
        load_checkpoint(directory)


def failing_save_model(model, filename, metadata=None):
    """Write half of the file, then find the disk full."""
    with open(filename, "wb") as handle:
        handle.write(b"\0" * 1000)
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), filename)


@pytest.mark.parametrize("where", ["wrote config.json", "model", "wrote model.safetensors", "wrote trainer.json",
                                   "wrote trainer.safetensors", f"wrote {MANIFEST}"])
def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint_byte_for_byte(tmp_path, previous, monkeypatch,
                                                                               where):
    directory = tmp_path / "run"
    shutil.copytree(previous, directory)
    arguments = new_checkpoint(directory)
    before = tree_digest(directory)
    if where == "model":
        monkeypatch.setattr(checkpoint_module, "save_model", failing_save_model)
    else:
        def full_disk(reached: str) -> None:
            if reached == where:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(checkpoint_module, "reach_stage", full_disk)
    with pytest.raises(SeqlabError, match="No space left on device.*previous checkpoint there is intact"):
        save_checkpoint(directory, **arguments)
    assert tree_digest(directory) == before  # byte for byte, and no partial file left behind
    assert sorted(path.name for path in directory.iterdir()) == sorted(path.name for path in previous.iterdir())


def test_a_full_disk_while_training_is_one_line_and_exit_2(tmp_path, previous, monkeypatch, capsys):
    directory = tmp_path / "run"
    shutil.copytree(previous, directory)
    before = tree_digest(directory)
    monkeypatch.setattr(checkpoint_module, "save_model", failing_save_model)
    data = load_checkpoint(directory).config.data.path
    code = main(["train", "--out", str(directory), "--resume", "--max-steps", "4", "--data", data, "--quiet"])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "No space left on device" in error, error
    assert checkpoint_digest(directory) == {name: digest for name, digest in before.items()
                                            if not name.startswith("metrics")}


def test_non_finite_weights_are_never_saved(tmp_path, previous):
    directory = tmp_path / "run"
    shutil.copytree(previous, directory)
    arguments = new_checkpoint(directory)
    before = tree_digest(directory)
    with torch.no_grad():
        next(arguments["model"].parameters())[0] = float("nan")
    with pytest.raises(SeqlabError, match="non-finite"):
        save_checkpoint(directory, **arguments)
    assert tree_digest(directory) == before


def wait_for(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_two_trainers_on_one_out_and_a_killed_runs_lock_taken_over(tmp_path, capsys):
    data = tmp_path / "text.txt"
    data.write_text(words_text(2000), encoding="utf-8")
    out, trace = tmp_path / "run", tmp_path / "trace.txt"
    flags = ["--data", str(data), "--block-size", "16", "--hidden-size", "16", "--batch-size", "4",
             "--eval-interval", "2", "--threads", "1"]
    environment = {**os.environ, checkpoint_module.PAUSE_VARIABLE: "0.1", checkpoint_module.TRACE_VARIABLE: str(trace)}
    first = subprocess.Popen([sys.executable, "-m", "seqlab.cli", "train", "--out", str(out), "--max-steps", "100000",
                              *flags, "--quiet"], env=environment, stderr=subprocess.PIPE, text=True)
    try:
        # the first run has committed a checkpoint, holds the lock, and goes on training and saving
        wait_for(lambda: trace.exists() and "committed" in trace.read_text(), 120, "the first run's first save")
        assert (out / LOCK_FILE).read_text().strip() == str(first.pid)
        code = main(["train", "--out", str(out), "--overwrite", "--max-steps", "3", *flags, "--quiet"])
        error = capsys.readouterr().err
        assert code == 2 and error.count("\n") == 1, error
        assert f"in use by another training run (process {first.pid})" in error
        assert first.poll() is None  # the refusal touched nothing of the running one
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(timeout=30)
    assert (out / LOCK_FILE).read_text().strip() == str(first.pid)  # a SIGKILL leaves its lock file behind
    step = load_trainer_state(out)[0]["step"]
    code = main(["train", "--out", str(out), "--resume", "--max-steps", str(step + 2), *flags])
    error = capsys.readouterr().err
    assert code == 0, error
    assert f"taking over the lock of process {first.pid}" in error
    assert not (out / LOCK_FILE).exists() and not [path for path in out.iterdir() if path.name.startswith(".")]
    assert load_trainer_state(out)[0]["step"] == step + 2


def test_the_lock_names_its_holder_and_is_released(tmp_path):
    held = lock_directory(tmp_path / "run")
    assert (tmp_path / "run" / LOCK_FILE).read_text() == f"{os.getpid()}\n"
    with pytest.raises(SeqlabError, match=f"process {os.getpid()}"):
        lock_directory(tmp_path / "run")
    held.release()
    assert not (tmp_path / "run" / LOCK_FILE).exists()
    (tmp_path / "run" / LOCK_FILE).write_text("999999999\n")  # left by a run that is gone: no flock on it
    again = lock_directory(tmp_path / "run")
    assert again.taken_over_from == 999999999
    again.release()


def checkpoint_digest(directory: Path) -> dict[str, str]:
    """tree_digest without the files a run appends to or holds while it runs."""
    return {name: digest for name, digest in tree_digest(directory).items()
            if not name.startswith("metrics") and name != LOCK_FILE}


class PoisonGradient(torch.autograd.Function):
    """The identity forward; a NaN gradient backward (a finite loss whose gradient is not)."""

    @staticmethod
    def forward(context, value):
        return value.clone()

    @staticmethod
    def backward(context, gradient):
        return gradient * float("nan")


@pytest.mark.parametrize("poisoned", ["loss", "gradient"])
def test_a_non_finite_step_is_skipped_and_counted_and_a_run_of_them_stops(tmp_path, monkeypatch, poisoned):
    data = tmp_path / "text.txt"
    data.write_text(words_text(2000), encoding="utf-8")
    original_loss = Trainer._loss
    bad_calls: set[int] = set()
    snapshots: list[list[torch.Tensor]] = []
    digests: list[dict[str, str]] = []

    def loss(self, model, batch, state):
        snapshots.append([parameter.detach().clone() for parameter in self.model.parameters()])
        digests.append(checkpoint_digest(self.out_dir))
        value, state, penalty = original_loss(self, model, batch, state)
        if len(snapshots) in bad_calls:
            value = value * float("nan") if poisoned == "loss" else PoisonGradient.apply(value)
        return value, state, penalty

    monkeypatch.setattr(Trainer, "_loss", loss)
    bad_calls.update({5})
    summary = Trainer(small_config(data, max_steps=8, eval_interval=4), tmp_path / "one", quiet=True).fit()
    assert summary.skipped_steps == 1 and summary.steps == 8 and len(snapshots) == 9
    assert all(torch.equal(before, after) for before, after in zip(snapshots[4], snapshots[5]))  # no update
    assert not all(torch.equal(before, after) for before, after in zip(snapshots[5], snapshots[6]))
    records = [json.loads(line) for line in (tmp_path / "one" / "metrics.jsonl").read_text().splitlines()]
    assert [record["step"] for record in records if record["kind"] == "skipped"] == [5]
    assert load_trainer_state(tmp_path / "one")[0]["skipped_steps"] == 1
    assert all(torch.isfinite(tensor).all() for tensor in load_file(str(tmp_path / "one" / "model.safetensors")).values())

    snapshots.clear()
    digests.clear()
    bad_calls.clear()
    bad_calls.update(range(7, 100))  # steps 1-6 fine (a checkpoint at step 4), then never finite again
    config = small_config(data, max_steps=20, eval_interval=4, max_nonfinite_steps=3)
    with pytest.raises(SeqlabError, match="training stopped at step 7: .* not finite for 4 steps in a row"):
        Trainer(config, tmp_path / "two", quiet=True).fit()
    assert len(snapshots) == 10  # 6 good steps, then 3 skipped and the 4th stops
    assert checkpoint_digest(tmp_path / "two") == digests[6]  # the step-4 checkpoint, untouched by the run of non-finite steps
    assert load_trainer_state(tmp_path / "two")[0]["step"] == 4


def test_a_skipped_first_step_of_a_stream_starts_the_next_from_a_fresh_state(tmp_path, monkeypatch):
    data = tmp_path / "text.txt"
    data.write_text(words_text(2000), encoding="utf-8")
    original_loss = Trainer._loss
    calls: list[int] = []

    def loss(self, model, batch, state):
        calls.append(len(calls) + 1)
        value, state, penalty = original_loss(self, model, batch, state)
        return (value * float("nan") if len(calls) == 1 else value), state, penalty

    monkeypatch.setattr(Trainer, "_loss", loss)
    config = small_config(data, max_steps=3, eval_interval=3)
    config.data.batching = "stream"
    summary = Trainer(config, tmp_path / "run", quiet=True).fit()
    assert (summary.steps, summary.skipped_steps, len(calls)) == (3, 1, 4)
    assert load_trainer_state(tmp_path / "run")[0]["carried_state"]
