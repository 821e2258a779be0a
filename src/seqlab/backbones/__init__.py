"""Backbones: every model is a recurrence with a state. Importing this package registers them all."""
from .base import Backbone, State, map_state, state_tensors
from .gru import GRU
from .lstm import LSTM
from .rnn import RNN

__all__ = ["Backbone", "State", "map_state", "state_tensors", "RNN", "LSTM", "GRU"]
