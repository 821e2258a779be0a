"""Diagnostics on hand-built models with known answers, against the NumPy glass box, and ``seqlab diagnose`` end to end."""
import json

import numpy as np
import pytest
import torch

from seqlab import reference
from seqlab.cli import main
from seqlab.diagnostics import (
    attention_maps,
    gate_saturation,
    gate_values,
    gradient_flow,
    principal_components,
    jacobian_norms,
    read_sequence,
    spectral_norm,
    step_jacobian,
)
from seqlab.models.language_model import LanguageModel
from seqlab.registry import build_backbone

from helpers import run_bad, words_text

VOCABULARY = 5
HIDDEN = 6
LENGTH = 12


def language_model(name: str, *, embedding: str = "onehot", **options) -> LanguageModel:
    torch.manual_seed(0)
    input_size = VOCABULARY if embedding == "onehot" else 4
    backbone = build_backbone(name, input_size=input_size, hidden_size=HIDDEN, **options)
    return LanguageModel(VOCABULARY, backbone, embedding=embedding).eval()


def random_tokens(count: int = LENGTH + 1, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCABULARY, (count,), generator=torch.Generator().manual_seed(seed))


def test_identity_recurrence_passes_gradients_unchanged():
    """h_t = relu(h_{t-1} + W_ih x_t + b) with W_hh = I and positive inputs: J_t = I, so ||dL/dh_t|| is constant."""
    model = language_model("rnn", nonlinearity="relu", init="identity")
    with torch.no_grad():
        model.backbone.weight_ih_l0.abs_()
        model.backbone.bias_ih_l0.fill_(0.5)  # every state stays positive, on the identity side of relu
    tokens = random_tokens()
    flow = gradient_flow(model, tokens, loss="last")
    assert flow.quantity == "hidden" and flow.norms.shape == (LENGTH,)
    np.testing.assert_allclose(flow.norms, flow.norms[-1], rtol=1e-5)
    reading = read_sequence(model, tokens[:-1])
    for t in range(LENGTH):
        torch.testing.assert_close(step_jacobian(model.backbone, reading.inputs[t:t + 1], reading.states[t]), torch.eye(HIDDEN))
    norms = jacobian_norms(model.backbone, reading.inputs, reading.states)
    assert norms.state_size == HIDDEN and norms.spectral.shape == (LENGTH,)
    np.testing.assert_allclose(norms.spectral, 1.0, atol=1e-6)
    np.testing.assert_allclose(norms.frobenius, np.sqrt(HIDDEN), atol=1e-5)


def test_small_tanh_recurrence_makes_gradients_vanish_geometrically():
    """||J_t|| <= ||W_hh|| = 0.1 (tanh' <= 1), so each step back shrinks the gradient at least tenfold."""
    model = language_model("rnn")
    with torch.no_grad():
        model.backbone.weight_hh_l0.copy_(0.1 * torch.linalg.qr(torch.randn(HIDDEN, HIDDEN))[0])
    flow = gradient_flow(model, random_tokens(), loss="last")
    ratios = flow.norms[:-1] / flow.norms[1:]
    assert np.all(ratios <= 0.1 + 1e-6), ratios
    assert flow.norms[0] < 1e-9 * flow.norms[-1]


