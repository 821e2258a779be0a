"""Backbone tests: our recurrent cells against torch and against independent references,
then the invariants every registered backbone must keep.

Everything runs in float64 on tiny sizes, so "equal" means equal to rounding and
any wrong equation shows up as a large difference.
"""
from __future__ import annotations

import copy
from typing import Any, Callable

import pytest
import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqlab import backbone_names, build_backbone
from seqlab.backbones import recurrent as recurrent_module
from seqlab.backbones import state_tensors
from seqlab.registry import backbone_class, backbone_options

BATCH = 3  # distinct from every other size, so a state's batch dimension is the one of size BATCH
TIME = 7
INPUT = 5
HIDDEN = 4
LAYERS = 2
TOLERANCE = {"atol": 1e-10, "rtol": 0.0}  # float64 arithmetic: far below the 1e-5 we promise

TORCH_REFERENCE: dict[str, tuple[Callable[..., nn.Module], dict[str, Any]]] = {
    "rnn-tanh": (lambda: nn.RNN(INPUT, HIDDEN, num_layers=LAYERS, nonlinearity="tanh", batch_first=True), {"nonlinearity": "tanh"}),
    "rnn-relu": (lambda: nn.RNN(INPUT, HIDDEN, num_layers=LAYERS, nonlinearity="relu", batch_first=True), {"nonlinearity": "relu"}),
    "lstm": (lambda: nn.LSTM(INPUT, HIDDEN, num_layers=LAYERS, batch_first=True), {}),
    "gru": (lambda: nn.GRU(INPUT, HIDDEN, num_layers=LAYERS, batch_first=True), {}),
}


# ------------------------------------------------------------------ helpers
def projection_loss(y: Tensor, state: Any) -> Tensor:
    """A scalar that depends on every output and state entry with a distinct weight,
    so a gradient error anywhere (even a sign or a swapped entry) changes it."""
    generator = torch.Generator().manual_seed(1234)
    # drawn in float64 whatever the dtype, so float32 and float64 runs get the same weights
    total = (y * torch.randn(y.shape, generator=generator, dtype=torch.float64).to(y.dtype)).sum()
    for tensor in state_tensors(state):
        total = total + (tensor * torch.randn(tensor.shape, generator=generator, dtype=torch.float64).to(tensor.dtype)).sum()
    return total


def assert_same(actual: Any, expected: Any) -> None:
    if isinstance(expected, Tensor):
        torch.testing.assert_close(actual, expected, **TOLERANCE)
        return
    actual_list, expected_list = list(actual), list(expected)
    assert len(actual_list) == len(expected_list)
    for actual_item, expected_item in zip(actual_list, expected_list):
        assert_same(actual_item, expected_item)


def run_by_steps(model: nn.Module, x: Tensor, state: Any) -> tuple[Tensor, Any]:
    outputs = []
    for t in range(x.shape[1]):
        y_t, state = model.step(x[:, t], state)
        outputs.append(y_t)
    return torch.stack(outputs, dim=1), state


def copy_torch_weights(reference: nn.Module, ours: nn.Module) -> None:
    with torch.no_grad():
        for name, parameter in reference.named_parameters():
            getattr(ours, name).copy_(parameter)


def torch_pair(key: str, **options: Any) -> tuple[nn.Module, nn.Module]:
    """A torch reference module and our backbone holding the same weights."""
    make_reference, our_options = TORCH_REFERENCE[key]
    torch.manual_seed(0)
    reference = make_reference().double()
    name = key.split("-")[0]
    ours = build_backbone(name, input_size=INPUT, hidden_size=HIDDEN, num_layers=LAYERS, **our_options, **options).double()
    copy_torch_weights(reference, ours)
    return reference, ours


def gradients(loss: Tensor, inputs: list[Tensor]) -> tuple[Tensor, ...]:
    return torch.autograd.grad(loss, inputs)


