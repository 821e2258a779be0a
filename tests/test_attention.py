"""Attention backbones against plain references written out here.

The Transformer is replayed as its equations (softmax(Q K^T / sqrt(d) + mask) V,
rotary as complex multiplication, the banded causal mask past the context),
with q, k, v taken from the module's own projections; cached generation is
compared with recomputing the prefix; linear attention's parallel and recurrent
forms are compared with each other and with the O(T^2) sum. All in float64.
"""
from __future__ import annotations

import math
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab import build_backbone
from seqlab.backbones.transformer import ContextLengthError
from seqlab.data.tokenizers import CharTokenizer
from seqlab.errors import SeqlabError
from seqlab.generate import generate
from seqlab.models import LanguageModel

INPUT = 5
HIDDEN = 8
HEADS = 2
LAYERS = 2
VOCAB = 11
TOLERANCE = {"atol": 1e-10, "rtol": 0.0}
POSITIONALS = ["learned", "sinusoidal", "rotary", "alibi", "none"]


def perturbed(module: nn.Module) -> nn.Module:
    """float64, eval mode, every parameter moved well off GPT-2's small initial values so positions matter."""
    module = module.double().eval()
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    return module


def transformer(input_size: int = INPUT, **options: Any) -> nn.Module:
    torch.manual_seed(0)
    return perturbed(build_backbone("transformer", input_size=input_size, hidden_size=HIDDEN, num_layers=LAYERS,
                                    num_heads=HEADS, **options))


