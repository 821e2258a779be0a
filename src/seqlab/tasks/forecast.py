"""Forecasting: the next ``task.horizon`` rows of a numeric series from its last ``data.block_size`` rows.

The series is cut in three, in time order:
- the training part, which the network learns from (random windows of T + H rows);
- the validation part, the last ``task.validation_rows`` rows before the
  held-out part (default: the larger of 2H and a tenth of what precedes it):
  the forecasts from its origins choose the method (``task.forecast_mode`` auto: the anchor alone,
  unless the direct head, the autoregressive head or the mean of a head and
  the anchor is better there by more than one standard error, widened by
  Student's t for few independent origins; see
  ``seqlab.data.timeseries.clearly_best``) and the checkpoint kept in
  ``best/``; the network does not learn from it;
- the held-out part, the last ``data.val_fraction`` of the rows: ``seqlab eval``
  scores it, and nothing is chosen on it.
The anchor, the classical forecast the network corrects, is chosen before
training on the classical forecasts from the origins of the later half of the
training and validation parts (``task.anchor`` auto: the one of naive,
seasonal-naive and ETS with the lowest MASE there). Where the anchor is ETS,
the anchor alone (the method chosen where the network's corrections do not
help) forecasts after training by ETS refitted on every row before the
held-out part, as ``eval``'s ETS baseline is; the network and the validation
choices use the fits on the training rows alone.
Every row of a part that has H rows after it is a forecast origin
(rolling-origin evaluation): the model sees the T rows before it, which may
reach back into earlier parts, and forecasts the H rows from it.

Metrics are in original units (see ``seqlab.data.timeseries.forecast_metrics``):
``mae``, ``rmse``, ``mase`` of the chosen method, ``coverage`` and ``msis`` (``interval_score``) of its 80%
interval (the direct head's 10% and 90% quantiles around the forecast,
widened per column by the margin that makes it hold 80% of the validation
values: conformalised quantile regression, its origins the exchangeable units, see ``conformal_margin``),
``direct_mase`` and ``autoregressive_mase`` of the two heads, and the same
three metrics for each classical baseline on the same origins and horizon
(see ``seqlab.models.forecast_baselines``): ``naive_*``, ``seasonal_naive_*``
(the season is ``task.season`` or guessed from the training rows, see
``guess_season``) and ``ets_*`` (statsmodels' ETS, fitted on the rows before
the part scored). ``eval`` adds per-column metrics and a one-line verdict
naming the best baseline when the forecast is worse than it. ``val_loss`` is
the training loss on the validation windows.

Missing values are interpolated (and counted) or refused (``task.missing``);
a constant column is refused.

With ``task.init_from`` (a checkpoint directory: a forecaster trained on
another series, or even a language model) a fresh run takes that
checkpoint's architecture (``config.model``, keeping this run's dropout) and
starts its ``backbone`` from its weights, and its ``embedding`` too when that
fits; the scaler is fitted afresh on this series. ``task.freeze_backbone``
keeps ``backbone`` fixed.

Assets: ``scaler.json`` holds the column names, the per-column mean and std
fitted on the training rows only, the season, the anchor, the ETS fits
(statsmodels' form and parameters, fitted on the training rows; and
``anchor_ets``, on every row before the held-out part, where the anchor is
ETS) and the chosen method.

``seqlab predict CKPT --file FILE`` forecasts the H rows after the end of the
series in FILE (read like the training data; without ``--file``, the series it was trained on); the CLI prints them as a CSV
(``prediction_header``), each row after its time: the time column's next values
where they can be told (``future_times``), else the step's number. It also draws
``FILE.forecast.png`` (see ``ForecastTask.draw``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..backbones.base import State
from ..config import Config
from ..data.batches import Batch
from ..data.timeseries import (BUILTIN_PREFIX, ForecastWindows, Scaler, TimeSeries, calendar_features, clearly_best,
                               column_metrics, conformal_margin, first_few, forecast_metrics, future_times, gather_windows,
                               guess_season, history_length, interval_coverage, interval_score, naive_scale,
                               plot_forecast, read_series, split_point)
from ..errors import SeqlabError
from ..models.forecast_baselines import BASELINES, EtsFit, baseline_forecast, baseline_forecasts, fit_ets_columns
from ..models.forecaster import INTERVAL_LEVEL, MEDIAN, QUANTILES, ForecastOutputs, Forecaster, build_forecaster
from . import register_task
from .base import BatchSource, InitialWeights, Task, start_model

SCALER_FILE = "scaler.json"
SPLITS = ("val", "train", "all")
HEADS = ("direct", "autoregressive")
BLEND = "+anchor"  # a head's forecast averaged with the anchor's: "direct+anchor"
METHODS = (*HEADS, "anchor", *(head + BLEND for head in HEADS))  # what forecast_mode auto chooses between
SCORES = ("mae", "rmse", "mase")
ANCHOR_PREFERENCE = ("seasonal_naive", "naive", "ets")  # the anchor auto chooses between, the first of equal MASEs
ANCHOR_ORIGINS = 20_000  # at most this many origins judge the anchor: 20,000 x H x C values per baseline


class ForecastStep(list):
    """One forecast step's values: printed as a CSV row after its time (``time``: the time column's next value, or
    the step's number where it cannot be told; ``time_name``: that column's name, or "step"), serialised to JSON as
    the list of values."""

    def __init__(self, values: list[float], time: str, time_name: str) -> None:
        super().__init__(values)
        self.time, self.time_name = time, time_name

    def __str__(self) -> str:
        return ",".join([self.time, *(format(value, ".6g") for value in self)])


@dataclass
class Forecasts:
    """Every method's forecasts (W, H, C) in original units from W origins, and the offsets of an 80% interval
    (the direct head's 10% and 90% quantiles less its median) to put around whichever is chosen, widened by a
    margin per column."""

    by_method: dict[str, np.ndarray]
    lower_offset: np.ndarray  # (W, H, C), at most zero
    upper_offset: np.ndarray  # (W, H, C), at least zero
    margin: np.ndarray  # (C,)

    def interval(self, method: str) -> tuple[np.ndarray, np.ndarray]:
        """[lower, upper] (W, H, C) each, around ``method``'s forecasts; a negative margin narrows it down to the
        forecast itself, never past it."""
        point = self.by_method[method]
        return (np.minimum(point + self.lower_offset - self.margin, point),
                np.maximum(point + self.upper_offset + self.margin, point))


def quantile_loss(quantiles: Tensor, targets: Tensor) -> Tensor:
    r"""Pinball loss mean_q max(q (y - y^_q), (q - 1)(y - y^_q)) of (B, H, C, Q) forecasts, summed over the (B, H, C)
    targets; at q = 0.5 it is half the absolute error."""
    levels = torch.tensor(QUANTILES, dtype=quantiles.dtype, device=quantiles.device)
    error = targets.unsqueeze(-1) - quantiles  # (B, H, C, Q)
    return torch.maximum(levels * error, (levels - 1) * error).mean(dim=-1).sum()


@register_task("forecast")
class ForecastTask(Task):
    """Many-to-many, unaligned in time: rows x_{t-T+1..t} -> x^_{t+1..t+H}, by a direct head (pinball loss on
    three quantiles) and a one-step head (absolute error, teacher forcing) trained together on one forward.

    Metrics: see the module docstring; the lowest validation ``mase`` is kept in ``best/``.
    """

    asset_files = (SCALER_FILE,)
    chooses_block_size = True
    # sized for real series of tens to thousands of rows: a small network, validated often, stopped early when the
    # validation forecasts stop improving (best/ is the result)
    defaults = {
        "data": {"block_size": 0},  # chosen from the series: ``history_length``
        "model": {"hidden_size": 64},
        "train": {"max_steps": 1500, "eval_interval": 50, "patience": 8},
    }
    goes_on_from_its_data = True
    metric_names = ("val_loss", *SCORES, "coverage", "msis", "direct_mase", "autoregressive_mase",
                    *(f"{baseline}_{score}" for baseline in BASELINES for score in SCORES))
    selection_metric = "mase"

    def __init__(self, config: Config, assets: dict[str, Any] | None = None) -> None:
        super().__init__(config, assets)  # the options' choices and minimums were checked by Config.validate
        saved = assets[SCALER_FILE] if assets else None
        self.scaler: Scaler | None = Scaler.from_dict(saved) if saved else None
        self.columns: list[str] | None = list(saved["columns"]) if saved else None
        self.season: int = int(saved["season"]) if saved else 0
        self.method: str = saved["method"] if saved else self._candidates()[0]
        # checkpoints from before the anchor was a choice corrected the seasonal-naive forecast
        self.anchor: str | None = saved.get("anchor", "seasonal_naive") if saved else None
        self.ets_fits: list[EtsFit] | None = ([EtsFit.from_dict(fit) for fit in saved["ets"]]
                                              if saved and saved.get("ets") else None)
        # the anchor alone's ETS after training, refitted on every row before the held-out part (checkpoints from
        # before it forecast by the training rows' fits)
        self.anchor_fits: list[EtsFit] | None = ([EtsFit.from_dict(fit) for fit in saved["anchor_ets"]]
                                                 if saved and saved.get("anchor_ets") else None)
        # (C,) the intervals' widening, set on the validation rows with the method
        self.interval_margin: np.ndarray | None = (np.asarray(saved["interval_margin"], dtype=float)
                                                   if saved and saved.get("interval_margin") is not None else None)
        self.initial_weights: InitialWeights | None = None  # init_from's, for a fresh run
        self.series: TimeSeries | None = None
        self.cut = 0  # rows before the held-out part
        self.fit_rows = 0  # rows the network learns from (before the validation part)
        self._validation_baselines: dict[str, np.ndarray] = {}  # (W, H, C) each, fixed: computed once

    def _candidates(self) -> tuple[str, ...]:
        mode = self.config.task.forecast_mode
        return METHODS if mode == "auto" else (mode,)

    # --------------------------------------------------------------- data
    def _read(self, path: str | Path) -> TimeSeries:
        """A series laid out like the training data, checked against the columns the model was trained on."""
        task = self.config.task
        series = read_series(path, target_columns=task.target_columns, time_column=task.time_column, header=task.header,
                             missing=task.missing, encoding=self.config.data.encoding)
        if self.columns is not None:
            if len(series.columns) != len(self.columns) or (series.named and series.columns != self.columns):
                raise SeqlabError(f"{path} has columns {', '.join(series.columns)}; the model was trained on "
                                  f"{', '.join(self.columns)}")
        return series

    def _parts(self, series: TimeSeries) -> tuple[int, int]:
        """Check the series is long enough and return (rows the network learns from, rows before the held-out part)."""
        fit_rows, cut = self._split(series)
        self._check_history(series, fit_rows, cut)
        return fit_rows, cut

    def _split(self, series: TimeSeries) -> tuple[int, int]:
        """(rows the network learns from, rows before the held-out part), checking the held-out and validation parts
        hold a horizon each."""
        data, task = self.config.data, self.config.task
        horizon = task.horizon
        cut = split_point(len(series), data.val_fraction)
        held_out = len(series) - cut
        if data.val_fraction > 0 and held_out < horizon:
            raise SeqlabError(
                f"{series.source}: the held-out part has {held_out} rows, fewer than --horizon {horizon}; "
                "raise --val-fraction, lower --horizon, or use --val-fraction 0")
        validation = 0 if data.val_fraction == 0 else task.validation_rows or max(2 * horizon, cut // 10)
        if validation and validation < horizon:
            raise SeqlabError(f"--validation-rows {validation} is fewer than --horizon {horizon}: no validation "
                              "window fits; raise it")
        return cut - validation, cut

    def _check_history(self, series: TimeSeries, fit_rows: int, cut: int) -> None:
        """Refuse a training part shorter than one window of the history T and the horizon."""
        block_size, horizon = self.config.data.block_size, self.config.task.horizon
        needed = block_size + horizon
        if fit_rows < needed:
            raise SeqlabError(
                f"{series.source}: the training part has {fit_rows} rows ({len(series)} rows: the last "
                f"{len(series) - cut} held out, the {cut - fit_rows} before them validate), fewer than one window of "
                f"--block-size {block_size} + --horizon {horizon} = {needed}; lower --block-size (to at most "
                f"{max(fit_rows - horizon, 0)}) or --horizon, or give a longer series")

    def _check_values(self, series: TimeSeries, fit_rows: int) -> None:
        """Refuse a column constant over the training part, and a season and horizon that do not fit in it."""
        constant = [name for name, scale in zip(series.columns, naive_scale(series.values[:fit_rows])) if not scale > 0]
        if constant:
            raise SeqlabError(f"{series.source}: column {', '.join(map(repr, constant))} is constant over the training "
                              "part, so there is nothing to forecast (and MASE is undefined); leave it out with "
                              "--target-columns")
        horizon = self.config.task.horizon
        if self.season + horizon > fit_rows:  # a window reaches a season back before the horizon it forecasts
            raise SeqlabError(f"{series.source}: a season ({self.season} rows) and --horizon {horizon} do not fit in "
                              f"the training part ({fit_rows} rows); give a shorter --season or --horizon, or a "
                              "longer series")

    def load_data(self) -> None:
        series = self._read(self.config.data.path)
        self.fit_rows, self.cut = self._split(series)
        if self.scaler is None:
            self.season = self.config.task.season or guess_season(series.values[:self.fit_rows])
            if not self.config.data.block_size:  # the task's default: chosen here, and saved with the config
                self.config.data.block_size = history_length(self.fit_rows, self.config.task.horizon, self.season)
                self.notes.append(f"forecast: the network reads the last {self.config.data.block_size} rows before "
                                  f"each origin (season {self.season}, horizon {self.config.task.horizon}, "
                                  f"{self.fit_rows} training rows: see --block-size)")
        self._check_history(series, self.fit_rows, self.cut)
        self._check_values(series, self.fit_rows)
        if self.scaler is None:
            self.scaler = Scaler.fit(series.values[:self.fit_rows])
            self.columns = list(series.columns)
            if self.config.task.init_from:
                self.initial_weights = InitialWeights(self.config, ("embedding", "backbone"))
        count = len(series.empty_rows)
        left_out = (f"; {count} {'series' if series.stacked_by else 'row' + ('s' if count > 1 else '')} without a "
                    f"value left out ({first_few(series.empty_rows, 3)})" if count else "")
        if series.stacked_by:
            self.notes.append(f"forecast: {series.source} is in long format: {len(series.columns)} series by "
                              f"{', '.join(map(repr, series.stacked_by))}, read side by side, one row per time "
                              f"({first_few(series.columns, 4)}){left_out}")
        if series.sdmx:
            self.notes.append(f"forecast: {series.source} is SDMX-CSV: its observations (OBS_VALUE) are forecast, its "
                              "other columns read as labels and attributes; --target-columns chooses others")
        if series.notes_lines:
            self.notes.append(f"forecast: {series.source}: its first {series.notes_lines} lines, above an empty line, "
                              "are notes, not the table: skipped")
        if series.transposed:
            self.notes.append(f"forecast: {series.source} has its times across the header and a series on each "
                              f"row: read as {len(series.columns)} series over {len(series)} times "
                              f"({first_few(series.columns, 4)}){left_out}")
        if series.newest_first:
            self.notes.append(f"forecast: {series.source} lists its rows newest first: read oldest first")
        if series.below_limit:
            total = sum(series.below_limit.values())
            self.notes.append(f"forecast: {series.source}: read {total} cell{'s' if total > 1 else ''} below a limit "
                              f"(such as <1) as half the limit ({_per_column(series.below_limit)})")
        if series.interpolated:
            self.notes.append(f"forecast: {series.source}: filled {sum(series.interpolated.values())} missing values "
                              f"by linear interpolation ({_per_column(series.interpolated)}); --missing error refuses "
                              "them")
        self.series = series
        if self.ets_fits is None:
            # a file of many series fits them in as many processes as this one has torch threads (its CPU share)
            self.ets_fits = fit_ets_columns(series.values[:self.fit_rows], self.season, workers=torch.get_num_threads())
        self._validation_baselines = baseline_forecasts(series.values, self._validation_origins(),
                                                        self.config.task.horizon, self.season, ets_fits=self.ets_fits)
        if self.anchor is None:
            self.anchor = self._choose_anchor()
        if self.anchor == "ets" and self.anchor_fits is None:
            self.anchor_fits = (self.ets_fits if self.cut == self.fit_rows else
                                fit_ets_columns(series.values[:self.cut], self.season, workers=torch.get_num_threads()))

    def _validation_origins(self) -> np.ndarray:
        return np.arange(self.fit_rows, self.cut - self.config.task.horizon + 1)

    def _history_origins(self) -> tuple[np.ndarray, int]:
        """The origins before the held-out part whose season back and H rows ahead lie there, and their spacing:
        the classical forecasts need no network, so all of them judge the anchor, not the validation origins
        alone; on a series long enough to hold more than ``ANCHOR_ORIGINS``, as many evenly spaced (the
        forecasts of all of them would take W x H x C values per baseline)."""
        first, last = max(self.season, 1), self.cut - self.config.task.horizon
        spacing = max(1, math.ceil((last - first + 1) / ANCHOR_ORIGINS))
        return np.arange(first, last + 1, spacing), spacing

    def _choose_anchor(self) -> str:
        """``task.anchor``, or (auto) the baseline with the lowest MASE from the origins of the later half of the rows
        before the held-out part, said in one line.

        The validation part alone holds a few independent origins on most real series (W origins, about W / H
        independent), too few to tell a trend that carries forward from noise; the history holds many more, and its
        later half is the nearer in time to the forecasts that matter. ETS's parameters were fitted on the training
        rows, so its forecasts from origins among them are in-sample in its few parameters (its level, slope and
        season are still filtered from the rows before each origin); the validation origins are out of sample.
        The lowest MASE, not a standard-error rule with a default: on the 115 real series of
        benchmarks/bench_forecast_real.py, keeping seasonal-naive unless another baseline was clearly better left the
        anchor alone 4% behind ETS on the 73 series that were then clean tests (benchmarks/RESULTS.md, session 14).
        """
        chosen = self.config.task.anchor
        if chosen != "auto":
            return chosen
        (origins, spacing), values, horizon = self._history_origins(), self.series.values, self.config.task.horizon
        origins = origins[-max(2, len(origins) // 2):]  # the later half
        if len(origins) < 2:
            return "seasonal_naive"
        truth = values[origins[:, None] + np.arange(horizon)]  # (W, H, C)
        scale = naive_scale(values[:self.fit_rows])
        forecasts = baseline_forecasts(values, origins, horizon, self.season, ets_fits=self.ets_fits)
        scores = {name: forecast_metrics(truth, forecasts[name], scale)["mase"]
                  for name in ANCHOR_PREFERENCE}  # the first of equals: seasonal-naive is naive where m is 1
        chosen = min(scores, key=scores.get)
        spaced = f", one every {spacing} rows" if spacing > 1 else ""
        shown = ", ".join(f"{name} {score:.3f}" for name, score in scores.items())
        refitted = ("; alone, it forecasts by ETS refitted on every row before the held-out part" if chosen == "ets"
                    else "")
        self.notes.append(f"forecast: the network corrects {chosen}, the lowest MASE from the {len(origins)} origins "
                          f"of the later half of the rows before the held-out part{spaced} ({shown}){refitted}; "
                          "--anchor sets it")
        return chosen

    def _anchors(self, series: TimeSeries, origins: np.ndarray, *, refitted: bool = False) -> np.ndarray:
        """The anchor's forecasts (W, H, C) in original units from ``origins``: by ETS fitted on the training rows (the
        network's), or with ``refitted`` on every row before the held-out part where there is such a fit (the anchor
        alone's after training)."""
        fits = self.anchor_fits if refitted and self.anchor_fits is not None else self.ets_fits
        return baseline_forecast(self.anchor, series.values, origins, self.config.task.horizon, self.season,
                                 ets_fits=fits)

    @property
    def has_validation(self) -> bool:
        return self.series is not None and self.cut > self.fit_rows

    def assets(self) -> dict[str, Any]:
        return {SCALER_FILE: {"columns": self.columns, **self.scaler.to_dict(), "season": self.season,
                              "method": self.method, "anchor": self.anchor,
                              "interval_margin": None if self.interval_margin is None else self.interval_margin.tolist(),
                              "ets": [fit.to_dict() for fit in self.ets_fits],
                              "anchor_ets": None if self.anchor_fits is None else [fit.to_dict()
                                                                                   for fit in self.anchor_fits]}}

    @property
    def context(self) -> int:
        """Rows before a forecast origin the model reads: the history T, or a whole season if that is longer."""
        return max(self.config.data.block_size, self.season)

    @property
    def features(self) -> int:
        """Calendar features per row: the position in the season as a sine and a cosine, where there is a season."""
        return 2 if self.config.task.calendar and self.season > 1 else 0

    def build_model(self) -> nn.Module:
        # a text model's embedding (token ids) does not fit a forecaster's input projection: kept fresh
        model = build_forecaster(self.config, len(self.columns), season=self.season, features=self.features)
        return start_model(model, self.config, self.initial_weights, optional=("embedding",))

    def _inputs(self, series: TimeSeries, rows: int) -> Tensor:
        """(N', C + K) scaled values beside each row's calendar features, padded with NaN values to at least
        ``rows`` rows (the future rows of a forecast have features but no values)."""
        rows = max(rows, len(series))
        values = np.full((rows, len(series.columns)), np.nan)
        values[:len(series)] = self.scaler.transform(series.values)
        features = calendar_features(np.arange(rows), self.season) if self.features else np.zeros((rows, 0))
        return torch.tensor(np.concatenate([values, features], axis=1), dtype=torch.float32)

    def _scaled(self, forecasts: np.ndarray) -> Tensor:
        """(W, H, C) forecasts in original units -> in the scaled units the network reads."""
        return torch.tensor(self.scaler.transform(forecasts), dtype=torch.float32)

    def batches(self) -> BatchSource:
        config = self.config
        origins = np.arange(self.context, self.fit_rows - config.task.horizon + 1)  # one per window start
        return ForecastWindows(self._inputs(self.series, len(self.series))[:self.fit_rows],
                               block_size=self.context, horizon=config.task.horizon,
                               batch_size=config.train.batch_size, seed=config.train.seed,
                               columns=len(self.columns), anchors=self._scaled(self._anchors(self.series, origins)))

    def loss(self, model: nn.Module, batch: Batch, state: State) -> tuple[Tensor, State]:
        # quantiles (b, H, C, Q), one_step (b, H, C); the batch's condition holds the anchors (b, H, C)
        outputs, state = model(batch.inputs, state, anchors=batch.condition)
        return self._loss(outputs, batch.targets), state

    @staticmethod
    def _loss(outputs: ForecastOutputs, targets: Tensor) -> Tensor:
        """Summed over the (b, H, C) targets (the trainer divides by their count): the direct head's pinball loss
        plus half the one-step head's absolute error."""
        return quantile_loss(outputs.quantiles, targets) + F.l1_loss(outputs.one_step, targets, reduction="sum") / 2

    # ---------------------------------------------------------- evaluation
    @torch.no_grad()
    def _forecasts(self, model: Forecaster, series: TimeSeries, origins: np.ndarray, *,
                   anchors: np.ndarray | None = None) -> Forecasts:
        """Every method's forecasts from ``origins`` (in batches of ``train.batch_size``), the chosen one's interval;
        ``anchors``: the network's anchors (W, H, C) from those origins where they are at hand (in training, where
        they are the anchor alone's forecasts too); else they are computed here, and the anchor alone's by its
        refitted ETS (see ``_anchors``)."""
        context, horizon, batch_size = self.context, self.config.task.horizon, self.config.train.batch_size
        device = next(model.parameters()).device
        inputs = self._inputs(series, int(origins.max()) + horizon)
        alone = anchors
        if anchors is None:
            anchors = self._anchors(series, origins)  # (W, H, C)
            alone = anchors if self.anchor_fits is None else self._anchors(series, origins, refitted=True)
        scaled_anchors = self._scaled(anchors)
        columns = len(self.columns)
        was_training = model.training
        model.eval()
        quantiles, recursive = [], []
        for first in range(0, len(origins), batch_size):
            chosen = torch.as_tensor(origins[first:first + batch_size])
            history = gather_windows(inputs, chosen - context, context).to(device)  # (b, S, C+K)
            future = gather_windows(inputs, chosen, horizon)[..., columns:].to(device)  # (b, H, K)
            quantiles.append(model.direct(history, scaled_anchors[first:first + batch_size].to(device)).float().cpu())
            recursive.append(model.recursive(history, future).float().cpu())
        model.train(was_training)
        direct = self.scaler.inverse(torch.cat(quantiles).double().numpy().swapaxes(-1, -2)).swapaxes(-1, -2)
        heads = {"direct": direct[..., MEDIAN],  # (W, H, C)
                 "autoregressive": self.scaler.inverse(torch.cat(recursive).double().numpy())}
        by_method = {**heads, "anchor": alone, **{head + BLEND: (forecast + anchors) / 2
                                                    for head, forecast in heads.items()}}
        margin = np.zeros(columns) if self.interval_margin is None else self.interval_margin
        return Forecasts(by_method, direct[..., 0] - direct[..., MEDIAN], direct[..., -1] - direct[..., MEDIAN],
                         margin)

    def _scores(self, model: Forecaster, series: TimeSeries, origins: np.ndarray, *, fit_rows: int, choose: bool,
                baselines: dict[str, np.ndarray],
                anchors: np.ndarray | None = None) -> tuple[dict[str, float], Forecasts, np.ndarray]:
        """Metrics of the forecasts and ``baselines`` from ``origins`` (choosing the method on them with
        ``choose``), MASE scaled by the first ``fit_rows`` rows; and the forecasts and the truth (W, H, C)."""
        horizon = self.config.task.horizon
        truth = series.values[origins[:, None] + np.arange(horizon)]  # (W, H, C)
        scale = naive_scale(series.values[:fit_rows])
        forecasts = self._forecasts(model, series, origins, anchors=anchors)
        method_scores = {method: forecast_metrics(truth, forecast, scale)
                         for method, forecast in forecasts.by_method.items()}
        if choose:  # the anchor alone unless a network's method is clearly better
            candidates = self._candidates()
            self.method = clearly_best(truth, {method: forecasts.by_method[method] for method in candidates}, scale,
                                       default="anchor" if "anchor" in candidates else candidates[0])
            forecasts.margin = np.zeros_like(forecasts.margin)  # calibrated afresh, from the heads' own intervals
            forecasts.margin = conformal_margin(truth, *forecasts.interval(self.method), INTERVAL_LEVEL)
            self.interval_margin = forecasts.margin
        interval = forecasts.interval(self.method)
        metrics = {**method_scores[self.method], "coverage": interval_coverage(truth, *interval),
                   "msis": interval_score(truth, *interval, scale, INTERVAL_LEVEL),
                   "direct_mase": method_scores["direct"]["mase"],
                   "autoregressive_mase": method_scores["autoregressive"]["mase"]}
        for name, forecast in baselines.items():
            metrics.update({f"{name}_{key}": value for key, value in forecast_metrics(truth, forecast, scale).items()})
        return metrics, forecasts, truth

    def evaluate(self, model: nn.Module, *, context: Any, max_batches: int = 0) -> dict[str, float]:
        """Forecasts from every validation origin choose the method (every process forecasts all of the small
        validation part, so all report and choose the same)."""
        context, horizon = self.context, self.config.task.horizon
        origins = self._validation_origins()
        metrics, _, _ = self._scores(model, self.series, origins, fit_rows=self.fit_rows, choose=True,
                                     baselines=self._validation_baselines,
                                     anchors=self._validation_baselines[self.anchor])  # computed once, in load_data
        windows = gather_windows(self._inputs(self.series, self.cut), torch.as_tensor(origins - context),
                                 context + horizon)  # (W, S+H, C+K)
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        with torch.no_grad():
            outputs, _ = model(windows.to(device), anchors=self._scaled(self._validation_baselines[self.anchor]).to(device))
        model.train(was_training)
        targets = windows[:, context:, :len(self.columns)].to(device)  # (W, H, C)
        return {"val_loss": float(self._loss(outputs, targets)) / targets.numel(), **metrics}

    def evaluate_file(self, model: nn.Module, path: str | Path, *, split: str) -> dict[str, Any]:
        """``val``: origins in the held-out part (the whole file when training held none out); ``train``:
        forecasts that lie wholly before it; ``all``: every origin. MASE is scaled by, and ETS fitted on, the
        rows before the held-out part; the method is the one chosen in training."""
        if split not in SPLITS:
            raise SeqlabError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        series = self._read(path)
        _, cut = self._parts(series)
        self._check_values(series, cut)
        block_size, horizon = self.config.data.block_size, self.config.task.horizon
        first = cut if split == "val" and cut < len(series) else self.context
        last = cut - horizon if split == "train" else len(series) - horizon
        origins = np.arange(first, last + 1)
        if len(origins) == 0:
            raise SeqlabError(f"the {split} split of {path} has no window of {block_size} rows followed by {horizon}")
        # ETS refitted on every row before the held-out part
        baselines = baseline_forecasts(series.values, origins, horizon, self.season, fit_rows=cut,
                                       workers=torch.get_num_threads())
        metrics, forecasts, truth = self._scores(model, series, origins, fit_rows=cut, choose=False,
                                                 baselines=baselines)
        scale = naive_scale(series.values[:cut])
        forecast_columns = column_metrics(truth, forecasts.by_method[self.method], scale)
        baseline_columns = {name: column_metrics(truth, forecast, scale) for name, forecast in baselines.items()}
        per_column = {name: {**forecast_columns[index], **{f"{baseline}_mase": scores[index]["mase"]
                                                           for baseline, scores in baseline_columns.items()}}
                      for index, name in enumerate(series.columns)}
        report: dict[str, Any] = {"split": split, "windows": len(origins), "method": self.method,
                                  "anchor": self.anchor, **metrics, "columns": per_column,
                                  "verdict": _verdict(self.method, self.anchor, metrics)}
        if series.interpolated:
            report["interpolated"] = dict(series.interpolated)
        if series.below_limit:
            report["below_limit"] = dict(series.below_limit)
        return report

    # ------------------------------------------------------------- predict
    def read_inputs(self, path: str | Path) -> list[Any]:
        return [self._read(path)]

    def _series(self, item: Any) -> TimeSeries:
        series = item if isinstance(item, TimeSeries) else self._read(item)
        needed = self.context
        if len(series) < needed:
            raise SeqlabError(f"{series.source} has {len(series)} rows; the model needs the last {needed}")
        return series

    def predict(self, model: nn.Module, inputs: list[Any]) -> list[Any]:
        """The H rows after the end of each series (a TimeSeries or a path), one ForecastStep per row."""
        steps: list[Any] = []
        for item in inputs:
            series = self._series(item)
            forecast = self._forecasts(model, series, np.array([len(series)])).by_method[self.method][0]  # (H, C)
            times = future_times(series.times, len(forecast)) if series.times and len(inputs) == 1 else None
            named = series.time_name if times is not None else "step"  # several inputs: one header, so steps
            times = times or [str(step) for step in range(1, len(forecast) + 1)]
            steps.extend(ForecastStep(row.tolist(), time, named) for row, time in zip(forecast, times))
        return steps

    def prediction_header(self, predictions: list[Any]) -> str:
        """The columns of the printed steps, as a CSV header (so ``seqlab predict ... > forecast.csv`` is a CSV):
        their time column's name ("step" where the next times could not be told), then the series' columns."""
        return ",".join([predictions[0].time_name if predictions else "step", *self.columns])

    def draw(self, model: nn.Module, inputs: list[Any]) -> list[Path]:
        """For each series, its last T rows, the forecast and its 80% interval in ``SOURCE.forecast.png`` (for
        ``builtin:NAME``, ``builtin-NAME.forecast.png`` in the current directory); the paths written."""
        paths = []
        for item in inputs:
            series = self._series(item)
            forecasts = self._forecasts(model, series, np.array([len(series)]))
            lower, upper = forecasts.interval(self.method)
            path = _plot_path(series.source)
            plot_forecast(path, history=series.values[-self.config.data.block_size:],
                          forecast=forecasts.by_method[self.method][0], interval=(lower[0], upper[0]),
                          columns=series.columns, title=f"{series.source}: {self.config.task.horizon}-step forecast "
                                                        f"({self.method})")
            paths.append(path)
        return paths


def _verdict(method: str, anchor: str, metrics: dict[str, float]) -> str:
    """One line: how the forecast's MASE compares with the best baseline's (and, where validation chose the anchor
    alone, that the network's corrections did not help there)."""
    best = min(BASELINES, key=lambda name: metrics[f"{name}_mase"])
    ours, theirs = metrics["mase"], metrics[f"{best}_mase"]
    forecast = f"the forecast ({method}, anchor {anchor})"
    note = ("; validation chose the anchor alone: the network's corrections did not help on the validation rows"
            if method == "anchor" else "")
    if method == "anchor" and anchor == best == "ets" and ours != theirs:  # the same model, fitted on other rows
        note += ("; the anchor's ETS keeps its fit from training, the baseline's is fitted on every row before this "
                 "file's held-out part")
    if ours > theirs:
        return (f"worse than the best baseline: {forecast} has MASE {ours:.3f}, {best} {theirs:.3f}{note}; a longer "
                f"series, budget or --block-size may help, or use {best}")
    if ours == theirs:
        return f"{forecast} has MASE {ours:.3f}, equal to the best baseline, {best}{note}"
    return f"{forecast} has MASE {ours:.3f}, better than the best baseline, {best} {theirs:.3f}{note}"


def _per_column(counts: dict[str, int]) -> str:
    """Counts per column as a note writes them: "a: 2, b: 1"."""
    return ", ".join(f"{name}: {count}" for name, count in counts.items())


def _plot_path(source: str) -> Path:
    if source.startswith(BUILTIN_PREFIX):
        return Path(f"builtin-{source[len(BUILTIN_PREFIX):]}.forecast.png")
    return Path(f"{source}.forecast.png")
