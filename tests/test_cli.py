"""Every verb of the command line, and every bad input ending in one line and exit code 2."""
import json
import subprocess
import sys

import pytest
import torch

from seqlab.cli import main

from helpers import run_bad, tree_digest, words_text

TRAIN_FLAGS = ["--config", "tiny", "--max-steps", "6", "--eval-interval", "3", "--batch-size", "4",
               "--block-size", "16", "--hidden-size", "16", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small trained checkpoint shared by the read-only verbs."""
    root = tmp_path_factory.mktemp("cli")
    data = root / "text.txt"
    data.write_text(words_text(3000), encoding="utf-8")
    assert main(["train", "--data", str(data), "--out", str(root / "run"), *TRAIN_FLAGS]) == 0
    return data, root / "run"



def test_train_sample_eval(trained, capsys):
    data, run = trained
    for name in ("config.json", "model.safetensors", "tokenizer.json", "trainer.json", "checkpoint.json"):
        assert (run / name).is_file()
    assert (run / "best" / "model.safetensors").is_file()
    capsys.readouterr()
    assert main(["sample", str(run), "--prompt", "the ", "--max-tokens", "30", "--seed", "1", "--top-k", "5",
                 "--top-p", "0.9", "--temperature", "0.7"]) == 0
    first = capsys.readouterr().out
    assert first.startswith("the ") and len(first) == len("the ") + 30 + 1
    assert main(["sample", str(run), "--prompt", "the ", "--max-tokens", "30", "--seed", "1", "--top-k", "5",
                 "--top-p", "0.9", "--temperature", "0.7"]) == 0
    assert capsys.readouterr().out == first  # a seed makes sampling repeatable
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last_eval = [record for record in records if record["kind"] == "eval"][-1]
    assert metrics["val_loss"] == pytest.approx(last_eval["val_loss"], abs=1e-5)  # the trainer's own split
    assert metrics["bpc"] == pytest.approx(metrics["val_loss"] / 0.6931471805599453)
    assert metrics["data"] == str(data)


def test_predict_without_inputs_is_refused_where_nothing_follows_the_training_data(trained, capsys):
    data, run = trained  # a language model: predict has nothing to go on from (a forecaster goes on from its series)
    assert run_bad(capsys, ["predict", str(run)]) == ("seqlab: error: give inputs to predict on the command line or "
                                                      "with --file FILE\n")


def test_eval_without_data_reads_what_the_checkpoint_was_trained_on(trained, tmp_path, capsys, monkeypatch):
    data, run = trained
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0
    given = json.loads(capsys.readouterr().out)
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == given
    assert main(["eval", str(run)]) == 0
    assert capsys.readouterr().out.startswith(f"{data} (all of the val split): split val, ")
    # trained on a relative path, evaluated from another folder: the file is not there, and the line says so
    monkeypatch.chdir(data.parent)
    assert main(["train", "--data", data.name, "--out", str(tmp_path / "relative"), *TRAIN_FLAGS]) == 0
    monkeypatch.chdir(tmp_path)
    error = run_bad(capsys, ["eval", str(tmp_path / "relative")])
    assert error == (f"seqlab: error: {tmp_path / 'relative'} was trained on {data.name}, which is not in {tmp_path}; pass --data "
                     "with the file to read\n")


def test_resume_continues_with_a_larger_budget(trained, tmp_path, capsys):
    data, run = trained
    copy = tmp_path / "copy"
    import shutil
    shutil.copytree(run, copy)
    assert main(["train", "--out", str(copy), "--resume", "--max-steps", "9", "--quiet"]) == 0
    steps = [json.loads(line)["step"] for line in (copy / "metrics.jsonl").read_text().splitlines()]
    assert max(steps) == 9


def test_backbone_options_are_flags(tmp_path, capsys):
    data = tmp_path / "text.txt"
    data.write_text(words_text(2000), encoding="utf-8")
    out = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(out), *TRAIN_FLAGS, "--max-steps", "2",
                 "--backbone", "lstm", "--variant", "peephole", "--forget-bias", "1.0"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["options"] == {"variant": "peephole", "forget_bias": 1.0}


def test_demo_runs_offline_on_music21_tunes(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--seconds", "2", "--tunes", "1"]) == 0
    output = capsys.readouterr().out
    assert "generated tune 1" in output and "tunes" in output


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "looks binary"),
    (b"caf\xe9 au lait " * 20, "not valid UTF-8"),
    (b"too short", "fewer than one training window"),
])
def test_bad_data_files(tmp_path, capsys, content, message):
    data = tmp_path / "data.txt"
    data.write_bytes(content)
    error = run_bad(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "run"), *TRAIN_FLAGS])
    assert message in error
    assert not (tmp_path / "run").exists()


def test_missing_data_path(tmp_path, capsys):
    error = run_bad(capsys, ["train", "--data", str(tmp_path / "nope.txt"), "--out", str(tmp_path / "run"), *TRAIN_FLAGS])
    assert "does not exist" in error


@pytest.mark.parametrize("config, message", [
    ({"model": {"hidden_size": "big"}}, "model.hidden_size must be int"),
    ({"model": {"hiden_size": 10}}, "unknown field model.hiden_size"),
    ({"training": {}}, "unknown section"),
    ({"train": {"learning_rate": True}}, "must be float"),
    ({"data": {"batching": "sideways"}}, "data.batching must be one of"),
    ({"model": {"backbone": "lstm", "options": {"variant": "bogus"}}}, "variant must be one of"),
])
def test_bad_config_files(tmp_path, capsys, config, message):
    data = tmp_path / "data.txt"
    data.write_text(words_text(2000), encoding="utf-8")
    config_file = tmp_path / "config.json"
    config_file.write_text(json.dumps(config), encoding="utf-8")
    error = run_bad(capsys, ["train", "--config", str(config_file), "--data", str(data), "--out", str(tmp_path / "run"),
                             "--max-steps", "2", "--quiet"])
    assert message in error


@pytest.mark.parametrize("flags, message", [
    (["--hidden-size", "big"], "--hidden-size takes a number"),
    (["--bogus", "1"], "unknown option --bogus"),
    (["--backbone", "nope"], "unknown backbone 'nope'"),
    (["--config", "no-such-preset"], "no config file or preset"),
    (["--tie-weights", "maybe"], "takes true or false"),
    # another task's flag would do nothing: refused
    (["--word-vectors", "glove.txt"], "--word-vectors is an option of --task classify, and this run is --task lm"),
    (["--horizon", "4"], "--horizon is an option of --task forecast, and this run is --task lm"),
    (["--task", "seq2seq", "--pooling", "max"], "--pooling is an option of --task classify, and this run is --task "
                                                "seq2seq; drop the flag, or pass --task classify"),
])
def test_bad_flags(tmp_path, capsys, flags, message):
    data = tmp_path / "data.txt"
    data.write_text(words_text(2000), encoding="utf-8")
    error = run_bad(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "run"), "--max-steps", "2", *flags])
    assert message in error
    assert not (tmp_path / "run").exists()


def test_existing_checkpoint_is_never_overwritten_by_a_new_run(trained, capsys):
    data, run = trained
    before = tree_digest(run)
    error = run_bad(capsys, ["train", "--data", str(data), "--out", str(run), *TRAIN_FLAGS])
    assert "already holds a checkpoint" in error
    error = run_bad(capsys, ["train", "--out", str(run), "--resume", "--data", str(run / "missing.txt")])
    assert "does not exist" in error
    assert tree_digest(run) == before


def test_a_run_without_validation_has_no_best_and_the_line_says_where_to_look(trained, tmp_path, capsys):
    data, _ = trained
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *TRAIN_FLAGS, "--val-fraction", "0"]) == 0
    assert not (run / "best").exists()
    error = run_bad(capsys, ["eval", str(run / "best"), "--data", str(data)])
    assert f"{run / 'best'} does not exist" in error and f"use {run}, its latest checkpoint" in error
    assert main(["eval", str(run), "--data", str(data)]) == 0


def test_not_a_checkpoint_and_truncated_checkpoints(trained, tmp_path, capsys):
    data, run = trained
    (tmp_path / "empty").mkdir()
    for verb in (["sample"], ["eval"]):
        extra = ["--data", str(data)] if verb == ["eval"] else []
        assert "not a seqlab checkpoint" in run_bad(capsys, [*verb, str(tmp_path / "empty"), *extra])
        assert "does not exist" in run_bad(capsys, [*verb, str(tmp_path / "absent"), *extra])
    import shutil
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        damaged = tmp_path / f"damaged-{name}"
        shutil.copytree(run, damaged)
        content = (damaged / name).read_bytes()
        (damaged / name).write_bytes(content[: len(content) // 2])
        assert "truncated or damaged" in run_bad(capsys, ["sample", str(damaged)])
        assert "truncated or damaged" in run_bad(capsys, ["train", "--out", str(damaged), "--resume"])


def test_bad_sampling_values(trained, capsys):
    _, run = trained
    assert "--top-p" in run_bad(capsys, ["sample", str(run), "--top-p", "0"])
    assert "--temperature" in run_bad(capsys, ["sample", str(run), "--temperature", "-1"])
    assert "error" in run_bad(capsys, ["sample", str(run), "--max-tokens", "many"])


def test_a_real_process_prints_one_line_and_exits_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "seqlab.cli", "sample", str(tmp_path)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize("tokenizer", ["word", "bpe"])
def test_word_and_bpe_tokenizers_train_sample_and_report_bits_per_character(tmp_path, capsys, tokenizer):
    data = tmp_path / "text.txt"
    data.write_text(words_text(4000), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *TRAIN_FLAGS, "--tokenizer", tokenizer,
                 "--vocab-size", "280"]) == 0
    saved = json.loads((run / "tokenizer.json").read_text())
    assert saved["kind"] == tokenizer
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    logged = [record for record in records if record["kind"] == "eval"][-1]
    assert metrics["bpc"] == pytest.approx(logged["bpc"], rel=1e-3)
    # more characters than tokens: bits per character are fewer than bits per token
    assert metrics["bpc"] < metrics["val_loss"] / 0.6931471805599453
    assert main(["sample", str(run), "--prompt", "the cat", "--max-tokens", "5", "--seed", "0"]) == 0
    assert capsys.readouterr().out.startswith("the cat")


def test_language_model_fine_tuned_from_a_checkpoint(trained, tmp_path, capsys):
    data, run = trained
    new_text = tmp_path / "new.txt"
    new_text.write_text(words_text(2000, seed=7), encoding="utf-8")
    error = run_bad(capsys, ["train", "--data", str(new_text), "--out", str(tmp_path / "bad"), "--init-from", str(run),
                             "--tokenizer", "word", *TRAIN_FLAGS])
    assert "char tokenizer" in error and "--tokenizer char" in error
    tuned = tmp_path / "tuned"
    # a learning rate so small that the weights stay the checkpoint's: every part (embedding, backbone, head) is copied
    assert main(["train", "--data", str(new_text), "--out", str(tuned), "--init-from", str(run), *TRAIN_FLAGS,
                 "--hidden-size", "32", "--learning-rate", "1e-12", "--min-learning-rate", "0", "--max-steps", "1",
                 "--warmup-steps", "0"]) == 0
    from safetensors.torch import load_file

    before, after = load_file(str(run / "model.safetensors")), load_file(str(tuned / "model.safetensors"))
    assert before.keys() == after.keys()
    assert all(torch.allclose(before[name], after[name], atol=1e-6) for name in before)
    assert json.loads((tuned / "config.json").read_text())["model"]["hidden_size"] == 16  # the checkpoint's architecture
    assert json.loads((tuned / "tokenizer.json").read_text()) == json.loads((run / "tokenizer.json").read_text())
