"""Classical forecasts beside every forecast evaluation: naive, seasonal-naive and exponential smoothing (ETS).

Each takes the whole series, the forecast origins (row o: rows before o are
known, rows o..o+H-1 are forecast) and returns (W, H, C) forecasts in the
series' units. ETS comes from statsmodels; its parameters are fitted once,
on exactly the rows the network learnt from (``fit_rows``), and then at each
origin the fitted model, run over the rows before it (the same history the
network is given), forecasts H steps: one fit, no peeking past an origin.
The forecaster uses the same functions for its anchor, the classical forecast
its network corrects (``baseline_forecast``).
"""
from __future__ import annotations

import math
import multiprocessing
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

BASELINES = ("naive", "seasonal_naive", "ets")
PARALLEL_COLUMNS = 16  # fewer columns are fitted in this process: starting worker processes takes seconds
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
    aicc: float  # not finite where the rows were too few for AICc (JSON: null)

    def to_dict(self) -> dict[str, Any]:
        return {"options": self.options, "params": self.params.tolist(),
                "aicc": self.aicc if math.isfinite(self.aicc) else None}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "EtsFit":
        aicc = values["aicc"]
        return cls(dict(values["options"]), np.asarray(values["params"], dtype=float),
                   math.inf if aicc is None else float(aicc))


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


def _known_start(options: dict[str, Any], model: Any) -> dict[str, Any]:
    """A heuristic start's initial states, found on the training rows, fixed as the model's ``known`` ones: the same
    model on those rows (exactly), and one that also runs over a series shorter than the two seasons the heuristic
    needs (a file given to ``predict``). Estimated starts are among the parameters already."""
    if options.get("initialization_method") != "heuristic":
        return options
    known = {**options, "initialization_method": "known", "initial_level": float(model.initial_level)}
    if options["trend"]:
        known["initial_trend"] = float(model.initial_trend)
    if options["seasonal"]:
        known["initial_seasonal"] = np.asarray(model.initial_seasonal, dtype=float).tolist()
    return known


def fit_ets(train: np.ndarray, season: int) -> EtsFit:
    """The candidate form (see ``ets_candidates``) with the lowest AICc on one column's training rows.

    Only the parameters are asked of statsmodels (``return_params``): its results object would also compute the
    parameters' covariance by a complex-step Hessian, O(k^2) passes over the rows (minutes on a long series), which
    nothing here reads. AICc is then the library's own (``eval_measures.aicc``) of the model's log-likelihood, with
    the k parameters and the scale as ``ETSResults.aicc`` counts them."""
    from statsmodels.tools import eval_measures
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    best: EtsFit | None = None
    simplest: EtsFit | None = None  # simple exponential smoothing, the first candidate
    for options in ets_candidates(train, season):
        with warnings.catch_warnings():  # statsmodels warns on every hard optimisation; AICc judges the result
            warnings.simplefilter("ignore")
            model = ETSModel(train, **options)
            params = np.asarray(model.fit(disp=False, return_params=True))
            aicc = float(eval_measures.aicc(model.loglike(params), model.nobs, model.k_params + 1))
        fit = EtsFit(_known_start(options, model), params, aicc)
        simplest = simplest or fit
        if np.isfinite(aicc) and (best is None or aicc < best.aicc):
            best = fit
    # too few rows for AICc to judge any form (it needs more rows than parameters + 2): the simplest one
    return best if best is not None else simplest


def fit_ets_columns(train: np.ndarray, season: int, *, workers: int = 1) -> list[EtsFit]:
    """``fit_ets`` on each column of (N, C) training rows; with ``workers`` > 1 and at least ``PARALLEL_COLUMNS``
    columns (a file in long format of many series), in that many processes at once. Each column's fit is the same
    wherever it runs."""
    columns = [train[:, column] for column in range(train.shape[1])]
    if workers < 2 or len(columns) < PARALLEL_COLUMNS:
        return [fit_ets(column, season) for column in columns]
    with worker_pool(min(workers, len(columns))) as pool:
        return list(pool.map(fit_ets, columns, [season] * len(columns), chunksize=4))


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """``workers`` processes for ETS fits: spawned, not forked (a fork of a process running torch's thread pools can
    hang), each with its numerical libraries' thread pools at one thread (``_one_thread``)."""
    return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_one_thread)


