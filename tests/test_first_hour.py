"""The first hour: task hints, budgets on --resume, progress that never floods or wraps, music that never crashes."""
import json
import math
import re
import shutil

import pytest

from seqlab.cli import main
from seqlab.data.hints import suggested_task
from seqlab.progress import ProgressReport, SlowdownWatch, console_for

from helpers import tree_digest, words_text
from test_cli import TRAIN_FLAGS, run_bad


# ------------------------------------------------------------------ task hints
@pytest.mark.parametrize("name, content, task", [
    ("reviews.tsv", "".join(f"a {word} little place\t{label}\n" for word, label in
                            [("great", "pos"), ("awful", "neg"), ("fine", "pos"), ("bad", "neg")] * 10), "classify"),
    ("reviews.txt", "".join(f"sentence number {number} here\t{number % 2}\n" for number in range(40)), "classify"),
    ("series.csv", "date,sales,visits\n" + "".join(f"2024-01-{day:02d},{day * 1.5},{day}\n" for day in range(1, 29)),
     "forecast"),
    ("series.txt", "".join(f"{math.sin(step / 5):.4f}\n" for step in range(60)), "forecast"),
    ("pairs.tsv", "".join(f"{day} March 2017\t2017-03-{day:02d}\n" for day in range(1, 29)), "seq2seq"),
    ("tunes.abc", "X:1\nT:A\nM:6/8\nK:D\nDFA dAF|\n", "music"),
    ("tunes.txt", "X:1\nT:A\nM:6/8\nK:D\nDFA dAF|\n\nX:2\nT:B\nM:3/4\nK:G\nGAB|\n", "music"),
    ("prose.txt", words_text(3000), None),
    ("play.txt", "ROMEO:\nBut soft, what light, through yonder window, breaks?\nJULIET:\nAy me.\n" * 20, None),
])
def test_the_shape_of_a_file_suggests_its_task(tmp_path, name, content, task):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    found = suggested_task(path)
    assert (found and found[0]) == task


def test_a_labelled_tsv_trained_as_a_language_model_gets_one_line_naming_the_task(tmp_path, capsys):
    data = tmp_path / "reviews.tsv"
    data.write_text("".join(f"the {word} cat sat on a mat\t{label}\n" for word, label in
                            [("good", "1"), ("bad", "0")] * 60), encoding="utf-8")
    flags = [flag for flag in TRAIN_FLAGS if flag != "--quiet"]
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *flags, "--max-steps", "1"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert len(notes) == 1 and "--task classify" in notes[0] and str(data) in notes[0]


def test_omitting_data_says_so(tmp_path, capsys):
    error = run_bad(capsys, ["train", "--out", str(tmp_path / "run"), "--max-steps", "1"])
    assert "no training data" in error and "--data" in error
    assert not (tmp_path / "run").exists()


def test_tie_weights_refusal_names_the_fix(tmp_path, capsys):
    data = tmp_path / "text.txt"
    data.write_text(words_text(2000), encoding="utf-8")
    error = run_bad(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--hidden-size", "32",
                             "--embedding-size", "16", "--tie-weights", "true", "--max-steps", "1"])
    assert "--embedding-size 32" in error
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *TRAIN_FLAGS, "--hidden-size", "16",
                 "--embedding-size", "16", "--tie-weights", "true", "--max-steps", "1"]) == 0  # the fix works