def random_input(seed: int, batch: int = 2, time_steps: int = 9) -> Tensor:
    return torch.randn(batch, time_steps, INPUT, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ------------------------------------------------------- the reference Transformer
def gelu(x: Tensor) -> Tensor:
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def layer_norm(x: Tensor, norm: nn.LayerNorm) -> Tensor:
    centred = x - x.mean(-1, keepdim=True)
    scaled = centred / torch.sqrt((centred * centred).mean(-1, keepdim=True) + norm.eps)
    return scaled * norm.weight + (0.0 if norm.bias is None else norm.bias)


def linear(x: Tensor, layer: nn.Linear) -> Tensor:
    return x @ layer.weight.T + (0.0 if layer.bias is None else layer.bias)


def rotate_as_complex(x: Tensor, positions: Tensor) -> Tensor:
    """Rotary embedding as multiplication of (x_i + i x_{i+hs/2}) by e^{i p theta_i}, theta_i = 10000^(-i/(hs/2))."""
    half = x.shape[-1] // 2
    pairs = torch.complex(x[..., :half], x[..., half:2 * half])
    theta = 10000.0 ** (-torch.arange(half, dtype=x.dtype) / half)
    turned = pairs * torch.exp(1j * positions.to(x.dtype)[:, None] * theta)  # positions (T,) broadcast over (B, nh)
    return torch.cat([turned.real, turned.imag, x[..., 2 * half:]], dim=-1)


def sinusoidal_table(time_steps: int, width: int) -> Tensor:
    table = torch.zeros(time_steps, width, dtype=torch.float64)
    for position in range(time_steps):
        for index in range(width):
            angle = position / 10000.0 ** (2 * (index // 2) / width)
            table[position, index] = math.sin(angle) if index % 2 == 0 else math.cos(angle)
    return table


def reference_transformer(model: nn.Module, x: Tensor) -> tuple[Tensor, list[Tensor]]:
    """The backbone's equations from a fresh state: y (B, T, H) and each layer's weights (B, nh, T, T)."""
    batch, time_steps, _ = x.shape
    heads, head_size, context = model.num_heads, model.hidden_size // model.num_heads, model.context_length
    positions = torch.arange(time_steps)
    h = x if model.input_size == model.hidden_size else linear(x, model.input_projection)
    if model.positional == "learned":
        h = h + model.position_embedding.weight[:time_steps]
    elif model.positional == "sinusoidal":
        h = h + sinusoidal_table(time_steps, model.hidden_size)
    query_index, key_index = positions[:, None], positions[None, :]
    allowed = (key_index <= query_index) & (query_index - key_index < context)  # (T, T)
    maps = []
    for block in model.blocks:
        attention = block.mixer
        q, k, v = (part.reshape(batch, time_steps, heads, head_size).transpose(1, 2)
                   for part in linear(layer_norm(h, block.norm_1), attention.qkv).split(model.hidden_size, dim=-1))
        if model.positional == "rotary":
            q, k = rotate_as_complex(q, positions), rotate_as_complex(k, positions)
        scores = q @ k.transpose(-2, -1) / math.sqrt(head_size)  # (B, nh, T, T)
        if model.positional == "alibi":
            slopes = torch.tensor([2.0 ** (-8.0 * head / heads) for head in range(1, heads + 1)], dtype=x.dtype)
            scores = scores - slopes[:, None, None] * (query_index - key_index).to(x.dtype)
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)
        maps.append(weights)
        mixed = (weights @ v).transpose(1, 2).reshape(batch, time_steps, model.hidden_size)
        h = h + linear(mixed, attention.output)
        h = h + linear(gelu(linear(layer_norm(h, block.norm_2), block.mlp.expand)), block.mlp.project)
    return layer_norm(h, model.final_norm), maps


def reference_cases() -> list[Any]:
    cases = []
    for positional in POSITIONALS:
        for context in (16, 4):
            if positional == "learned" and context < 9:
                continue  # the table has no row past the context; see test_learned_forward_refuses_positions_past_the_table
            cases.append(pytest.param(positional, context, id=f"{positional}-context{context}"))
    return cases


@pytest.mark.parametrize(("positional", "context"), reference_cases())
def test_transformer_equals_reference_equations(positional: str, context: int) -> None:
    model = transformer(positional=positional, context_length=context)
    x = random_input(1)
    expected_y, expected_maps = reference_transformer(model, x)
    y, _ = model(x)
    torch.testing.assert_close(y, expected_y, **TOLERANCE)
    maps = model.attention_maps(x)
    assert len(maps) == LAYERS
    for weights, expected in zip(maps, expected_maps):
        torch.testing.assert_close(weights, expected, **TOLERANCE)


def test_input_projection_only_when_sizes_differ() -> None:
    assert isinstance(transformer(input_size=HIDDEN).input_projection, nn.Identity)
    assert isinstance(transformer(input_size=INPUT).input_projection, nn.Linear)
    model = transformer(input_size=HIDDEN, positional="rotary", context_length=4)
    x = torch.randn(2, 9, HIDDEN, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(model(x)[0], reference_transformer(model, x)[0], **TOLERANCE)


# ---------------------------------------------------------- attention maps
@pytest.mark.parametrize("positional", ["rotary", "alibi"])
def test_attention_maps_are_causal_distributions(positional: str) -> None:
    context = 4
    model = transformer(positional=positional, context_length=context)
    x = random_input(3)
    for weights in model.attention_maps(x):
        time_steps = x.shape[1]
        assert weights.shape == (2, HEADS, time_steps, time_steps)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, HEADS, time_steps, dtype=torch.float64), **TOLERANCE)
        index = torch.arange(time_steps)
        outside = (index[None, :] > index[:, None]) | (index[:, None] - index[None, :] >= context)
        assert bool((weights[..., outside] == 0).all()), "no weight above the diagonal or outside the window"
        assert bool((weights[..., ~outside] > 0).all())

    # with a state, keys are the C ring slots then the new positions; empty slots get nothing
    _, state = model(x[:, :2])
    continued = model.attention_maps(x[:, 2:5], state)
    for weights in continued:
        assert weights.shape == (2, HEADS, 3, context + 3)
        torch.testing.assert_close(weights.sum(-1), torch.ones(2, HEADS, 3, dtype=torch.float64), **TOLERANCE)
        assert bool((weights[..., 2:context] == 0).all()), "slots 2 and 3 hold no position yet"
        assert bool((weights[..., context:].triu(1) == 0).all())
    # and they are the same weights as the whole sequence's, rearranged
    whole = model.attention_maps(x[:, :5])
    for weights, expected in zip(continued, whole):
        torch.testing.assert_close(weights[..., :2], expected[..., 2:5, :2], **TOLERANCE)
        torch.testing.assert_close(weights[..., context:], expected[..., 2:5, 2:5], **TOLERANCE)


# ---------------------------------------------- cached generation vs recomputing
def language_model(positional: str, context: int) -> LanguageModel:
    torch.manual_seed(1)
    backbone = build_backbone("transformer", input_size=HIDDEN, hidden_size=HIDDEN, num_layers=LAYERS, num_heads=HEADS,
                              context_length=context, positional=positional)
    return perturbed(LanguageModel(VOCAB, backbone))


def recomputed_logits(model: LanguageModel, sequence: list[int], positional: str, context: int) -> Tensor:
    """The next-token logits from a fresh forward over the prefix; with learned positions over
    the last C tokens only (the crop nanoGPT makes), which is what ``step`` promises past the table."""
    if positional == "learned":
        sequence = sequence[-context:]
    logits, _ = model(torch.tensor([sequence]))
    return logits[0, -1]


@pytest.mark.parametrize("positional", POSITIONALS)
def test_cached_generation_equals_recomputing_the_prefix(positional: str) -> None:
    """Two rows of different prompt lengths, generated well past the context length."""
    context = 4
    model = language_model(positional, context)
    generator = torch.Generator().manual_seed(5)
    prompts = torch.randint(VOCAB, (2, context), generator=generator)
    lengths = torch.tensor([context, 2])
    sequences = [prompts[row, :length].tolist() for row, length in enumerate(lengths.tolist())]
    logits, state = model(prompts, lengths=lengths)
    for row, length in enumerate(lengths.tolist()):
        torch.testing.assert_close(logits[row, length - 1], recomputed_logits(model, sequences[row], positional, context),
                                   **TOLERANCE)
    for _ in range(3 * context):
        tokens = torch.randint(VOCAB, (2,), generator=generator)
        logits, state = model.step(tokens, state)
        for row in range(2):
            sequences[row].append(int(tokens[row]))
            torch.testing.assert_close(logits[row], recomputed_logits(model, sequences[row], positional, context),
                                       **TOLERANCE)
    assert state["positions"].tolist() == [len(sequence) for sequence in sequences]


def test_greedy_generation_past_the_context_equals_recomputing() -> None:
    """The real sampler (prompt through forward, then one step per token) against greedy recomputation."""
    tokenizer = CharTokenizer.fit("abcdefghij\n")
    torch.manual_seed(2)
    backbone = build_backbone("transformer", input_size=HIDDEN, hidden_size=HIDDEN, num_layers=LAYERS, num_heads=HEADS,
                              context_length=3, positional="alibi")
    model = perturbed(LanguageModel(tokenizer.vocab_size, backbone)).float()
    text = "".join(generate(model, tokenizer, "abc", max_tokens=12, temperature=0))
    sequence = tokenizer.encode("abc").tolist()
    with torch.no_grad():
        for _ in range(12):
            sequence.append(int(model(torch.tensor([sequence]))[0][0, -1].argmax()))
    assert text == tokenizer.decode(sequence[3:])


def test_learned_forward_refuses_positions_past_the_table() -> None:
    model = transformer(positional="learned", context_length=4)
    with pytest.raises(ValueError, match="context_length"):
        model(random_input(6, time_steps=5))
    _, state = model(random_input(6, time_steps=3))
    with pytest.raises(ValueError, match="context_length"):
        model(random_input(7, time_steps=2), state)
    # padding past the table is no real position
    model(random_input(6, time_steps=6), lengths=torch.tensor([4, 2]))
    with pytest.raises(ValueError, match="context_length"):
        model.attention_maps(random_input(6, time_steps=5))
    assert issubclass(ContextLengthError, SeqlabError), "the command line reports it in one line"


def test_dropout_only_while_training() -> None:
    model = transformer(positional="rotary", context_length=4, dropout=0.5)
    x = random_input(11)
    torch.testing.assert_close(model(x)[0], reference_transformer(model, x)[0], **TOLERANCE)
    torch.manual_seed(3)
    dropped = model.train()(x)[0]
    assert not torch.allclose(dropped, reference_transformer(model, x)[0])


# ------------------------------------------------------------- linear attention
def linear_attention(**options: Any) -> nn.Module:
    torch.manual_seed(0)
    return perturbed(build_backbone("linear_attention", input_size=INPUT, hidden_size=HIDDEN, num_layers=LAYERS,
                                    num_heads=HEADS, **options))


def reference_linear_attention(mixer: nn.Module, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """y_t = sum_{i<=t} (phi(q_t).phi(k_i)) v_i / (sum_{i<=t} phi(q_t).phi(k_i) + eps), summed afresh for every t."""
    batch, time_steps, hidden = x.shape
    heads = mixer.num_heads
    q, k, v = (part.reshape(batch, time_steps, heads, hidden // heads) for part in linear(x, mixer.qkv).split(hidden, -1))
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1  # (B, T, nh, hs)
    outputs = torch.zeros_like(v)
    for t in range(time_steps):
        numerator = torch.zeros_like(v[:, 0])
        denominator = torch.zeros(batch, heads, 1, dtype=x.dtype)
        for i in range(t + 1):
            similarity = (phi_q[:, t] * phi_k[:, i]).sum(-1, keepdim=True)  # (B, nh, 1)
            numerator = numerator + similarity * v[:, i]
            denominator = denominator + similarity
        outputs[:, t] = numerator / (denominator + mixer.eps)
    sums = torch.einsum("bthi,bthj->bhij", phi_k, v)  # S_T = sum_i phi(k_i) v_i^T
    return linear(outputs.reshape(batch, time_steps, hidden), mixer.output), sums, phi_k.sum(1)


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
@pytest.mark.parametrize("recurrent", [False, True])
def test_linear_attention_forms_equal_the_quadratic_sum(chunk_size: int, recurrent: bool) -> None:
    mixer = linear_attention(chunk_size=chunk_size).blocks[0].mixer
    x = torch.randn(2, 10, HIDDEN, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    head_size = HIDDEN // HEADS
    zero_sums = torch.zeros(2, HEADS, head_size, head_size, dtype=torch.float64)
    zero_normalizers = torch.zeros(2, HEADS, head_size, dtype=torch.float64)
    y, (sums, normalizers) = mixer(x, zero_sums, zero_normalizers, None, recurrent)
    expected_y, expected_sums, expected_normalizers = reference_linear_attention(mixer, x)
    torch.testing.assert_close(y, expected_y, **TOLERANCE)
    torch.testing.assert_close(sums, expected_sums, **TOLERANCE)
    torch.testing.assert_close(normalizers, expected_normalizers, **TOLERANCE)


@pytest.mark.parametrize("chunk_size", [1, 4, 64])
def test_linear_attention_parallel_forward_equals_recurrent_steps(chunk_size: int) -> None:
    model = linear_attention(chunk_size=chunk_size)
    x = random_input(9, time_steps=11)
    y, state = model(x)
    stepped_state = model.init_state(2)
    for t in range(x.shape[1]):
        y_t, stepped_state = model.step(x[:, t], stepped_state)
        torch.testing.assert_close(y_t, y[:, t], **TOLERANCE)
    for name in ("key_value_sums", "key_sums"):
        torch.testing.assert_close(stepped_state[name], state[name], **TOLERANCE)


def test_linear_attention_padding_adds_nothing_to_the_sums() -> None:
    model = linear_attention(chunk_size=3)
    x = random_input(10, time_steps=7)
    _, state = model(x, lengths=torch.tensor([7, 3]))
    _, alone = model(x[1:, :3])
    for name in ("key_value_sums", "key_sums"):
        torch.testing.assert_close(state[name][:, 1:], alone[name], **TOLERANCE)


# ----------------------------------------------------------------- bad options
@pytest.mark.parametrize(
    ("name", "hidden", "options", "message"),
    [
        ("transformer", 10, {"num_heads": 4}, "divisible"),
        ("transformer", 200, {}, "divisible"),  # the default: 200 // 64 = 3 heads
        ("transformer", 8, {"num_heads": 0}, "num_heads"),
        ("transformer", 8, {"context_length": 0}, "context_length"),
        ("transformer", 8, {"positional": "relative"}, "positional"),
        ("transformer", 8, {"dropout": 1.0}, "dropout"),
        ("linear_attention", 8, {"num_heads": 3}, "divisible"),
        ("linear_attention", 8, {"chunk_size": 0}, "chunk_size"),
        ("linear_attention", 8, {"eps": -1.0}, "eps"),
        ("linear_attention", 8, {"positional": "rotary"}, "no option"),
    ],
)
def test_bad_options_raise_value_error(name: str, hidden: int, options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_backbone(name, input_size=INPUT, hidden_size=hidden, **options)


def test_default_heads_are_one_per_64_units() -> None:
    assert build_backbone("transformer", input_size=INPUT, hidden_size=256).num_heads == 4
    assert build_backbone("linear_attention", input_size=INPUT, hidden_size=32).num_heads == 1
