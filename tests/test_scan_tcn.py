"""The parallel scan, minGRU/minLSTM and the TCN against plain references.

The registry-wide tests in test_backbones.py already check step == forward,
chunked forward, causality and lengths for every backbone; here each piece is
checked against an independent, obviously correct computation: a Python loop
for the scan, the paper's equations for the minimal RNNs, zero-padded
``F.conv1d`` for the TCN. float64 throughout, so a wrong equation shows as a
large difference.
"""
from __future__ import annotations

from typing import Any

import copy

import pytest
import torch
from torch import Tensor
from torch.nn import functional as F

from seqlab import build_backbone
from seqlab.backbones import state_tensors
from seqlab.backbones.minrnn import MinGRUCoefficients, MinLSTMCoefficients, positive_activation, positive_activation_slope
from seqlab.backbones.scan import chunk_length, chunked_scan, linear_scan

TOLERANCE = {"atol": 1e-10, "rtol": 0.0}


def sequential_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    """h_t = a_t h_{t-1} + b_t, one step at a time: the trusted reference."""
    h = h0
    states = []
    for t in range(a.shape[1]):
        h = a[:, t] * h + b[:, t]
        states.append(h)
    return torch.stack(states, dim=1)


def scan_inputs(time_steps: int, *, seed: int, features: tuple[int, ...] = (4,)) -> list[Tensor]:
    generator = torch.Generator().manual_seed(seed)
    a = torch.rand(3, time_steps, *features, generator=generator, dtype=torch.float64)  # in (0, 1)
    b = torch.randn(3, time_steps, *features, generator=generator, dtype=torch.float64)
    h0 = torch.randn(3, *features, generator=generator, dtype=torch.float64)
    return [tensor.requires_grad_(True) for tensor in (a, b, h0)]


def values_and_gradients(function: Any, inputs: list[Tensor]) -> tuple[Tensor, tuple[Tensor, ...]]:
    h = function(*inputs)
    weights = torch.randn(h.shape, generator=torch.Generator().manual_seed(99), dtype=h.dtype)
    return h, torch.autograd.grad((h * weights).sum(), inputs)


# -------------------------------------------------------------------- the scan
@pytest.mark.parametrize("time_steps", [1, 2, 3, 7, 16, 17, 50, 101])
def test_scan_matches_sequential_loop(time_steps: int) -> None:
    inputs = scan_inputs(time_steps, seed=time_steps)
    h, gradients = values_and_gradients(linear_scan, inputs)
    expected_h, expected_gradients = values_and_gradients(sequential_scan, inputs)
    torch.testing.assert_close(h, expected_h, **TOLERANCE)
    for gradient, expected in zip(gradients, expected_gradients):
        torch.testing.assert_close(gradient, expected, **TOLERANCE)


def test_scan_takes_any_trailing_shape_and_strides() -> None:
    a, b, h0 = scan_inputs(13, seed=1, features=(2, 3))
    wide = torch.cat([a, b], dim=-1)  # a and b as strided halves of one tensor, like a projection's blocks
    a_view, b_view = wide.chunk(2, dim=-1)
    torch.testing.assert_close(linear_scan(a_view, b_view, h0), sequential_scan(a, b, h0), **TOLERANCE)


@pytest.mark.parametrize("reverse", [False, True])
def test_chunked_scan_both_directions(reverse: bool) -> None:
    a, b, initial = (tensor.detach() for tensor in scan_inputs(23, seed=2))
    if reverse:
        expected = sequential_scan(a.flip(1), b.flip(1), initial).flip(1)
    else:
        expected = sequential_scan(a, b, initial)
    torch.testing.assert_close(chunked_scan(a, b, initial, reverse=reverse), expected, **TOLERANCE)


def test_chunk_length_is_about_the_square_root() -> None:
    assert [chunk_length(time_steps) for time_steps in (1, 2, 4, 5, 1024, 1025)] == [1, 2, 2, 3, 32, 33]


