"""The Pascanu et al. 2013 regulariser against a hand computation, finite differences and the trainer."""
from __future__ import annotations

import json

import pytest
import torch

from seqlab.errors import SeqlabError
from seqlab.registry import build_backbone
from seqlab.train.regularisers import check_regularisable, pascanu_penalty, penalty
from seqlab.train.trainer import train

from test_synthetic import small_synthetic


def tiny_rnn() -> torch.nn.Module:
    torch.manual_seed(3)
    rnn = build_backbone("rnn", input_size=2, hidden_size=3).double()
    with torch.no_grad():
        rnn.weight_hh_l0.mul_(3.0)  # a strongly non-linear regime: ratios far from 1
    return rnn


def head_loss(outputs: torch.Tensor) -> torch.Tensor:
    weights = torch.tensor([0.5, -1.0, 2.0], dtype=outputs.dtype)
    return ((outputs @ weights) ** 2).mean() + outputs[:, -1].sum()


def test_penalty_matches_a_hand_computation_on_a_tanh_rnn():
    rnn = tiny_rnn()
    x = torch.randn(2, 5, 2, dtype=torch.float64)
    with rnn.recording() as trajectory:
        outputs, _ = rnn(x)
        loss = head_loss(outputs)
    omega = penalty(trajectory, rnn, loss).detach()

    # by hand: h_k = tanh(W_ih x_k + b_ih + W_hh h_{k-1} + b_hh), J_{k+1} = diag(1 - h_{k+1}^2) W_hh
    w_ih, w_hh, b_ih, b_hh = (tensor.detach() for tensor in rnn.layer_weights(0))
    states = [torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)]
    for t in range(5):
        states.append(torch.tanh(x[:, t] @ w_ih.T + b_ih + states[-1] @ w_hh.T + b_hh))
    loss_by_hand = head_loss(torch.stack(states[1:], dim=1))
    gradients = torch.autograd.grad(loss_by_hand, states[1:])
    expected = 0.0
    for k in range(5):
        g, h = gradients[k], states[k + 1].detach()  # g_{k+1} and h_{k+1}, (B, H)
        through = (g * (1 - h ** 2)) @ w_hh  # rows g^T J_{k+1}
        expected += ((through.norm(dim=1) / g.norm(dim=1) - 1) ** 2).sum()
    assert float(omega) == pytest.approx(float(expected / 2), rel=1e-9)
    assert float(omega) > 0.1


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
def test_penalty_gradient_matches_finite_differences(name):
    torch.manual_seed(1)
    backbone = build_backbone(name, input_size=2, hidden_size=3, num_layers=2).double()
    x = torch.randn(2, 4, 2, dtype=torch.float64)
    with backbone.recording() as trajectory:
        outputs, _ = backbone(x)
        loss = head_loss(outputs)
    later = [tensor for state in trajectory.states[1:] for tensor in state]
    flat = [torch.zeros_like(tensor) if gradient is None else gradient
            for tensor, gradient in zip(later, torch.autograd.grad(loss, later, allow_unused=True))]
    per_state = len(trajectory.states[0])
    gradients = [tuple(flat[i:i + per_state]) for i in range(0, len(flat), per_state)]
    previous = [tuple(tensor.detach() for tensor in state) for state in trajectory.states[:-1]]

    def omega() -> torch.Tensor:
        return pascanu_penalty(backbone, x, previous, gradients)

    weight = backbone.weight_hh_l0
    weight.grad = None
    omega().backward()
    analytic = weight.grad.clone()
    step = 1e-6
    for row, column in [(0, 0), (1, 2), (weight.shape[0] - 1, 1)]:
        values = []
        for change in (step, -2 * step):
            with torch.no_grad():
                weight[row, column] += change
            values.append(float(omega().detach()))  # omega needs autograd itself, so not under no_grad
        with torch.no_grad():
            weight[row, column] += step
        plus, minus = values
        assert analytic[row, column].item() == pytest.approx((plus - minus) / (2 * step), rel=1e-5, abs=1e-8)


def test_stepped_forward_equals_the_fused_one_with_lengths():
    torch.manual_seed(2)
    lstm = build_backbone("lstm", input_size=3, hidden_size=4, num_layers=2)
    x, lengths = torch.randn(3, 6, 3), torch.tensor([6, 2, 4])
    expected, (h, c) = lstm(x, None, lengths)
    with lstm.recording() as trajectory:
        stepped, (h_stepped, c_stepped) = lstm(x, None, lengths)
    torch.testing.assert_close(stepped, expected)
    torch.testing.assert_close(h_stepped, h)
    torch.testing.assert_close(c_stepped, c)
    assert len(trajectory.states) == 7
    assert lstm.trajectory is None  # the next forward is the usual traversal again


def test_penalty_is_refused_for_backbones_without_a_one_step_state():
    tcn = build_backbone("tcn", input_size=2, hidden_size=4)
    with pytest.raises(SeqlabError, match="recurrent backbone"):
        check_regularisable(tcn)


@pytest.mark.parametrize("log_format", ["jsonl", "csv"])
def test_trainer_logs_the_penalty(tmp_path, log_format):
    config = small_synthetic(tmp_path, "builtin:adding", length=8)
    config.model.backbone = "rnn"
    config.train.pascanu_weight = 0.5
    config.train.log_interval = 1
    config.train.log_format = log_format
    train(config, tmp_path / "run", quiet=True)
    text = (tmp_path / "run" / f"metrics.{log_format}").read_text()
    if log_format == "jsonl":
        records = [json.loads(line) for line in text.splitlines() if '"train"' in line]
        assert len(records) == 6 and all(record["pascanu"] >= 0 for record in records)
    else:
        assert text.splitlines()[0].split(",")[3] == "pascanu"
