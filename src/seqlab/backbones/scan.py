r"""A parallel scan for the first-order linear recurrence of minGRU and minLSTM.

    h_t = a_t * h_{t-1} + b_t,        t = 1 .. T,  h_0 given

elementwise over every feature. Unrolled, h_t = (prod_{s<=t} a_s) h_0 +
sum_{s<=t} (prod_{s<r<=t} a_r) b_s: a prefix "sum" under the associative
operator (a, b) o (a', b') = (a a', a' b + b'), so it needs no loop over T
single positions.

On a CPU the fastest form we measured is a chunked scan, run by
``chunked_scan`` with the length L of a chunk about sqrt(T) and C = T // L
chunks:

1. reduce: within every chunk, all chunks at once, the chunk's total
   product A_c = prod a and its end value E_c (the recurrence run from a zero
   state), L - 1 vectorised steps over (B, C, H) slices;
2. carry: across chunk boundaries, s_{c+1} = A_c s_c + E_c from s_0 = h_0,
   C - 1 small steps over (B, H);
3. scan: within every chunk again, all chunks at once, now starting from
   the true state s_c, L steps, writing every h_t.

That is about 2 sqrt(T) + sqrt(T) tensor operations instead of T, each over
many elements. It uses only products and sums (no exp, log or division), so
it is as stable in float32 as the plain loop whatever the gates are. The
paper's log-space form, exp(log prod a + logcumsumexp(log b - log prod a)),
needs a > 0 and b > 0, loses precision once prod a underflows, and measured
several times slower here (benchmarks/bench_scan.py). The T - C L positions left over after the last whole
chunk run as a plain loop.

The gradient is the same recurrence backwards in time. With g_t = dL/dh_t
in full (from h_t itself and through h_{t+1}) and G_t the gradient arriving
at h_t from outside:

    g_t = G_t + a_{t+1} g_{t+1},    g_T = G_T
    dL/da_t = g_t h_{t-1},   dL/db_t = g_t,   dL/dh_0 = a_1 g_1

so ``LinearScan.backward`` is one reverse chunked scan over T - 1 steps,
with the multipliers a_{t+1} read as a view of a, and three products.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable


def chunk_length(time_steps: int) -> int:
    """L = ceil(sqrt(T)) for T >= 1: about as many chunks as steps per chunk, which balances
    the sequential work of the carry pass against that of the two passes within chunks."""
    return math.isqrt(time_steps - 1) + 1


def chunked_scan(a: Tensor, b: Tensor, initial: Tensor, *, reverse: bool = False, out: Tensor | None = None) -> Tensor:
    r"""The recurrence over dim 1, forwards or backwards, by the three-pass chunked scan.

    Forwards: h_t = a_t h_{t-1} + b_t from h_{-1} = ``initial``.
    Backwards (``reverse=True``): h_t = a_t h_{t+1} + b_t from h_T = ``initial``.

    Args:
        a, b: (B, T, ...) coefficients, any strides.
        initial: (B, ...), the state before the first step taken.
        out: where to write h, (B, T, ...); a new tensor if None.

    Returns:
        h, (B, T, ...).
    """
    time_steps = a.shape[1]
    if out is None:
        out = torch.empty(a.shape, dtype=a.dtype, device=a.device)
    length = chunk_length(time_steps)
    chunks = time_steps // length
    leftover = time_steps - chunks * length
    # Whole chunks cover the end of the sequence when scanning backwards, the
    # start when scanning forwards, so the leftover steps come last either way.
    covered = slice(leftover, time_steps) if reverse else slice(0, chunks * length)
    a_chunks = a[:, covered].unflatten(1, (chunks, length))  # (B, C, L, ...)
    b_chunks = b[:, covered].unflatten(1, (chunks, length))
    out_chunks = out[:, covered].unflatten(1, (chunks, length))
    first, *rest = range(length - 1, -1, -1) if reverse else range(length)

    # 1. reduce each chunk to (A_c, E_c)
    totals = torch.prod(a_chunks, dim=2)  # (B, C, ...)
    ends = b_chunks[:, :, first]  # (B, C, ...)
    for position in rest:
        # one fused op per step: on a shared machine every op may wait for a descheduled thread
        ends = torch.addcmul(b_chunks[:, :, position], a_chunks[:, :, position], ends)

    # 2. carry the state across chunk boundaries: starts[:, c] is the state entering chunk c
    starts = torch.empty_like(ends)
    order = range(chunks - 1, -1, -1) if reverse else range(chunks)
    previous = None
    for chunk in order:
        if previous is None:
            starts[:, chunk] = initial
        else:
            torch.addcmul(ends[:, previous], totals[:, previous], starts[:, previous], out=starts[:, chunk])
        previous = chunk

    # 3. scan within chunks from the true starting states
    torch.addcmul(b_chunks[:, :, first], a_chunks[:, :, first], starts, out=out_chunks[:, :, first])
    previous = first
    for position in rest:
        torch.addcmul(b_chunks[:, :, position], a_chunks[:, :, position], out_chunks[:, :, previous], out=out_chunks[:, :, position])
        previous = position

    if reverse:
        for t in range(leftover - 1, -1, -1):
            torch.addcmul(b[:, t], a[:, t], out[:, t + 1], out=out[:, t])
    else:
        for t in range(chunks * length, time_steps):
            torch.addcmul(b[:, t], a[:, t], out[:, t - 1], out=out[:, t])
    return out


class LinearScan(torch.autograd.Function):
    """h = linear_scan(a, b, h0) with the reverse scan as its hand-written backward pass.

    Autograd through the three passes would record and replay every slice
    operation; the reverse recurrence is the same amount of work as the
    forward one. Double backward is not supported.
    """

    @staticmethod
    def forward(ctx, a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
        h = chunked_scan(a, b, h0)  # (B, T, ...)
        ctx.save_for_backward(a, h, h0)
        return h

    @staticmethod
    @once_differentiable
    def backward(ctx, h_gradient: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        a, h, h0 = ctx.saved_tensors
        gradient = torch.empty(h.shape, dtype=h.dtype, device=h.device)  # (B, T, ...) g_t
        gradient[:, -1] = h_gradient[:, -1]
        if h.shape[1] > 1:
            # g_t = G_t + a_{t+1} g_{t+1} for t < T-1: the multipliers are a[:, 1:], a view
            chunked_scan(a[:, 1:], h_gradient[:, :-1], gradient[:, -1], reverse=True, out=gradient[:, :-1])
        a_gradient = None
        if ctx.needs_input_grad[0]:
            a_gradient = torch.empty_like(gradient)
            torch.mul(gradient[:, 1:], h[:, :-1], out=a_gradient[:, 1:])
            torch.mul(gradient[:, 0], h0, out=a_gradient[:, 0])
        h0_gradient = a[:, 0] * gradient[:, 0] if ctx.needs_input_grad[2] else None
        return a_gradient, gradient, h0_gradient


def linear_scan(a: Tensor, b: Tensor, h0: Tensor) -> Tensor:
    r"""All states of h_t = a_t * h_{t-1} + b_t, elementwise, by a parallel (chunked) scan.

    Args:
        a: (B, T, ...) multipliers, e.g. the forget gates.
        b: (B, T, ...) increments, same shape as ``a``.
        h0: (B, ...) the state before the first step.

    Returns:
        h: (B, T, ...), h[:, t] the state after step t. Differentiable in a, b and h0.
    """
    if a.shape != b.shape or a.dim() < 2:
        raise ValueError(f"a and b must have the same shape (B, T, ...), got {tuple(a.shape)} and {tuple(b.shape)}")
    if h0.shape != a.shape[:1] + a.shape[2:]:
        raise ValueError(f"h0 must have shape {tuple(a.shape[:1] + a.shape[2:])}, got {tuple(h0.shape)}")
    if a.shape[1] == 0:
        raise ValueError("the sequence must have at least one step")
    return LinearScan.apply(a, b, h0.to(a.dtype))