@pytest.mark.parametrize("time_steps", [1, 6])
def test_scan_gradcheck(time_steps: int) -> None:
    inputs = scan_inputs(time_steps, seed=3, features=(2,))
    assert torch.autograd.gradcheck(linear_scan, inputs, eps=1e-6, atol=1e-8)


def test_scan_is_stable_in_float32_at_extreme_gates() -> None:
    """Gates of exactly 0 and 1 and long products: no exp, log or division, so nothing to overflow."""
    generator = torch.Generator().manual_seed(4)
    a = torch.rand(2, 300, 8, generator=generator)
    a[:, ::7] = 0.0
    a[:, 100:200] = 1.0
    b = torch.randn(2, 300, 8, generator=generator)
    h0 = torch.randn(2, 8, generator=generator)
    leaves = [tensor.clone().requires_grad_(True) for tensor in (a, b, h0)]
    h = linear_scan(*leaves)
    h.sum().backward()
    assert all(bool(torch.isfinite(tensor).all()) for tensor in (h, *(leaf.grad for leaf in leaves)))
    torch.testing.assert_close(h.double(), sequential_scan(a.double(), b.double(), h0.double()), atol=1e-4, rtol=1e-5)


def test_scan_rejects_mismatched_shapes() -> None:
    a, b, h0 = (tensor.detach() for tensor in scan_inputs(5, seed=5))
    with pytest.raises(ValueError):
        linear_scan(a, b[:, :4], h0)
    with pytest.raises(ValueError):
        linear_scan(a, b, h0[:, :3])


# --------------------------------------------------------- minGRU and minLSTM
def random_model(name: str, **options: Any) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_backbone(name, input_size=3, hidden_size=2, **options).double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 1.0)  # wide enough to reach both branches of g
    return model


