"""TensorBoard logging: the event files, read back by TensorBoard's own reader, hold what the trainer logged."""
import json

import pytest

from seqlab.cli import main

from helpers import words_text

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

FLAGS = ["--config", "tiny", "--batch-size", "4", "--block-size", "16", "--hidden-size", "16", "--threads", "1",
         "--log-interval", "1", "--eval-interval", "3", "--quiet", "--log-format", "jsonl,tensorboard"]


def read_events(directory):
    events = EventAccumulator(str(directory), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def scalars(events, tag):
    return {event.step: event.value for event in events.Scalars(tag)}


def test_scalars_read_back_equal_the_jsonl_and_a_resumed_run_continues_the_same_curves(tmp_path, capsys):
    from torch.utils.tensorboard import SummaryWriter

    data = tmp_path / "text.txt"
    data.write_text(words_text(3000), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FLAGS, "--max-steps", "6"]) == 0
    # an interrupted run may have logged past its last checkpoint (step 6): the resumed run replaces those points
    with SummaryWriter(str(run / "tensorboard")) as crashed:
        for step in (7, 8):
            crashed.add_scalar("train/loss", 999.0, global_step=step)
    assert main(["train", "--data", str(data), "--out", str(run), *FLAGS, "--max-steps", "9", "--resume"]) == 0
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [record for record in records if record["kind"] == "train"]
    evaluations = [record for record in records if record["kind"] == "eval"]
    events = read_events(run / "tensorboard")
    assert [record["step"] for record in train] == list(range(1, 10))
    for name in ("loss", "lr", "grad_norm", "tokens_per_second"):
        logged = scalars(events, f"train/{name}")
        assert sorted(logged) == list(range(1, 10))  # one point per step, across both runs, none left from the crash
        for record in train:
            assert logged[record["step"]] == pytest.approx(record[name], rel=1e-6)
    for name in ("val_loss", "bpc"):
        logged = scalars(events, f"val/{name}")
        assert logged == {record["step"]: pytest.approx(record[name], rel=1e-6) for record in evaluations}
    assert sorted(scalars(events, "val/val_loss")) == [3, 6, 9]

    # diagnose adds its figures to the run's log, at the checkpoint's step
    assert main(["diagnose", str(run), "--data", str(data), "--length", "20", "--what", "trajectories,gates"]) == 0
    images = read_events(run / "tensorboard").Images("diagnostics/trajectories")
    assert [image.step for image in images] == [9] and images[0].width > 100


def test_tensorboard_without_its_package_is_one_line_naming_the_extra_and_touches_nothing(tmp_path, capsys, monkeypatch):
    import sys

    data = tmp_path / "text.txt"
    data.write_text(words_text(1000), encoding="utf-8")
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # importing it now fails as if not installed
    capsys.readouterr()
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *FLAGS, "--max-steps", "2"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "seqlab[tensorboard]" in error
    assert not (tmp_path / "run").exists()
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *FLAGS, "--log-format", "jsonl,xml",
                 "--max-steps", "2"]) == 2
    assert "--log-format" in capsys.readouterr().err
