"""The shared machinery of the gated and ungated recurrent backbones (RNN, LSTM, GRU).

A stacked recurrent backbone is a cell (one step of one layer) and a traversal
(the loop over time, then over layers). The traversal lives here; each backbone
file supplies its cell. Parameters use torch's names and layouts
(``weight_ih_l{k}``: (G*H, D_k), ``weight_hh_l{k}``: (G*H, H), ``bias_ih_l{k}``,
``bias_hh_l{k}``) so weights copy to and from ``nn.RNN``/``nn.LSTM``/``nn.GRU``, and
the state layout is torch's: (num_layers, B, H) per state tensor.

Where torch has a fused kernel for the cell (vanilla LSTM, GRU, tanh/ReLU RNN)
``forward`` runs it; ``step`` always runs our own cell, so the step-equals-forward
invariant checks our equations against torch's kernel.

Two more traversals step through time with ``step``: ``input_fed``, whose
step t also reads what the output before it gives (an attention decoder's
context: seq2seq's decoder trains through it), and the one ``recording``
asks for, which keeps every state (the Pascanu regulariser reads them).

Our own traversal hoists the input projection out of the time loop: one
(T*B, D) x (D, G*H) matrix product per layer, leaving only h_{t-1} W_hh^T and
the gate arithmetic inside the loop. The loop runs in ``RecurrentLayerFunction``,
an autograd function with a hand-written backward pass: autograd would record
a dozen small nodes per step, while the hand-written reverse loop does one
matrix product per step and computes every weight gradient with one large
product over all steps at the end. The gate arithmetic of each cell is a
``CellKernel``; the loops and the matrix products are shared by all cells. On
CPU in float32 the products run in oneDNN, like nn.LSTM's, which is what keeps
our own cells within reach of torch's fused kernel.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from ..errors import OptionError, did_you_mean
from .base import Backbone, State, check_lengths, lengths_mask

INITIAL_STATES = ("zeros", "random", "learned")
RANDOM_INITIAL_STATE_STD = 0.1  # the spread of a state drawn once and kept fixed



@dataclass
class Trajectory:
    """What a recorded forward saw: its inputs x (B, T, D), the states h_0..h_T (each a tuple of (L, B, H)
    tensors, in the autograd graph) and the lengths (None: all T)."""

    inputs: Tensor | None = None
    states: list[tuple[Tensor, ...]] = field(default_factory=list)
    lengths: Tensor | None = None


def check_initial_state(initial_state: str) -> None:
    if initial_state not in INITIAL_STATES:
        raise OptionError(f"initial_state must be one of {', '.join(INITIAL_STATES)}, got {initial_state!r}"
                          f"{did_you_mean(initial_state, INITIAL_STATES)}")


def register_initial_state(module: nn.Module, initial_state: str, shape: tuple[int, ...]) -> None:
    """Give ``module`` its ``initial_hidden``: a trained parameter ("learned"), a fixed buffer drawn once
    ("random"), or nothing ("zeros": the state is built fresh)."""
    if initial_state == "learned":
        module.initial_hidden = nn.Parameter(torch.zeros(shape))
    elif initial_state == "random":
        module.register_buffer("initial_hidden", torch.randn(shape) * RANDOM_INITIAL_STATE_STD)


class RecurrentBackbone(Backbone):
    """A stack of recurrent layers sharing one traversal.

    Subclasses set ``gates`` (how many H-row blocks W_ih has), ``state_names``
    (the per-layer state tensors, h first), and implement ``cell``. They may set
    ``fused_kernel`` to the torch op that computes the same cell.

    Args:
        input_size: D, features per position.
        hidden_size: H.
        num_layers: stacked layers; layer k > 0 reads layer k-1's h_t.
        dropout: dropout on the outputs of every layer but the last (training only).
        initial_state: ``"zeros"``; ``"random"`` (drawn once, saved with the model,
            never trained); ``"learned"`` (a parameter trained with the rest).
        init: ``"default"`` (torch's U(-1/sqrt(H), 1/sqrt(H))), ``"xavier"``
            (Glorot-uniform per gate block, zero biases) or ``"orthogonal"``
            (orthogonal recurrent blocks, Glorot input blocks, zero biases).
        recurrent_gain: W_hh is multiplied by this after ``init``; with ``"orthogonal"`` every
            singular value of each recurrent block is then the gain, so a gain above 1 gives the
            exploding start of Pascanu et al. 2013 and one below 1 a vanishing one.
        fused: use torch's fused kernel in ``forward`` when the cell has one; None (the default):
            whichever is faster where the input is, the fused kernel except for cells whose own
            traversal beats it on oneDNN CPU float32 (``own_cell_faster_on_cpu``: the GRU, 1.5-2x).
    """

    gates: int = 1
    state_names: tuple[str, ...] = ("h",)
    fused_kernel = None  # e.g. torch.gru; None: our own traversal only
    own_cell_faster_on_cpu = False  # measured in benchmarks/bench_recurrent.py
    init_schemes: tuple[str, ...] = ("default", "xavier", "orthogonal")

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        *,
        num_layers: int = 1,
        dropout: float = 0.0,
        initial_state: str = "zeros",
        init: str = "default",
        recurrent_gain: float = 1.0,
        fused: bool | None = None,
    ) -> None:
        super().__init__(input_size, hidden_size, num_layers=num_layers, dropout=dropout)
        check_initial_state(initial_state)
        if init not in self.init_schemes:
            raise OptionError(f"init must be one of {', '.join(self.init_schemes)}, got {init!r}{did_you_mean(init, self.init_schemes)}")
        if not (isinstance(recurrent_gain, (int, float)) and math.isfinite(recurrent_gain) and recurrent_gain > 0):
            raise OptionError(f"recurrent_gain must be a positive number, got {recurrent_gain!r}")
        self.initial_state = initial_state
        self.init = init
        self.recurrent_gain = float(recurrent_gain)
        self.fused = fused
        self.trajectory: Trajectory | None = None  # set only within ``recording``
        rows = self.gates * hidden_size
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(rows, layer_input)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(rows, hidden_size)))
            self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(rows)))
            self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(rows)))
        shape = (len(self.state_names), num_layers, 1, hidden_size)
        register_initial_state(self, initial_state, shape)
        self.reset_parameters()
        if self.recurrent_gain != 1.0:
            with torch.no_grad():
                for layer in range(num_layers):
                    self.layer_weights(layer)[1].mul_(self.recurrent_gain)

    # ----------------------------------------------------------------- weights
    def layer_weights(self, layer: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(W_ih, W_hh, b_ih, b_hh) of one layer, torch's order."""
        return (
            getattr(self, f"weight_ih_l{layer}"),
            getattr(self, f"weight_hh_l{layer}"),
            getattr(self, f"bias_ih_l{layer}"),
            getattr(self, f"bias_hh_l{layer}"),
        )

    def reset_parameters(self) -> None:
        hidden = self.hidden_size
        bound = 1.0 / math.sqrt(hidden)
        for layer in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer)
            with torch.no_grad():
                if self.init == "default":
                    for weight in (w_ih, w_hh, b_ih, b_hh):
                        weight.uniform_(-bound, bound)
                    continue
                b_ih.zero_()
                b_hh.zero_()
                for block in range(self.gates):
                    rows = slice(block * hidden, (block + 1) * hidden)
                    nn.init.xavier_uniform_(w_ih[rows])
                    self._init_recurrent_block(w_hh[rows])

    def _init_recurrent_block(self, block: Tensor) -> None:
        if self.init == "orthogonal":
            nn.init.orthogonal_(block)
        else:
            nn.init.xavier_uniform_(block)

    # ------------------------------------------------------------------- state
    def init_state(self, batch_size: int) -> State:
        device = self.weight_hh_l0.device
        dtype = self.weight_hh_l0.dtype
        if self.initial_state == "zeros":
            stacked = torch.zeros(len(self.state_names), self.num_layers, batch_size, self.hidden_size, device=device, dtype=dtype)
        else:
            stacked = self.initial_hidden.expand(-1, -1, batch_size, -1)
        return self._pack(tuple(stacked.unbind(0)))

    def _pack(self, tensors: tuple[Tensor, ...]) -> State:
        """Internal tuple -> public state: h alone, or a tuple such as (h, c)."""
        return tensors[0] if len(tensors) == 1 else tensors

    def _unpack(self, state: State) -> tuple[Tensor, ...]:
        tensors = (state,) if isinstance(state, Tensor) else tuple(state)
        if len(tensors) != len(self.state_names):
            raise ValueError(f"{type(self).__name__} state is ({', '.join(self.state_names)}), got {len(tensors)} tensors")
        return tensors

    # -------------------------------------------------------------------- cell
    def cell(self, gates_x: Tensor, state: tuple[Tensor, ...], layer: int) -> tuple[Tensor, ...]:
        """One step of one layer: gates_x = W_ih x_t + b_ih, (B, G*H); state tensors (B, H) -> new state, h first."""
        raise NotImplementedError

    # ---------------------------------------------------------------- traversal
    def forward(self, x: Tensor, state: State = None, lengths: Tensor | None = None) -> tuple[Tensor, State]:
        """x (B, T, D) -> y (B, T, H) = the last layer's h_t, and the final state."""
        batch, time_steps, _ = x.shape
        hidden = self._unpack(self.init_state(batch) if state is None else state)
        if lengths is not None:
            lengths = check_lengths(lengths, batch, time_steps)
            if bool((lengths == time_steps).all()):
                lengths = None
        fused = self.fused if self.fused is not None else not (self.own_cell_faster_on_cpu and uses_onednn(x))
        if self.trajectory is not None:
            y, final = self._forward_stepped(x, hidden, lengths)
        elif fused and self.fused_kernel is not None:
            y, final = self._forward_fused(x, hidden, lengths)
        else:
            y, final = self._forward_cells(x, hidden, lengths)
        return y, self._pack(final)

    def step(self, x_t: Tensor, state: State) -> tuple[Tensor, State]:
        """x_t (B, D) -> y_t (B, H), the new state; our own cell, whatever ``fused`` says."""
        hidden = self._unpack(state)
        layer_input = x_t
        new_layers = []
        for layer in range(self.num_layers):
            w_ih, _, b_ih, _ = self.layer_weights(layer)
            new = self.cell(F.linear(layer_input, w_ih, b_ih), tuple(tensor[layer] for tensor in hidden), layer)
            new_layers.append(new)
            layer_input = self._between_layers(new[0], layer)
        final = tuple(torch.stack([new[index] for new in new_layers]) for index in range(len(self.state_names)))
        return layer_input, self._pack(final)

    def input_fed(self, x: Tensor, state: State, feed: Callable[[Tensor], tuple[Tensor, ...]],
                  first: tuple[Tensor, ...]) -> tuple[Tensor, list[tuple[Tensor, ...]], State]:
        r"""The input-feeding traversal (Luong et al. 2015): step t reads [x_t; f_t], where f_t comes from the
        step before, so the steps run one at a time (``step``).

        (f_0, *r_0) = ``first``; (f_t, *r_t) = ``feed(y_{t-1})`` for t >= 1, e.g. an attention context computed
        from the last output, with r_t whatever else ``feed`` reports (attention weights).
        x (B, T, D) -> y (B, T, H), the T tuples (f_t, *r_t) the steps read, the final state.
        """
        fed, outputs = [first], []
        for t in range(x.shape[1]):
            if t:
                fed.append(feed(outputs[-1]))
            y, state = self.step(torch.cat([x[:, t], fed[-1][0]], dim=-1), state)
            outputs.append(y)
        return torch.stack(outputs, dim=1), fed, state

    @contextmanager
    def recording(self) -> Iterator[Trajectory]:
        """Within ``with backbone.recording() as trajectory:``, ``forward`` steps through time with ``step`` and
        keeps every state h_0..h_T in ``trajectory``, in the graph, so autograd can give dL/dh_t for every t
        (Pascanu et al.'s regulariser needs them; the fused and own traversals keep only what their backward uses)."""
        self.trajectory = Trajectory()
        try:
            yield self.trajectory
        finally:
            self.trajectory = None

    def _forward_stepped(self, x: Tensor, hidden: tuple[Tensor, ...],
                         lengths: Tensor | None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The traversal ``recording`` asks for: ``step`` at every position, each state recorded. With lengths a
        row's state stops changing after its last real position and its padded outputs are zero, as in the
        other traversals."""
        batch, time_steps, _ = x.shape
        self.trajectory.inputs, self.trajectory.lengths, self.trajectory.states = x, lengths, [hidden]
        outputs = []
        for t in range(time_steps):
            _, new_state = self.step(x[:, t], self._pack(hidden))
            new = self._unpack(new_state)
            if lengths is not None:
                keep = (t < lengths.to(x.device)).view(1, batch, 1)  # (1, B, 1)
                new = tuple(torch.where(keep, fresh, old) for fresh, old in zip(new, hidden))
            # the output is read from the recorded state, so dL/dh_t includes the output's path
            y = new[0][-1]  # (B, H), the last layer's h_t
            outputs.append(y if lengths is None else y * keep[0])
            self.trajectory.states.append(new)
            hidden = new
        return torch.stack(outputs, dim=1), hidden

    def _between_layers(self, h: Tensor, layer: int) -> Tensor:
        if layer < self.num_layers - 1 and self.dropout > 0:
            return F.dropout(h, self.dropout, self.training)
        return h

    def cell_kernel(self, layer: int) -> tuple[CellKernel, tuple[Tensor, ...]]:
        """A fresh kernel for our own traversal of ``layer``, and the parameters it reads besides the four weights."""
        raise NotImplementedError

    # Under torch.compile both traversals run as they are, between compiled parts: tracing one would unroll
    # its T steps into a graph that takes minutes to compile (a 256-step LSTM did not finish on an H200),
    # and the fused kernel is already one kernel.
    @torch.compiler.disable
    def _forward_cells(self, x: Tensor, hidden: tuple[Tensor, ...], lengths: Tensor | None) -> tuple[Tensor, tuple[Tensor, ...]]:
        layer_input = x.transpose(0, 1)  # (T, B, D): each step's rows are contiguous
        if lengths is not None:
            lengths = lengths.to(x.device)
        finals = []
        for layer in range(self.num_layers):
            kernel, parameters = self.cell_kernel(layer)
            w_ih, w_hh, b_ih, b_hh = self.layer_weights(layer)
            layer_output, *final = RecurrentLayerFunction.apply(
                kernel, lengths, layer_input, w_ih, b_ih, w_hh, b_hh, *(tensor[layer] for tensor in hidden), *parameters
            )
            finals.append(final)
            layer_input = self._between_layers(layer_output, layer)
        final_state = tuple(torch.stack([final[index] for final in finals]) for index in range(len(self.state_names)))
        return layer_input.transpose(0, 1), final_state  # y (B, T, H)

    def _flat_weights(self) -> list[Tensor]:
        return [weight for layer in range(self.num_layers) for weight in self.layer_weights(layer)]

    @torch.compiler.disable
    def _forward_fused(self, x: Tensor, hidden: tuple[Tensor, ...], lengths: Tensor | None) -> tuple[Tensor, tuple[Tensor, ...]]:
        if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
            # CPU autocast sends the fused LSTM to oneDNN in bfloat16, which cannot build that kernel on CPUs
            # without AVX-512 bfloat16 ("could not create a primitive descriptor"): the kernel runs in float32
            dtype = self._flat_weights()[0].dtype
            with torch.autocast("cpu", enabled=False):
                return self._forward_fused(x.to(dtype), tuple(tensor.to(dtype) for tensor in hidden), lengths)
        hx = [tensor.contiguous() for tensor in hidden]
        hx_arg = hx if len(hx) > 1 else hx[0]
        dropout = self.dropout if self.num_layers > 1 else 0.0
        if lengths is None:
            y, *final = self.fused_kernel(x, hx_arg, self._flat_weights(), True, self.num_layers, dropout, self.training, False, True)
            return y, tuple(final)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        sorted_hx = [tensor.index_select(1, packed.sorted_indices) for tensor in hx]
        data, *final = self.fused_kernel(
            packed.data, packed.batch_sizes, sorted_hx if len(sorted_hx) > 1 else sorted_hx[0],
            self._flat_weights(), True, self.num_layers, dropout, self.training, False,
        )
        output = packed._replace(data=data)
        y, _ = pad_packed_sequence(output, batch_first=True, total_length=x.shape[1])
        return y, tuple(tensor.index_select(1, packed.unsorted_indices) for tensor in final)

    def extra_repr(self) -> str:
        return (f"{super().extra_repr()}, initial_state={self.initial_state!r}, init={self.init!r}, "
                f"recurrent_gain={self.recurrent_gain}, fused={self.fused}")


def _onednn_op(name: str):
    """One of torch's oneDNN ops, or None where this build lacks it."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        return getattr(torch.ops.mkldnn, name)
    except (AttributeError, RuntimeError):
        return None


ONEDNN_LINEAR = _onednn_op("_linear_pointwise")
ONEDNN_PACK = _onednn_op("_reorder_linear_weight")


def uses_onednn(tensor: Tensor) -> bool:
    """Whether products with ``tensor`` run in oneDNN: on CPU in float32, where available.

    oneDNN is what nn.LSTM runs on; its kernels use the widest vector
    instructions of any x86 CPU, while the BLAS behind torch.mm may take a
    generic path several times slower (MKL does on AMD CPUs).
    """
    return ONEDNN_LINEAR is not None and ONEDNN_PACK is not None and tensor.dtype == torch.float32 and tensor.device.type == "cpu"


def pack_weight(weight: Tensor, rows: int) -> Tensor:
    """``weight`` (M, K) laid out for many products x W^T with x of ``rows`` rows: oneDNN's
    blocked layout, reordered once instead of at every product; elsewhere ``weight`` itself."""
    return ONEDNN_PACK(weight, rows) if uses_onednn(weight) else weight


def linear(x: Tensor, weight: Tensor, *, bias: Tensor | None = None, add: Tensor | None = None) -> Tensor:
    """x W^T + bias, or x W^T + add: (N, K), (M, K) -> (N, M); never both bias and add.

    ``weight`` is a plain tensor or one from ``pack_weight``.
    """
    if uses_onednn(x):
        if add is None:
            return ONEDNN_LINEAR(x, weight, bias, "none", [], "")
        return ONEDNN_LINEAR.binary(x, add, weight, None, "add")
    if add is None:
        return F.linear(x, weight, bias)
    return torch.addmm(add, x, weight.t())


# A 0-dim tensor rather than a Python number: per-step ops skip wrapping the number into a tensor.
ONE = torch.tensor(1.0)


def tanh_into(value: Tensor, out: Tensor) -> Tensor:
    """tanh(value) into ``out``; on CPU as 2 sigmoid(2 value) - 1, four cheap passes that
    together cost a fraction of torch's CPU tanh (accurate to a few units of the last place of 1)."""
    if value.device.type != "cpu":
        return torch.tanh(value, out=out)
    torch.add(value, value, out=out)
    out.sigmoid_()
    return out.add_(out).sub_(ONE)


def one_minus_square(value: Tensor, out: Tensor | None = None) -> Tensor:
    """1 - value^2 in one pass: tanh's slope from tanh's value."""
    return torch.addcmul(ONE.to(value), value, value, value=-1.0, out=out)


class CellKernel:
    """The gate arithmetic of one recurrent layer over a whole sequence, forward and backward.

    ``RecurrentLayerFunction`` owns the loops and the matrix products: it
    computes gates_x = x W_ih^T + bias for all steps at once, then at each step
    r_t = h_{t-1} W_hh^T + (gates_x_t, or b_hh), (B, G*H), and hands r_t to
    ``forward_step``, which turns it into h_t (and any other state, kept by the
    kernel). In reverse, ``backward_step`` turns dL/dh_t into dL/dr_t, and the
    function adds dL/dr_t W_hh to dL/dh_{t-1}.

    A kernel instance serves one forward/backward pair and keeps the buffers
    its backward pass needs.
    """

    extra_states: int = 0  # state tensors besides h, e.g. the LSTM's c
    # True: r_t = gates_x_t + h_{t-1} W_hh^T with both biases in gates_x (RNN, LSTM).
    # False: r_t = b_hh + h_{t-1} W_hh^T and the kernel combines it with gates_x (the GRU's reset gate sits between).
    adds_input_to_recurrent: bool = True

    def begin(self, gates_x: Tensor, extras: tuple[Tensor, ...], parameters: tuple[Tensor, ...]) -> None:
        """Keep the inputs and allocate the per-sequence buffers: gates_x (T, B, G*H), extras (B, H).

        gates_x is the kernel's to overwrite: step t's part once ``forward_step(t)`` has begun.
        """

    def forward_step(self, t: int, recurrent: Tensor, h_previous: Tensor, h: Tensor) -> None:
        """Write h_t into ``h`` (B, H) from r_t, ``recurrent`` (B, G*H), which the kernel may keep or overwrite."""
        raise NotImplementedError

    def final_extras(self, lengths: Tensor | None) -> tuple[Tensor, ...]:
        """The extra states after the last step, (B, H) each; with lengths, after each sequence's own last step."""
        return ()

    def begin_backward(self, h0: Tensor, y: Tensor, recurrent_gradient: Tensor) -> None:
        """Vectorised over all steps, given h_0 (B, H) and h_1..h_T (T, B, H): the factors the reverse loop multiplies by.

        ``recurrent_gradient`` (T, B, G*H) is where ``backward_step`` writes dL/dr_t.
        """
        raise NotImplementedError

    def backward_step(self, t: int, h_gradient: Tensor, extra_gradients: list[Tensor]) -> bool:
        """dL/dh_t in ``h_gradient`` and dL/d(extras_t) in ``extra_gradients`` -> dL/dr_t into step t of ``recurrent_gradient``.

        Updates ``extra_gradients`` in place to dL/d(extras_{t-1}). Returns True if it
        also left in ``h_gradient`` the gradient that reaches h_{t-1} other than
        through r_t (the GRU's z * h_{t-1}); False if nothing does.
        """
        raise NotImplementedError

    def input_gradients(self, recurrent_gradient: Tensor) -> tuple[Tensor, tuple[Tensor, ...]]:
        """dL/d(gates_x) (T, B, G*H) and dL/d(parameters), from dL/dr for all steps."""
        return recurrent_gradient, ()


class RecurrentLayerFunction(torch.autograd.Function):
    """One recurrent layer over a whole sequence, with a hand-written backward pass.

    Inputs: kernel, lengths (B,) or None, x (T, B, D), W_ih (G*H, D), b_ih,
    W_hh (G*H, H), b_hh, h0 (B, H), the kernel's extra initial states (B, H),
    then the kernel's parameters. Outputs: y (T, B, H), h_final, then the extra
    final states.

    Forward: the input projection for all steps in one product, then per step
    one product h_{t-1} W_hh^T and the kernel's elementwise work into
    preallocated buffers. Backward: per step one product dL/dr_t W_hh and the
    kernel's elementwise work; then dL/dx and each weight gradient as one
    product over all steps, e.g. dL/dW_hh = sum_t dL/dr_t^T h_{t-1}.

    With lengths every sequence still runs all T steps, which keeps each step
    one dense product; afterwards the outputs past each length are zeroed
    (their gradients ignored) and the final state is read at each sequence's
    last real step, where its gradient enters the reverse loop. Nothing past a
    length reaches a real position, so values and gradients are exact.
    Double backward is not supported.
    """

    @staticmethod
    def forward(ctx, kernel: CellKernel, lengths: Tensor | None, x: Tensor, weight_ih: Tensor, bias_ih: Tensor,
                weight_hh: Tensor, bias_hh: Tensor, h0: Tensor, *rest: Tensor):
        time_steps, batch, _ = x.shape
        x_rows = x.reshape(time_steps * batch, -1)  # (T*B, D)
        folded = kernel.adds_input_to_recurrent
        gates_x = linear(x_rows, weight_ih, bias=bias_ih + bias_hh if folded else bias_ih)
        gates_x = gates_x.view(time_steps, batch, -1)  # (T, B, G*H)
        kernel.begin(gates_x, rest[: kernel.extra_states], rest[kernel.extra_states:])
        y = x.new_empty(time_steps, batch, weight_hh.shape[1])
        recurrent_weight = pack_weight(weight_hh, batch)
        recurrent_bias = None if folded else bias_hh
        inputs = gates_x.unbind(0) if folded else [None] * time_steps
        h_previous = h0
        for t, h in enumerate(y.unbind(0)):
            recurrent = linear(h_previous, recurrent_weight, bias=recurrent_bias, add=inputs[t])
            kernel.forward_step(t, recurrent, h_previous, h)
            h_previous = h
        if lengths is None:
            h_final = y[-1].clone()
        else:
            h_final = y[lengths - 1, torch.arange(batch, device=y.device)]
            padding = ~lengths_mask(lengths, time_steps).t().unsqueeze(-1)  # (T, B, 1)
            y.masked_fill_(padding, 0.0)
            ctx.padding = padding
        ctx.save_for_backward(x_rows, weight_ih, weight_hh, h0, y)
        ctx.kernel = kernel
        ctx.lengths = lengths
        return (y, h_final, *kernel.final_extras(lengths))

    @staticmethod
    def backward(ctx, y_gradient: Tensor, h_final_gradient: Tensor, *extra_final_gradients: Tensor):
        x_rows, weight_ih, weight_hh, h0, y = ctx.saved_tensors
        kernel: CellKernel = ctx.kernel
        lengths: Tensor | None = ctx.lengths
        time_steps, batch, hidden = y.shape
        rows = time_steps * batch
        recurrent_gradient = y.new_empty(time_steps, batch, weight_hh.shape[0])  # (T, B, G*H)
        kernel.begin_backward(h0, y, recurrent_gradient)
        if lengths is None:
            endings = {}
            h_gradient = y_gradient[-1] + h_final_gradient  # (B, H), dL/dh_t carried backwards
            extra_gradients = [gradient.clone() for gradient in extra_final_gradients]
        else:
            # a sequence's final-state gradient enters at its own last step
            last = lengths - 1
            endings = {int(t): (last == t).unsqueeze(-1).to(y.dtype) for t in torch.unique(last)}
            y_gradient = y_gradient.masked_fill(ctx.padding, 0.0)
            h_gradient = y_gradient[-1].clone()
            extra_gradients = [torch.zeros_like(gradient) for gradient in extra_final_gradients]
        recurrent_gradient_steps = recurrent_gradient.unbind(0)
        output_gradients = y_gradient.unbind(0)
        transposed_weight = pack_weight(weight_hh.t().contiguous(), batch)  # dL/dr W_hh as a product with (W_hh^T)^T
        for t in range(time_steps - 1, -1, -1):
            if t in endings:
                h_gradient.addcmul_(h_final_gradient, endings[t])
                for carried, final in zip(extra_gradients, extra_final_gradients):
                    carried.addcmul_(final, endings[t])
            keeps_direct = kernel.backward_step(t, h_gradient, extra_gradients)
            # dL/dh_{t-1}: the output's gradient at t-1, what reaches h_{t-1} directly, and what flows back through r_t
            if t == 0:
                add = h_gradient if keeps_direct else None
            else:
                add = h_gradient.add_(output_gradients[t - 1]) if keeps_direct else output_gradients[t - 1]
            h_gradient = linear(recurrent_gradient_steps[t], transposed_weight, add=add)

        # Each weight gradient is one product over all T*B rows, dW = dR^T X, computed as (X^T dR)^T:
        # oneDNN then reads dR (T*B, G*H) in place and only the narrower X is transposed. X^T stacks
        # x_t over h_{t-1}, so when both weights see the same dR one product gives both gradients.
        input_size = x_rows.shape[1]
        recurrent_rows = recurrent_gradient.view(rows, -1)  # (T*B, G*H)
        columns = y.new_empty(input_size + hidden, rows)  # (D + H, T*B)
        columns[:input_size].copy_(x_rows.t())
        columns[input_size:, :batch].copy_(h0.t())
        columns[input_size:, batch:].copy_(y[:-1].reshape(-1, hidden).t())
        gates_x_gradient, parameter_gradients = kernel.input_gradients(recurrent_gradient)
        gates_x_rows = gates_x_gradient.view(rows, -1)
        if gates_x_gradient is recurrent_gradient:
            both = linear(columns, recurrent_rows.t())  # (D + H, G*H)
            weight_ih_gradient, weight_hh_gradient = both[:input_size].t().contiguous(), both[input_size:].t().contiguous()
        else:
            weight_ih_gradient = linear(columns[:input_size], gates_x_rows.t()).t().contiguous()
            weight_hh_gradient = linear(columns[input_size:], recurrent_rows.t()).t().contiguous()
        bias_ih_gradient = gates_x_rows.sum(0)
        bias_hh_gradient = bias_ih_gradient.clone() if kernel.adds_input_to_recurrent else recurrent_rows.sum(0)
        x_gradient = None
        if ctx.needs_input_grad[2]:
            x_gradient = linear(gates_x_rows, weight_ih.t().contiguous()).view(time_steps, batch, -1)
        return (None, None, x_gradient, weight_ih_gradient, bias_ih_gradient, weight_hh_gradient, bias_hh_gradient,
                h_gradient, *extra_gradients, *parameter_gradients)
