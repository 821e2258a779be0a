"""Classical forecasts beside every forecast evaluation: naive, seasonal-naive and exponential smoothing (ETS).

Each takes the whole series, the forecast origins (row o: rows before o are
known, rows o..o+H-1 are forecast) and returns (W, H, C) forecasts in the
series' units. ETS comes from statsmodels; its parameters are fitted once,
on exactly the rows the network learnt from (``fit_rows``), and then at each
origin the fitted model, run over the rows before it (the same history the
network is given), forecasts H steps: one fit, no peeking past an origin.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

BASELINES = ("naive", "seasonal_naive", "ets")
ESTIMATED_INITIAL_SEASON = 24  # longer seasons start from statsmodels' heuristic, not 2 + m fitted initial states


def naive_forecasts(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """The last value before each origin, repeated H times: (W, H, C)."""
    return np.repeat(values[origins - 1][:, None], horizon, axis=1)


def seasonal_naive_forecasts(values: np.ndarray, origins: np.ndarray, horizon: int, season: int) -> np.ndarray:
    r"""y^_{o+h} = y_{o+h-m(floor(h/m)+1)}: the value one season m earlier, the last season repeated past m: (W, H, C)."""
    steps = np.arange(horizon)
    sources = origins[:, None] + steps - season * (steps // season + 1)  # (W, H)
    return values[sources]


@dataclass
class EtsFit:
    """One column's chosen ETS form (statsmodels ``ETSModel`` keyword arguments) and its fitted parameters."""

    options: dict[str, Any]
    params: np.ndarray
    aicc: float


def ets_candidates(train: np.ndarray, season: int) -> list[dict[str, Any]]:
    """The ETS forms tried on one column: additive errors; no trend or a damped additive one; no season, or an
    additive one, or (for a positive series) a multiplicative one, where two full seasons fit in ``train``."""
    seasons: list[str | None] = [None]
    if season > 1 and len(train) >= 2 * season + 2:
        seasons += ["add", "mul"] if np.all(train > 0) else ["add"]
    candidates = []
    for seasonal in seasons:
        for trend in (None, "add"):
            options: dict[str, Any] = {"error": "add", "trend": trend, "damped_trend": trend is not None,
                                       "seasonal": seasonal, "seasonal_periods": season if seasonal else None}
            if seasonal and season > ESTIMATED_INITIAL_SEASON:
                options["initialization_method"] = "heuristic"
            candidates.append(options)
    return candidates


def fit_ets(train: np.ndarray, season: int) -> EtsFit:
    """The candidate form (see ``ets_candidates``) with the lowest AICc on one column's training rows."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    best: EtsFit | None = None
    for options in ets_candidates(train, season):
        with warnings.catch_warnings():  # statsmodels warns on every hard optimisation; AICc judges the result
            warnings.simplefilter("ignore")
            result = ETSModel(train, **options).fit(disp=False)
        if np.isfinite(result.aicc) and (best is None or result.aicc < best.aicc):
            best = EtsFit(options, np.asarray(result.params), float(result.aicc))
    if best is None:
        raise AssertionError("no ETS form could be fitted, not even simple exponential smoothing")
    return best


def ets_forecasts(values: np.ndarray, origins: np.ndarray, horizon: int, season: int, *,
                  fit_rows: int) -> tuple[np.ndarray, list[EtsFit]]:
    """ETS forecasts (W, H, C) from every origin, per column fitted on its first ``fit_rows`` rows; and the fits."""
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    forecasts = np.empty((len(origins), horizon, values.shape[1]))
    fits = []
    for column in range(values.shape[1]):
        fit = fit_ets(values[:fit_rows, column], season)
        fits.append(fit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # the fitted model run over the whole column once; a dynamic prediction from row o uses no row from o on,
            # so it is exactly the forecast of the same model run over the rows before o
            smoothed = ETSModel(values[:, column], **fit.options).smooth(fit.params)
            for index, origin in enumerate(origins):
                forecasts[index, :, column] = smoothed.predict(start=origin, end=origin + horizon - 1, dynamic=True)
    return forecasts, fits


def baseline_forecasts(values: np.ndarray, origins: np.ndarray, horizon: int, season: int, *,
                       fit_rows: int) -> dict[str, np.ndarray]:
    """{name: (W, H, C) forecasts} for every name in BASELINES."""
    return {"naive": naive_forecasts(values, origins, horizon),
            "seasonal_naive": seasonal_naive_forecasts(values, origins, horizon, season),
            "ets": ets_forecasts(values, origins, horizon, season, fit_rows=fit_rows)[0]}
