"""Forecasting: the next ``task.horizon`` rows of a numeric series from its last ``data.block_size`` rows.

The last ``data.val_fraction`` of the rows is held out. Every row of the
held-out part that has H rows after it is a forecast origin (rolling-origin
evaluation): the model sees the T rows before it, which may reach back into
the training part, and forecasts the H rows from it. Metrics are in original
units (see ``seqlab.data.timeseries.forecast_metrics``): ``mae`` (the
selection metric), ``rmse`` and ``mase``, and the same three for two
baselines computed on the same origins, always: ``naive_*`` (the last value
repeated) and ``seasonal_naive_*`` (the value one season earlier; the season
is ``task.season`` or guessed from the training rows, see ``guess_season``).
``val_loss`` is the MSE of the H-step forecasts on scaled values (for the
autoregressive mode that is the fed-back forecast, not the teacher-forced
training loss).

With ``task.init_from`` (a checkpoint directory: a forecaster trained on
another series, or even a language model) a fresh run takes that
checkpoint's architecture (``config.model``, keeping this run's dropout) and
starts its ``backbone`` from its weights, and its ``embedding`` too when that
fits (a forecaster over as many columns); the scaler is fitted afresh on this
series. ``task.freeze_backbone`` keeps ``backbone`` fixed.

Assets: ``scaler.json`` holds the column names, the per-column mean and std
fitted on the training rows only, and the season.

``seqlab predict CKPT --file FILE`` forecasts the H rows after the end of the
series in FILE (read like the training data), prints one line per step
(comma-separated columns; ``--json``: a list per step) and draws the last T
rows and the forecast in ``FILE.forecast.png`` beside FILE (for
``builtin:NAME``, ``builtin-NAME.forecast.png`` in the current directory).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..backbones.base import State
from ..config import Config
from ..data.batches import Batch
from ..data.timeseries import (BUILTIN_PREFIX, ForecastWindows, Scaler, TimeSeries, forecast_metrics, gather_windows,
                               guess_season, naive_forecasts, naive_scale, plot_forecast, read_series,
                               seasonal_naive_forecasts, split_point)
from ..errors import SeqlabError
from ..models.forecaster import FORECAST_MODES, Forecaster, build_forecaster
from . import register_task
from .base import BatchSource, InitialWeights, Task, start_model

SCALER_FILE = "scaler.json"
SPLITS = ("val", "train", "all")


class ForecastStep(list):
    """One forecast step's values: printed as comma-separated numbers, serialised to JSON as a list."""

    def __str__(self) -> str:
        return ",".join(format(value, ".6g") for value in self)


