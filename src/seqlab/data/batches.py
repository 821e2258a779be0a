"""Training batches from one long token stream, in two modes.

Both produce the *global* batch (B rows); under DDP each process takes its own
rows, so a 2-process run sees exactly the rows a 1-process run would.

- ``RandomWindows`` (as nanoGPT): B windows of T+1 tokens at uniformly random
  offsets; every window starts from a fresh state.
- ``StreamWindows`` (as char-rnn and PyTorch's word_language_model): the tokens
  are cut into B contiguous streams, read T at a time, left to right; the
  state after one window is carried into the next (truncated BPTT), and is
  reset when the streams wrap around at the end of an epoch.

The tokens may be a tensor, an array in memory or a ``numpy.memmap`` of a
prepared corpus: only the windows read are copied (to int64), so memory does
not grow with the corpus.
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

from ..errors import SeqlabError


@dataclass
class Batch:
    """A global batch: every tensor has the batch on dimension 0."""

    inputs: Tensor  # e.g. (B, T) int64
    targets: Tensor  # e.g. (B, T) int64, the inputs shifted left by one
    reset: bool = True  # start from a fresh state (False: carry the previous batch's state, truncated BPTT)
    lengths: Tensor | None = None  # (B,) real lengths of right-padded inputs
    condition: Tensor | None = None  # (B, C) what a conditioned model starts from
    mask: Tensor | None = None  # (B, T) bool, the positions the loss counts (synthetic tasks)

    def _map(self, function) -> "Batch":
        values = {item.name: getattr(self, item.name) for item in fields(self)}
        return Batch(**{name: function(value) if isinstance(value, Tensor) else value for name, value in values.items()})

    def rows(self, selection: slice) -> "Batch":
        """This process's share of the batch."""
        return self._map(lambda tensor: tensor[selection])

    def to(self, device: torch.device) -> "Batch":
        return self._map(lambda tensor: tensor.to(device))


Tokens = Tensor | np.ndarray  # (N,) token ids


def as_long(tokens: np.ndarray) -> Tensor:
    """Token ids read from an array (of any unsigned type) as an int64 tensor."""
    return torch.from_numpy(np.asarray(tokens, dtype=np.int64))


class RandomWindows:
    carries_state = False

    def __init__(self, tokens: Tokens, *, block_size: int, batch_size: int, seed: int) -> None:
        if len(tokens) < block_size + 1:
            raise SeqlabError(f"{len(tokens)} tokens are fewer than one window of {block_size} + 1")
        self.tokens = np.asarray(tokens) if isinstance(tokens, Tensor) else tokens
        self.block_size = block_size
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)
        self._offsets = np.arange(block_size + 1)

    def next_batch(self) -> Batch:
        starts = torch.randint(len(self.tokens) - self.block_size, (self.batch_size,), generator=self.generator)
        windows = as_long(self.tokens[starts.numpy()[:, None] + self._offsets])  # (B, T+1)
        return Batch(windows[:, :-1], windows[:, 1:], reset=True)

    def state_dict(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])


class StreamWindows:
    carries_state = True

    def __init__(self, tokens: Tokens, *, block_size: int, batch_size: int, seed: int = 0) -> None:
        tokens = np.asarray(tokens) if isinstance(tokens, Tensor) else tokens
        stream_length = (len(tokens) - 1) // batch_size
        self.windows_per_epoch = stream_length // block_size
        if self.windows_per_epoch < 1:
            raise SeqlabError(
                f"{len(tokens)} tokens cut into {batch_size} streams leave fewer than one window of {block_size} "
                "per stream; use a smaller --batch-size or --block-size, or --batching random")
        used = stream_length * batch_size
        self.inputs = tokens[:used].reshape(batch_size, stream_length)  # (B, L), a view
        self.targets = tokens[1:used + 1].reshape(batch_size, stream_length)  # (B, L), a view
        self.block_size = block_size
        self.position = 0  # windows read so far

    def next_batch(self) -> Batch:
        window = self.position % self.windows_per_epoch
        columns = slice(window * self.block_size, (window + 1) * self.block_size)
        self.position += 1
        return Batch(as_long(self.inputs[:, columns]), as_long(self.targets[:, columns]), reset=window == 0)

    def state_dict(self) -> dict[str, Tensor]:
        return {"position": torch.tensor(self.position)}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.position = int(state["position"])


def make_batches(mode: str, tokens: Tokens, *, block_size: int, batch_size: int, seed: int) -> RandomWindows | StreamWindows:
    kinds = {"random": RandomWindows, "stream": StreamWindows}
    return kinds[mode](tokens, block_size=block_size, batch_size=batch_size, seed=seed)


def evaluation_streams(tokens: Tokens, *, block_size: int, batch_size: int) -> tuple[Tokens, Tokens]:
    """Lay a validation split out as (B', L) inputs and targets covering all but < B' of its tokens
    (views of ``tokens``: nothing is read).

    B' = min(batch_size, tokens // block_size) so that short splits still form
    one or more full-width streams.
    """
    predictions = len(tokens) - 1
    streams = max(1, min(batch_size, predictions // block_size))
    length = predictions // streams
    used = length * streams
    return tokens[:used].reshape(streams, length), tokens[1:used + 1].reshape(streams, length)
