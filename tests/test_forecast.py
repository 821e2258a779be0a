"""Forecasting: metrics against hand-computed values, CSV reading, scaling, windows, both modes, bad inputs, the CLI."""
import json
import math

import numpy as np
import pytest
import torch

from seqlab.cli import main
from seqlab.config import Config
from seqlab.data.timeseries import (ForecastWindows, Scaler, forecast_metrics, guess_season, naive_forecasts,
                                    naive_scale, read_series, seasonal_naive_forecasts, split_point)
from seqlab.errors import SeqlabError
from seqlab.models.forecaster import build_forecaster
from seqlab.tasks.forecast import ForecastTask
from seqlab.train.checkpoint import load_checkpoint


def forecast_config(path, **task_fields) -> Config:
    config = Config()
    config.task.name = "forecast"
    config.data.path = str(path)
    config.data.block_size = 4
    config.data.val_fraction = 0.25
    config.model.hidden_size = 8
    config.train.batch_size = 4
    config.train.threads = 1
    for name, value in task_fields.items():
        setattr(config.task, name, value)
    return config


# ------------------------------------------------------------------ metrics
def test_naive_and_seasonal_naive_forecasts_and_metrics_by_hand():
    values = np.array([1.0, 2.0, 4.0, 7.0, 11.0, 16.0, 22.0])[:, None]  # (7, 1)
    scale = naive_scale(values[:5])  # |2-1|, |4-2|, |7-4|, |11-7| -> mean 2.5
    assert scale.tolist() == [2.5]
    origins = np.array([5])
    truth = values[5:7][None]  # (1, 2, 1): 16, 22
    naive = naive_forecasts(values, origins, 2)
    assert naive[0, :, 0].tolist() == [11.0, 11.0]
    metrics = forecast_metrics(truth, naive, scale)  # errors -5, -11
    assert metrics["mae"] == pytest.approx(8.0)
    assert metrics["rmse"] == pytest.approx(math.sqrt((25 + 121) / 2))
    assert metrics["mase"] == pytest.approx(8.0 / 2.5)
    seasonal = seasonal_naive_forecasts(values, origins, 2, 2)  # one season (2 rows) back: rows 3 and 4
    assert seasonal[0, :, 0].tolist() == [7.0, 11.0]
    metrics = forecast_metrics(truth, seasonal, scale)  # errors -9, -11
    assert metrics["mae"] == pytest.approx(10.0)
    assert metrics["rmse"] == pytest.approx(math.sqrt((81 + 121) / 2))
    assert metrics["mase"] == pytest.approx(4.0)
    # past one season the last season repeats: origin 3, season 3, horizon 4 -> rows 0, 1, 2, 0
    assert seasonal_naive_forecasts(values, np.array([3]), 4, 3)[0, :, 0].tolist() == [1.0, 2.0, 4.0, 1.0]


def test_mase_averages_each_columns_scaled_error():
    truth = np.zeros((1, 2, 2))
    forecast = np.array([[[1.0, 4.0], [3.0, 0.0]]])  # column MAEs 2 and 2
    metrics = forecast_metrics(truth, forecast, np.array([1.0, 4.0]))
    assert metrics["mae"] == pytest.approx(2.0)
    assert metrics["rmse"] == pytest.approx(math.sqrt((1 + 16 + 9) / 4))
    assert metrics["mase"] == pytest.approx((2.0 / 1.0 + 2.0 / 4.0) / 2)


def test_season_is_guessed_from_autocorrelation():
    steps = np.arange(600)
    noise = np.random.default_rng(0).normal(0, 0.05, 600)
    assert guess_season((np.sin(2 * np.pi * steps / 12) + noise)[:, None]) == 12
    assert guess_season(np.random.default_rng(1).normal(size=(600, 2))) == 1  # white noise has no season


