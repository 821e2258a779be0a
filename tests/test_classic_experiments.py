"""The pieces that compute the classic experiments' numbers, against known answers and second code paths.

The experiments themselves train for minutes, so they are not run here; see docs/EXPERIMENTS.md.
"""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch.nn import functional as F

from seqlab.config import Config
from seqlab.errors import SeqlabError
from seqlab.experiments import EXPERIMENTS
from seqlab.experiments.clipping import run_outcome, train_one
from seqlab.experiments.common_abc import charlm_config, position_losses, write_abc_corpus
from seqlab.experiments.common_models import matched_language_model, parameter_count
from seqlab.experiments.inference_cost import log_log_slope, state_bytes
from seqlab.experiments.lstm_variants import t_critical, welch_degrees_of_freedom, welch_t
from seqlab.experiments.sentiment_trajectory import (NEGATIVE, NEUTRAL, POSITIVE, half_life, polarity_labels,
                                                     templated_corpus, templated_sentence, word_positions)
from seqlab.experiments.vanishing_gradients import cell_gradient_flow, decay_per_step
from seqlab.models import LanguageModel
from seqlab.registry import build_backbone
from seqlab.train.trainer import Trainer

from helpers import small_config, words_text

OURS = ("vanishing-gradients", "clipping", "inference-cost", "training-parallelism", "initial-state", "lstm-variants",
        "sentiment-trajectory")


def test_the_seven_experiments_are_registered():
    assert set(OURS) <= set(EXPERIMENTS)


# ---------------------------------------------------------------- vanishing gradients
def test_decay_per_step_recovers_a_geometric_rate_and_skips_underflow():
    norms = 3.0 * 0.7 ** np.arange(40)
    assert decay_per_step(norms) == pytest.approx(0.7, rel=1e-9)
    norms[30:] = 0.0  # underflowed
    norms[5] = np.nan
    assert decay_per_step(norms) == pytest.approx(0.7, rel=1e-9)
    assert math.isnan(decay_per_step(np.array([1.0, 0.0, 0.0])))


def test_cell_gradient_flow_matches_finite_differences():
    """Central differences of L_T in each unit of c_t as handed to step t + 1 (h_t left as it was)."""
    torch.manual_seed(0)
    model = LanguageModel(7, build_backbone("lstm", input_size=5, hidden_size=6)).double()
    tokens = torch.randint(7, (9,))
    ours = cell_gradient_flow(model, tokens)

    def loss(nudged_step: int, unit: int, amount: float) -> float:
        with torch.no_grad():
            state = model.backbone.init_state(1)
            for t, token in enumerate(tokens[:-1]):
                y, (h, c) = model.backbone.step(model.embedding(token.view(1)), state)
                if t == nudged_step:
                    c = c.clone()
                    c[-1, 0, unit] += amount
                state = (h, c)
            return float(F.cross_entropy(model.head(y), tokens[-1:]))

    step = 1e-6
    expected = [math.sqrt(sum(((loss(t, unit, step) - loss(t, unit, -step)) / (2 * step)) ** 2 for unit in range(6)))
                for t in range(8)]
    assert ours[-1] == 0.0 == expected[-1]  # nothing after c_T reaches L_T
    np.testing.assert_allclose(ours, expected, rtol=1e-6, atol=1e-12)


# ---------------------------------------------------------------- clipping
def test_run_outcome():
    assert run_outcome([3.0, float("nan")], True, 2.0, 3.0) == "diverged"
    assert run_outcome([3.0, 2.0], False, 2.0, 3.0) == "diverged"
    assert run_outcome([3.0, 2.9], True, 2.8, 3.0) == "stuck"
    assert run_outcome([3.0, 2.0], True, 2.1, 3.0) == "learned"


