"""The vanishing-gradient regulariser of Pascanu, Mikolov & Bengio (2013), for recurrent backbones.

    Omega = (1/B) sum_b sum_{k=0}^{T-1} ( ||g_{k+1}^T dh_{k+1}/dh_k|| / ||g_{k+1}|| - 1 )^2,
    g_{k+1} = dE/dh_{k+1}

asks every step to pass the error signal back with its size unchanged, so that
it neither vanishes nor explodes on its way through time. As in the paper,
g_{k+1} is treated as a constant; so are the trajectory's states and inputs:
Omega's gradient reaches the weights only through the one-step Jacobian
dh_{k+1}/dh_k. h is a row's whole state (every layer; h and c for an LSTM).

How: the backbone records its forward (``RecurrentBackbone.recording``: ``step``
position by position instead of a fused traversal), keeping every state
h_0..h_T in the graph, so autograd gives the total derivatives g_k = dE/dh_k
(both paths: through the output at k and through h_{k+1}); ``penalty`` takes
them, and ``pascanu_penalty`` recomputes all T
steps h_k -> h_{k+1} at once, as one batch of T*B rows of ``step`` from the
detached h_k, and takes the vector-Jacobian products g_{k+1}^T dh_{k+1}/dh_k
with ``create_graph=True``, so Omega can be differentiated (double backward:
the step path supports it; our fused kernels do not). Cost: a stepped forward
and about two more backward passes.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..backbones.recurrent import RecurrentBackbone, Trajectory
from ..errors import SeqlabError


def check_regularisable(backbone: Any) -> None:
    """Refuse, in one line, backbones the regulariser does not apply to."""
    if not isinstance(backbone, RecurrentBackbone):
        raise SeqlabError(f"--pascanu-weight needs a recurrent backbone whose state h_t follows from h_(t-1) by one "
                          f"step (rnn, lstm, gru); {type(backbone).__name__} is not one")
    if backbone.dropout > 0 and backbone.num_layers > 1:
        raise SeqlabError("--pascanu-weight needs --dropout 0 (dropout between layers makes the recomputed step "
                          "differ from the one taken)")


def _rows(tensors: tuple[Tensor, ...]) -> Tensor:
    """A state's tensors (L, N, H) each -> (N, S): every row's whole state as one vector."""
    return torch.cat([tensor.transpose(0, 1).reshape(tensor.shape[1], -1) for tensor in tensors], dim=1)


def penalty(trajectory: Trajectory, backbone: RecurrentBackbone, loss: Tensor) -> Tensor:
    """Omega for a forward the backbone recorded (``backbone.recording()``), given the loss E it led to (the graph
    is kept for E's own backward)."""
    later = [tensor for state in trajectory.states[1:] for tensor in state]
    gradients = torch.autograd.grad(loss, later, retain_graph=True, allow_unused=True)
    gradients = [torch.zeros_like(tensor) if gradient is None else gradient
                 for tensor, gradient in zip(later, gradients)]
    per_state = len(trajectory.states[0])
    grouped = [tuple(gradients[index:index + per_state]) for index in range(0, len(gradients), per_state)]
    return pascanu_penalty(backbone, trajectory.inputs, trajectory.states[:-1], grouped, lengths=trajectory.lengths)


def pascanu_penalty(backbone: RecurrentBackbone, inputs: Tensor, previous: list[tuple[Tensor, ...]],
                    gradients: list[tuple[Tensor, ...]], *, lengths: Tensor | None = None) -> Tensor:
    """Omega (a scalar, differentiable in the backbone's weights) from a trajectory and its gradients.

    Args:
        inputs: x (B, T, D), the backbone's inputs.
        previous: h_0..h_{T-1}, each a tuple of (L, B, H) state tensors.
        gradients: g_1..g_T = dE/dh_1..dE/dh_T, shaped like the states; constants.
        lengths: (B,) real lengths; steps past a row's length are left out.

    Steps with g_{k+1} = 0 (nothing downstream depends on h_{k+1}) are left out too.
    """
    batch, time_steps, _ = inputs.shape
    # k-major rows: row k*B + b is step k of sequence b
    states = tuple(torch.cat([state[index] for state in previous], dim=1).detach().requires_grad_()
                   for index in range(len(previous[0])))  # each (L, T*B, H)
    steps_input = inputs.detach().transpose(0, 1).reshape(time_steps * batch, -1)  # (T*B, D)
    _, following = backbone.step(steps_input, backbone._pack(states))
    following = backbone._unpack(following)
    constants = tuple(torch.cat([gradient[index] for gradient in gradients], dim=1).detach()
                      for index in range(len(states)))  # each (L, T*B, H)
    products = torch.autograd.grad(following, states, grad_outputs=constants, create_graph=True)
    through = torch.linalg.vector_norm(_rows(products), dim=1)  # (T*B,) ||g_{k+1}^T J_{k+1}||
    incoming = torch.linalg.vector_norm(_rows(constants), dim=1)  # (T*B,) ||g_{k+1}||
    counted = incoming > 0
    if lengths is not None:
        steps = torch.arange(time_steps, device=inputs.device).repeat_interleave(batch)  # (T*B,)
        counted &= steps < lengths.to(inputs.device).repeat(time_steps)
    ratios = torch.where(counted, through / torch.where(counted, incoming, torch.ones_like(incoming)), 1.0)
    return ((ratios - 1.0) ** 2).sum() / batch