@pytest.mark.parametrize("name", ["rnn", "lstm", "gru"])
@pytest.mark.parametrize("loss", ["last", "sum"])
def test_gradients_and_jacobians_equal_the_numpy_reference(name, loss):
    model = language_model(name)
    tokens = random_tokens()
    inputs = np.eye(VOCABULARY)[tokens[:-1].numpy()]  # (T, V): the one-hot embedding
    params = reference.params_from_torch(model.backbone, model.head)
    zeros = np.zeros(HIDDEN)
    loss_at = "last" if loss == "last" else "every"
    module = getattr(reference, name)
    if name == "lstm":
        _, cache = module.forward(params, inputs, tokens[1:].numpy(), zeros, zeros, loss_at=loss_at)
    else:
        _, cache = module.forward(params, inputs, tokens[1:].numpy(), zeros, loss_at=loss_at)
    expected = np.linalg.norm(module.backward(params, cache)["h"][1:], axis=1)  # dL/dh_t, t = 1 .. T
    flow = gradient_flow(model, tokens, loss=loss)
    np.testing.assert_allclose(flow.norms, expected, rtol=1e-4, atol=1e-7 * expected.max())
    reading = read_sequence(model, tokens[:-1])
    expected_jacobians = module.step_jacobians(params, cache)  # the LSTM's state stacked as [h; c], as ours
    for t in range(LENGTH):
        ours = step_jacobian(model.backbone, reading.inputs[t:t + 1], reading.states[t])
        np.testing.assert_allclose(ours.numpy(), expected_jacobians[t], atol=1e-5)
    norms = jacobian_norms(model.backbone, reading.inputs, reading.states)
    np.testing.assert_allclose(norms.spectral, np.linalg.norm(expected_jacobians, ord=2, axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(norms.frobenius, np.linalg.norm(expected_jacobians, axis=(1, 2)), rtol=1e-5)


def test_jacobians_equal_autograd_jacobian_for_a_stacked_lstm():
    """Two layers, state (h, c): the batched rows equal torch.autograd.functional.jacobian of one step."""
    model = language_model("lstm", num_layers=2, embedding="learned")
    reading = read_sequence(model, random_tokens()[:-1])
    t = 5
    ours = step_jacobian(model.backbone, reading.inputs[t:t + 1], reading.states[t])
    h, c = reading.states[t]

    def step(h_flat, c_flat):
        _, (new_h, new_c) = model.backbone.step(reading.inputs[t:t + 1], (h_flat.view_as(h), c_flat.view_as(c)))
        return torch.cat([new_h.flatten(), new_c.flatten()])

    (by_h, by_c) = torch.autograd.functional.jacobian(step, (h.flatten(), c.flatten()))
    np.testing.assert_allclose(ours.numpy(), torch.cat([by_h, by_c], dim=1).numpy(), atol=1e-6)


def test_spectral_norm_by_power_iteration_equals_the_largest_singular_value():
    generator = torch.Generator().manual_seed(3)
    for size in (1, 7, 64):
        matrix = torch.randn(size, size, generator=generator, dtype=torch.float64)
        assert spectral_norm(matrix) == pytest.approx(float(torch.linalg.matrix_norm(matrix, ord=2)), rel=1e-8)
    assert spectral_norm(torch.zeros(4, 4)) == 0.0
    assert spectral_norm(torch.diag(torch.tensor([3.0, -5.0, 1.0]))) == pytest.approx(5.0, rel=1e-8)


def test_gates_equal_the_numpy_reference():
    for name, blocks in (("lstm", {"input": 0, "forget": 1, "output": 3}), ("gru", {"reset": 0, "update": 1})):
        model = language_model(name)
        tokens = random_tokens()
        params = reference.params_from_torch(model.backbone, model.head)
        inputs, zeros = np.eye(VOCABULARY)[tokens[:-1].numpy()], np.zeros(HIDDEN)
        state = (zeros, zeros) if name == "lstm" else (zeros,)
        _, cache = getattr(reference, name).forward(params, inputs, tokens[1:].numpy(), *state)
        (values,) = gate_values(model.backbone, read_sequence(model, tokens[:-1]))
        assert set(values) == set(blocks)
        for gate, block in blocks.items():
            np.testing.assert_allclose(values[gate].numpy(), cache.gates[:, block * HIDDEN:(block + 1) * HIDDEN], atol=1e-6)


@pytest.mark.parametrize("variant, gates", [("vanilla", {"input", "forget", "output"}), ("peephole", {"input", "forget", "output"}),
                                            ("coupled", {"input", "forget", "output"}), ("no_forget", {"input", "output"})])
def test_lstm_forget_bias_saturates_the_forget_gate(variant, gates):
    tokens = random_tokens()
    if variant == "no_forget":  # the 1997 cell: nothing to saturate but its input and output gates
        model = language_model("lstm", variant=variant, num_layers=2)
        assert all(set(layer) == gates for layer in gate_saturation(model.backbone, read_sequence(model, tokens[:-1])).layers)
        return
    for bias, saturated in ((20.0, "near_one"), (-20.0, "near_zero")):
        model = language_model("lstm", variant=variant, num_layers=2, forget_bias=bias)
        result = gate_saturation(model.backbone, read_sequence(model, tokens[:-1]))
        assert all(set(layer) == gates for layer in result.layers)
        for layer in result.layers:
            assert layer["forget"][saturated] == 1.0
        if variant == "coupled":  # i = 1 - f saturates the other way
            assert result.layers[0]["input"]["near_zero" if saturated == "near_one" else "near_one"] == 1.0


def test_gru_and_minimal_gates_saturate_with_their_biases():
    tokens = random_tokens()
    for bias, saturated in ((20.0, "near_one"), (-20.0, "near_zero")):
        model = language_model("gru")
        with torch.no_grad():
            model.backbone.bias_ih_l0[:2 * HIDDEN] = bias  # blocks r and z
        (layer,) = gate_saturation(model.backbone, read_sequence(model, tokens[:-1])).layers
        assert layer["reset"][saturated] == layer["update"][saturated] == 1.0
        model = language_model("mingru")
        with torch.no_grad():
            model.backbone.projections[0].bias[:HIDDEN] = bias  # block z
        (layer,) = gate_saturation(model.backbone, read_sequence(model, tokens[:-1])).layers
        assert layer["update"][saturated] == 1.0
    model = language_model("minlstm", num_layers=2)
    for layer in gate_values(model.backbone, read_sequence(model, tokens[:-1])):
        torch.testing.assert_close(layer["forget"] + layer["input"], torch.ones_like(layer["input"]))


def test_attention_rows_are_causal_distributions():
    model = language_model("transformer", embedding="learned", num_layers=2, num_heads=2, context_length=32)
    result = attention_maps(model, random_tokens(LENGTH))
    assert result.maps.shape == (2, 2, LENGTH, LENGTH)
    np.testing.assert_allclose(result.maps.sum(-1), 1.0, atol=1e-6)
    assert np.all(np.triu(result.maps, k=1) == 0.0)
    assert result.distance.shape == result.entropy.shape == (2, 2)
    flow = gradient_flow(model, random_tokens(), loss="sum")
    assert flow.quantity == "embedding" and flow.norms.shape == (LENGTH,)


def test_principal_components_shape_and_a_line():
    points = np.random.default_rng(0).normal(size=(30, 8))
    projection, explained = principal_components(points, count=2)
    assert projection.shape == (30, 2) and explained.shape == (2,)
    assert explained[0] >= explained[1] > 0 and explained.sum() <= 1.0
    line = np.outer(np.arange(10.0), np.ones(4))  # points on a line: one component holds everything
    projection, explained = principal_components(line, count=2)
    np.testing.assert_allclose(explained, [1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(np.abs(np.diff(projection[:, 0])), 2.0, atol=1e-12)  # steps of |(1,1,1,1)| = 2


TRAIN_FLAGS = ["--config", "tiny", "--max-steps", "3", "--eval-interval", "3", "--batch-size", "4",
               "--block-size", "16", "--hidden-size", "16", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """A two-layer LSTM and a Transformer, trained a few steps on a generated text."""
    root = tmp_path_factory.mktemp("diagnose")
    data = root / "text.txt"
    data.write_text(words_text(2000), encoding="utf-8")
    runs = {}
    for backbone, options in (("lstm", ["--num-layers", "2"]), ("transformer", ["--num-heads", "2"])):
        runs[backbone] = root / backbone
        assert main(["train", "--data", str(data), "--out", str(runs[backbone]), *TRAIN_FLAGS, "--backbone", backbone, *options]) == 0
    return data, runs


def test_diagnose_writes_every_figure_and_its_numbers(checkpoints, capsys, tmp_path):
    data, runs = checkpoints
    capsys.readouterr()
    assert main(["diagnose", str(runs["lstm"]), "--data", str(data), "--length", "24"]) == 0
    printed = capsys.readouterr().out
    directory = runs["lstm"] / "diagnostics"
    for analysis in ("gradients", "jacobians", "gates", "trajectories"):
        assert (directory / f"{analysis}.png").stat().st_size > 1000
        numbers = json.loads((directory / f"{analysis}.json").read_text())
        assert numbers["length"] == 24 and numbers["backbone"] == "lstm"
        assert f"{analysis}:" in printed and str(directory / f"{analysis}.json") in printed
    assert "skipped attention" in printed and not (directory / "attention.png").exists()
    gates = json.loads((directory / "gates.json").read_text())
    assert len(gates["layers"]) == 2 and set(gates["layers"][0]) == {"input", "forget", "output"}
    flows = json.loads((directory / "gradients.json").read_text())["flows"]
    assert [flow["loss"] for flow in flows] == ["last", "sum"] and len(flows[0]["norms"]) == 24
    assert len(json.loads((directory / "jacobians.json").read_text())["spectral"]) == 24

    out = tmp_path / "attention"
    assert main(["diagnose", str(runs["transformer"]), "--data", str(data), "--length", "10", "--offset", "5",
                 "--what", "attention,gradients", "--out", str(out)]) == 0
    assert sorted(path.name for path in out.iterdir()) == ["attention.json", "attention.png", "gradients.json", "gradients.png"]
    maps = np.array(json.loads((out / "attention.json").read_text())["maps"])
    assert maps.shape == (1, 2, 10, 10)



def test_bad_inputs_are_one_line_and_exit_2(checkpoints, capsys, tmp_path):
    data, runs = checkpoints
    lstm, transformer = str(runs["lstm"]), str(runs["transformer"])
    assert "fewer than --length" in run_bad(capsys, ["diagnose", lstm, "--data", str(data), "--length", "5000"])
    assert "not a seqlab checkpoint" in run_bad(capsys, ["diagnose", str(tmp_path), "--data", str(data)])
    assert "unknown --what item 'spectra'" in run_bad(capsys, ["diagnose", lstm, "--data", str(data), "--what", "gates,spectra"])
    assert "backbone transformer has no gates" in run_bad(capsys, ["diagnose", transformer, "--data", str(data), "--what", "gates"])
    assert "has no attention maps" in run_bad(capsys, ["diagnose", lstm, "--data", str(data), "--what", "attention"])
    assert "at least 2" in run_bad(capsys, ["diagnose", lstm, "--data", str(data), "--length", "1"])
    assert "does not exist" in run_bad(capsys, ["diagnose", lstm, "--data", str(tmp_path / "missing.txt")])
