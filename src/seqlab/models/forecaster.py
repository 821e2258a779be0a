"""The forecaster: per-window normalisation -> input projection -> any backbone -> heads onto future values."""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..backbones.base import Backbone, State
from ..config import Config
from ..registry import build_backbone

QUANTILES = (0.1, 0.5, 0.9)  # the median is the point forecast; 10% and 90% bound an 80% interval
MEDIAN = QUANTILES.index(0.5)
INTERVAL_LEVEL = 0.8  # QUANTILES[-1] - QUANTILES[0]: the share of values the interval should hold
MIN_SCALE = 1e-6  # a window flatter than this is scaled by it, not divided by zero


class ForecastOutputs(NamedTuple):
    """What one training forward gives, in the input's units."""

    quantiles: Tensor  # (B, H, C, Q) the direct head's quantile forecasts
    one_step: Tensor  # (B, H, C) the one-step head's teacher-forced forecasts of the same rows


class Forecaster(nn.Module):
    r"""Forecast the next H rows of a C-column series from its last T rows (and K calendar features per row).

    Each window is normalised by its own history's statistics (RevIN, Kim et
    al. 2022), so level and trend carry forward and the forecast of x + c is
    the forecast of x plus c (and of a x, a > 0, is a times it):

        mu = mean_{t<=T} x_t,  sigma = max(std_{t<=T} x_t, 1e-6)   per window and column
        z_t = (x_t - mu) / sigma
        e_t = W_e [z_t; k_t] + b_e                                 the ``embedding``, C + K -> E
        h_t, s_t = backbone(e_t, s_{t-1})
        direct:          z^_{T+h, q} = (y~_{T+h} - mu) / sigma + (W_d h_T + b_d)[h, q]   quantiles q in QUANTILES
        autoregressive:  z^_{t+1} = z_{t+1-m} + W_s h_t + b_s                         one step, fed back H times
        x^ = mu + sigma z^

    Both heads learn a correction to a classical forecast, their anchor, and
    with their zero initial weights the untrained network is that forecast.
    The direct head's anchor y~ comes with each window (the task's choice:
    seasonal-naive, naive or exponential smoothing, see
    ``seqlab.models.forecast_baselines``); the autoregressive head's is the
    value one season m back (the last value when m is 1). A season longer
    than T is reached through a longer input, the context of max(T, m) rows:
    the backbone and the statistics see its last T rows, the anchor all of it.

    Args:
        columns: C, values per row.
        backbone: any registered backbone; its input size is the embedding width E.
        horizon: H, steps forecast.
        history: T, rows the forecast starts from.
        season: m, the seasonal period (1: none).
        features: K, calendar features per row (appended to the C values).

    Inputs of ``forward`` (training): (B, S+H, C+K), the context of S =
    max(T, m) rows and the future rows (teacher forcing: position t sees rows
    up to t only, the backbone being causal), and the direct head's anchors
    (B, H, C). ``direct`` takes the context (B, S, C+K) and the anchors,
    ``recursive`` the context and the future rows' features (B, H, K).
    """

    def __init__(self, columns: int, backbone: Backbone, *, horizon: int, history: int, season: int = 1,
                 features: int = 0) -> None:
        super().__init__()
        if columns < 1 or horizon < 1 or history < 1 or season < 1 or features < 0:
            raise ValueError("columns, horizon, history and season must be at least 1, features at least 0")
        self.columns = columns
        self.horizon = horizon
        self.history = history
        self.lag = season
        self.context = max(history, season)
        self.embedding = nn.Linear(columns + features, backbone.input_size)
        self.backbone = backbone
        self.direct_head = nn.Linear(backbone.output_size, horizon * columns * len(QUANTILES))
        self.step_head = nn.Linear(backbone.output_size, columns)
        for head in (self.direct_head, self.step_head):  # start as the anchors: classical forecasts
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)

    def init_state(self, batch_size: int) -> State:
        return self.backbone.init_state(batch_size)

    def _statistics(self, values: Tensor) -> tuple[Tensor, Tensor]:
        history = values[:, self.context - self.history:self.context]  # (B, T, C)
        return history.mean(dim=1, keepdim=True), history.std(dim=1, unbiased=False, keepdim=True).clamp_min(MIN_SCALE)

    def _encode(self, normalised: Tensor, features: Tensor, state: State = None) -> tuple[Tensor, State]:
        return self.backbone(self.embedding(torch.cat([normalised, features], dim=-1)), state)  # (B, L, D)

    def _direct(self, hidden_last: Tensor, normalised_anchors: Tensor) -> Tensor:
        correction = self.direct_head(hidden_last).view(-1, self.horizon, self.columns, len(QUANTILES))
        return normalised_anchors.unsqueeze(-1) + correction  # (B, H, C, Q)

    def forward(self, inputs: Tensor, state: State = None, *, anchors: Tensor) -> tuple[ForecastOutputs, State]:
        values, features = inputs[..., :self.columns], inputs[..., self.columns:]  # (B, S+H, C), (B, S+H, K)
        location, scale = self._statistics(values)  # (B, 1, C) each
        normalised = (values - location) / scale  # (B, S+H, C)
        first = self.context - self.history  # the backbone reads from here: T history rows, H-1 fed-back rows
        hidden, state = self._encode(normalised[:, first:-1], features[:, first:-1], state)  # (B, T+H-1, D)
        quantiles = self._direct(hidden[:, self.history - 1], (anchors - location) / scale)  # (B, H, C, Q)
        seasonal = normalised[:, self.context - self.lag:normalised.shape[1] - self.lag]  # (B, H, C): z_{t+1-m}
        one_step = seasonal + self.step_head(hidden[:, self.history - 1:])  # (B, H, C)
        return ForecastOutputs(quantiles * scale.unsqueeze(-1) + location.unsqueeze(-1),
                               one_step * scale + location), state

    def direct(self, context: Tensor, anchors: Tensor) -> Tensor:
        """context (B, S, C+K), anchors (B, H, C) -> quantile forecasts (B, H, C, Q) of the next H rows, all at once."""
        values, features = context[..., :self.columns], context[..., self.columns:]
        location, scale = self._statistics(values)
        normalised = (values - location) / scale  # (B, S, C)
        hidden, _ = self._encode(normalised[:, -self.history:], features[:, -self.history:])  # (B, T, D)
        quantiles = self._direct(hidden[:, -1], (anchors - location) / scale)  # (B, H, C, Q)
        return quantiles * scale.unsqueeze(-1) + location.unsqueeze(-1)

    def recursive(self, context: Tensor, future_features: Tensor) -> Tensor:
        """context (B, S, C+K), future_features (B, H, K) -> the next H rows (B, H, C), one step at a time,
        each forecast fed back through ``backbone.step`` (O(1) per step for recurrent backbones)."""
        values, features = context[..., :self.columns], context[..., self.columns:]
        location, scale = self._statistics(values)
        rows = list(((values - location) / scale).unbind(dim=1))  # S rows of (B, C), the forecasts appended
        hidden, state = self._encode(torch.stack(rows[-self.history:], dim=1), features[:, -self.history:])
        output = hidden[:, -1]  # (B, D)
        for step in range(self.horizon):
            if step:
                output, state = self.backbone.step(
                    self.embedding(torch.cat([rows[-1], future_features[:, step - 1]], dim=-1)), state)
            rows.append(rows[len(rows) - self.lag] + self.step_head(output))
        return torch.stack(rows[-self.horizon:], dim=1) * scale + location  # (B, H, C)


def build_forecaster(config: Config, columns: int, *, season: int, features: int) -> Forecaster:
    """Embedding -> backbone -> heads from ``config.model``, ``config.task`` and ``config.data.block_size``;
    a bad option is an OptionError."""
    model = config.model
    backbone = build_backbone(model.backbone, input_size=model.embedding_size or model.hidden_size,
                              hidden_size=model.hidden_size, num_layers=model.num_layers, dropout=model.dropout,
                              **model.options)
    return Forecaster(columns, backbone, horizon=config.task.horizon, history=config.data.block_size,
                      season=season, features=features)