def _one_thread() -> None:
    """Load what an ETS fit uses (numpy's, scipy's and torch's BLAS and OpenMP), then limit every such pool to one
    thread, by threadpoolctl. Each worker would otherwise start as many threads as the machine has cores, N workers
    oversubscribe it, and the spinning threads made two workers on two cores 2.7 times slower than one process
    (benchmarks/RESULTS.md, session 14)."""
    import threadpoolctl
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel  # noqa: F401  (loads scipy's BLAS)

    threadpoolctl.threadpool_limits(1)


def ets_paths(values: np.ndarray, fit: EtsFit, origins: np.ndarray, horizon: int) -> np.ndarray:
    r"""The H-step forecasts (W, H) of one column from every origin, by the fitted model run over the column once.

    statsmodels filters the column with the fitted parameters (its raw states:
    no results object, whose covariance nothing here reads), giving each
    row's level l_t, slope b_t and seasonal state s_t; from origin o (rows
    before o known, t = o - 1) the forecast of row t + h is

        (l_t + phi_h b_t) (+ or x) s_{t+h-m(floor((h-1)/m)+1)},   phi_h = sum_{i<=h} phi^i (phi = 1 undamped)

    which is exactly ``predict(start=o, end=o+H-1, dynamic=True)`` (tested
    against it for every form), at one vectorised expression for all origins
    instead of one call per origin. Origins must be at least the season m.
    """
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    model = ETSModel(values, **fit.options)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, states = model.smooth(fit.params, return_raw=True)  # (N, 1 + trend + seasonal): l_t, b_t, s_t
    steps = np.arange(1, horizon + 1)  # h
    last = origins - 1  # t, the last row known
    paths = np.repeat(states[last, 0][:, None], horizon, axis=1)  # (W, H)
    if model.has_trend:
        damping = fit.params[model.param_names.index("damping_trend")] if model.damped_trend else 1.0
        paths = paths + states[last, 1][:, None] * np.cumsum(damping ** steps)
    if model.has_seasonal:
        season = model.seasonal_periods
        if len(origins) and origins.min() < season:
            raise AssertionError(f"an ETS forecast from row {origins.min()} needs a whole season ({season}) before it")
        seasonal = states[last[:, None] + steps - season * ((steps - 1) // season + 1), -1]  # (W, H)
        paths = paths * seasonal if model.seasonal == "mul" else paths + seasonal
    return paths


def ets_forecasts(values: np.ndarray, origins: np.ndarray, horizon: int, season: int, *, fit_rows: int = 0,
                  fits: list[EtsFit] | None = None) -> tuple[np.ndarray, list[EtsFit]]:
    """ETS forecasts (W, H, C) from every origin, by ``fits`` or, per column, a fit on its first ``fit_rows`` rows;
    and the fits."""
    if fits is None:
        fits = fit_ets_columns(values[:fit_rows], season)
    return np.stack([ets_paths(values[:, column], fit, origins, horizon) for column, fit in enumerate(fits)],
                    axis=-1), fits


def baseline_forecast(name: str, values: np.ndarray, origins: np.ndarray, horizon: int, season: int, *,
                      ets_fits: list[EtsFit] | None = None) -> np.ndarray:
    """One baseline's forecasts (W, H, C); ETS by the given fits."""
    if name == "naive":
        return naive_forecasts(values, origins, horizon)
    if name == "seasonal_naive":
        return seasonal_naive_forecasts(values, origins, horizon, season)
    if name == "ets":
        return ets_forecasts(values, origins, horizon, season, fits=ets_fits)[0]
    raise AssertionError(f"no baseline called {name!r}")


def baseline_forecasts(values: np.ndarray, origins: np.ndarray, horizon: int, season: int, *,
                       fit_rows: int = 0, ets_fits: list[EtsFit] | None = None,
                       workers: int = 1) -> dict[str, np.ndarray]:
    """{name: (W, H, C) forecasts} for every name in BASELINES, ETS by ``ets_fits`` or fitted on ``fit_rows`` rows
    (in ``workers`` processes, see ``fit_ets_columns``)."""
    if ets_fits is None:
        ets_fits = fit_ets_columns(values[:fit_rows], season, workers=workers)
    return {name: baseline_forecast(name, values, origins, horizon, season, ets_fits=ets_fits) for name in BASELINES}