def test_a_run_that_goes_non_finite_is_recorded_as_diverged(tmp_path, monkeypatch):
    # the trainer stops at the first non-finite step (max_nonfinite_steps 0); the experiment keeps the steps before it
    corpus = write_abc_corpus(tmp_path, characters=20_000)
    values = charlm_config(corpus, backbone="rnn", hidden_size=8, steps=6, seed=0, log_interval=1,
                           max_nonfinite_steps=0, optimizer="sgd", learning_rate=0.1, warmup_steps=0)
    original_loss, calls = Trainer._loss, []

    def loss(self, model, batch, state):
        calls.append(1)
        value, state, penalty = original_loss(self, model, batch, state)
        return (value * float("inf") if len(calls) >= 4 else value), state, penalty

    monkeypatch.setattr(Trainer, "_loss", loss)
    losses, norms, weights_finite, val_loss, recurrent = train_one(values, tmp_path / "run")
    assert len(losses) == len(norms) == 3 and all(math.isfinite(value) for value in losses + norms)
    assert (weights_finite, recurrent) == (False, None) and math.isnan(val_loss)
    assert run_outcome(losses, weights_finite, val_loss, losses[0]) == "diverged"
    monkeypatch.setattr(Trainer, "_loss", original_loss)  # the same run left finite trains to the end
    losses, _, weights_finite, val_loss, recurrent = train_one(values, tmp_path / "run")
    assert len(losses) == 6 and weights_finite and math.isfinite(val_loss) and recurrent.shape == (8, 8)


def test_recurrent_gain_scales_the_recurrent_matrix():
    torch.manual_seed(0)
    gained = build_backbone("rnn", input_size=4, hidden_size=16, init="orthogonal", recurrent_gain=3.0)
    singular = torch.linalg.svdvals(gained.weight_hh_l0.detach())
    torch.testing.assert_close(singular, torch.full((16,), 3.0), rtol=1e-5, atol=1e-5)
    torch.manual_seed(0)
    plain = build_backbone("gru", input_size=4, hidden_size=8)
    torch.manual_seed(0)
    doubled = build_backbone("gru", input_size=4, hidden_size=8, recurrent_gain=2.0)
    torch.testing.assert_close(doubled.weight_hh_l0, 2 * plain.weight_hh_l0)
    torch.testing.assert_close(doubled.weight_ih_l0, plain.weight_ih_l0)
    with pytest.raises(ValueError, match="recurrent_gain"):
        build_backbone("lstm", input_size=4, hidden_size=8, recurrent_gain=0.0)


def test_sgd_optimizer_resumes_bit_for_bit_and_bad_names_are_refused(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(words_text(2000), encoding="utf-8")

    def config():
        return small_config(path, max_steps=8, eval_interval=4, optimizer="sgd", momentum=0.9, learning_rate=0.5)

    whole = Trainer(config(), tmp_path / "whole", quiet=True)
    whole.fit()
    assert isinstance(whole.optimizer, torch.optim.SGD)

    def interrupt(trainer, step, loss):
        if step == 3:
            trainer.request_stop()

    Trainer(config(), tmp_path / "parts", step_callback=interrupt, quiet=True).fit()
    Trainer(config(), tmp_path / "parts", resume=True, quiet=True).fit()
    expected, resumed = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("whole", "parts"))
    assert expected.keys() == resumed.keys() and all(torch.equal(expected[key], resumed[key]) for key in expected)
    with pytest.raises(SeqlabError, match="train.optimizer"):
        Config.from_dict({"train": {"optimizer": "adam"}}).validate()
    with pytest.raises(SeqlabError, match="momentum"):
        Config.from_dict({"train": {"optimizer": "sgd", "momentum": 1.0}}).validate()


# ---------------------------------------------------------------- inference cost, training parallelism
def test_state_bytes_and_log_log_slope():
    lstm = build_backbone("lstm", input_size=4, hidden_size=8, num_layers=2)
    assert state_bytes(lstm.init_state(3)) == 2 * 2 * 3 * 8 * 4  # (h, c), L = 2, B = 3, H = 8, float32
    transformer = build_backbone("transformer", input_size=64, hidden_size=64, num_layers=1, context_length=10)
    # keys and values (L, B, nh, C, hs) in float32 and the positions (B,) in int64
    assert state_bytes(transformer.init_state(1)) == 2 * 10 * 64 * 4 + 8
    positions = [4, 16, 64, 256]
    assert log_log_slope(positions, [3.0 * t for t in positions]) == pytest.approx(1.0)
    assert log_log_slope(positions, [0.5] * 4) == pytest.approx(0.0, abs=1e-12)


