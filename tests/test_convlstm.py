"""The ConvLSTM against the paper's equations written out by hand, in float64: values and gradients.

The reference convolves by summing the shifted, zero-padded input against each kernel tap (no conv2d), and
applies Shi et al.'s equations gate by gate with the weights sliced out of ours. The registry-wide invariants
(step = forward, chunks, causality, lengths) cover the backbone in test_backbones.py with no code here.
"""
from __future__ import annotations

import pytest
import torch
from torch import Tensor
from torch.nn import functional as F

from seqlab import build_backbone

BATCH, TIME, CHANNELS, HIDDEN, HEIGHT, WIDTH, LAYERS, KERNEL = 2, 4, 3, 2, 5, 4, 2, 3


def shifted_sum_convolution(x: Tensor, weight: Tensor) -> Tensor:
    """Cross-correlation with zero 'same' padding: x (B, C, H, W), weight (O, C, k, k) -> (B, O, H, W)."""
    k = weight.shape[-1]
    height, width = x.shape[-2:]
    padded = F.pad(x, (k // 2,) * 4)  # (B, C, H + k - 1, W + k - 1)
    out = x.new_zeros(x.shape[0], weight.shape[0], height, width)
    for dy in range(k):
        for dx in range(k):
            window = padded[:, :, dy:dy + height, dx:dx + width]  # (B, C, H, W)
            out = out + torch.einsum("bchw,oc->bohw", window, weight[:, :, dy, dx])
    return out


def reference(model, x: Tensor, h0: Tensor, c0: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Shi et al. 2015, equations (3), one layer after another, one step at a time."""
    layer_input = x
    final_h, final_c = [], []
    for layer in range(model.num_layers):
        w_x = getattr(model, f"weight_ih_l{layer}").chunk(4)  # W_xi, W_xf, W_xc, W_xo
        w_h = getattr(model, f"weight_hh_l{layer}").chunk(4)
        b = getattr(model, f"bias_l{layer}").chunk(4)
        peephole = getattr(model, f"peephole_l{layer}", None)
        w_ci, w_cf, w_co = (peephole[0], peephole[1], peephole[2]) if peephole is not None else (0.0, 0.0, 0.0)
        h, c = h0[layer], c0[layer]
        outputs = []
        for t in range(layer_input.shape[1]):
            x_t = layer_input[:, t]

            def pre(gate: int) -> Tensor:
                return (shifted_sum_convolution(x_t, w_x[gate]) + shifted_sum_convolution(h, w_h[gate])
                        + b[gate].view(1, -1, 1, 1))

            i = torch.sigmoid(pre(0) + w_ci * c)
            f = torch.sigmoid(pre(1) + w_cf * c)
            c = f * c + i * torch.tanh(pre(2))
            o = torch.sigmoid(pre(3) + w_co * c)
            h = o * torch.tanh(c)
            outputs.append(h)
        layer_input = torch.stack(outputs, dim=1)
        final_h.append(h)
        final_c.append(c)
    return layer_input, torch.stack(final_h), torch.stack(final_c)


def random_model(peephole: bool):
    torch.manual_seed(0)
    model = build_backbone("convlstm", input_size=CHANNELS, hidden_size=HIDDEN, num_layers=LAYERS, frames=True,
                           frame_height=HEIGHT, frame_width=WIDTH, kernel_size=KERNEL, peephole=peephole).double()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)  # peepholes (zeros at the start) included
    return model


@pytest.mark.parametrize("peephole", [True, False])
@pytest.mark.parametrize("path", ["forward", "step"])
def test_convlstm_matches_the_written_out_equations(peephole: bool, path: str) -> None:
    model = random_model(peephole)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(BATCH, TIME, CHANNELS, HEIGHT, WIDTH, generator=generator, dtype=torch.float64, requires_grad=True)
    h0, c0 = (torch.randn(LAYERS, BATCH, HIDDEN, HEIGHT, WIDTH, generator=generator, dtype=torch.float64,
                          requires_grad=True) for _ in range(2))
    weights = [torch.randn(shape, generator=generator, dtype=torch.float64)
               for shape in ((BATCH, TIME, HIDDEN, HEIGHT, WIDTH), h0.shape, c0.shape)]
    leaves = [x, h0, c0, *model.parameters()]

    expected = reference(model, x, h0, c0)
    expected_gradients = torch.autograd.grad(sum((out * w).sum() for out, w in zip(expected, weights)), leaves)

    if path == "forward":
        y, (h, c) = model(x, (h0, c0))
    else:
        state, outputs = (h0, c0), []
        for t in range(TIME):
            y_t, state = model.step(x[:, t], state)
            outputs.append(y_t)
        y, (h, c) = torch.stack(outputs, dim=1), state
    gradients = torch.autograd.grad(sum((out * w).sum() for out, w in zip((y, h, c), weights)), leaves)

    for ours, theirs in zip((y, h, c), expected):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)
    for ours, theirs in zip(gradients, expected_gradients):
        torch.testing.assert_close(ours, theirs, rtol=0, atol=1e-12)


def test_convlstm_gradients_by_finite_differences() -> None:
    """Central differences (torch.autograd.gradcheck, fast mode: along random directions) in the input, the
    state and every parameter."""
    torch.manual_seed(0)
    model = build_backbone("convlstm", input_size=2, hidden_size=2, frames=True, frame_height=3, frame_width=3).double()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.5)
    names = [name for name, _ in model.named_parameters()]
    x = torch.randn(1, 2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    h, c = (torch.randn(1, 1, 2, 3, 3, dtype=torch.float64, requires_grad=True) for _ in range(2))

    def outputs(x: Tensor, h: Tensor, c: Tensor, *parameters: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        y, (new_h, new_c) = torch.func.functional_call(model, dict(zip(names, parameters)), (x, (h, c)))
        return y, new_h, new_c

    parameters = [parameter.detach().clone().requires_grad_(True) for parameter in model.parameters()]
    assert torch.autograd.gradcheck(outputs, (x, h, c, *parameters), fast_mode=True)


def test_convlstm_refuses_frames_of_the_wrong_rank_or_size() -> None:
    model = build_backbone("convlstm", input_size=1, hidden_size=2, frames=True, frame_height=6, frame_width=6)
    with pytest.raises(ValueError, match=r"reads frames \(B, T, C, H, W\) with \(C, H, W\) = \(1, 6, 6\)"):
        model(torch.zeros(2, 3, 36))
    with pytest.raises(ValueError, match=r"got shape \(2, 3, 1, 5, 6\)"):
        model(torch.zeros(2, 3, 1, 5, 6))
    with pytest.raises(ValueError, match="reads frames"):
        build_backbone("convlstm", input_size=1, hidden_size=2)  # a vector model asked for a frame backbone
    with pytest.raises(ValueError, match="reads vectors"):
        build_backbone("lstm", input_size=1, hidden_size=2, frames=True)
