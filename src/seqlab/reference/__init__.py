"""The glass box: NumPy forward passes and hand-derived backpropagation through time.

Three one-layer cells, each with a softmax output layer and a summed
cross-entropy loss, each a module with the same functions:

    init_params(input_size, hidden_size, output_size, rng) -> params
    forward(params, inputs, targets, h0[, c0], *, loss_at="every") -> (loss, cache)
    backward(params, cache) -> gradients        # params' keys, plus "h0" (and "c0"),
                                                # plus "h" (and "c"): dL/d(state) at every step
    step_jacobians(params, cache) -> (T, S, S)  # ds_t/ds_{t-1}

- :mod:`.rnn`:  h_t = phi(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), phi tanh, relu or identity;
- :mod:`.lstm`: torch's LSTM (gate blocks i, f, g, o), state (h, c);
- :mod:`.gru`:  torch's GRU (blocks r, z, n, reset applied after W_hn h + b_hn).

Parameters are a dict of float64 arrays in torch's layout without the layer
suffix (``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh``) plus the head
(``weight_hy``, ``bias_hy``); :func:`params_from_torch` copies them out of a seqlab
backbone and an ``nn.Linear``. Written to be read: each ``backward`` derives its
gradients in its docstring, and its loop keeps the two paths into h_t visible
as ``dh_from_output`` and ``dh_from_next``.
"""
from . import gru, lstm, rnn
from .common import LOSS_AT, Parameters, jacobian_product_norms, params_from_torch

__all__ = ["rnn", "lstm", "gru", "Parameters", "LOSS_AT", "params_from_torch", "jacobian_product_norms"]