# ------------------------------------------------------------ CSV reading
def test_csv_with_header_and_date_column(tmp_path):
    path = tmp_path / "series.csv"
    path.write_text("date,x,y\n2020-01-01,1,10\n2020-01-02,2,20\n2020-01-03,3,30\n\n", encoding="utf-8")
    series = read_series(path)
    assert series.columns == ["x", "y"] and series.named
    assert series.values.tolist() == [[1, 10], [2, 20], [3, 30]]
    assert read_series(path, target_columns="y").values[:, 0].tolist() == [10, 20, 30]
    assert read_series(path, target_columns="-1,1").columns == ["y", "x"]


def test_csv_without_header_with_and_without_time_column(tmp_path):
    plain = tmp_path / "plain.csv"
    plain.write_text("1.5,2\n2.5,3\n3.5,4\n", encoding="utf-8")
    series = read_series(plain)
    assert series.columns == ["0", "1"] and not series.named
    assert series.values.tolist() == [[1.5, 2], [2.5, 3], [3.5, 4]]
    assert read_series(plain, time_column="0").values.tolist() == [[2], [3], [4]]  # a numeric time column by index
    dated = tmp_path / "dated.tsv"
    dated.write_text("2020-01\t5\n2020-02\t6\n2020-03\t7\n", encoding="utf-8")
    series = read_series(dated)
    assert series.columns == ["1"] and series.values[:, 0].tolist() == [5, 6, 7]
    assert read_series(dated, header="no").values.shape == (3, 1)


@pytest.mark.parametrize("text, options, message", [
    ("t,x\n1,2\n2,3\n", {"target_columns": "z"}, "no column 'z'"),
    ("x,y\n1,2\n2,3\n3,oops\n4,5\n", {}, r"line 4, column 'y': 'oops' is not a number"),
    ("x,y\n1,2\n2,nan\n", {}, "line 3, column 'y' is nan"),
    ("x,y\n1,2\n2,\n", {}, "line 3, column 'y' is empty"),
    ("x,y\n1,2\n\n2,3\n", {}, "line 3 is empty"),
    ("x,y\n1,2\n2,3,4\n", {}, "line 3 has 3 cells"),
    ("t,x\n1,2\n", {"target_columns": "t", "time_column": "t"}, "time column"),
])
def test_bad_csv_is_refused_with_one_clear_error(tmp_path, text, options, message):
    path = tmp_path / "bad.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SeqlabError, match=message):
        read_series(path, **options)


def test_unknown_builtin_and_missing_file():
    with pytest.raises(SeqlabError, match="unknown built-in series builtin:waves; choose one of builtin:ball"):
        read_series("builtin:waves")
    with pytest.raises(SeqlabError, match="does not exist"):
        read_series("/nonexistent/series.csv")


def test_builtin_series_are_fixed_and_plausible():
    ball = read_series("builtin:ball")
    assert ball.columns == ["x", "y"] and len(ball) > 3000
    assert np.array_equal(ball.values, read_series("builtin:ball").values)
    assert ball.values[:, 1].max() < 15 and ball.values[:, 1].min() > -0.5  # thrown from hand height, lands at 0
    sines = read_series("builtin:sines")
    assert sines.values.shape == (4000, 1)
    assert guess_season(sines.values[:3000]) == 120  # periods 24 and 60 meet every 120 steps


# ------------------------------------------------------ split, scale, windows
def test_series_too_short_for_window_and_horizon(tmp_path):
    path = tmp_path / "short.csv"
    path.write_text("\n".join(str(value) for value in range(12)) + "\n", encoding="utf-8")
    task = ForecastTask(forecast_config(path, horizon=6))  # 9 training rows < 4 + 6
    with pytest.raises(SeqlabError, match="fewer than one window of --block-size 4 \\+ --horizon 6 = 10"):
        task.load_data()
    config = forecast_config(path, horizon=4)
    config.data.val_fraction = 0.2  # 2 held-out rows < horizon 4
    with pytest.raises(SeqlabError, match="held-out part has 2 rows, fewer than --horizon 4"):
        ForecastTask(config).load_data()
    with pytest.raises(SeqlabError, match="forecast_mode"):
        ForecastTask(forecast_config(path, forecast_mode="sideways"))