@register_task("forecast")
class ForecastTask(Task):
    """Many-to-many, unaligned in time: rows x_{t-T+1..t} -> x^_{t+1..t+H}, trained by MSE on scaled values.

    Metrics: ``val_loss``, ``mae``, ``rmse``, ``mase`` and ``naive_*``,
    ``seasonal_naive_*`` baselines; the lowest ``mae`` is kept in ``best/``.
    """

    asset_files = (SCALER_FILE,)
    metric_names = ("val_loss", "mae", "rmse", "mase", "naive_mae", "naive_rmse", "naive_mase",
                    "seasonal_naive_mae", "seasonal_naive_rmse", "seasonal_naive_mase")
    selection_metric = "mae"

    def __init__(self, config: Config, assets: dict[str, Any] | None = None) -> None:
        super().__init__(config, assets)
        task = config.task
        if task.forecast_mode not in FORECAST_MODES:
            raise SeqlabError(f"task.forecast_mode must be one of {', '.join(FORECAST_MODES)}, got {task.forecast_mode!r}")
        if task.horizon < 1:
            raise SeqlabError(f"task.horizon must be at least 1, got {task.horizon}")
        if task.season < 0:
            raise SeqlabError(f"task.season must be zero (guess it) or more, got {task.season}")
        saved = assets[SCALER_FILE] if assets else None
        self.scaler: Scaler | None = Scaler.from_dict(saved) if saved else None
        self.columns: list[str] | None = list(saved["columns"]) if saved else None
        self.season: int = int(saved["season"]) if saved else 0
        self.initial_weights: InitialWeights | None = None  # init_from's, for a fresh run
        self.series: TimeSeries | None = None
        self.cut = 0  # rows of the training part

    # --------------------------------------------------------------- data
    def _read(self, path: str | Path) -> TimeSeries:
        """A series laid out like the training data, checked against the columns the model was trained on."""
        task = self.config.task
        series = read_series(path, target_columns=task.target_columns, time_column=task.time_column, header=task.header)
        if self.columns is not None:
            if len(series.columns) != len(self.columns) or (series.named and series.columns != self.columns):
                raise SeqlabError(f"{path} has columns {', '.join(series.columns)}; the model was trained on "
                                  f"{', '.join(self.columns)}")
        return series

    def _parts(self, series: TimeSeries) -> int:
        """Check the series is long enough for this split and return the split point."""
        data, horizon = self.config.data, self.config.task.horizon
        cut = split_point(len(series), data.val_fraction)
        needed = data.block_size + horizon
        if cut < needed:
            raise SeqlabError(
                f"{series.source}: the training part has {cut} rows ({len(series)} rows, the last "
                f"{len(series) - cut} held out), fewer than one window of --block-size {data.block_size} + "
                f"--horizon {horizon} = {needed}; lower them or give a longer series")
        if data.val_fraction > 0 and len(series) - cut < horizon:
            raise SeqlabError(
                f"{series.source}: the held-out part has {len(series) - cut} rows, fewer than --horizon {horizon}; "
                "raise --val-fraction, lower --horizon, or use --val-fraction 0")
        return cut

    def load_data(self) -> None:
        series = self._read(self.config.data.path)
        self.cut = self._parts(series)
        train = series.values[:self.cut]
        if self.scaler is None:
            self.scaler = Scaler.fit(train)
            self.columns = list(series.columns)
            self.season = self.config.task.season or guess_season(train)
            if self.config.task.init_from:
                self.initial_weights = InitialWeights(self.config, ("embedding", "backbone"))
        if self.season >= self.cut:
            raise SeqlabError(f"--season {self.season} is not shorter than the training part ({self.cut} rows)")
        self.series = series

    @property
    def has_validation(self) -> bool:
        return self.series is not None and len(self.series) - self.cut >= self.config.task.horizon

    def assets(self) -> dict[str, Any]:
        return {SCALER_FILE: {"columns": self.columns, **self.scaler.to_dict(), "season": self.season}}

    def build_model(self) -> nn.Module:
        # a text model's embedding (token ids) does not fit a forecaster's input projection: kept fresh
        model = build_forecaster(self.config, len(self.columns))
        return start_model(model, self.config, self.initial_weights, optional=("embedding",))

    def _scaled(self, series: TimeSeries) -> Tensor:
        return torch.tensor(self.scaler.transform(series.values), dtype=torch.float32)  # (N, C)

    def batches(self) -> BatchSource:
        config = self.config
        return ForecastWindows(self._scaled(self.series)[:self.cut], block_size=config.data.block_size,
                               horizon=config.task.horizon, batch_size=config.train.batch_size, seed=config.train.seed,
                               autoregressive=config.task.forecast_mode == "autoregressive")

    def loss(self, model: nn.Module, batch: Batch, state: State) -> tuple[Tensor, State]:
        predictions, state = model(batch.inputs, state)  # (b, H, C) direct, (b, T+H-1, C) autoregressive
        return F.mse_loss(predictions, batch.targets, reduction="sum"), state

    # ---------------------------------------------------------- evaluation
    @torch.no_grad()
    def _forecast(self, model: Forecaster, scaled: Tensor, origins: np.ndarray, *, max_batches: int = 0) -> Tensor:
        """Scaled forecasts (W, H, C) from the T rows before each origin, in batches of ``train.batch_size``."""
        block_size, batch_size = self.config.data.block_size, self.config.train.batch_size
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        starts = torch.as_tensor(origins - block_size)
        forecasts = []
        for index, first in enumerate(range(0, len(starts), batch_size)):
            if max_batches and index >= max_batches:
                break
            history = gather_windows(scaled, starts[first:first + batch_size], block_size)  # (b, T, C)
            forecasts.append(model.forecast(history.to(device)).float().cpu())
        model.train(was_training)
        return torch.cat(forecasts)

    def _metrics(self, model: Forecaster, series: TimeSeries, origins: np.ndarray, *, scale_rows: int,
                 max_batches: int = 0) -> dict[str, float]:
        """Every metric over forecasts from ``origins``; MASE scaled by the first ``scale_rows`` rows."""
        horizon = self.config.task.horizon
        scaled = self._scaled(series)
        forecast_scaled = self._forecast(model, scaled, origins, max_batches=max_batches)  # (W, H, C)
        origins = origins[:len(forecast_scaled)]
        truth_scaled = gather_windows(scaled, torch.as_tensor(origins), horizon)  # (W, H, C)
        truth = series.values[origins[:, None] + np.arange(horizon)]  # (W, H, C)
        scale = naive_scale(series.values[:scale_rows])
        if not np.all(scale > 0):
            constant = [name for name, value in zip(series.columns, scale) if not value > 0]
            raise SeqlabError(f"{series.source}: column {', '.join(constant)} is constant over the training part, "
                              "so MASE (scaled by its naive forecast's error) is undefined")
        metrics = {"val_loss": float(F.mse_loss(forecast_scaled, truth_scaled)),
                   **forecast_metrics(truth, self.scaler.inverse(forecast_scaled.double().numpy()), scale)}
        baselines = {"naive": naive_forecasts(series.values, origins, horizon),
                     "seasonal_naive": seasonal_naive_forecasts(series.values, origins, horizon, self.season)}
        for name, forecast in baselines.items():
            metrics.update({f"{name}_{key}": value for key, value in forecast_metrics(truth, forecast, scale).items()})
        return metrics

    def evaluate(self, model: nn.Module, *, context: Any, max_batches: int = 0) -> dict[str, float]:
        """Every process forecasts the whole (small) held-out part, so all report the same numbers."""
        origins = np.arange(self.cut, len(self.series) - self.config.task.horizon + 1)
        return self._metrics(model, self.series, origins, scale_rows=self.cut, max_batches=max_batches)

    def evaluate_file(self, model: nn.Module, path: str | Path, *, split: str) -> dict[str, Any]:
        """``val``: origins in the held-out part, as in training (the whole file when training held none out);
        ``train``: forecasts that lie wholly in the training part; ``all``: every origin. MASE is scaled by
        the file's training part."""
        if split not in SPLITS:
            raise SeqlabError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        series = self._read(path)
        cut = self._parts(series)
        block_size, horizon = self.config.data.block_size, self.config.task.horizon
        if self.season >= cut:
            raise SeqlabError(f"{path}: the training part ({cut} rows) is not longer than the season {self.season}")
        first = cut if split == "val" and cut < len(series) else max(block_size, self.season)
        last = cut - horizon if split == "train" else len(series) - horizon
        origins = np.arange(first, last + 1)
        if len(origins) == 0:
            raise SeqlabError(f"the {split} split of {path} has no window of {block_size} rows followed by {horizon}")
        return {"split": split, "windows": len(origins), **self._metrics(model, series, origins, scale_rows=cut)}

    # ------------------------------------------------------------- predict
    def read_inputs(self, path: str | Path) -> list[Any]:
        return [self._read(path)]

    def predict(self, model: nn.Module, inputs: list[Any]) -> list[Any]:
        """The H rows after the end of each series (a TimeSeries or a path), one ForecastStep per row."""
        block_size = self.config.data.block_size
        steps: list[Any] = []
        for item in inputs:
            series = item if isinstance(item, TimeSeries) else self._read(item)
            if len(series) < block_size:
                raise SeqlabError(f"{series.source} has {len(series)} rows; the model needs the last {block_size}")
            origin = np.array([len(series)])
            forecast = self.scaler.inverse(self._forecast(model, self._scaled(series), origin)[0].double().numpy())
            plot_path = _plot_path(series.source)
            plot_forecast(plot_path, history=series.values[-block_size:], forecast=forecast, columns=series.columns,
                          title=f"{series.source}: {len(forecast)}-step forecast")
            print(f"forecast plot: {plot_path}", file=sys.stderr)
            steps.extend(ForecastStep(row.tolist()) for row in forecast)
        return steps


def _plot_path(source: str) -> Path:
    if source.startswith(BUILTIN_PREFIX):
        return Path(f"builtin-{source[len(BUILTIN_PREFIX):]}.forecast.png")
    return Path(f"{source}.forecast.png")