def leaf_copies(tensors: list[Tensor]) -> list[Tensor]:
    return [tensor.detach().clone().requires_grad_(True) for tensor in tensors]


def random_inputs(state_shapes: int, generator_seed: int = 0) -> tuple[Tensor, list[Tensor]]:
    generator = torch.Generator().manual_seed(generator_seed)
    x = torch.randn(BATCH, TIME, INPUT, generator=generator, dtype=torch.float64)
    states = [torch.randn(LAYERS, BATCH, HIDDEN, generator=generator, dtype=torch.float64) for _ in range(state_shapes)]
    return x, states


def as_state(tensors: list[Tensor]) -> Any:
    return tensors[0] if len(tensors) == 1 else tuple(tensors)


# ------------------------------------------- 1a. our cells equal torch's cells
@pytest.mark.parametrize("key", list(TORCH_REFERENCE))
@pytest.mark.parametrize("path", ["own_cells", "step", "fused"])
def test_matches_torch_values_and_gradients(key: str, path: str) -> None:
    reference, ours = torch_pair(key, fused=path == "fused")
    x, states = random_inputs(2 if key == "lstm" else 1)

    reference_leaves = leaf_copies([x, *states])
    expected_y, expected_state = reference(reference_leaves[0], as_state(reference_leaves[1:]))
    expected_gradients = gradients(projection_loss(expected_y, expected_state), [*reference_leaves, *reference.parameters()])

    our_leaves = leaf_copies([x, *states])
    if path == "step":
        y, state = run_by_steps(ours, our_leaves[0], as_state(our_leaves[1:]))
    else:
        y, state = ours(our_leaves[0], as_state(our_leaves[1:]))
    our_parameters = [getattr(ours, name) for name, _ in reference.named_parameters()]
    our_gradients = gradients(projection_loss(y, state), [*our_leaves, *our_parameters])

    assert_same(y, expected_y)
    assert_same(state, expected_state)
    assert_same(our_gradients, expected_gradients)


@pytest.mark.parametrize("key", list(TORCH_REFERENCE))
@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("lengths", [(TIME, 1, 4), (5, 3, 2)])
def test_lengths_match_torch_packed_sequence(key: str, fused: bool, lengths: tuple[int, ...]) -> None:
    reference, ours = torch_pair(key, fused=fused)
    x, states = random_inputs(2 if key == "lstm" else 1, generator_seed=1)
    length_tensor = torch.tensor(lengths)

    reference_leaves = leaf_copies([x, *states])
    packed = pack_padded_sequence(reference_leaves[0], length_tensor, batch_first=True, enforce_sorted=False)
    packed_output, expected_state = reference(packed, as_state(reference_leaves[1:]))
    expected_y, _ = pad_packed_sequence(packed_output, batch_first=True, total_length=TIME)
    expected_gradients = gradients(projection_loss(expected_y, expected_state), [*reference_leaves, *reference.parameters()])

    our_leaves = leaf_copies([x, *states])
    y, state = ours(our_leaves[0], as_state(our_leaves[1:]), lengths=length_tensor)
    our_parameters = [getattr(ours, name) for name, _ in reference.named_parameters()]
    our_gradients = gradients(projection_loss(y, state), [*our_leaves, *our_parameters])

    assert_same(y, expected_y)
    assert_same(state, expected_state)
    assert_same(our_gradients, expected_gradients)


# ------------------------------------------------------ 1b. the LSTM variants
def sigmoid(value: Tensor) -> Tensor:
    return 1.0 / (1.0 + torch.exp(-value))