def test_scaler_is_fitted_on_the_training_part_only(tmp_path):
    values = [float(value) for value in range(30)] + [1000.0] * 10  # the held-out part is far off
    path = tmp_path / "series.csv"
    path.write_text("value\n" + "\n".join(str(value) for value in values) + "\n", encoding="utf-8")
    task = ForecastTask(forecast_config(path))
    task.load_data()
    assert split_point(40, 0.25) == 30 and task.cut == 30
    assert task.scaler.mean[0] == pytest.approx(14.5)
    assert task.scaler.std[0] == pytest.approx(np.std(np.arange(30.0)))
    saved = task.assets()["scaler.json"]
    assert saved["columns"] == ["value"] and saved["mean"] == [pytest.approx(14.5)]
    rebuilt = ForecastTask(task.config, json.loads(json.dumps(task.assets())))
    assert rebuilt.scaler.mean.tolist() == task.scaler.mean.tolist() and rebuilt.season == task.season
    scaler = Scaler.fit(np.array([[1.0, 5.0], [3.0, 5.0]]))  # a constant column scales to zeros, not NaN
    assert scaler.transform(np.array([[2.0, 5.0]])).tolist() == [[0.0, 0.0]]


def test_windows_and_targets_line_up_and_resume_exactly():
    values = torch.arange(50.0).view(25, 2)  # row r holds 2r, 2r + 1
    direct = ForecastWindows(values, block_size=5, horizon=3, batch_size=6, seed=1, autoregressive=False)
    batch = direct.next_batch()
    assert batch.inputs.shape == (6, 5, 2) and batch.targets.shape == (6, 3, 2)
    assert torch.equal(batch.targets[:, 0], batch.inputs[:, -1] + 2)  # the row right after the history
    assert torch.equal(batch.inputs[:, 1:] - batch.inputs[:, :-1], torch.full((6, 4, 2), 2.0))
    auto = ForecastWindows(values, block_size=5, horizon=3, batch_size=6, seed=1, autoregressive=True)
    batch = auto.next_batch()
    assert batch.inputs.shape == (6, 7, 2) and torch.equal(batch.targets, batch.inputs + 2)
    saved = auto.state_dict()
    expected = auto.next_batch()
    auto.load_state_dict(saved)
    assert torch.equal(auto.next_batch().inputs, expected.inputs)
    assert not ForecastWindows.carries_state


@pytest.mark.parametrize("backbone", ["lstm", "gru"])
@pytest.mark.parametrize("mode", ["direct", "autoregressive"])
def test_both_modes_run_with_the_right_shapes(tmp_path, backbone, mode):
    config = forecast_config(tmp_path / "unused.csv", horizon=5, forecast_mode=mode)
    config.model.backbone = backbone
    torch.manual_seed(0)
    model = build_forecaster(config, 3).eval()
    history = torch.randn(2, 7, 3)  # (B, T, C)
    predictions, _ = model(history)
    assert predictions.shape == ((2, 5, 3) if mode == "direct" else (2, 7, 3))
    with torch.no_grad():
        forecast = model.forecast(history)
    assert forecast.shape == (2, 5, 3)
    if mode == "autoregressive":  # stepping with the state = re-running the window with the predictions appended
        sequence = history
        for _ in range(5):
            with torch.no_grad():
                sequence = torch.cat([sequence, model(sequence)[0][:, -1:]], dim=1)
        torch.testing.assert_close(forecast, sequence[:, 7:], atol=1e-5, rtol=1e-5)
    assert model.embedding.in_features == 3  # the named input projection a checkpoint's backbone loads beside