def reference_minimal_rnn(name: str, x: Tensor, h0: Tensor, projections: list[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
    """The paper's equations, one step at a time, with g written out branch by branch."""

    def g(value: Tensor) -> Tensor:
        return torch.where(value >= 0, value + 0.5, 1.0 / (1.0 + torch.exp(-value)))

    layer_input = x
    finals = []
    for layer, (weight, bias) in enumerate(projections):
        h = h0[layer]
        outputs = []
        for t in range(layer_input.shape[1]):
            blocks = (layer_input[:, t] @ weight.T + bias).chunk(3 if name == "minlstm" else 2, dim=-1)
            if name == "mingru":
                z = torch.sigmoid(blocks[0])
                h = (1 - z) * h + z * g(blocks[1])
            else:
                f, i = torch.sigmoid(blocks[0]), torch.sigmoid(blocks[1])
                h = f / (f + i) * h + i / (f + i) * g(blocks[2])
            outputs.append(h)
        layer_input = torch.stack(outputs, dim=1)
        finals.append(h)
    return layer_input, torch.stack(finals)


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_minimal_rnn_matches_paper_equations(name: str) -> None:
    model = random_model(name, num_layers=2)
    generator = torch.Generator().manual_seed(6)
    x = torch.randn(2, 9, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(2, 2, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    parameters = list(model.parameters())
    projections = [(projection.weight, projection.bias) for projection in model.projections]

    expected_y, expected_h = reference_minimal_rnn(name, x, h0, projections)
    expected_gradients = torch.autograd.grad(expected_y.sum() + (expected_h**2).sum(), [x, h0, *parameters])
    y, h = model(x, h0)
    gradients = torch.autograd.grad(y.sum() + (h**2).sum(), [x, h0, *parameters])

    torch.testing.assert_close(y, expected_y, **TOLERANCE)
    torch.testing.assert_close(h, expected_h, **TOLERANCE)
    for gradient, expected in zip(gradients, expected_gradients):
        torch.testing.assert_close(gradient, expected, **TOLERANCE)


def test_positive_activation() -> None:
    values = torch.tensor([-50.0, -1.0, 0.0, 2.0], dtype=torch.float64)
    expected = torch.tensor([torch.sigmoid(values[0]), torch.sigmoid(values[1]), 0.5, 2.5], dtype=torch.float64)
    torch.testing.assert_close(positive_activation(values), expected, **TOLERANCE)
    assert bool((positive_activation(torch.linspace(-50, 100, 1001)) > 0).all())


def test_positive_activation_slope() -> None:
    values = torch.tensor([-30.0, -2.0, -1e-3, 0.0, 1e-3, 3.0], dtype=torch.float64, requires_grad=True)
    (expected,) = torch.autograd.grad(positive_activation(values).sum(), values)
    expected[3] = 1.0  # the kink: g grows with slope 1 to the right of 0, which is what we use
    slope = positive_activation_slope(values.detach(), positive_activation(values.detach()))
    torch.testing.assert_close(slope, expected, **TOLERANCE)


@pytest.mark.parametrize("function", [MinGRUCoefficients, MinLSTMCoefficients])
def test_coefficient_gradients_by_finite_differences(function: type) -> None:
    gates = 2 if function is MinGRUCoefficients else 3
    projected = torch.randn(2, 3, gates * 4, generator=torch.Generator().manual_seed(11), dtype=torch.float64) * 2.0
    projected = projected.where(projected.abs() > 1e-3, 0.5).requires_grad_(True)  # away from g's kink at 0
    assert torch.autograd.gradcheck(function.apply, (projected,), eps=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["mingru", "minlstm"])
def test_float32_fast_path_matches_float64(name: str) -> None:
    """In float32 on a CPU the products run on oneDNN through their own autograd function."""
    torch.manual_seed(0)
    model = build_backbone(name, input_size=6, hidden_size=5, num_layers=2)
    reference = copy.deepcopy(model).double()
    x = torch.randn(3, 40, 6, generator=torch.Generator().manual_seed(12), requires_grad=True)
    x64 = x.detach().double().requires_grad_(True)
    y, h = model(x)
    expected_y, expected_h = reference(x64)
    (y.sum() + (h**2).sum()).backward()
    (expected_y.sum() + (expected_h**2).sum()).backward()
    loose = {"atol": 1e-5, "rtol": 1e-5}
    torch.testing.assert_close(y.double(), expected_y, **loose)
    torch.testing.assert_close(x.grad.double(), x64.grad, **loose)
    for parameter, expected in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(parameter.grad.double(), expected.grad, **loose)


def test_minlstm_normalised_gates_at_tiny_gates() -> None:
    """f / (f + i) stays exact while the gates are tiny normal floats, and finite once both underflow."""
    model = build_backbone("minlstm", input_size=1, hidden_size=1)
    with torch.no_grad():
        model.projections[0].weight.zero_()
        model.projections[0].bias.copy_(torch.tensor([-80.0, -81.0, 1.0]))
    _, h = model(torch.zeros(1, 4, 1))
    forget = torch.sigmoid(torch.tensor(1.0))  # f / (f + i) = sigmoid(log f - log i), log f - log i ~ 1
    torch.testing.assert_close(h[0, 0, 0], (1 - forget**4) * 1.5, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        model.projections[0].bias.copy_(torch.tensor([-200.0, -201.0, 1.0]))
    y, h = model(torch.zeros(1, 4, 1))
    assert bool(torch.isfinite(y).all()) and bool(torch.isfinite(h).all())


# ---------------------------------------------------------------------- TCN
def reference_tcn(model: torch.nn.Module, x: Tensor) -> Tensor:
    """The TCN from F.conv1d with explicit left zero padding, no state anywhere."""
    hidden = x.transpose(1, 2)  # (B, D, T)
    for index, block in enumerate(model.blocks):
        dilation = 2**index
        padding = (model.kernel_size - 1) * dilation
        first = F.relu(F.conv1d(F.pad(hidden, (padding, 0)), block.first.weight, block.first.bias, dilation=dilation))
        second = F.relu(F.conv1d(F.pad(first, (padding, 0)), block.second.weight, block.second.bias, dilation=dilation))
        residual = hidden if block.residual is None else F.conv1d(hidden, block.residual.weight, block.residual.bias)
        hidden = F.relu(second + residual)
    return hidden.transpose(1, 2)  # (B, T, H)


@pytest.mark.parametrize(
    "options",
    [{"num_layers": 3}, {"num_layers": 2, "kernel_size": 2}, {"num_layers": 2, "weight_norm": True, "kernel_size": 4}],
)
def test_tcn_matches_zero_padded_conv1d(options: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = build_backbone("tcn", input_size=3, hidden_size=5, **options).double().eval()
    x = torch.randn(2, 20, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    y, _ = model(x)
    torch.testing.assert_close(y, reference_tcn(model, x), **TOLERANCE)


@pytest.mark.parametrize(("kernel_size", "num_layers"), [(2, 1), (2, 3), (3, 2), (5, 2)])
def test_tcn_receptive_field(kernel_size: int, num_layers: int) -> None:
    torch.manual_seed(0)
    model = build_backbone("tcn", input_size=3, hidden_size=8, kernel_size=kernel_size, num_layers=num_layers).double().eval()
    field = model.receptive_field
    assert field == 1 + 2 * (kernel_size - 1) * (2**num_layers - 1)
    with torch.no_grad():
        for block in model.blocks:  # positive biases keep every ReLU open, so every tap passes gradient
            block.first.bias.fill_(5.0)
            block.second.bias.fill_(5.0)
    x = torch.randn(2, field + 5, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64, requires_grad=True)
    y, _ = model(x)
    (gradient,) = torch.autograd.grad(y[:, -1].sum(), x)
    reached = gradient.abs().sum(dim=(0, 2)) != 0  # (T,)
    assert reached.tolist() == [False] * 5 + [True] * field


def test_tcn_step_state_stays_the_size_of_the_receptive_field() -> None:
    torch.manual_seed(0)
    model = build_backbone("tcn", input_size=3, hidden_size=4, num_layers=3, kernel_size=3).double().eval()
    state = model.init_state(2)
    shapes = [tuple(tensor.shape) for tensor in state_tensors(state)]
    assert shapes == [(2, channels, 2 * 2**index) for index in range(3) for channels in (3 if index == 0 else 4, 4)]
    x = torch.randn(2, 150, 3, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    outputs = []
    for t in range(x.shape[1]):
        y_t, state = model.step(x[:, t], state)
        outputs.append(y_t)
        assert [tuple(tensor.shape) for tensor in state_tensors(state)] == shapes
    torch.testing.assert_close(torch.stack(outputs, dim=1), model(x)[0], **TOLERANCE)


def test_tcn_buffers_hold_the_last_inputs() -> None:
    torch.manual_seed(0)
    model = build_backbone("tcn", input_size=3, hidden_size=3, num_layers=2, kernel_size=3).double().eval()
    x = torch.randn(2, 10, 3, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    _, state = model(x, lengths=torch.tensor([10, 6]))
    first_block_inputs = state[0][0]  # (B, D, P=2)
    torch.testing.assert_close(first_block_inputs[0], x[0, 8:10].T, **TOLERANCE)
    torch.testing.assert_close(first_block_inputs[1], x[1, 4:6].T, **TOLERANCE)


# -------------------------------------------------------------- bad options
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("tcn", {"kernel_size": 1}),
        ("tcn", {"kernel_size": 0}),
        ("tcn", {"kernel_size": 2.5}),
        ("tcn", {"kernel_size": True}),
        ("tcn", {"weight_norm": "yes"}),
        ("tcn", {"dropout": 1.0}),
        ("tcn", {"num_layers": 0}),
        ("mingru", {"initial_state": "ones"}),
        ("minlstm", {"initial_state": "ones"}),
        ("mingru", {"dropout": -0.1}),
        ("minlstm", {"kernel_size": 3}),
    ],
)
def test_bad_options_raise_value_error(name: str, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build_backbone(name, input_size=3, hidden_size=4, **options)
