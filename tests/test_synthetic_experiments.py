"""The measuring pieces of the synthetic-task experiments, on known answers (the experiments themselves are slow)."""
from __future__ import annotations

import pytest
import torch

from seqlab.data.synthetic import build_source
from seqlab.experiments import EXPERIMENTS
from seqlab.experiments.common_synthetic import largest_prefix, sequence_correct, tcn_layers
from seqlab.registry import build_backbone
from seqlab.train.checkpoint import Checkpoint


def test_the_four_experiments_are_registered():
    assert {"long-range", "counting", "length-generalisation", "scratchpad"} <= set(EXPERIMENTS)


def test_largest_prefix():
    assert largest_prefix([1, 2, 3, 4, 5], [True, True, False, True, True]) == 2
    assert largest_prefix([1, 2, 3], [False, True, True]) == 0
    assert largest_prefix([1, 2, 3], [True, True, True]) == 3


@pytest.mark.parametrize("length", [2, 5, 9, 10, 120, 620])
def test_tcn_layers_is_the_fewest_blocks_that_cover_the_length(length):
    layers = tcn_layers(length)
    assert build_backbone("tcn", input_size=1, hidden_size=2, num_layers=layers).receptive_field >= length
    if layers > 1:
        assert build_backbone("tcn", input_size=1, hidden_size=2, num_layers=layers - 1).receptive_field < length


class Counter(torch.nn.Module):
    """A hand-built a^n b^n recogniser that counts exactly up to ``limit``, then forgets."""

    def __init__(self, symbols: str, limit: int) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.symbols, self.limit = symbols, limit

    def forward(self, inputs):
        a, b, end = (self.symbols.index(symbol) for symbol in "ab$")
        logits = torch.zeros(*inputs.shape, len(self.symbols))
        for row in range(len(inputs)):
            count, overflowed = 0, False
            for t, token in enumerate(inputs[row].tolist()):
                count += token == a
                count -= token == b
                overflowed |= count > self.limit
                if token == self.symbols.index("^"):
                    logits[row, t, a] = 1
                else:
                    remaining = 0 if overflowed else count
                    logits[row, t, b if remaining > 0 else end] = 1
        return logits, None


def test_sequence_correct_finds_where_a_counter_stops():
    source = build_source("builtin:anbn", {})
    strings = source.strings(list(range(1, 13)))
    checkpoint = Checkpoint(directory=None, config=None, model=Counter(source.input_symbols, limit=7), task=None)
    accepted = sequence_correct(checkpoint, strings, batch_size=5).tolist()
    assert accepted == [n <= 7 for n in range(1, 13)]
    assert largest_prefix(list(range(1, 13)), accepted) == 7