def reference_lstm_variant(variant: str, x: Tensor, h0: Tensor, c0: Tensor, layers: list[dict[str, Tensor]]) -> tuple[Tensor, Tensor, Tensor]:
    """The variants' equations as the LSTM docstring states them, one step at a time."""
    layer_input = x
    final_h, final_c = [], []
    for layer, weights in enumerate(layers):
        h, c = h0[layer], c0[layer]
        outputs = []
        for t in range(layer_input.shape[1]):
            a = layer_input[:, t] @ weights["w_ih"].T + weights["b_ih"] + h @ weights["w_hh"].T + weights["b_hh"]
            blocks = [a[:, k * HIDDEN:(k + 1) * HIDDEN] for k in range(a.shape[1] // HIDDEN)]
            if variant == "peephole":
                a_i, a_f, a_g, a_o = blocks
                p_i, p_f, p_o = weights["peephole"]
                input_gate = sigmoid(a_i + p_i * c)
                forget_gate = sigmoid(a_f + p_f * c)
                c = forget_gate * c + input_gate * torch.tanh(a_g)
                output_gate = sigmoid(a_o + p_o * c)
            elif variant == "coupled":
                a_f, a_g, a_o = blocks
                forget_gate = sigmoid(a_f)
                c = forget_gate * c + (1.0 - forget_gate) * torch.tanh(a_g)
                output_gate = sigmoid(a_o)
            else:  # no_forget
                a_i, a_g, a_o = blocks
                c = c + sigmoid(a_i) * torch.tanh(a_g)
                output_gate = sigmoid(a_o)
            h = output_gate * torch.tanh(c)
            outputs.append(h)
        layer_input = torch.stack(outputs, dim=1)
        final_h.append(h)
        final_c.append(c)
    return layer_input, torch.stack(final_h), torch.stack(final_c)


def lstm_variant(variant: str, **options: Any) -> nn.Module:
    """A variant backbone with every weight random, peepholes included (they start at zero)."""
    torch.manual_seed(0)
    model = build_backbone("lstm", input_size=INPUT, hidden_size=HIDDEN, num_layers=LAYERS, variant=variant, **options).double()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    return model


def variant_weights(model: nn.Module) -> list[dict[str, Tensor]]:
    return [
        {
            "w_ih": getattr(model, f"weight_ih_l{layer}"),
            "w_hh": getattr(model, f"weight_hh_l{layer}"),
            "b_ih": getattr(model, f"bias_ih_l{layer}"),
            "b_hh": getattr(model, f"bias_hh_l{layer}"),
            "peephole": getattr(model, f"weight_ch_l{layer}", None),
        }
        for layer in range(LAYERS)
    ]


@pytest.mark.parametrize("path", ["own_cells", "step"])
def test_peephole_with_zero_peepholes_is_torch_lstm(path: str) -> None:
    reference, ours = torch_pair("lstm", variant="peephole")
    x, states = random_inputs(2, generator_seed=2)
    reference_leaves = leaf_copies([x, *states])
    expected_y, expected_state = reference(reference_leaves[0], as_state(reference_leaves[1:]))
    expected_gradients = gradients(projection_loss(expected_y, expected_state), [*reference_leaves, *reference.parameters()])

    our_leaves = leaf_copies([x, *states])
    if path == "step":
        y, state = run_by_steps(ours, our_leaves[0], as_state(our_leaves[1:]))
    else:
        y, state = ours(our_leaves[0], as_state(our_leaves[1:]))
    our_parameters = [getattr(ours, name) for name, _ in reference.named_parameters()]
    our_gradients = gradients(projection_loss(y, state), [*our_leaves, *our_parameters])

    assert_same(y, expected_y)
    assert_same(state, expected_state)
    assert_same(our_gradients, expected_gradients)


@pytest.mark.parametrize("variant", ["peephole", "coupled", "no_forget"])
@pytest.mark.parametrize("path", ["own_cells", "step"])
def test_variant_matches_reference_equations(variant: str, path: str) -> None:
    model = lstm_variant(variant)
    x, (h0, c0) = random_inputs(2, generator_seed=3)

    reference_leaves = leaf_copies([x, h0, c0])
    expected_y, expected_h, expected_c = reference_lstm_variant(variant, *reference_leaves, variant_weights(model))
    expected_loss = projection_loss(expected_y, (expected_h, expected_c))
    expected_gradients = gradients(expected_loss, [*reference_leaves, *model.parameters()])

    our_leaves = leaf_copies([x, h0, c0])
    if path == "step":
        y, state = run_by_steps(model, our_leaves[0], (our_leaves[1], our_leaves[2]))
    else:
        y, state = model(our_leaves[0], (our_leaves[1], our_leaves[2]))
    our_gradients = gradients(projection_loss(y, state), [*our_leaves, *model.parameters()])

    assert_same(y, expected_y)
    assert_same(state, (expected_h, expected_c))
    assert_same(our_gradients, expected_gradients)


def functional_backbone(model: nn.Module, lengths: Tensor | None, dropout_seed: int | None) -> tuple[Callable[..., Tensor], list[Tensor]]:
    """model as a function of (x, *state, *parameters), for torch.autograd.gradcheck.

    With ``dropout_seed`` the model runs in training mode and every call reseeds,
    so the dropout masks are the same for every finite-difference evaluation.
    """
    names = [name for name, _ in model.named_parameters()]
    parameters = [parameter.detach().clone().requires_grad_(True) for _, parameter in model.named_parameters()]

    def function(x: Tensor, h0: Tensor, c0: Tensor, *values: Tensor) -> tuple[Tensor, ...]:
        with torch.random.fork_rng():
            if dropout_seed is not None:
                torch.manual_seed(dropout_seed)
            y, state = torch.func.functional_call(model, dict(zip(names, values)), (x, (h0, c0)), {"lengths": lengths})
        return (y, *state_tensors(state))

    return function, parameters


@pytest.mark.parametrize(
    ("variant", "options", "lengths", "dropout_seed"),
    [
        ("vanilla", {"fused": False}, None, None),
        ("peephole", {}, None, None),
        ("coupled", {}, None, None),
        ("no_forget", {}, None, None),
        ("peephole", {}, (3, 1), None),
        ("coupled", {}, (2, 3), None),
        ("no_forget", {"dropout": 0.5}, None, 7),
        ("vanilla", {"fused": False, "dropout": 0.5}, (1, 3), 7),
    ],
)
def test_lstm_gradients_by_finite_differences(variant: str, options: dict[str, Any], lengths: tuple[int, ...] | None, dropout_seed: int | None) -> None:
    torch.manual_seed(0)
    model = build_backbone("lstm", input_size=2, hidden_size=3, num_layers=LAYERS, variant=variant, **options).double()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    model.train(dropout_seed is not None)
    function, parameters = functional_backbone(model, None if lengths is None else torch.tensor(lengths), dropout_seed)
    generator = torch.Generator().manual_seed(4)
    x = torch.randn(2, 3, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    h0, c0 = (torch.randn(LAYERS, 2, 3, generator=generator, dtype=torch.float64, requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(function, (x, h0, c0, *parameters), eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.parametrize("lengths", [None, (3, 1)])
def test_gru_own_cell_gradients_by_finite_differences(lengths: tuple[int, ...] | None) -> None:
    torch.manual_seed(0)
    model = build_backbone("gru", input_size=2, hidden_size=3, num_layers=LAYERS, fused=False).double()
    names = [name for name, _ in model.named_parameters()]
    parameters = [parameter.detach().clone().requires_grad_(True) for parameter in model.parameters()]
    length_tensor = None if lengths is None else torch.tensor(lengths)

    def function(x: Tensor, h0: Tensor, *values: Tensor) -> tuple[Tensor, Tensor]:
        return torch.func.functional_call(model, dict(zip(names, values)), (x, h0), {"lengths": length_tensor})

    generator = torch.Generator().manual_seed(5)
    x = torch.randn(2, 3, 2, generator=generator, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(LAYERS, 2, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(function, (x, h0, *parameters), eps=1e-6, atol=1e-7, rtol=1e-6)


def value_mask_dropout(tensor: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Tensor:
    """Dropout whose mask depends on the values alone, so a reference draws the same mask
    whatever memory layout the traversal keeps its layer outputs in."""
    if not training:
        return tensor
    keep = (torch.sin(tensor.detach() * 1000.0) > 0).to(tensor.dtype)
    return tensor * keep / (1.0 - p)


@pytest.mark.parametrize("variant", ["peephole", "coupled", "no_forget"])
def test_dropout_drops_between_layers_only_when_training(variant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nn.functional, "dropout", value_mask_dropout)
    model = lstm_variant(variant, dropout=0.5)
    x, (h0, c0) = random_inputs(2, generator_seed=6)
    weights = variant_weights(model)
    first_y, first_h, first_c = reference_lstm_variant(variant, x, h0[:1], c0[:1], weights[:1])
    dropped = value_mask_dropout(first_y, 0.5)
    assert bool((dropped == 0).any())
    expected_y, second_h, second_c = reference_lstm_variant(variant, dropped, h0[1:], c0[1:], weights[1:])

    y, (h, c) = model.train()(x, (h0, c0))
    assert_same(y, expected_y)
    assert_same((h, c), (torch.cat([first_h, second_h]), torch.cat([first_c, second_c])))

    undropped_y, _, _ = reference_lstm_variant(variant, x, h0, c0, weights)
    assert_same(model.eval()(x, (h0, c0))[0], undropped_y)


OWN_CELL_CASES = [
    ("rnn", {"fused": False}),
    ("rnn", {"nonlinearity": "relu", "fused": False}),
    ("lstm", {"fused": False}),
    ("lstm", {"variant": "peephole"}),
    ("lstm", {"variant": "coupled"}),
    ("lstm", {"variant": "no_forget"}),
    ("gru", {"fused": False}),
]


@pytest.mark.parametrize(("name", "options"), OWN_CELL_CASES)
@pytest.mark.parametrize("lengths", [None, (TIME, 1, 4)])
def test_float32_own_cells_match_float64(name: str, options: dict[str, Any], lengths: tuple[int, ...] | None) -> None:
    """float32 on CPU takes the fast product path (oneDNN); float64 the plain one, checked exactly above."""
    if torch.backends.mkldnn.is_available():
        assert recurrent_module.uses_onednn(torch.ones(1)), "the fast path is available but not used"
    model64 = build_random(name, {"num_layers": LAYERS, **options})
    model32 = copy.deepcopy(model64).float()
    x = random_sequence(18)
    length_tensor = None if lengths is None else torch.tensor(lengths)
    results = []
    for model, dtype in ((model64, torch.float64), (model32, torch.float32)):
        leaf = x.to(dtype).requires_grad_(True)
        y, state = model(leaf, lengths=length_tensor)
        loss = projection_loss(y, state)
        results.append((y, state_tensors(state), torch.autograd.grad(loss, [leaf, *model.parameters()])))
    (exact_y, exact_state, exact_gradients), (fast_y, fast_state, fast_gradients) = results
    for exact, fast in zip([exact_y, *exact_state, *exact_gradients], [fast_y, *fast_state, *fast_gradients]):
        torch.testing.assert_close(fast, exact.float(), atol=2e-5, rtol=1e-4)


@pytest.mark.parametrize(("name", "options"), OWN_CELL_CASES)
def test_own_cells_single_step_gradients_by_finite_differences(name: str, options: dict[str, Any]) -> None:
    """T = 1: the reverse loop and the weight-gradient products at their edge."""
    model = build_random(name, {"num_layers": LAYERS, **options})
    names = [key for key, _ in model.named_parameters()]
    parameters = [parameter.detach().clone().requires_grad_(True) for parameter in model.parameters()]

    def function(x: Tensor, *values: Tensor) -> tuple[Tensor, ...]:
        y, state = torch.func.functional_call(model, dict(zip(names, values)), (x,))
        return (y, *state_tensors(state))

    x = random_sequence(19, time_steps=1).requires_grad_(True)
    assert torch.autograd.gradcheck(function, (x, *parameters), eps=1e-6, atol=1e-7, rtol=1e-6)


# ---------------------------------------- 1c. invariants of every backbone
EXTRA_OPTION_SETS: dict[str, list[dict[str, Any]]] = {
    "rnn": [
        {"nonlinearity": "relu", "init": "identity", "num_layers": 2},
        {"fused": False, "num_layers": 2},
        {"nonlinearity": "relu", "fused": False},
        {"initial_state": "learned", "num_layers": 2},
        {"initial_state": "random"},
    ],
    "lstm": [
        {"fused": False, "num_layers": 2},
        {"variant": "peephole", "num_layers": 2},
        {"variant": "coupled", "num_layers": 2},
        {"variant": "no_forget", "num_layers": 2},
        {"variant": "peephole", "initial_state": "learned"},
        {"initial_state": "random", "num_layers": 2, "forget_bias": 1.0},
    ],
    "gru": [
        {"fused": False, "num_layers": 2},
        {"initial_state": "learned", "num_layers": 2},
        {"fused": False, "initial_state": "random"},
    ],
    "transformer": [
        {"positional": "learned", "num_layers": 2},
        {"positional": "sinusoidal", "context_length": 3, "num_layers": 2},
        {"positional": "rotary", "context_length": 3, "num_layers": 2, "num_heads": 2},
        {"positional": "alibi", "context_length": 3, "num_layers": 2, "num_heads": 2},
        {"positional": "alibi"},
        {"positional": "none", "context_length": 1},
        {"num_heads": 4, "bias": False, "context_length": 5},
    ],
    "linear_attention": [
        {"chunk_size": 2, "num_layers": 2, "num_heads": 2},
        {"chunk_size": 3, "bias": False, "eps": 0.0},
    ],
    "tcn": [
        {"kernel_size": 2, "num_layers": 3},
        {"kernel_size": 4, "weight_norm": True, "num_layers": 2},
        {"weight_norm": True},
    ],
    "mingru": [
        {"num_layers": 3},
        {"initial_state": "learned", "num_layers": 2},
        {"initial_state": "random"},
    ],
    "minlstm": [
        {"num_layers": 3},
        {"initial_state": "learned", "num_layers": 2},
        {"initial_state": "random", "num_layers": 2},
    ],
}


def backbone_cases() -> list[Any]:
    """(name, options) for every registered backbone: defaults, two layers, and the extras above."""
    cases = []
    for name in backbone_names():
        for options in [{}, {"num_layers": 2}, *EXTRA_OPTION_SETS.get(name, [])]:
            label = ",".join(f"{key}={value}" for key, value in options.items()) or "defaults"
            cases.append(pytest.param(name, options, id=f"{name}[{label}]"))
    return cases


def build_random(name: str, options: dict[str, Any]) -> nn.Module:
    """A float64 backbone in eval mode with every parameter moved off its initial value,
    so parameters that start at zero (peepholes, learned initial states) take part."""
    torch.manual_seed(0)
    model = build_backbone(name, input_size=INPUT, hidden_size=HIDDEN, frames=backbone_class(name).reads_frames,
                           **options).double().eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.2)
    return model


def random_sequence(seed: int, batch: int = BATCH, time_steps: int = TIME, *, shape: tuple[int, ...] = (INPUT,)) -> Tensor:
    """(batch, time_steps, *shape): ``shape`` is what one position of the backbone reads (its ``input_shape``)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, time_steps, *shape, generator=generator, dtype=torch.float64)


@pytest.mark.parametrize(("name", "options"), backbone_cases())
def test_step_by_step_equals_forward(name: str, options: dict[str, Any]) -> None:
    model = build_random(name, options)
    x = random_sequence(10, shape=model.input_shape)
    y, state = model(x)
    stepped_y, stepped_state = run_by_steps(model, x, model.init_state(BATCH))
    assert_same(stepped_y, y)
    assert_same(state_tensors(stepped_state), state_tensors(state))


@pytest.mark.parametrize(("name", "options"), backbone_cases())
@pytest.mark.parametrize("split", [1, 4])
def test_forward_in_two_chunks_equals_forward(name: str, options: dict[str, Any], split: int) -> None:
    model = build_random(name, options)
    x = random_sequence(11, shape=model.input_shape)
    y, state = model(x)
    first_y, carried = model(x[:, :split])
    second_y, chunked_state = model(x[:, split:], carried)
    assert_same(torch.cat([first_y, second_y], dim=1), y)
    assert_same(state_tensors(chunked_state), state_tensors(state))


@pytest.mark.parametrize(("name", "options"), backbone_cases())
def test_causality(name: str, options: dict[str, Any]) -> None:
    model = build_random(name, options)
    x = random_sequence(12, shape=model.input_shape).requires_grad_(True)
    y, _ = model(x)
    generator = torch.Generator().manual_seed(13)
    for t in range(TIME):
        weights = torch.randn(y[:, t].shape, generator=generator, dtype=y.dtype)
        (x_gradient,) = torch.autograd.grad((y[:, t] * weights).sum(), x, retain_graph=True)
        assert bool((x_gradient[:, t + 1:] == 0).all()), f"y_{t} depends on later inputs"
        assert bool((x_gradient[:, t] != 0).any()), f"y_{t} ignores x_{t}"


def batch_dimension(batched: Tensor, alone: Tensor) -> int | None:
    """The dimension where a batch-of-BATCH state differs from a batch-of-1 state, if
    that is the only difference (a growing cache, say, differs in length too)."""
    differing = [dim for dim, (big, small) in enumerate(zip(batched.shape, alone.shape)) if big != small]
    if batched.dim() == alone.dim() and differing and len(differing) == 1 and batched.shape[differing[0]] == BATCH:
        return differing[0]
    return None


@pytest.mark.parametrize(("name", "options"), backbone_cases())
@pytest.mark.parametrize("lengths", [(TIME, 1, 4), (5, 3, 2)])
def test_lengths_equal_running_each_sequence_alone(name: str, options: dict[str, Any], lengths: tuple[int, ...]) -> None:
    model = build_random(name, options)
    x = random_sequence(14, shape=model.input_shape)
    y, state = model(x, lengths=torch.tensor(lengths))
    continuation = random_sequence(15, time_steps=3, shape=model.input_shape)
    continued_y, _ = model(continuation, state)
    for index, length in enumerate(lengths):
        assert bool((y[index, length:] == 0).all()), "padded outputs must be zero"
        alone_y, alone_state = model(x[index:index + 1, :length])
        assert_same(y[index, :length], alone_y[0])
        for batched, alone in zip(state_tensors(state), state_tensors(alone_state)):
            dim = batch_dimension(batched, alone)
            if dim is not None:
                assert_same(batched.narrow(dim, index, 1), alone)
        # whatever its layout, the returned state must carry on as the sequence's own state would
        alone_continued_y, _ = model(continuation[index:index + 1], alone_state)
        assert_same(continued_y[index], alone_continued_y[0])


def names_with_option(option: str) -> list[str]:
    return [name for name in backbone_names() if option in backbone_options(name)]


@pytest.mark.parametrize("name", names_with_option("initial_state"))
def test_learned_initial_state_receives_gradient(name: str) -> None:
    baseline = {key for key, _ in build_random(name, {}).named_parameters()}
    model = build_random(name, {"initial_state": "learned"})
    initial = [parameter for key, parameter in model.named_parameters() if key not in baseline]
    assert initial, "initial_state='learned' must add a parameter"
    y, state = model(random_sequence(16, shape=model.input_shape))
    projection_loss(y, state).backward()
    for parameter in initial:
        assert parameter.grad is not None and bool((parameter.grad != 0).all())


@pytest.mark.parametrize("name", names_with_option("initial_state"))
def test_random_initial_state_is_saved_and_fixed(name: str) -> None:
    baseline_keys = set(build_random(name, {}).state_dict())
    baseline_parameters = {key for key, _ in build_random(name, {}).named_parameters()}
    model = build_random(name, {"initial_state": "random"})
    saved = set(model.state_dict()) - baseline_keys
    assert saved, "initial_state='random' must be saved in state_dict"
    assert not saved & {key for key, _ in model.named_parameters()} - baseline_parameters, "a random initial state is not trained"
    assert all(bool((model.state_dict()[key] != 0).any()) for key in saved)

    torch.manual_seed(99)
    restored = build_backbone(name, input_size=INPUT, hidden_size=HIDDEN, initial_state="random").double().eval()
    before = state_tensors(restored.init_state(BATCH))
    assert not all(torch.equal(mine, theirs) for mine, theirs in zip(before, state_tensors(model.init_state(BATCH))))
    restored.load_state_dict(model.state_dict())
    assert_same(state_tensors(restored.init_state(BATCH)), state_tensors(model.init_state(BATCH)))
    x = random_sequence(17, shape=model.input_shape)
    assert_same(restored(x), model(x, model.init_state(BATCH)))


# ------------------------------------------------- 1d. the IRNN and bad options
def test_identity_init_is_the_irnn() -> None:
    model = build_backbone("rnn", input_size=INPUT, hidden_size=HIDDEN, num_layers=LAYERS, nonlinearity="relu", init="identity").double()
    for layer in range(LAYERS):
        assert torch.equal(getattr(model, f"weight_hh_l{layer}"), torch.eye(HIDDEN, dtype=torch.float64))
        assert bool((getattr(model, f"bias_ih_l{layer}") == 0).all()) and bool((getattr(model, f"bias_hh_l{layer}") == 0).all())
        assert bool((getattr(model, f"weight_ih_l{layer}").abs() < 0.01).all())
    # with no input a positive state is carried unchanged
    single = build_backbone("rnn", input_size=INPUT, hidden_size=HIDDEN, nonlinearity="relu", init="identity").double()
    h0 = torch.rand(1, BATCH, HIDDEN, dtype=torch.float64) + 0.5
    y, h = single(torch.zeros(BATCH, TIME, INPUT, dtype=torch.float64), h0)
    assert_same(h, h0)
    assert_same(y, h0[0].unsqueeze(1).expand(-1, TIME, -1))


def test_forget_bias_sets_the_forget_block() -> None:
    for variant, block in (("vanilla", 1), ("peephole", 1), ("coupled", 0)):
        model = build_backbone("lstm", input_size=INPUT, hidden_size=HIDDEN, num_layers=LAYERS, variant=variant, forget_bias=1.0)
        for layer in range(LAYERS):
            rows = slice(block * HIDDEN, (block + 1) * HIDDEN)
            assert bool((getattr(model, f"bias_ih_l{layer}")[rows] == 1.0).all())
            assert bool((getattr(model, f"bias_hh_l{layer}")[rows] == 0.0).all())


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("lstm", {"variant": "bogus"}),
        ("lstm", {"variant": "no_forget", "forget_bias": 1.0}),
        ("rnn", {"nonlinearity": "sigmoid"}),
        ("rnn", {"initial_state": "x"}),
        ("lstm", {"initial_state": "x"}),
        ("gru", {"initial_state": "x"}),
        ("gru", {"init": "identity"}),
        ("rnn", {"init": "bogus"}),
        ("lstm", {"dropout": 1.5}),
        ("gru", {"no_such_option": 1}),
        ("no_such_backbone", {}),
    ],
)
def test_bad_options_raise_value_error(name: str, options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        build_backbone(name, input_size=INPUT, hidden_size=HIDDEN, **options)