# ------------------------------------------------------------------ the CLI
def test_train_eval_predict_on_builtin_sines(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "run"
    flags = ["--task", "forecast", "--data", "builtin:sines", "--block-size", "24", "--horizon", "6",
             "--hidden-size", "16", "--batch-size", "8", "--max-steps", "6", "--eval-interval", "3",
             "--threads", "1", "--quiet"]
    assert main(["train", "--out", str(run), *flags]) == 0
    saved = json.loads((run / "scaler.json").read_text())
    assert saved["columns"] == ["value"] and saved["season"] == 120
    capsys.readouterr()
    assert main(["eval", str(run), "--data", "builtin:sines", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    for prefix in ("", "naive_", "seasonal_naive_"):
        for name in ("mae", "rmse", "mase"):
            assert math.isfinite(metrics[prefix + name])
    assert metrics["windows"] == 400 - 6 + 1
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last_eval = [record for record in records if record["kind"] == "eval"][-1]
    assert metrics["mae"] == pytest.approx(last_eval["mae"], abs=1e-5)  # the trainer's own held-out part
    assert metrics["seasonal_naive_mae"] < metrics["naive_mae"]  # the season is right
    assert main(["predict", str(run), "--file", "builtin:sines"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and all(math.isfinite(float(line)) for line in lines)
    assert (tmp_path / "builtin-sines.forecast.png").stat().st_size > 1000
    tuned = tmp_path / "tuned"  # fine-tuning: the backbone (and the fitting embedding) from run, frozen
    assert main(["train", "--out", str(tuned), *flags, "--init-from", str(run), "--freeze-backbone", "true",
                 "--hidden-size", "32", "--learning-rate", "0.05"]) == 0
    source, target = load_checkpoint(run).model, load_checkpoint(tuned).model
    assert target.backbone.hidden_size == 16  # the source's architecture, not this run's --hidden-size
    for name, value in source.backbone.state_dict().items():
        assert torch.equal(value, target.backbone.state_dict()[name])
    assert not torch.equal(source.head.weight, target.head.weight)
    auto = tmp_path / "auto"
    assert main(["train", "--out", str(auto), *flags, "--forecast-mode", "autoregressive", "--data", "builtin:ball",
                 "--backbone", "gru"]) == 0
    assert main(["eval", str(auto), "--data", "builtin:ball", "--split", "train", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["naive_mae"] > 0


def test_cli_bad_forecast_inputs_end_in_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("x\n1\n2\nabc\n" + "\n".join(["3"] * 40) + "\n", encoding="utf-8")
    for data, expected in ((str(bad), "line 4, column 'x': 'abc' is not a number"),
                           ("builtin:nothing", "unknown built-in series")):
        capsys.readouterr()
        code = main(["train", "--task", "forecast", "--data", data, "--out", str(tmp_path / "run"),
                     "--max-steps", "2", "--quiet"])
        error = capsys.readouterr().err
        assert code == 2 and error.count("\n") == 1 and expected in error, error


def test_train_and_predict_on_a_csv_with_dates(tmp_path, capsys):
    steps = np.arange(200)
    rows = [f"2024-01-01T{step:04d},{math.sin(step / 5):.4f},{math.cos(step / 7):.4f}" for step in steps]
    data = tmp_path / "sensor.csv"
    data.write_text("when,a,b\n" + "\n".join(rows) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--task", "forecast", "--data", str(data), "--out", str(run), "--block-size", "16",
                 "--horizon", "3", "--season", "10", "--hidden-size", "8", "--batch-size", "4", "--max-steps", "3",
                 "--threads", "1", "--quiet"]) == 0
    assert json.loads((run / "scaler.json").read_text())["season"] == 10  # given, not guessed
    capsys.readouterr()
    assert main(["predict", str(run), "--file", str(data), "--json"]) == 0
    steps_out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(steps_out) == 3 and all(len(step) == 2 for step in steps_out)
    assert (tmp_path / "sensor.csv.forecast.png").is_file()
    assert main(["predict", str(run), str(data)]) == 0  # a path as an input works too
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(len(line.split(",")) == 2 for line in lines)  # the same 3 steps, as text
    other = tmp_path / "other.csv"
    other.write_text("when,a\n" + "\n".join(row.rsplit(",", 1)[0] for row in rows) + "\n", encoding="utf-8")
    assert main(["predict", str(run), "--file", str(other)]) == 2
    assert "the model was trained on a, b" in capsys.readouterr().err
