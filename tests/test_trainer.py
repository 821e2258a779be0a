import json
import math

import pytest
import torch
from safetensors.torch import load_file

from seqlab.config import Config
from seqlab.errors import SeqlabError
from seqlab.generate import generate
from seqlab.train.checkpoint import load_checkpoint
from seqlab.tasks.language_model import evaluate_tokens
from seqlab.train.trainer import Trainer, learning_rate

from helpers import PARAGRAPH, small_config, tree_digest, words_text


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(words_text(3000), encoding="utf-8")
    return path


def test_one_layer_lstm_learns_a_200_character_text_by_heart(tmp_path):
    path = tmp_path / "paragraph.txt"
    path.write_text((PARAGRAPH * 2)[:200], encoding="utf-8")
    config = small_config(path, max_steps=300, learning_rate=1e-2, min_learning_rate=1e-3, warmup_steps=10,
                          batch_size=1, eval_interval=1000, log_interval=50)
    config.data.val_fraction = 0.0
    config.data.block_size = 199  # the whole text in one window: every prediction has its full context
    config.model.hidden_size = 128
    config.model.embedding_size = 32
    summary = Trainer(config, tmp_path / "run", quiet=True).fit()
    checkpoint = load_checkpoint(tmp_path / "run")
    loss, _ = evaluate_tokens(checkpoint.model, checkpoint.tokenizer.encode((PARAGRAPH * 2)[:200]), block_size=199,
                              batch_size=1, carry_state=False)
    assert summary.loss < 0.05 and loss < 0.05


@pytest.mark.parametrize("batching", ["random", "stream"])
def test_interrupted_then_resumed_run_matches_uninterrupted_bit_for_bit(tmp_path, text_file, batching):
    def config() -> Config:
        built = small_config(text_file, max_steps=12, eval_interval=5)
        built.data.batching = batching
        built.model.num_layers = 2
        built.model.dropout = 0.2  # dropout draws from the RNG, so the RNG state must resume too
        return built

    whole = Trainer(config(), tmp_path / "whole", quiet=True).fit()

    def interrupt(trainer, step, loss):
        if step == 7:
            trainer.request_stop()

    first = Trainer(config(), tmp_path / "parts", step_callback=interrupt, quiet=True).fit()
    assert first.stopped_early and first.steps == 7
    second = Trainer(config(), tmp_path / "parts", resume=True, quiet=True).fit()
    assert second.steps == whole.steps == 12
    expected = load_file(str(tmp_path / "whole" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "parts" / "model.safetensors"))
    assert expected.keys() == resumed.keys()
    for name in expected:
        assert torch.equal(expected[name], resumed[name]), name
    assert second.loss == whole.loss


def test_save_then_load_gives_identical_logits_and_samples(tmp_path, text_file):
    config = small_config(text_file, max_steps=4)
    config.model.tie_weights = True
    config.model.embedding_size = 24
    trainer = Trainer(config, tmp_path / "run", quiet=True)
    trainer.fit()
    loaded = load_checkpoint(tmp_path / "run")
    tokens = loaded.tokenizer.encode("the cat sat on the mat").unsqueeze(0)
    trainer.model.eval()
    with torch.no_grad():
        assert torch.equal(trainer.model(tokens)[0], loaded.model(tokens)[0])
    assert loaded.model.head.weight is loaded.model.embedding.weight  # tying survives the round trip
    first = "".join(generate(trainer.model, loaded.tokenizer, "the", max_tokens=40, seed=5))
    second = "".join(generate(loaded.model, loaded.tokenizer, "the", max_tokens=40, seed=5))
    assert first == second


def test_best_checkpoint_holds_the_lowest_validation_loss(tmp_path, text_file):
    config = small_config(text_file, max_steps=12, eval_interval=3)
    Trainer(config, tmp_path / "run", quiet=True).fit()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [record["val_loss"] for record in records if record["kind"] == "eval"]
    assert len(evals) == 4
    best = load_checkpoint(tmp_path / "run" / "best")
    loss, _ = evaluate_tokens(best.model, Trainer_val_tokens(tmp_path / "run", text_file), block_size=16,
                              batch_size=4, carry_state=False)
    assert loss == pytest.approx(min(evals), abs=1e-5)


def Trainer_val_tokens(run, text_file):
    from seqlab.data.text import split_text

    checkpoint = load_checkpoint(run)
    return checkpoint.tokenizer.encode(split_text(text_file.read_text(), checkpoint.config.data.val_fraction)[1])


def test_schedule_warms_up_linearly_then_follows_a_cosine_to_the_floor():
    config = Config()
    config.train.learning_rate, config.train.min_learning_rate = 1.0, 0.1
    config.train.warmup_steps, config.train.max_steps = 10, 110
    assert learning_rate(config, 0, 0.0) == pytest.approx(0.1)
    assert learning_rate(config, 9, 0.0) == pytest.approx(1.0)
    assert learning_rate(config, 60, 0.0) == pytest.approx(0.1 + 0.9 * 0.5)
    assert learning_rate(config, 110, 0.0) == pytest.approx(0.1)
    config.train.max_steps, config.train.max_seconds = 0, 100.0  # a time budget: the cosine spans the seconds
    assert learning_rate(config, 50, 25.0) == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi / 4)))


def test_clipping_logs_the_pre_clip_norm_and_caps_the_update(tmp_path, text_file):
    config = small_config(text_file, max_steps=3, clip_norm=1e-3, learning_rate=1.0, warmup_steps=0, weight_decay=0.0)
    config.train.beta1 = 0.0
    trainer = Trainer(config, tmp_path / "run", quiet=True)
    norms = []

    def capture(trainer_, step, loss):
        norms.append(float(torch.cat([p.grad.flatten() for p in trainer_.model.parameters() if p.grad is not None]).norm()))

    trainer.step_callback = capture
    trainer.fit()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
               if '"train"' in line]
    assert len(records) == len(norms) == 3
    assert all(record["grad_norm"] > 1e-2 for record in records)  # the logged norm is the one before clipping
    assert all(norm == pytest.approx(1e-3, rel=1e-3) for norm in norms)  # what the optimizer saw was clipped


def test_csv_metrics_and_refusal_to_overwrite(tmp_path, text_file):
    config = small_config(text_file, max_steps=2, log_format="csv")
    Trainer(config, tmp_path / "run", quiet=True).fit()
    lines = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert lines[0].startswith("kind,step,loss") and len(lines) == 4  # header, 2 train rows, 1 eval row
    before = tree_digest(tmp_path / "run")
    with pytest.raises(SeqlabError, match="already holds a checkpoint"):
        Trainer(small_config(text_file), tmp_path / "run", quiet=True)
    assert tree_digest(tmp_path / "run") == before
