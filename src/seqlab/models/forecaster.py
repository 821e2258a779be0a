"""The forecaster: a linear input projection -> any backbone -> a linear head onto future values."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..backbones.base import Backbone, State
from ..config import Config
from ..errors import OptionError
from ..registry import build_backbone

FORECAST_MODES = ("direct", "autoregressive")


class Forecaster(nn.Module):
    r"""Forecast the next H rows of a C-column (scaled) series from its past rows.

        e_t = W_e x_t + b_e                                   the ``embedding``, C -> E
        h_t, s_t = backbone(e_t, s_{t-1})
        direct:          x^_{T+1..T+H} = x_T + reshape(W_o h_T + b_o, (H, C))
        autoregressive:  x^_{t+1} = x_t + W_o h_t + b_o       (one step; H steps by feeding x^ back)

    The head predicts the change from the last observed row, so a zero head
    is the naive forecast and the network learns what to add to it.

    Args:
        columns: C, values per row.
        backbone: any registered backbone; its input size is the embedding width E.
        horizon: H, steps forecast.
        mode: ``"direct"`` (the head emits all H steps from the last output) or
            ``"autoregressive"`` (the head emits one step; ``forecast`` feeds
            each prediction back through ``backbone.step``, O(1) per step for
            recurrent backbones).

    Inputs/outputs of ``forward``: rows (B, T, C) -> predictions and the
    backbone's state; direct (B, H, C), the H rows after the input;
    autoregressive (B, T, C), the row after each input row (teacher forcing).
    """

    def __init__(self, columns: int, backbone: Backbone, *, horizon: int, mode: str = "direct") -> None:
        super().__init__()
        if mode not in FORECAST_MODES:
            raise OptionError(f"mode must be one of {', '.join(FORECAST_MODES)}, got {mode!r}")
        if columns < 1 or horizon < 1:
            raise OptionError("columns and horizon must be at least 1")
        self.columns = columns
        self.horizon = horizon
        self.mode = mode
        self.embedding = nn.Linear(columns, backbone.input_size)
        self.backbone = backbone
        steps = horizon if mode == "direct" else 1
        self.head = nn.Linear(backbone.output_size, steps * columns)

    def init_state(self, batch_size: int) -> State:
        return self.backbone.init_state(batch_size)

    def forward(self, rows: Tensor, state: State = None) -> tuple[Tensor, State]:
        hidden, state = self.backbone(self.embedding(rows), state)  # (B, T, D)
        if self.mode == "autoregressive":
            return rows + self.head(hidden), state  # (B, T, C)
        change = self.head(hidden[:, -1]).view(-1, self.horizon, self.columns)  # (B, H, C)
        return rows[:, -1:] + change, state  # (B, H, C)

    def step(self, row: Tensor, state: State) -> tuple[Tensor, State]:
        """Autoregressive mode: row (B, C) -> the next row (B, C) and the next state."""
        hidden, state = self.backbone.step(self.embedding(row), state)  # (B, D)
        return row + self.head(hidden), state

    def forecast(self, history: Tensor) -> Tensor:
        """history (B, T, C) -> the next H rows (B, H, C)."""
        predictions, state = self(history)
        if self.mode == "direct":
            return predictions
        row = predictions[:, -1]  # (B, C)
        rows = [row]
        for _ in range(self.horizon - 1):
            row, state = self.step(row, state)
            rows.append(row)
        return torch.stack(rows, dim=1)  # (B, H, C)


def build_forecaster(config: Config, columns: int) -> Forecaster:
    """Embedding -> backbone -> head from ``config.model`` and ``config.task``; a bad option is an OptionError."""
    model, task = config.model, config.task
    backbone = build_backbone(model.backbone, input_size=model.embedding_size or model.hidden_size,
                              hidden_size=model.hidden_size, num_layers=model.num_layers, dropout=model.dropout,
                              **model.options)
    return Forecaster(columns, backbone, horizon=task.horizon, mode=task.forecast_mode)