# ------------------------------------------------------------------ budgets on --resume
def cosine_rate(step, *, peak, floor, warmup, total):
    """The warmup + cosine schedule, written out independently of the trainer."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + 0.5 * (peak - floor) * (1 + math.cos(math.pi * progress))


def test_resume_with_a_new_step_budget_extends_a_run_whose_time_budget_is_spent(tmp_path, capsys):
    data = tmp_path / "text.txt"
    data.write_text(words_text(3000), encoding="utf-8")
    run = tmp_path / "run"
    flags = ["--config", "tiny", "--batch-size", "4", "--block-size", "16", "--hidden-size", "16", "--threads", "1",
             "--warmup-steps", "2", "--log-interval", "1", "--eval-interval", "1000", "--quiet"]
    assert main(["train", "--data", str(data), "--out", str(run), *flags, "--max-steps", "0",
                 "--max-seconds", "0.2"]) == 0
    done = json.loads((run / "trainer.json").read_text())["step"]
    assert done >= 1
    # the spent time budget: nothing left to do is said, with the fix, and nothing on disk changes
    before = tree_digest(run)
    error = run_bad(capsys, ["train", "--out", str(run), "--resume"])
    assert "nothing left to do" in error and "--max-steps" in error
    assert tree_digest(run) == before
    # a new step budget replaces the spent time budget: the steps continue and the schedule spans the new budget
    # (twice the steps done, and 4 more: however many steps 0.2 s held, the new ones start mid-schedule)
    target = 2 * done + 4
    assert main(["train", "--out", str(run), "--resume", "--max-steps", str(target), "--threads", "1"]) == 0
    assert f"leaves {target - done} more steps" in capsys.readouterr().err
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    resumed = [record for record in records if record["kind"] == "train" and record["step"] > done]
    assert [record["step"] for record in resumed] == list(range(done + 1, target + 1))
    config = json.loads((run / "config.json").read_text())["train"]
    assert config["max_steps"] == target and config["max_seconds"] == 0
    for record in resumed:
        expected = cosine_rate(record["step"] - 1, peak=config["learning_rate"], floor=config["min_learning_rate"],
                               warmup=config["warmup_steps"], total=target)
        assert record["lr"] == pytest.approx(expected, rel=1e-9)
    assert resumed[0]["lr"] > config["min_learning_rate"] * 1.5  # not the floor where the spent budget ended


# ------------------------------------------------------------------ progress
class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_file_gets_at_most_one_status_line_per_interval_and_the_last_one(capsys):
    clock = FakeClock()
    with ProgressReport("train", 100, console=console_for(), interval=5.0, clock=clock) as progress:
        for step in range(1, 101):
            clock.now = step * 0.1  # 10 s in all
            progress.update(step, f"step {step}")
            if step == 75:
                progress.print("step 75: val_loss 1.0")
    lines = capsys.readouterr().err.splitlines()
    # at 0.1 s, then the first update 5 s later (5.1 s); a record flushes the held-back status first; the last one
    assert lines == ["train: step 1", "train: step 51", "train: step 75", "step 75: val_loss 1.0", "train: step 100"]


def test_records_are_never_wrapped_in_a_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "30")  # a console narrower than every record
    data = tmp_path / "text.txt"
    data.write_text(words_text(3000), encoding="utf-8")
    flags = [flag for flag in TRAIN_FLAGS if flag != "--quiet"]
    assert main(["train", "--data", str(data), "--out", str(tmp_path / "run"), *flags]) == 0
    lines = capsys.readouterr().err.splitlines()
    validations = [line for line in lines if re.match(r"step \d+: ", line)]
    assert len(validations) == 2  # steps 3 and 6
    for line in validations:
        assert re.fullmatch(r"step \d+: val_loss \d+\.\d{4}, bpc \d+\.\d{4}( \(.*\))?", line), line
    assert any(line.startswith("trained 6 steps") and line.endswith(str(tmp_path / "run")) for line in lines)


def test_slowdown_is_said_once_with_its_numbers_only_when_the_machine_is_loaded():
    def run(durations, load, threads=2):
        watch = SlowdownWatch(threads=threads, load=lambda: load, cores=2, baseline=5, window=5)
        return [message for message in map(watch.observe, durations) if message]

    fast, slow = [1.0] + [0.01] * 5, [0.25] * 20  # the first step pays for warm-up
    said = run(fast + slow, load=9.5)
    assert len(said) == 1
    assert "25x" in said[0] and "250 ms against 10 ms" in said[0] and "9.5" in said[0] and "--threads 1" in said[0]
    assert run(fast + slow, load=1.0) == []  # slower, but nothing competes: not the machine's doing
    assert run(fast + [0.02] * 20, load=9.5) == []  # loaded, but the pace holds
    assert "--threads 1" not in run(fast + slow, load=9.5, threads=1)[0]  # already one thread: other advice


def test_experiment_runs_say_which_model_which_seed_and_how_far(tmp_path, capsys):
    from seqlab.experiments.common import experiment_progress, train_run
    from seqlab.experiments.common_synthetic import synthetic_config

    values = synthetic_config("anbn", {"n_max": 3}, {"backbone": "gru", "hidden_size": 8}, steps=4, seed=7,
                              batch_size=4, val_examples=8)
    with experiment_progress("counting", "quick"):
        train_run(values, tmp_path / "run")
        train_run({**values, "train": {**values["train"], "seed": 8}}, tmp_path / "run2")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "experiment counting (preset quick): started"
    assert "counting run 1: gru, H 8, seed 7, builtin:anbn (n_max 3): step 1 of 4, loss" in lines[1]
    assert any(line.startswith("counting run 1: gru, H 8, seed 7, builtin:anbn (n_max 3): 4 steps in") for line in lines)
    assert any(line.startswith("counting run 2: gru, H 8, seed 8") for line in lines)
    assert re.fullmatch(r"experiment counting: 2 training runs, done in \d+ s", lines[-1])


# ------------------------------------------------------------------ music --midi
def test_music_midi_skips_a_tune_music21_cannot_write_and_writes_the_others(tmp_path, capsys, monkeypatch):
    music21 = pytest.importorskip("music21")
    import seqlab.music
    from test_music import SCALE, TRAIN_FLAGS as MUSIC_FLAGS, UNPARSEABLE, tunes_text

    data = tmp_path / "tunes.abc"
    data.write_text(tunes_text(8), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *MUSIC_FLAGS, "--max-steps", "1"]) == 0
    refused = SCALE.replace("T:Scale", "T:Refused")
    monkeypatch.setattr(seqlab.music, "generate_tunes", lambda *args, **kwargs: [SCALE, refused, UNPARSEABLE])
    parse = seqlab.music.parse_tune

    def parse_then_refuse_to_write(tune, **kwargs):
        score = parse(tune, **kwargs)
        if "T:Refused" in tune:  # what music21 said of a generated tune (issue 15)
            def write(*args, **kwargs):
                raise music21.exceptions21.StreamException(
                    "the object (<music21.meter.TimeSignature 2/2>, id()=1) is already found in this Stream")
            score.write = write
        return score

    monkeypatch.setattr(seqlab.music, "parse_tune", parse_then_refuse_to_write)
    capsys.readouterr()
    out = tmp_path / "tunes"
    assert main(["music", str(run), "--tunes", "3", "--out", str(out), "--midi"]) == 0
    error = capsys.readouterr().err
    assert "Traceback" not in error
    assert sorted(path.name for path in out.iterdir()) == ["tune-001.abc", "tune-001.mid", "tune-002.abc",
                                                          "tune-003.abc"]
    assert re.search(r"tune-002 skipped: music21 cannot write .*StreamException", error)
    assert re.search(r"tune-003\.mid skipped: music21 cannot parse", error)
    assert len(music21.converter.parse(str(out / "tune-001.mid")).flatten().notes) == 8