def test_matched_language_model_is_the_closest_width():
    model = matched_language_model("gru", target_parameters=50_000, vocab_size=20)
    count = parameter_count(model)
    width = model.backbone.hidden_size
    for other in (width - 16, width + 16):
        neighbour = LanguageModel(20, build_backbone("gru", input_size=other, hidden_size=other, num_layers=2))
        assert abs(count - 50_000) <= abs(parameter_count(neighbour) - 50_000)


# ---------------------------------------------------------------- initial state and the ABC corpus
def test_position_losses_of_a_uniform_model_are_log_v():
    model = LanguageModel(11, build_backbone("gru", input_size=4, hidden_size=5))
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.bias.zero_()
    losses = position_losses(model, torch.randint(11, (300,)), block_size=7, windows=16, seed=0)
    assert losses.shape == (7,)
    torch.testing.assert_close(losses, torch.full((7,), math.log(11), dtype=torch.float64))


def test_abc_corpus_is_whole_tunes_under_the_limit(tmp_path):
    path = write_abc_corpus(tmp_path, characters=5000)
    text = path.read_text(encoding="utf-8")
    assert len(text) <= 5000 and text.count("K:") >= 1
    assert all(tune.lstrip().startswith(("T:", "M:", "L:", "Q:", "K:")) for tune in text.strip().split("\n\n"))
    assert write_abc_corpus(tmp_path, characters=5000).read_text(encoding="utf-8") == text
    config = Config.from_dict(charlm_config(path, backbone="lstm", hidden_size=8, steps=10, seed=0))
    config.validate()


# ---------------------------------------------------------------- lstm variants
def test_welch_t_against_the_formula():
    assert welch_t([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]) == pytest.approx(-1.0 / math.sqrt(2 / 3))
    assert math.isnan(welch_t([1.0], [2.0, 3.0]))
    # equal spreads and sizes: df = 2 (n - 1); a sample with no spread leaves the other's n - 1
    assert welch_degrees_of_freedom([1.0, 2.0, 3.0], [2.0, 3.0, 4.0]) == pytest.approx(4.0)
    assert welch_degrees_of_freedom([1.0, 1.0, 1.0], [2.0, 3.0, 7.0]) == pytest.approx(2.0)
    assert t_critical(4.0) == 2.776 and t_critical(2.7) == 4.303 and t_critical(13.0) == 2.179
    assert t_critical(100.0) == 1.960


# ---------------------------------------------------------------- sentiment
def test_half_life_interpolates_and_reports_never():
    assert half_life(np.array([1.0, 0.8, 0.4, 0.2])) == pytest.approx(1.75)
    assert half_life(np.array([-2.0, -1.0])) == pytest.approx(1.0)
    assert half_life(np.array([1.0, 0.9, 0.8])) == math.inf


def test_templated_corpus_labels_follow_the_words_and_negation():
    rows = templated_corpus(600, seed=0)
    assert sorted({label for _, label in rows}) == ["negative", "neutral", "positive"]
    for sentence, label in rows:
        words = sentence.split()
        positive = any(word in POSITIVE for word in words)
        negative = any(word in NEGATIVE for word in words)
        negated = "not" in words
        if label == "neutral":
            assert not (positive or negative) and any(word in NEUTRAL for word in words)
        else:
            assert (label == "positive") == (positive != negated)
    probe = templated_sentence(random.Random(5), label="positive", leading=2, trailing=4, word="great").split()
    baseline = templated_sentence(random.Random(5), label="neutral", leading=2, trailing=4, word="blue").split()
    assert [a == b for a, b in zip(probe, baseline)].count(False) == 1 and len(probe) == len(baseline)
    assert probe[-5] == "great"


def test_word_positions_skip_the_spaces():
    from seqlab.data.tokenizers import WordTokenizer

    tokenizer = WordTokenizer.fit("the food was great  and")
    tokens = tokenizer.encode("the food was great  and")
    assert [tokenizer.pieces[token] for token in tokens[word_positions(tokenizer, tokens)].tolist()] == [
        "the", "food", "was", "great", "and"]


def test_polarity_labels_and_refusal():
    assert polarity_labels(["negative", "neutral", "positive"], source="f") == (2, 0)
    assert polarity_labels(["0", "1"], source="f") == (1, 0)
    with pytest.raises(SeqlabError, match="f: labels no, yes name no polarity"):
        polarity_labels(["no", "yes"], source="f")
