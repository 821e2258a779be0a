"""Forecasting: metrics against hand-computed values, CSV reading, scaling, windows, both modes, bad inputs, the CLI."""
import json
import math
import re
import warnings

import numpy as np
import pytest
import scipy.stats
import torch

from seqlab.cli import main
from seqlab.config import Config
from seqlab.data.timeseries import (ForecastWindows, Scaler, calendar_features, clearly_best, conformal_margin,
                                    forecast_metrics, future_times, guess_season, history_length, interval_score,
                                    naive_scale, read_series, split_point)
from seqlab.errors import SeqlabError
from seqlab.models.forecast_baselines import (EtsFit, ets_candidates, ets_forecasts, ets_paths, naive_forecasts,
                                              seasonal_naive_forecasts)
from seqlab.models.forecaster import MEDIAN, build_forecaster
from seqlab.tasks import forecast as forecast_task
from seqlab.tasks.forecast import METHODS, ForecastTask
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
    ("x,y\n1,2\n2,nan\n", {"missing": "error"}, "line 3, column 'y' is missing \\(nan\\)"),
    ("x,y\n1,2\n2,\n", {"missing": "error"}, "line 3, column 'y' is missing \\(empty\\)"),
    ("x,y\n1,\n2,NA\n", {}, "column 'y' has no values"),
    ("x,y\n1,2\n2,inf\n", {}, "line 3, column 'y' is inf"),
    ("x,y\n1,2\n2,3\n", {"missing": "maybe"}, "task.missing must be one of interpolate, error"),
    ("when,y\n2020-01-03,2\n2020-01-02,3\n2020-01-04,3\n", {}, "time column 'when' does not increase at line 3 "
     "\\(2020-01-02 after 2020-01-03\\)"),
    ("t,y\n3,2\n1,3\n2,3\n", {"time_column": "t"}, "time column 't' does not increase at line 3"),
    ("t,load\n0,2\n1,3\n2,3\n9,4\n4,5\n", {}, "time column 't' does not increase at line 6 \\(4 after 9\\)"),
    ("x,y\n1,2\n\n2,3\n", {}, "line 3 is empty"),
    ("x,y\n1,2\n2,3,4\n", {}, "line 3 has 3 cells"),
    ("t,x\n1,2\n", {"target_columns": "t", "time_column": "t"}, "time column"),
    ("t,a,a\n1,2,3\n2,3,4\n", {}, "columns 1 and 2 \\(counting from 0\\) are both named 'a'; rename one, or leave one "
                                 "out with --target-columns$"),
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


def test_time_column_is_recognised_and_never_forecast(tmp_path):
    index = tmp_path / "index.csv"  # t = 0, 1, 2, ... is a time index, not a second series
    index.write_text("t,load\n" + "".join(f"{step},{(step * 7) % 5 + 0.5}\n" for step in range(20)), encoding="utf-8")
    series = read_series(index)
    assert series.columns == ["load"] and series.values[:3, 0].tolist() == [0.5, 2.5, 4.5]
    years = tmp_path / "years.csv"  # evenly spaced years without a header
    years.write_text("".join(f"{1949 + step},{step * step}\n" for step in range(6)), encoding="utf-8")
    assert read_series(years).columns == ["1"]
    counts = tmp_path / "counts.csv"  # increasing integers at uneven steps are data, not time
    counts.write_text("a,b\n1,5\n2,6\n4,7\n9,8\n", encoding="utf-8")
    assert read_series(counts).columns == ["a", "b"]
    dated = tmp_path / "dated.csv"
    dated.write_text("month,sales\n1949-01,112\n1949-02,118\n1949-03,132\n", encoding="utf-8")
    assert read_series(dated).columns == ["sales"]
    labels = tmp_path / "labels.csv"  # labels that are not dates are still the time column, unchecked
    labels.write_text("quarter,y\nQ1,1\nQ2,2\nQ3,4\n", encoding="utf-8")
    assert read_series(labels).columns == ["y"]
    quarters = tmp_path / "quarters.csv"  # quarters as statistics offices label them are times: checked
    quarters.write_text("period,y\n1990 Q3,1\n1990 Q4,2\n1990 Q2,4\n", encoding="utf-8")
    with pytest.raises(SeqlabError, match="time column 'period' does not increase at line 4 \\(1990 Q2 after 1990 Q4"):
        read_series(quarters)
    gapped = tmp_path / "gapped.csv"  # a header that names time: the column is time, gaps in it or not
    gapped.write_text("Year,rain\n1949,3\n1950,5\n1952,4\n1953,6\n", encoding="utf-8")
    assert read_series(gapped).columns == ["rain"]
    second = tmp_path / "second.csv"  # wherever it stands
    second.write_text("load,date\n3,2020-01-01\n5,2020-01-02\n4,2020-01-03\n", encoding="utf-8")
    assert read_series(second).columns == ["load"] and read_series(second).values[:, 0].tolist() == [3, 5, 4]
    assert read_series(second, time_column="").columns == ["load"]
    lone = tmp_path / "lone.csv"  # a file of one column is a series, whatever its name
    lone.write_text("t\n1\n2\n4\n", encoding="utf-8")
    assert read_series(lone).columns == ["t"]


def test_calendar_parts_and_row_names_are_time_not_series(tmp_path):
    """R writes a row-name column first ("", 1, 2, ...); a month and a day in two named columns increase read
    together, though the day falls back at each new month; none of them is forecast."""
    rows = [(month, day) for month in (5, 6) for day in range(1, 31)]
    air = tmp_path / "airquality.csv"
    air.write_text('"","Ozone","Temp","Month","Day"\n' + "".join(
        f'"{line}",{"NA" if line == 3 else line % 7 + 1},{60 + line % 5},{month},{day}\n'
        for line, (month, day) in enumerate(rows, start=1)), encoding="utf-8")
    series = read_series(air)
    assert series.columns == ["Ozone", "Temp"] and series.interpolated == {"Ozone": 1}
    assert series.values[:4, 0].tolist() == [2, 3, 4, 5]  # line 3's gap filled halfway between 3 and 5
    swapped = tmp_path / "swapped.csv"  # two rows out of order
    swapped.write_text("".join(air.read_text().splitlines(keepends=True)[:1])
                       + "".join(f'"{line}",1,60,{month},{day}\n' for line, (month, day)
                                 in enumerate([(5, 1), (5, 3), (5, 2), (5, 4)], start=1)), encoding="utf-8")
    with pytest.raises(SeqlabError, match="time columns 'Month', 'Day', read together, do not increase at line 4 "
                                          "\\(5, 2 after 5, 3\\)"):
        read_series(swapped)
    dated = tmp_path / "dated.csv"  # row names before a named date column: neither is a series
    dated.write_text(',date,day,rate\n1,800102,wednesday,0.58\n2,800103,thursday,0.57\n3,800104,friday,0.59\n',
                     encoding="utf-8")
    assert read_series(dated).columns == ["rate"]


@pytest.mark.parametrize("layout", ["%d/%m/%Y", "%d.%m.%Y", "%m/%d/%Y", "%Y-%m-%d"])
def test_dates_written_day_first_or_month_first_increase(tmp_path, layout):
    """A column of dates is read in one format: 13/01/2020 after 12/01/2020 is the next day, not a step back to
    December (day first, as British and European files write dates); a row out of order is still refused."""
    import datetime

    days = [datetime.date(2020, 1, 1) + datetime.timedelta(days=step) for step in range(40)]
    path = tmp_path / "daily.csv"
    path.write_text("date,load\n" + "".join(f"{day.strftime(layout)},{step % 7}\n" for step, day in enumerate(days)),
                    encoding="utf-8")
    assert read_series(path).values[:, 0].tolist() == [step % 7 for step in range(40)]
    days[20], days[21] = days[21], days[20]
    path.write_text("date,load\n" + "".join(f"{day.strftime(layout)},{step % 7}\n" for step, day in enumerate(days)),
                    encoding="utf-8")
    with pytest.raises(SeqlabError, match="time column 'date' does not increase at line 23"):
        read_series(path)


def test_a_file_in_long_format_is_read_series_by_series_side_by_side(tmp_path):
    """Several series stacked, one row per series and time (``symbol,date,price``, as Vega's stocks.csv and
    Nixtla's unique_id,ds,y lay them out): the labels that repeat name the series, which are read side by side at
    each time; a time a series lacks is missing (interpolated and counted, or refused)."""
    blocks = tmp_path / "stocks.csv"  # series after series; B lacks 2000-03
    blocks.write_text("symbol,date,price\nA,2000-01-01,1\nA,2000-02-01,2\nA,2000-03-01,3\nA,2000-04-01,4\n"
                      "B,2000-01-01,10\nB,2000-02-01,20\nB,2000-04-01,40\n", encoding="utf-8")
    series = read_series(blocks)
    assert series.columns == ["A", "B"] and series.stacked_by == ["symbol"]
    assert series.values.tolist() == [[1, 10], [2, 20], [3, 30], [4, 40]] and series.interpolated == {"B": 1}
    with pytest.raises(SeqlabError, match="in long format \\(series by 'symbol'\\), 'B' has no value at date "
                                          "2000-03-01 \\(line 4 has that time\\); fill it in, or drop --missing error"):
        read_series(blocks, missing="error")
    with pytest.raises(SeqlabError, match="column 'symbol' names the series of a file in long format"):
        read_series(blocks, target_columns="symbol,price")
    interleaved = tmp_path / "shops.csv"  # time after time, two measurements per series, ids in any order
    interleaved.write_text("t,shop,sales,visits\n1,north,5,50\n1,south,7,70\n2,south,8,80\n2,north,6,60\n"
                           "3,north,4,40\n3,south,9,90\n", encoding="utf-8")
    series = read_series(interleaved)
    assert series.columns == ["north sales", "north visits", "south sales", "south visits"]
    assert series.values.tolist() == [[5, 50, 7, 70], [6, 60, 8, 80], [4, 40, 9, 90]] and not series.interpolated
    assert read_series(interleaved, target_columns="visits").columns == ["north", "south"]
    unsorted = tmp_path / "unsorted.csv"  # a series whose own rows go back in time is refused as before
    unsorted.write_text("symbol,date,price\nA,2000-02-01,1\nA,2000-01-01,2\nB,2000-01-01,3\nB,2000-02-01,4\n",
                        encoding="utf-8")
    with pytest.raises(SeqlabError, match="time column 'date' does not increase at line 3"):
        read_series(unsorted)
    numbered = tmp_path / "sales.csv"  # series named by two columns of integers (store, item), the fewest that do
    numbered.write_text("date,store,item,sales,promo\n" + "".join(
        f"2024-01-0{day},{store},{item},{day * store + item},{(day + item) % 2}\n"
        for day in (1, 2, 3) for store in (1, 2) for item in (7, 8)), encoding="utf-8")
    series = read_series(numbered, target_columns="sales")
    assert series.stacked_by == ["store", "item"] and series.columns == ["1 7", "1 8", "2 7", "2 8"]
    assert series.values.tolist() == [[8, 9, 9, 10], [9, 10, 11, 12], [10, 11, 13, 14]]
    cities = tmp_path / "cities.csv"  # a label constant within each series names it too; one that varies is data
    cities.write_text("city,country,date,temp,sky\n" + "".join(
        f"{city},{country},2024-01-0{day},{day + len(city)},{'rain' if (day + len(city)) % 2 else 'sun'}\n"
        for city, country in (("Leeds", "UK"), ("Lyon", "FR")) for day in (1, 2, 3, 4)), encoding="utf-8")
    with pytest.raises(SeqlabError, match="column 'sky' holds text, not numbers .* --target-columns temp$"):
        read_series(cities)
    series = read_series(cities, target_columns="temp")
    assert series.stacked_by == ["city", "country"] and series.columns == ["Leeds UK", "Lyon FR"]
    hourly = tmp_path / "hourly.csv"  # an hour repeated where clocks go back is not two series by the sky's label
    hourly.write_text("time,temp,sky\n" + "".join(f"2024-10-27 {hour:02d}:00,{hour},{'rain' if hour % 3 else 'sun'}\n"
                                                   for hour in (0, 1, 2, 2, 3, 4, 5, 6)), encoding="utf-8")
    with pytest.raises(SeqlabError, match="time column 'time' does not increase at line 5"):
        read_series(hourly)
    long = tmp_path / "long.csv"  # the forecaster says how it read the file, once (the trainer prints its notes)
    long.write_text("id,t,y\n" + "".join(f"{name},{step},{(step * mult) % 7 if mult else 'NA'}\n"
                                          for name, mult in (("a", 3), ("c", 0), ("b", 5)) for step in range(40)),
                    encoding="utf-8")
    task = ForecastTask(forecast_config(long, horizon=2))  # c has no value: left out, and named (R's NA rows)
    task.load_data()
    assert task.columns == ["a", "b"] and task.series.values[:3].tolist() == [[0, 0], [3, 5], [6, 3]]
    assert task.series.empty_rows == ["c"] and not task.series.interpolated
    assert [note for note in task.notes if "long format" in note] == [
        f"forecast: {long} is in long format: 2 series by 'id', read side by side, one row per time (a, b); 1 series "
        "without a value left out (c)"]
    long.write_text("id,t,y\n" + "".join(f"{name},{step},\n" for name in "ab" for step in range(4)), encoding="utf-8")
    with pytest.raises(SeqlabError, match="in long format \\(series by 'id'\\), no series has a value; fill"):
        read_series(long)


def test_a_long_format_column_without_a_name_is_named_by_its_series_alone(tmp_path):
    """A value column with an empty header (as R writes a row-name column) is named by its series' id alone, not
    with a space after it."""
    path = tmp_path / "long.csv"
    path.write_text("id,date,,x\n" + "".join(f"{series},2020-01-0{day},{day},{day * 2}\n"
                                              for day in range(1, 7) for series in "ab"), encoding="utf-8")
    assert read_series(path).columns == ["a", "a x", "b", "b x"]


def test_a_semicolon_separated_file_with_decimal_commas(tmp_path):
    """As a spreadsheet saves CSV where the comma is the decimal mark: cells split by semicolons, 12,5 is 12.5 and
    1.234,5 is 1234.5; a comma-separated file keeps reading commas as separators."""
    path = tmp_path / "load.csv"
    path.write_text("Datum;Last;Temperatur\n01.01.2020;1.234,5;-3,1\n02.01.2020;1.300,0;2\n03.01.2020;980,25;0,5\n",
                    encoding="utf-8")
    series = read_series(path)
    assert series.columns == ["Last", "Temperatur"]
    assert series.values.tolist() == [[1234.5, -3.1], [1300.0, 2.0], [980.25, 0.5]]
    plain = tmp_path / "plain.csv"  # a semicolon inside a comma-separated file's cell is the cell's
    plain.write_text('t,x,note\n1,2,"a;b"\n2,3,"c;d"\n', encoding="utf-8")
    assert read_series(plain, target_columns="x").values[:, 0].tolist() == [2, 3]


def test_a_date_and_a_time_of_day_in_two_columns_are_read_together(tmp_path):
    """Instruments and weather files write the date and the time of day in two columns (TMY3: "01/01/1988,01:00"
    .. "24:00"): neither is forecast, and they increase read together, though the date repeats on every hour of a
    day; a unit after a header name ("Date (MM/DD/YYYY)") does not hide that it names time."""
    rows = [(f"01/{day:02d}/1988", f"{hour:02d}:00") for day in (1, 2) for hour in range(1, 25)]
    path = tmp_path / "tmy.csv"
    path.write_text("Date (MM/DD/YYYY),Time (HH:MM),Dry-bulb (C)\n"
                    + "".join(f"{date},{time},{index % 9}\n" for index, (date, time) in enumerate(rows)),
                    encoding="utf-8")
    series = read_series(path)
    assert series.columns == ["Dry-bulb (C)"] and series.values[:, 0].tolist() == [index % 9 for index in range(48)]
    plain = tmp_path / "plain.csv"  # unnamed: a first column of dates and a column of times of day after it
    plain.write_text("when,clock,load\n" + "".join(
        f"2020-03-0{1 + index // 3},{8 + index % 3}:30:00,{index}\n" for index in range(6)), encoding="utf-8")
    assert read_series(plain).columns == ["load"]
    rows[30] = rows[29]  # an hour written twice: refused
    path.write_text("Date (MM/DD/YYYY),Time (HH:MM),Dry-bulb (C)\n"
                    + "".join(f"{date},{time},1\n" for date, time in rows), encoding="utf-8")
    with pytest.raises(SeqlabError, match="'Date \\(MM/DD/YYYY\\)', 'Time \\(HH:MM\\)', read together, do not "
                                          "increase at line 32 \\(01/02/1988, 06:00 after 01/02/1988, 06:00\\)"):
        read_series(path)


def test_an_hour_column_abbreviated_is_time_not_the_series_of_a_long_format(tmp_path):
    """ISLR's Bikeshare writes each hour's row under a day (repeating 24 times) and an hour headed "hr": read
    together they are the clock, one hourly series; "hr" was not known as time, so the file was read in long
    format, as 24 series, one per hour of the day."""
    path = tmp_path / "bikes.csv"
    path.write_text("day,hr,bikers\n" + "".join(f"{day},{hour},{(day * 24 + hour) % 17}\n"
                                                 for day in range(1, 6) for hour in range(24)), encoding="utf-8")
    series = read_series(path)
    assert series.columns == ["bikers"] and not series.stacked_by
    assert series.values[:, 0].tolist() == [(day * 24 + hour) % 17 for day in range(1, 6) for hour in range(24)]


def test_dates_written_as_integers_are_time_not_a_series(tmp_path):
    """A first column of dates as integers, as finance files write them (20200131; 192607 for a month in Kenneth
    French's factor files, under an empty header), is time: read as dates, checked to increase, never forecast.
    Before, it was forecast as one more series, as its steps (20200131 -> 20200201) are not even. Integers that
    are no dates (month 34), or too few 6-digit ones to tell months from counts, stay data."""
    daily = tmp_path / "daily.csv"
    days = [f"202001{day:02d}" for day in range(20, 32)] + [f"202002{day:02d}" for day in range(1, 9)]
    daily.write_text("periode,ventes\n" + "".join(f"{day},{index % 7 + 0.5}\n" for index, day in enumerate(days)),
                     encoding="utf-8")
    series = read_series(daily)
    assert series.columns == ["ventes"] and series.time_name == "periode" and series.times == days
    factors = tmp_path / "F-F_Research_Data_Factors.csv"
    months = [f"{1926 + (month + 6) // 12}{(month + 6) % 12 + 1:02d}" for month in range(18)]  # 192607 .. 192712
    factors.write_text(",Mkt-RF,SMB,RF\n" + "".join(f"{month},{index / 10:.2f},{-index / 7:.2f},0.22\n"
                                                    for index, month in enumerate(months)), encoding="utf-8")
    series = read_series(factors)
    assert series.columns == ["Mkt-RF", "SMB", "RF"] and series.times == months
    assert future_times(series.times, 2) == ["192801", "192802"]
    days[3], days[4] = days[4], days[3]
    daily.write_text("periode,ventes\n" + "".join(f"{day},{index}\n" for index, day in enumerate(days)),
                     encoding="utf-8")
    with pytest.raises(SeqlabError, match="time column 'periode' does not increase at line 6"):
        read_series(daily)
    counts = tmp_path / "counts.csv"  # 6-digit measurements, one of them no month: data, with a row index
    counts.write_text("id,visits\n" + "".join(f"{value},{index}\n" for index, value in
                                               enumerate([123401, 123402, 123434, 123440, 123441, 123450, 123460])),
                      encoding="utf-8")
    assert read_series(counts).columns == ["id", "visits"]
    few = tmp_path / "few.csv"  # five 6-digit integers that could be months are too few to say so
    few.write_text("a,b\n" + "".join(f"{value},{index}\n" for index, value in
                                       enumerate([200001, 200003, 200004, 200007, 200012])), encoding="utf-8")
    assert read_series(few).columns == ["a", "b"]


def test_time_column_none_takes_the_rows_in_order_as_they_stand(tmp_path):
    """A column that names time but repeats (the year of weekly rows, as ISLR's Weekly data has it) is refused as
    going back in time, naming the way out: --time-column none reads the rows in the file's order, and every
    numeric column is data (the year too, unless --target-columns leaves it out)."""
    path = tmp_path / "weekly.csv"
    path.write_text("Year,Volume\n" + "".join(f"{1990 + week // 52},{week % 11 + 0.5}\n" for week in range(120)),
                    encoding="utf-8")
    with pytest.raises(SeqlabError, match="time column 'Year' does not increase at line 3 \\(1990 after 1990\\); "
                                          "sort the rows by time or fix the value, or if the rows are in time order "
                                          "as they stand, pass --time-column none \\(and --target-columns\\)$"):
        read_series(path)
    assert read_series(path, time_column="none").columns == ["Year", "Volume"]
    series = read_series(path, time_column="none", target_columns="Volume")
    assert series.values[:, 0].tolist() == [week % 11 + 0.5 for week in range(120)] and not series.times


def test_notes_above_the_table_are_named_as_such(tmp_path, capsys):
    """A file that starts with a line of notes (TMY3 files start with the station's number, name and place) is
    refused saying so (such a line may as well be a header one cell short); notes that an empty line ends are
    skipped. A stray cell in one row is still named by its line."""
    path = tmp_path / "station.csv"
    path.write_text('723170,"GREENSBORO",NC,-5.0\n' + "date,temperature,humidity,wind,rain,sun\n" + "".join(
        f"2020-01-{day:02d},{day},{50 + day},3,0,1\n" for day in range(1, 21)), encoding="utf-8")
    with pytest.raises(SeqlabError, match="station.csv: the first line has 4 cells and most lines after 6: if line "
                                          "above line 2 are notes, not the table, delete them so that the file starts "
                                          "with its header$"):
        read_series(path)
    lines = path.read_text().split("\n")
    path.write_text("\n".join(lines[1:]))
    assert read_series(path).columns == ["temperature", "humidity", "wind", "rain", "sun"]
    path.write_text("\n".join([lines[0], "", *lines[1:]]))  # an empty line ends the notes: they are skipped
    series = read_series(path)
    assert series.notes_lines == 2 and series.columns == ["temperature", "humidity", "wind", "rain", "sun"]
    assert series.values[0].tolist() == [1, 51, 3, 0, 1] and series.times[0] == "2020-01-01"
    assert main(["train", "--task", "forecast", "--data", str(path), "--out", str(tmp_path / "run"), "--horizon", "2",
                 "--block-size", "2", "--max-steps", "1", "--target-columns", "temperature", "--threads", "1"]) == 0
    assert "station.csv: its first 2 lines, above an empty line, are notes, not the table: skipped" in (
        capsys.readouterr().err)


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zip"])
def test_a_compressed_file_is_read_as_the_text_inside(tmp_path, kind):
    """A CSV compressed whole (series.csv.gz, or a download's .zip of one file) reads as the CSV inside it, told by
    its first bytes, not its name; a damaged one, or a zip of several files, is refused naming what to do."""
    import bz2
    import gzip
    import lzma
    import zipfile

    text = "t,load\n" + "".join(f"{step},{step % 5}\n" for step in range(30))
    path = tmp_path / "series.data"
    if kind == "zip":
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("series.csv", text)
    else:
        path.write_bytes({"gzip": gzip.compress, "bzip2": bz2.compress, "xz": lzma.compress}[kind](text.encode()))
    assert read_series(path).values[:, 0].tolist() == [step % 5 for step in range(30)]
    damaged = tmp_path / "damaged.data"
    damaged.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2])
    with pytest.raises(SeqlabError, match=f"damaged.data is {kind}-compressed but cannot be decompressed"):
        read_series(damaged)
    if kind == "zip":
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr("notes.txt", "hello")
        with pytest.raises(SeqlabError, match="is a zip archive of 2 files \\(series.csv, notes.txt\\); extract "
                                              "the one to read and pass it"):
            read_series(path)


def test_times_with_utc_offsets_are_read_and_checked(tmp_path):
    """ISO 8601 times with a UTC offset (as loggers and APIs write them: +01:00, Z), the offset changing when
    clocks go forward, are the time column: read (in UTC where the offsets differ), checked to increase, never
    forecast; they crashed the reader before (pandas hands back Timestamps, not numbers)."""
    path = tmp_path / "flow.csv"
    hours = ["2022-03-27T00:00:00+01:00", "2022-03-27T01:00:00+01:00", "2022-03-27T03:00:00+02:00",
             "2022-03-27T04:00:00+02:00"]
    path.write_text("Time,flow\n" + "".join(f"{hour},{index}\n" for index, hour in enumerate(hours)),
                    encoding="utf-8")
    series = read_series(path)
    assert series.columns == ["flow"] and series.values[:, 0].tolist() == [0, 1, 2, 3] and series.times == hours
    hours[2], hours[3] = hours[3], hours[2]
    path.write_text("Time,flow\n" + "".join(f"{hour},{index}\n" for index, hour in enumerate(hours)),
                    encoding="utf-8")
    with pytest.raises(SeqlabError, match="time column 'Time' does not increase at line 5"):
        read_series(path)


def test_numbers_written_with_currency_thousands_and_percent_signs_are_numbers(tmp_path):
    """As banks, shops and spreadsheets export a comma-separated file (Nasdaq's price history: "$182.31"): a
    currency symbol, commas between thousands in a quoted cell and a percent sign write a number, read in the unit
    written; what is not a number that way is still refused."""
    path = tmp_path / "prices.csv"
    path.write_text('Date,Close/Last,Volume,Change\n01/02/2024,$185.64,"82,488,674",1.5%\n'
                    '01/03/2024,$184.25,"58,414,460",-0.75%\n01/04/2024,"$1,181.91","71,983,570",-1.3%\n',
                    encoding="utf-8")
    series = read_series(path)
    assert series.columns == ["Close/Last", "Volume", "Change"]
    assert series.values.tolist() == [[185.64, 82488674, 1.5], [184.25, 58414460, -0.75], [1181.91, 71983570, -1.3]]
    path.write_text('t,price\n1,$185.64\n2,"1,23"\n3,$184\n', encoding="utf-8")  # 1,23: no thousands
    with pytest.raises(SeqlabError, match="line 3, column 'price': '1,23' is not a number"):
        read_series(path)


def test_tab_separated_decimal_commas_mac_line_ends_and_a_units_row(tmp_path):
    """A tab-separated file from a spreadsheet set to German writes decimal commas (12,5), read as in semicolon files;
    where every comma could be a thousands separator (1,234), nothing says which, and the cell is refused. Lines
    that end in a carriage return alone (Excel for Mac) are lines. A second line of text under the header (units,
    as instruments write them) joins the names (temp (degC)), where it was refused: the message was that the
    header's first name is not a number."""
    path = tmp_path / "umsatz.tsv"
    path.write_text("Datum\tUmsatz\tMenge\n01.01.2020\t12,5\t1.234,5\n02.01.2020\t13\t0,125\n"
                    "03.01.2020\t-1,25\t7\n", encoding="utf-8")
    assert read_series(path).values.tolist() == [[12.5, 1234.5], [13.0, 0.125], [-1.25, 7.0]]
    path.write_text("t\tx\n1\t1,234\n2\t2,345\n3\t3,456\n", encoding="utf-8")
    with pytest.raises(SeqlabError, match="line 2, column 'x': '1,234' could be 1234 or 1.234; write the numbers"):
        read_series(path)
    mac = tmp_path / "mac.csv"  # Excel for Mac's "CSV (Macintosh)": lines end in a carriage return alone
    mac.write_bytes(b"date,sales\r2020-01-01,1.5\r2020-01-02,2.5\r2020-01-03,3\r")
    assert read_series(mac).values.tolist() == [[1.5], [2.5], [3.0]] and read_series(mac).times[0] == "2020-01-01"
    units = tmp_path / "logger.csv"
    units.write_text("date,temp,rain\n,degC,mm\n" + "".join(f"2020-01-{day:02d},{day % 7},{day % 3}\n"
                                                            for day in range(1, 11)), encoding="utf-8")
    series = read_series(units)
    assert series.columns == ["temp (degC)", "rain (mm)"] and series.time_name == "date"
    assert series.values[:2].tolist() == [[1, 1], [2, 2]] and series.times[0] == "2020-01-01"
    units.write_text(units.read_text(encoding="utf-8").replace("2020-01-05,5,2", "2020-01-05,5,x"), encoding="utf-8")
    with pytest.raises(SeqlabError, match="line 7, column 'rain \\(mm\\)'"):  # the file's line, counting both
        read_series(units)
    units.write_text("date,temp,rain\n,degC\n2020-01-01,1,2\n2020-01-02,2,3\n", encoding="utf-8")
    with pytest.raises(SeqlabError, match="line 2 \\(',degC'\\) is text under the header, as units are written, but"):
        read_series(units)


@pytest.mark.parametrize("index_name, start", [("", 0), ("Unnamed: 0", 0), ('""', 1)])
def test_row_numbers_beside_a_time_column_are_neither_data_nor_the_time(tmp_path, index_name, start):
    """DataFrame.to_csv writes its index (0, 1, 2, ...) before the columns, R's write.csv its row names: beside a
    date column they hid it from predict (which wrote step numbers), and a long-format file was refused, its
    row numbers read as the times that do not increase."""
    single = tmp_path / "sales.csv"
    single.write_text(f"{index_name},date,sales\n" + "".join(f"{start + day},2020-01-{day + 1:02d},{day % 5}\n"
                                                            for day in range(10)), encoding="utf-8")
    series = read_series(single)
    assert series.columns == ["sales"] and series.time_name == "date" and series.times[0] == "2020-01-01"
    assert future_times(series.times, 1) == ["2020-01-11"]
    stacked = tmp_path / "stores.csv"
    stacked.write_text(f"{index_name},when,store,sales\n" + "".join(
        f"{start + 2 * day + store},2020-01-{day + 1:02d},{'AB'[store]},{day + 10 * store}\n"
        for day in range(10) for store in range(2)), encoding="utf-8")
    series = read_series(stacked)
    assert series.columns == ["A", "B"] and series.stacked_by == ["store"] and series.time_name == "when"
    assert series.values[:2].tolist() == [[0, 10], [1, 11]]


def test_eurostat_tsv_is_read_with_its_labels_split_and_its_flags_dropped(tmp_path):
    """Eurostat's TSV: the first cell names the comma-joined label columns and the dimension across (geo\\TIME_PERIOD,
    or geo\\time in older files), then tabs; values carry flags after a space ("13.1 p", provisional) and ":" is
    missing (": c", confidential). Read as a series per country over the times across the header, the flags
    dropped; a row with no value is left out, and months (2020-01) read as dates."""
    path = tmp_path / "estat_demo.tsv"
    rows = {"AT": ["12.5 ", "13.1 p", ": ", "14.0 e", "14.2 ", "15.0 "],
            "BE": ["20.0 ", "21.0 ", "22.5 ", ": c", "23.5 bep", "24.0 "],
            "EU27_2020": [": "] * 6, "DE": ["30.0 ", "31.0 ", "32.0 ", "33.0 ", "34.0 ", "35.5 "]}
    path.write_text("freq,unit,geo\\TIME_PERIOD\t" + "\t".join(f"{year} " for year in range(2015, 2021)) + "\n"
                    + "".join(f"A,THS_T,{geo}\t" + "\t".join(cells) + "\n" for geo, cells in rows.items()),
                    encoding="utf-8")
    series = read_series(path)
    assert series.columns == ["AT", "BE", "DE"] and series.empty_rows == ["EU27_2020"] and series.time_name == "year"
    assert series.times == [str(year) for year in range(2015, 2021)] and series.interpolated == {"AT": 1, "BE": 1}
    np.testing.assert_allclose(series.values, [[12.5, 20, 30], [13.1, 21, 31], [13.55, 22.5, 32], [14, 23, 33],
                                               [14.2, 23.5, 34], [15, 24, 35.5]])
    with pytest.raises(SeqlabError, match="line 2, 'AT' in '2017' is missing"):
        read_series(path, missing="error")
    monthly = tmp_path / "estat_monthly.tsv"  # an older file: geo\time, months, two labels that vary
    monthly.write_text("unit,geo\\time\t" + "\t".join(f"2020-{month:02d} " for month in range(1, 7)) + "\n"
                       + "".join(f"{unit},{geo}\t" + "\t".join(f"{index * 10 + month}.5 " for month in range(1, 7))
                                 + "\n" for index, (unit, geo) in enumerate([("PC", "AT"), ("PC", "BE"), ("NR", "AT")])),
                       encoding="utf-8")
    series = read_series(monthly)
    assert series.columns == ["PC / AT", "PC / BE", "NR / AT"] and series.times[0] == "2020-01"
    assert series.values[:, 2].tolist() == [20 + month + 0.5 for month in range(1, 7)]


def test_a_table_with_its_times_across_the_header_is_read_transposed_not_sideways(tmp_path, capsys):
    """The World Bank's and Eurostat's layout: a series on each row (a country, its code), the years across the
    header, below notes that an empty line ends, as the World Bank's download has (skipped). Read as usual it became one series per year over the countries, a forecast of nothing; it is read as
    one row per year, a series per country, named by the first label that tells the rows apart. A row without a
    value is left out and named; ".." (the World Bank's missing value) is interpolated; a cell that is not a
    number is refused with its line and its series. Columns named by years over rows of days (day,2019,2020) and
    months across years (Year,Jan,Feb) are series, read as before."""
    years = list(range(1990, 1996))
    bank = tmp_path / "API_SP.POP.TOTL.csv"
    countries = [("Aruba", "ABW"), ("Not classified", "INX"), ("Angola", "AGO")]

    def cell(index, code, year):
        return "" if code == "INX" else ".." if (code, year) == ("AGO", 1992) else f"{index + year / 1000:.3f}"

    bank.write_text('"Country Name","Country Code","Indicator Name",' + ",".join(f'"{year} [YR{year}]"' for year in years)
                    + ",\n" + "".join(f'"{name}","{code}","Population, total",'
                                      + ",".join(f'"{cell(index, code, year)}"' for year in years) + ",\n"
                                      for index, (name, code) in enumerate(countries)), encoding="utf-8")
    series = read_series(bank)
    assert series.columns == ["Aruba", "Angola"] and series.empty_rows == ["Not classified"] and series.transposed
    assert series.time_name == "year" and series.times == [str(year) for year in years]
    expected = np.array([[year / 1000, 2 + year / 1000] for year in years])
    expected[2, 1] = (expected[1, 1] + expected[3, 1]) / 2  # "..": missing, interpolated
    np.testing.assert_allclose(series.values, expected)
    assert series.interpolated == {"Angola": 1}
    noted = tmp_path / "API_download.csv"  # as it downloads: the source and its date above the table
    noted.write_text('"Data Source","World Development Indicators",\n\n"Last Updated Date","2024-06-28",\n\n'
                     + bank.read_text(encoding="utf-8"), encoding="utf-8")
    from_download = read_series(noted)  # the notes skipped: the table read as before
    assert from_download.notes_lines == 4 and from_download.columns == series.columns
    np.testing.assert_array_equal(from_download.values, series.values)
    with pytest.raises(SeqlabError, match="line 8, 'Angola' in '1992 \\[YR1992\\]' is missing"):
        read_series(noted, missing="error")  # lines counted as in the file
    assert read_series(bank).notes_lines == 0
    with pytest.raises(SeqlabError, match="line 4, 'Angola' in '1992 \\[YR1992\\]' is missing \\(..\\)"):
        read_series(bank, missing="error")  # the empty row is left out, not refused
    bank.write_text(bank.read_text(encoding="utf-8").replace('"1.991"', '"1.99l"'), encoding="utf-8")
    with pytest.raises(SeqlabError, match="line 2, 'Aruba' in '1991 \\[YR1991\\]' is '1.99l', not a number"):
        read_series(bank)
    plain = tmp_path / "wide.csv"
    plain.write_text("country," + ",".join(map(str, years)) + "\n"
                     + "".join(f"{name}," + ",".join(str(index + year % 7) for year in years) + "\n"
                               for index, name in enumerate(["Aruba", "Angola", "Albania"])), encoding="utf-8")
    series = read_series(plain)
    assert series.columns == ["Aruba", "Angola", "Albania"] and series.values[:, 2].tolist() == [
        2 + year % 7 for year in years]
    run = tmp_path / "run"  # train says how it read the file, and predict goes on in years
    assert main(["train", "--task", "forecast", "--data", str(plain), "--out", str(run), "--max-steps", "2",
                 "--block-size", "2", "--val-fraction", "0.2", "--threads", "1"]) == 0
    assert ("has its times across the header and a series on each row: read as 3 series over 6 times (Aruba, "
            "Angola, Albania)") in capsys.readouterr().err
    assert main(["predict", str(run), "--file", str(plain)]) == 0
    assert capsys.readouterr().out.splitlines()[:2][1].startswith("1996,")
    days = tmp_path / "days.csv"
    days.write_text("day,2019,2020,2021\n" + "".join(f"{day},{day % 5},{day % 7},{day % 3}\n" for day in range(1, 9)),
                    encoding="utf-8")
    assert read_series(days).columns == ["2019", "2020", "2021"] and read_series(days).time_name == "day"
    months = tmp_path / "months.csv"
    months.write_text("Year,Jan,Feb,Mar\n" + "".join(f"{year},{year % 5},{year % 7},{year % 3}\n" for year in years),
                      encoding="utf-8")
    assert read_series(months).columns == ["Jan", "Feb", "Mar"]


def test_numbers_as_typesetting_and_accounting_write_them_are_numbers(tmp_path):
    """The minus sign U+2212 (tables copied from web pages), thousands grouped by a space (plain, no-break,
    narrow no-break or thin: French and Swiss spreadsheets, "1 234,5") and an accountant's negative in parentheses
    ("(1,234.50)") write numbers, as do a currency symbol or a percent sign on either side (5.000,00 \u20ac, 12,5 %);
    Excel's #N/A is a missing value, interpolated and counted. A cell that is none of these (Excel's #DIV/0!) is
    still refused."""
    path = tmp_path / "comptes.csv"
    path.write_text("date;solde;temp\n2024-01-01;1\u00a0234,5;\u22122,5\n2024-01-02;(2\u202f345,25);3\n"
                    "2024-01-03;12 345;4,25\n2024-01-04;1\u2009000;\u22120,5\n", encoding="utf-8")
    series = read_series(path)
    assert series.columns == ["solde", "temp"]
    assert series.values.tolist() == [[1234.5, -2.5], [-2345.25, 3.0], [12345.0, 4.25], [1000.0, -0.5]]
    path.write_text('date,profit,units\n2024-01-01,"($1,234.50)",5\n2024-01-02,(12.5),#N/A\n2024-01-03,7,6\n',
                    encoding="utf-8")
    series = read_series(path)
    assert series.values.tolist() == [[-1234.5, 5.0], [-12.5, 5.5], [7.0, 6.0]] and series.interpolated == {"units": 1}
    # money and shares as European spreadsheets write them: the symbol after the number, a space between
    path.write_text("Datum;Umsatz;Anteil\n01.01.2024;5.000,00 \u20ac;12,5 %\n01.02.2024;\u20ac 1.234,50;7%\n"
                    "01.03.2024;\u22121\u00a0000,25\u00a0\u20ac;0,5\u202f%\n", encoding="utf-8")
    series = read_series(path)
    assert series.columns == ["Umsatz", "Anteil"] and series.times[0] == "01.01.2024"
    assert series.values.tolist() == [[5000.0, 12.5], [1234.5, 7.0], [-1000.25, 0.5]]
    path.write_text('date,price,share\n2024-01-01,"-$1,234.50",12.5 %\n2024-01-02,\u00a31.5,$-3\n', encoding="utf-8")
    assert read_series(path).values.tolist() == [[-1234.5, 12.5], [1.5, -3.0]]
    path.write_text("t,x\n1,2\n2,#DIV/0!\n3,4\n", encoding="utf-8")
    with pytest.raises(SeqlabError, match="line 3, column 'x': '#DIV/0!' is not a number"):
        read_series(path)


@pytest.mark.parametrize("name, content, message", [
    ("book.xlsx", None, "is an Excel workbook, not text; save the sheet as CSV UTF-8 and pass that"),
    ("sheet.ods", None, "is an OpenDocument file \\(spreadsheet\\), not text; save the sheet as CSV UTF-8"),
    ("old.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64), "is an Excel 97-2003 workbook"),
    ("table.parquet", b"PAR1" + bytes(64), "is a Parquet file; write it as CSV"),
    ("report.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "is a PDF; give the text or the table it holds"),
])
def test_a_spreadsheet_or_other_file_that_is_not_text_is_named(tmp_path, name, content, message):
    """An Excel workbook is a zip archive of XML parts (an OpenDocument one too, with its mimetype first): refused
    as what it is, with the way to a CSV, not as a zip of many files or as binary."""
    import zipfile

    path = tmp_path / name
    if content is None:
        with zipfile.ZipFile(path, "w") as archive:
            if name.endswith(".ods"):
                archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
                archive.writestr("content.xml", "<office:document-content/>")
            else:
                archive.writestr("[Content_Types].xml", "<Types/>")
                archive.writestr("xl/workbook.xml", "<workbook/>")
    else:
        path.write_bytes(content)
    with pytest.raises(SeqlabError, match=f"data file {re.escape(str(path))} {message}"):
        read_series(path)


def test_files_as_excel_saves_them(tmp_path):
    """Excel's ways of writing a table: a first line "sep=;" naming the separator (the lines named in messages are
    still the file's), a separator ending every line (no column after it), and "Unicode text": UTF-16 with its
    byte-order mark."""
    path = tmp_path / "sep.csv"
    path.write_text("sep=;\nDatum;Wert\n" + "".join(f"{day:02d}.01.2020;{day},5\n" for day in range(1, 9)),
                    encoding="utf-8")
    series = read_series(path)
    assert series.columns == ["Wert"] and series.values[:3, 0].tolist() == [1.5, 2.5, 3.5]
    path.write_text("sep=;\nDatum;Wert\n01.01.2020;1\n02.01.2020;2;3\n", encoding="utf-8")
    with pytest.raises(SeqlabError, match="sep.csv: line 4 has 3 cells, the first row has 2$"):
        read_series(path)
    trailing = tmp_path / "trailing.csv"
    trailing.write_text("t,load,\n" + "".join(f"{step},{step % 4}.5,\n" for step in range(8)), encoding="utf-8")
    assert read_series(trailing).columns == ["load"]
    wide = tmp_path / "unicode.txt"
    wide.write_bytes(("date\tload\r\n" + "".join(f"2020-01-0{day}\t{day * 2}\r\n" for day in range(1, 9))
                      ).encode("utf-16"))
    assert wide.read_bytes()[:2] == b"\xff\xfe"  # little-endian, as Windows writes it
    assert read_series(wide).values[:, 0].tolist() == [day * 2 for day in range(1, 9)]


def test_a_total_under_a_table_of_dates_is_refused_not_read_as_a_time(tmp_path):
    """A spreadsheet's "Total" row (or a note) under its table: the time column's cell is no time while the others
    are, so the row is refused by its line; before, the column was taken for labels and the total read as one
    more value of the series. Missing times, and columns of labels, are left as they were."""
    path = tmp_path / "sales.csv"
    days = "".join(f"2020-01-{day:02d},{day % 7 + 1}\n" for day in range(1, 29))
    path.write_text("date,sales\n" + days + "Total,113\n", encoding="utf-8")
    with pytest.raises(SeqlabError, match="sales.csv: line 30, time column 'date': 'Total' is not a time, where the "
                                          "column's other cells are \\(a total or a note below the table\\?\\); "
                                          "remove the row or fix the cell$"):
        read_series(path)
    path.write_text("date,sales\n" + days, encoding="utf-8")
    assert read_series(path).values[-1, 0] == 28 % 7 + 1
    path.write_text("date,sales\n" + days + "date,sales\n" + days.replace("2020-01", "2020-02"), encoding="utf-8")
    with pytest.raises(SeqlabError, match="sales.csv: line 30 repeats the header \\(files joined one after "
                                          "another\\?\\); remove it$"):
        read_series(path)
    years = tmp_path / "years.csv"  # a year not known: a missing cell, not a stray one
    years.write_text("year,rain\n" + "".join(f"{'NA' if year == 1953 else year},{year % 5}\n"
                                              for year in range(1949, 1970)), encoding="utf-8")
    assert read_series(years).columns == ["rain"]
    labels = tmp_path / "labels.csv"
    labels.write_text("quarter,y\n" + "".join(f"Q{index % 4 + 1},{index}\n" for index in range(12)), encoding="utf-8")
    assert read_series(labels).columns == ["y"]


def test_a_column_of_text_is_named_with_the_columns_to_forecast_instead(tmp_path):
    weather = tmp_path / "weather.csv"
    weather.write_text("date,rain,wind,kind\n2012/01/01,0.0,4.7,drizzle\n2012/01/02,10.9,4.5,rain\n"
                       "2012/01/03,0.8,2.3,rain\n", encoding="utf-8")
    with pytest.raises(SeqlabError, match="column 'kind' holds text, not numbers \\('drizzle' on line 2\\); forecast "
                                          "the numeric columns with --target-columns rain,wind$"):
        read_series(weather)
    assert read_series(weather, target_columns="rain,wind").columns == ["rain", "wind"]
    stray = tmp_path / "stray.csv"  # one bad cell in a numeric column: fix it, or leave the column out
    stray.write_text("date,rain,wind\n2012/01/01,0.0,4.7\n2012/01/02,1O.9,4.5\n2012/01/03,0.8,2.3\n",
                     encoding="utf-8")
    with pytest.raises(SeqlabError, match="line 3, column 'rain': '1O.9' is not a number; fix the cell, or leave the "
                                          "column out with --target-columns wind$"):
        read_series(stray)


def test_an_empty_line_in_one_column_is_a_missing_value(tmp_path):
    """pandas writes a NaN of a one-column frame as "" on its line, and other writers leave the line empty: in a file
    of one column either is a missing value, interpolated and counted (or refused by --missing error, naming its
    line), not the file refused. In a wider file an empty line is still refused."""
    pandas = pytest.importorskip("pandas")
    written = tmp_path / "pandas.csv"
    pandas.DataFrame({"y": [1.0, None, 3.0, 4.0, None, None, 7.0]}).to_csv(written, index=False)
    blank = tmp_path / "blank.csv"
    blank.write_text("y\n1\n\n3\n4\n \n\n7\n", encoding="utf-8")
    for path in (written, blank):
        series = read_series(path)
        assert series.values[:, 0].tolist() == [1, 2, 3, 4, 5, 6, 7] and series.interpolated == {"y": 3}, path
        with pytest.raises(SeqlabError, match="line 3, column 'y' is missing \\(empty\\)"):
            read_series(path, missing="error")
    assert pandas.read_csv(written)["y"].isna().sum() == 3  # pandas reads its own file so too


def test_missing_values_are_interpolated_and_counted(tmp_path):
    path = tmp_path / "gaps.csv"
    path.write_text("t,a,b\n0,,1\n1,2,NaN\n2,,3\n3,6,\n4,8,5\n5,9,\n", encoding="utf-8")
    series = read_series(path)
    assert series.values[:, 0].tolist() == [2, 2, 4, 6, 8, 9]  # the ends take the nearest value
    assert series.values[:, 1].tolist() == [1, 2, 3, 4, 5, 5]
    assert series.interpolated == {"a": 2, "b": 3}
    fred = tmp_path / "fred.csv"  # FRED writes a missing observation as ".", statistical tables as a dash
    fred.write_text("observation_date,UNRATE,GDP\n2020-01-01,3.5,1\n2020-02-01,.,\u2013\n2020-03-01,4.5,-\n"
                    "2020-04-01,14.8,4\n", encoding="utf-8")
    series = read_series(fred)
    assert series.values.tolist() == [[3.5, 1], [4, 2], [4.5, 3], [14.8, 4]] and series.interpolated == {"UNRATE": 1,
                                                                                                         "GDP": 2}
    with pytest.raises(SeqlabError, match="line 3, column 'UNRATE' is missing \\(.\\)"):
        read_series(fred, missing="error")


def test_rows_listed_newest_first_are_read_oldest_first(tmp_path, capsys):
    """Brokers' and exchanges' downloads list prices newest first: times that all decrease are read in reverse, said
    once, and predict goes on after the newest; a message about a cell still names its line in the file. Times out
    of order either way are still refused."""
    days = [f"2020-01-{day:02d}" for day in range(1, 31)]
    path = tmp_path / "prices.csv"
    path.write_text('"Date","Price"\n' + "".join(f'"{day}","{100 + index % 7}.5"\n'
                                                for index, day in reversed(list(enumerate(days)))), encoding="utf-8")
    series = read_series(path)
    assert series.newest_first and series.times == days
    assert series.values[:, 0].tolist() == [100 + index % 7 + 0.5 for index in range(30)]
    assert future_times(series.times, 1) == ["2020-01-31"]
    assert main(["train", "--task", "forecast", "--data", str(path), "--out", str(tmp_path / "run"), "--max-steps", "1",
                 "--threads", "1"]) == 0
    assert capsys.readouterr().err.count("lists its rows newest first: read oldest first") == 1
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"2020-01-28","106.5"', '"2020-01-28","oops"'), encoding="utf-8")
    with pytest.raises(SeqlabError, match="line 4, column 'Price': 'oops' is not a number"):
        read_series(path)
    path.write_text(text.replace("2020-01-28", "2020-01-02"), encoding="utf-8")
    with pytest.raises(SeqlabError, match="does not increase at line 3"):
        read_series(path)


def test_values_below_a_limit_are_half_the_limit_and_counted(tmp_path, capsys):
    """Google Trends writes "<1" for a term searched, but under 1 on its scale, below a title and an empty line; a
    laboratory writes "<0.05" below its detection limit. Each is read as half its limit, counted, and said once."""
    path = tmp_path / "trends.csv"
    weeks = [f"2019-{month:02d}-{day:02d}" for month in range(1, 13) for day in (1, 8, 15, 22)]
    cells = [str(10 + index % 7) for index in range(48)]
    cells[5], cells[30] = "<1", "< 0.05"
    path.write_text("Category: All categories\n\nWeek,seqlab: (Worldwide)\n"
                    + "".join(f"{week},{cell}\n" for week, cell in zip(weeks, cells)), encoding="utf-8")
    series = read_series(path)
    assert series.values[5, 0] == 0.5 and series.values[30, 0] == 0.025 and series.values[6, 0] == 16
    assert series.below_limit == {"seqlab: (Worldwide)": 2} and not series.interpolated
    assert main(["train", "--task", "forecast", "--data", str(path), "--out", str(tmp_path / "run"), "--max-steps", "1",
                 "--threads", "1"]) == 0
    assert capsys.readouterr().err.count("read 2 cells below a limit (such as <1) as half the limit "
                                         "(seqlab: (Worldwide): 2)") == 1


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
    path.write_text("\n".join(str(value * value) for value in range(40)) + "\n", encoding="utf-8")
    task = ForecastTask(forecast_config(path, horizon=6))  # 30 before the held-out part, 12 validate
    task.load_data()
    assert (task.fit_rows, task.cut) == (18, 30)
    task = ForecastTask(forecast_config(path, horizon=9))  # 30 - 18 = 12 training rows < 4 + 9
    with pytest.raises(SeqlabError, match="the training part has 12 rows .* fewer than one window of --block-size 4 "
                                          "\\+ --horizon 9 = 13; lower --block-size \\(to at most 3\\)"):
        task.load_data()
    config = forecast_config(path, horizon=11)  # 10 held-out rows < horizon 11
    with pytest.raises(SeqlabError, match="held-out part has 10 rows, fewer than --horizon 11"):
        ForecastTask(config).load_data()
    with pytest.raises(SeqlabError, match="a season \\(13 rows\\) and --horizon 6 do not fit in the training part "
                                          "\\(18 rows\\)"):
        ForecastTask(forecast_config(path, horizon=6, season=13)).load_data()
    with pytest.raises(SeqlabError, match="task.forecast_mode must be one of auto, direct, autoregressive"):
        forecast_config(path, forecast_mode="sideways").validate()
    with pytest.raises(SeqlabError, match="task.anchor must be one of auto, naive, seasonal_naive, ets"):
        forecast_config(path, anchor="arima").validate()
    constant = tmp_path / "constant.csv"
    constant.write_text("a,b\n" + "".join(f"{value * value},3\n" for value in range(40)), encoding="utf-8")
    with pytest.raises(SeqlabError, match="column 'b' is constant over the training part"):
        ForecastTask(forecast_config(constant, horizon=2)).load_data()


def test_scaler_is_fitted_on_the_training_part_only(tmp_path):
    values = [float(value) for value in range(30)] + [1000.0] * 10  # the held-out part is far off
    path = tmp_path / "series.csv"
    path.write_text("value\n" + "\n".join(str(value) for value in values) + "\n", encoding="utf-8")
    task = ForecastTask(forecast_config(path))
    task.load_data()
    assert split_point(40, 0.25) == 30 and task.cut == 30 and task.fit_rows == 27  # 3 rows validate
    assert task.scaler.mean[0] == pytest.approx(13.0)
    assert task.scaler.std[0] == pytest.approx(np.std(np.arange(27.0)))
    saved = task.assets()["scaler.json"]
    assert saved["columns"] == ["value"] and saved["mean"] == [pytest.approx(13.0)] and saved["method"] == "direct"
    rebuilt = ForecastTask(task.config, json.loads(json.dumps(task.assets())))
    assert rebuilt.scaler.mean.tolist() == task.scaler.mean.tolist() and rebuilt.season == task.season
    scaler = Scaler.fit(np.array([[1.0, 5.0], [3.0, 5.0]]))  # a constant column scales to zeros, not NaN
    assert scaler.transform(np.array([[2.0, 5.0]])).tolist() == [[0.0, 0.0]]


def test_interval_score_by_hand():
    """MSIS at 80% (alpha 0.2): width plus 10 times the miss, over the column's scale."""
    truth = np.array([[[1.0, 10.0]], [[5.0, 30.0]]])  # (W 2, H 1, C 2)
    lower, upper = np.array([[[0.0, 0.0]], [[0.0, 0.0]]]), np.array([[[2.0, 20.0]], [[4.0, 20.0]]])
    # column 0: 2 (inside), 4 + 10 * 1 = 14; column 1 (scale 10): 20 / 10 = 2, (20 + 10 * 10) / 10 = 12
    assert interval_score(truth, lower, upper, np.array([1.0, 10.0]), 0.8) == pytest.approx((2 + 14 + 2 + 12) / 4)


def test_conformal_margin_is_the_smallest_that_covers_the_level():
    rng = np.random.default_rng(4)
    truth = rng.normal(size=(30, 4, 2)) * np.array([1.0, 50.0])  # (W, H, C): columns in different units
    point = truth + rng.normal(size=truth.shape) * np.array([1.0, 50.0])
    lower, upper = point - np.array([0.2, 5.0]), point + np.array([0.2, 5.0])  # far too narrow: covers little
    margin = conformal_margin(truth, lower, upper, 0.8)
    # 30 origins are the exchangeable units: ceil(31 x 0.8) = 25 of 30, so 100 of the 120 values
    needed = math.ceil(30 * 4 * math.ceil((30 + 1) * 0.8) / 30)
    assert needed == 100
    for column in range(2):
        scores = np.maximum(lower - truth, truth - upper)[..., column]  # inside [lower - q, upper + q] where <= q
        inside = lambda widen: (scores <= widen).sum()  # noqa: E731
        assert inside(margin[column]) >= needed  # the finite-sample level is reached
        assert inside(margin[column] - 1e-9) < needed  # and no smaller margin reaches it
    few = conformal_margin(truth[:3], lower[:3], upper[:3], 0.8)  # 3 origins: ceil(4 x 0.8) / 3 > 1, the widest
    np.testing.assert_array_equal(few, np.maximum(lower[:3] - truth[:3], truth[:3] - upper[:3]).max(axis=(0, 1)))
    wide = conformal_margin(truth, point - 1e3, point + 1e3, 0.8)
    assert (wide < 0).all()  # intervals that cover everything are narrowed


def test_clearly_best_keeps_the_default_unless_a_forecast_beats_it_by_one_standard_error():
    """Known answers: 8 origins, horizon 2 (so 4 independent ones), per-origin scaled errors set by hand."""
    truth = np.zeros((8, 2, 1))

    def forecast(errors):  # each origin's forecast is off by its error at every step
        return np.broadcast_to(np.asarray(errors, dtype=float)[:, None, None], truth.shape)

    default = forecast([3.0] * 8)
    steady = forecast([2.5] * 8)  # MASE 2.5: 0.5 better at every origin (standard error 0)
    noisy = forecast([0.4, 4.4] * 4)  # MASE 2.4, the lowest, but d = -2.6, +1.4: SE = std 2.14 / sqrt(8 / 2) = 1.07
    scale = np.ones(1)
    assert clearly_best(truth, {"default": default, "noisy": noisy}, scale, default="default") == "default"
    assert clearly_best(truth, {"default": default, "noisy": noisy, "steady": steady}, scale,
                        default="default") == "steady"
    assert clearly_best(truth, {"default": default, "noisy": forecast([0.4, 3.4] * 4)}, scale,  # SE 0.53 < 1.1
                        default="default") == "noisy"
    assert clearly_best(truth, {"default": default, "same": default}, scale, default="default") == "default"
    closer = {"default": default, "closer": forecast([0.55, 3.95] * 4)}  # d = -2.45, +0.95: mean -0.75, std 1.82
    assert clearly_best(truth, closer, scale, default="default") == "default"  # SE 1.82 / sqrt(4) = 0.91
    # the same 8 origins 2 rows apart (every other one of 16) hold 8 independent ones: SE 1.82 / sqrt(8) = 0.64
    assert clearly_best(truth, closer, scale, default="default", spacing=2) == "closer"
    assert clearly_best(truth, closer, scale, default="default", spacing=5) == "closer"  # never more than W
    # the scale divides each column's error: halving a column's scale doubles its weight
    two = np.concatenate([forecast([1.0] * 8), forecast([0.0] * 8)], axis=-1)
    other = np.concatenate([forecast([0.0] * 8), forecast([1.5] * 8)], axis=-1)
    assert clearly_best(np.zeros((8, 2, 2)), {"two": two, "other": other}, np.array([1.0, 1.0]),
                        default="two") == "two"
    assert clearly_best(np.zeros((8, 2, 2)), {"two": two, "other": other}, np.array([0.5, 1.0]),
                        default="two") == "other"


def test_clearly_best_widens_the_standard_error_by_students_t_for_few_independent_origins():
    """Known answers: with n independent origins the margin is t_{n-1} (scipy's quantile at the 84% one standard
    error gives a normal mean) times SE; with n <= 1 nothing is told apart."""
    truth = np.zeros((8, 2, 1))

    def forecast(errors):
        return np.broadcast_to(np.asarray(errors, dtype=float)[:, None, None], truth.shape)

    default, scale = forecast([3.0] * 8), np.ones(1)
    # d = -2.1, +0.9: mean -0.6, std 1.6036, n = 8 / 2 = 4: SE 0.8018; t_3 = 1.1966, so the margin is 0.9594
    margin = scipy.stats.t.ppf(scipy.stats.norm.cdf(1.0), 3) * np.std([-2.1, 0.9] * 4, ddof=1) / 2
    assert 0.9 < margin < 1.0
    beyond_one = {"default": default, "other": forecast([0.9 - 0.25, 3.9 - 0.25] * 4)}  # mean d -0.85: in (SE, margin)
    assert clearly_best(truth, beyond_one, scale, default="default") == "default"
    beyond_t = {"default": default, "other": forecast([0.9 - 0.4, 3.9 - 0.4] * 4)}  # mean d -1.0 < -0.959
    assert clearly_best(truth, beyond_t, scale, default="default") == "other"
    # 2 origins one horizon apart are about one independent origin: even a forecast better everywhere is not told
    # apart; 3 origins a horizon apart can be (no spread: SE 0)
    steady = np.full((2, 2, 1), 2.5)
    assert clearly_best(np.zeros((2, 2, 1)), {"default": np.full((2, 2, 1), 3.0), "steady": steady}, scale,
                        default="default") == "default"
    assert clearly_best(np.zeros((2, 2, 1)), {"default": np.full((2, 2, 1), 3.0), "steady": steady}, scale,
                        default="default", spacing=2) == "steady"


def test_windows_and_targets_line_up_and_resume_exactly():
    values = torch.arange(75.0).view(25, 3)  # row r holds 3r, 3r + 1, 3r + 2; the last column a feature
    anchors = torch.arange(25 - 8 + 1.0)[:, None, None].expand(-1, 3, 2)  # (starts, H, C): anchor s for start s
    windows = ForecastWindows(values, block_size=5, horizon=3, batch_size=6, seed=1, columns=2, anchors=anchors)
    batch = windows.next_batch()
    assert batch.inputs.shape == (6, 8, 3) and batch.targets.shape == (6, 3, 2)
    assert torch.equal(batch.targets, batch.inputs[:, 5:, :2])  # the rows right after the history
    assert torch.equal(batch.condition[:, 0, 0], batch.inputs[:, 0, 0] / 3)  # each window's own anchors
    assert torch.equal(batch.inputs[:, 1:] - batch.inputs[:, :-1], torch.full((6, 7, 3), 3.0))
    saved = windows.state_dict()
    expected = windows.next_batch()
    windows.load_state_dict(saved)
    assert torch.equal(windows.next_batch().inputs, expected.inputs)
    assert not ForecastWindows.carries_state
    features = calendar_features(np.arange(8), 4)
    np.testing.assert_allclose(features[:, 0], [0, 1, 0, -1, 0, 1, 0, -1], atol=1e-12)  # sin of the phase
    assert calendar_features(np.arange(8), 1).shape == (8, 0)


def random_forecaster(backbone: str, *, columns: int = 2, horizon: int = 5, history: int = 7, season: int = 3,
                      features: int = 2):
    config = forecast_config("unused.csv", horizon=horizon)
    config.model.backbone = backbone
    config.data.block_size = history
    torch.manual_seed(0)
    model = build_forecaster(config, columns, season=season, features=features).eval()
    with torch.no_grad():  # heads start at zero (the seasonal-naive forecast); give them something to do
        for head in (model.direct_head, model.step_head):
            head.weight.normal_(0, 0.3)
            head.bias.normal_(0, 0.3)
    return model


@pytest.mark.parametrize("backbone", ["lstm", "gru", "tcn"])
def test_both_heads_agree_with_the_teacher_forced_forward(backbone):
    model = random_forecaster(backbone)
    history, future = torch.randn(2, 7, 4), torch.randn(2, 5, 2)  # (B, T, C+K) values and features; (B, H, K)
    anchors = torch.randn(2, 5, 2)  # (B, H, C)
    with torch.no_grad():
        quantiles = model.direct(history, anchors)
        recursive = model.recursive(history, future)
        # teacher-forcing the recursive forecasts reproduces them, and the direct head sees only the history
        window = torch.cat([history, torch.cat([recursive, future], dim=-1)], dim=1)  # (B, T+H, C+K)
        outputs, _ = model(window, anchors=anchors)
    assert quantiles.shape == (2, 5, 2, 3) and recursive.shape == (2, 5, 2)
    torch.testing.assert_close(outputs.one_step, recursive, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(outputs.quantiles, quantiles, atol=1e-5, rtol=1e-5)
    assert model.embedding.in_features == 4  # the named input projection a checkpoint's backbone loads beside


def test_untrained_forecaster_is_its_anchors():
    config = forecast_config("unused.csv", horizon=5)
    config.data.block_size = 7
    model = build_forecaster(config, 2, season=3, features=0).eval()
    history, anchors = torch.randn(4, 7, 2), torch.randn(4, 5, 2)
    seasonal_naive = history[:, [4, 5, 6, 4, 5]]  # rows T-3, T-2, T-1, then the last season again
    with torch.no_grad():
        torch.testing.assert_close(model.direct(history, anchors)[..., MEDIAN], anchors)
        torch.testing.assert_close(model.recursive(history, torch.zeros(4, 5, 0)), seasonal_naive)


def test_a_season_longer_than_the_history_is_reached_through_a_longer_context():
    config = forecast_config("unused.csv", horizon=4)
    config.data.block_size = 3
    model = build_forecaster(config, 1, season=6, features=0).eval()  # S = 6 rows read, the backbone sees 3
    context = torch.randn(2, 6, 1)
    with torch.no_grad():
        torch.testing.assert_close(model.recursive(context, torch.zeros(2, 4, 0)), context[:, :4])  # a season back
        model.step_head.bias.fill_(1.0)
        earlier = torch.cat([torch.randn(2, 3, 1), context[:, 3:]], dim=1)  # the same last T rows
        change = model.recursive(context, torch.zeros(2, 4, 0)) - model.recursive(earlier, torch.zeros(2, 4, 0))
    torch.testing.assert_close(change, context[:, :4] - earlier[:, :4], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("backbone", ["lstm", "gru"])
def test_per_window_normalisation_makes_forecasts_shift_and_scale_equivariant(backbone):
    model = random_forecaster(backbone)
    values, features = torch.randn(3, 7, 2) * 2 + 1, torch.randn(3, 7, 2)
    future, anchors = torch.randn(3, 5, 2), torch.randn(3, 5, 2) * 2 + 1  # anchors: any forecast of the same rows
    with torch.no_grad():
        history = torch.cat([values, features], -1)  # (B, T, C+K)
        direct, recursive = model.direct(history, anchors), model.recursive(history, future)
        shift = torch.tensor([100.0, -35.0])
        shifted = torch.cat([values + shift, features], -1)
        torch.testing.assert_close(model.direct(shifted, anchors + shift), direct + shift[:, None], atol=1e-4,
                                   rtol=1e-5)
        torch.testing.assert_close(model.recursive(shifted, future), recursive + shift, atol=1e-4, rtol=1e-5)
        scaled = torch.cat([values * 7.5, features], -1)
        torch.testing.assert_close(model.direct(scaled, anchors * 7.5), direct * 7.5, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(model.recursive(scaled, future), recursive * 7.5, atol=1e-4, rtol=1e-5)
    assert not torch.allclose(direct[..., MEDIAN], recursive, atol=1e-2)  # the heads differ: both were checked


# ------------------------------------------------------------ baselines
def test_baselines_equal_the_libraries_own_calls():
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    steps = np.arange(60)
    values = (30 + 0.5 * steps + 6 * np.sin(2 * np.pi * steps / 4)
              + np.random.default_rng(0).normal(0, 1, 60))[:, None]  # (60, 1): a trend and a season of 4
    origins, horizon, fit_rows = np.array([48, 50, 52]), 6, 48
    forecasts, fits = ets_forecasts(values, origins, horizon, 4, fit_rows=fit_rows)
    for column, fit in enumerate(fits):
        train = values[:fit_rows, column]
        fitted = [ETSModel(train, **options).fit(disp=False) for options in ets_candidates(train, 4)]
        best = min(fitted, key=lambda result: result.aicc)
        assert fit.aicc == pytest.approx(best.aicc)
        np.testing.assert_allclose(forecasts[0, :, column], best.forecast(horizon), rtol=1e-6)
        for index, origin in enumerate(origins):  # later origins: the same fitted model over more rows
            expected = ETSModel(values[:origin, column], **fit.options).smooth(fit.params).forecast(horizon)
            np.testing.assert_allclose(forecasts[index, :, column], expected, rtol=1e-6)
    assert fits[0].options["seasonal"] is not None and fits[0].options["trend"] == "add"  # trend and season found
    pandas = pytest.importorskip("pandas")
    naive_forecaster = pytest.importorskip("sktime.forecasting.naive").NaiveForecaster
    for season, ours in ((1, naive_forecasts(values, origins, horizon)),
                         (4, seasonal_naive_forecasts(values, origins, horizon, 4))):
        for index, origin in enumerate(origins):
            theirs = naive_forecaster(strategy="last", sp=season).fit(pandas.DataFrame(values[:origin]))
            np.testing.assert_allclose(ours[index], theirs.predict(fh=list(range(1, horizon + 1))).to_numpy())


def test_many_columns_are_fitted_in_worker_processes_to_the_same_fits():
    """A file of many series (long format) fits ETS column by column in several processes: the fits are those of
    one process."""
    from seqlab.models.forecast_baselines import PARALLEL_COLUMNS, fit_ets_columns

    rng = np.random.default_rng(0)
    steps = np.arange(40)[:, None]
    phases = rng.uniform(0, 6, PARALLEL_COLUMNS)
    train = 10 + np.sin(2 * np.pi * steps / 4 + phases) + rng.normal(0, 0.2, (40, PARALLEL_COLUMNS))
    alone, together = fit_ets_columns(train, 4), fit_ets_columns(train, 4, workers=2)
    assert [fit.to_dict() for fit in together] == [fit.to_dict() for fit in alone]


def test_worker_processes_run_their_numerical_libraries_on_one_thread():
    """Each ETS worker process limits every BLAS and OpenMP pool it has loaded to one thread (threadpoolctl's own
    report), so that workers side by side do not oversubscribe the cores."""
    import threadpoolctl

    from seqlab.models.forecast_baselines import worker_pool

    with worker_pool(1) as pool:
        pools = pool.submit(threadpoolctl.threadpool_info).result()
    assert {info["user_api"] for info in pools} >= {"blas"} and [info["num_threads"] for info in pools] == [1] * len(
        pools)


@pytest.mark.parametrize("options", [
    {"trend": "add", "damped_trend": True, "seasonal": "add"}, {"trend": "add", "damped_trend": True, "seasonal": "mul"},
    {"trend": "add", "damped_trend": False, "seasonal": None}, {"trend": None, "seasonal": "mul", "error": "mul"},
    {"trend": None, "seasonal": "add", "initialization_method": "heuristic"}])
def test_ets_paths_equal_statsmodels_dynamic_predictions(options):
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    steps = np.arange(90)
    values = 40 + 0.3 * steps + 5 * np.sin(2 * np.pi * steps / 6) + np.random.default_rng(1).normal(0, 1, 90)
    options = {"error": "add", "seasonal_periods": 6 if options["seasonal"] else None, **options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fitted = ETSModel(values[:70], **options).fit(disp=False)
        smoothed = ETSModel(values, **options).smooth(fitted.params)
    fit = EtsFit(options, np.asarray(fitted.params), float(fitted.aicc))
    origins, horizon = np.arange(6, 81), 10  # windows reaching past one season, up to the last row
    expected = np.array([smoothed.predict(start=origin, end=origin + horizon - 1, dynamic=True) for origin in origins])
    np.testing.assert_allclose(ets_paths(values, EtsFit.from_dict(fit.to_dict()), origins, horizon), expected,
                               rtol=1e-10, atol=1e-9)


def test_a_heuristic_start_is_fixed_so_the_fit_also_runs_over_short_series():
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    steps = np.arange(200)  # a season of 30 (> 24): statsmodels' heuristic start, which needs two seasons of rows
    values = (40 + 0.3 * steps + 5 * np.sin(2 * np.pi * steps / 30)
              + np.random.default_rng(1).normal(0, 1, 200))[:, None]
    forecasts, (fit,) = ets_forecasts(values, np.arange(150, 189), 12, 30, fit_rows=150)
    assert fit.options["initialization_method"] == "known" and len(fit.options["initial_seasonal"]) == 30
    heuristic = {name: value for name, value in fit.options.items() if not name.startswith("initial")}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smoothed = ETSModel(values[:, 0], **heuristic, initialization_method="heuristic").smooth(fit.params)
    expected = [smoothed.predict(start=origin, end=origin + 11, dynamic=True) for origin in range(150, 189)]
    np.testing.assert_allclose(forecasts[..., 0], expected, rtol=1e-10)  # the same model on these rows
    short = ets_paths(values[150:, 0], fit, np.array([50]), 12)  # 50 rows, fewer than two seasons
    assert np.isfinite(short).all()


def test_the_anchor_is_the_history_best_baseline_and_the_untrained_network(tmp_path, capsys):
    """--anchor auto picks the baseline with the lowest MASE from the origins of the later half of the rows before the
    held-out part; at a learning rate of 1e-12 the direct head is that forecast (ETS by statsmodels with the training
    rows' fits saved beside the model) from every held-out origin, and the anchor alone is ETS refitted on every row
    before the held-out part: eval's ETS baseline, exactly."""
    data, run = tmp_path / "load.csv", tmp_path / "run"
    write_seasonal_csv(data, rows=300)
    assert main(["train", "--task", "forecast", "--data", str(data), "--out", str(run), "--block-size", "8",
                 "--horizon", "4", "--hidden-size", "8", "--max-steps", "2", "--eval-interval", "2",
                 "--learning-rate", "1e-12", "--threads", "1"]) == 0
    # 263 origins before the held-out part (4 .. 270 - 4), the later 131 judge
    assert "from the 131 origins of the later half of the rows before the held-out part (" in capsys.readouterr().err
    task = ForecastTask(load_checkpoint(run).config)
    task.load_data()  # the same choice again, from the same rows
    values, horizon = task.series.values, 4
    origins = np.arange(4 + 132, task.cut - horizon + 1)
    truth = values[origins[:, None] + np.arange(horizon)]
    scale = np.abs(np.diff(values[:task.fit_rows], axis=0)).mean(axis=0)
    ets, fits = ets_forecasts(values, origins, horizon, 4, fit_rows=task.fit_rows)
    scores = {"naive": naive_forecasts(values, origins, horizon), "seasonal_naive":
              seasonal_naive_forecasts(values, origins, horizon, 4), "ets": ets}
    expected = min(scores, key=lambda name: forecast_metrics(truth, scores[name], scale)["mase"])
    saved = json.loads((run / "scaler.json").read_text())
    assert saved["anchor"] == expected == "ets"  # a trend and a season: ETS forecasts them best
    assert [fit.to_dict() for fit in fits] == saved["ets"]
    refitted = ets_forecasts(values, origins, horizon, 4, fit_rows=task.cut)[1]
    assert [fit.to_dict() for fit in refitted] == saved["anchor_ets"] != saved["ets"]
    validation = json.loads((run / "trainer.json").read_text())["best_metrics"]
    assert len(saved["interval_margin"]) == 1 and validation["coverage"] >= 0.8  # calibrated on those rows
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    held_out = np.arange(task.cut, len(values) - horizon + 1)
    anchor = ets_forecasts(values, held_out, horizon, 4, fits=fits)[0]
    truth = values[held_out[:, None] + np.arange(horizon)]
    expected_mase = forecast_metrics(truth, anchor, np.abs(np.diff(values[:task.cut], axis=0)).mean(axis=0))["mase"]
    assert metrics["anchor"] == "ets" and metrics["direct_mase"] == pytest.approx(expected_mase, rel=1e-5)
    assert metrics["direct_mase"] != pytest.approx(metrics["ets_mase"], rel=1e-3)  # the network's: training rows'
    assert metrics["method"] == "anchor" and metrics["mase"] == metrics["ets_mase"]  # alone: refitted


def test_a_long_history_judges_the_anchor_from_evenly_spaced_origins(tmp_path, capsys, monkeypatch):
    """Past ANCHOR_ORIGINS origins, as many evenly spaced, and the later half of them judge the anchor (here 263
    origins, at most 50: one every 6 rows, 44 of them, the later 22)."""
    monkeypatch.setattr(forecast_task, "ANCHOR_ORIGINS", 50)
    data, run = tmp_path / "load.csv", tmp_path / "run"
    write_seasonal_csv(data, rows=300)
    assert main(["train", "--task", "forecast", "--data", str(data), "--out", str(run), "--block-size", "8",
                 "--horizon", "4", "--hidden-size", "8", "--max-steps", "2", "--eval-interval", "2", "--threads", "1"
                 ]) == 0
    assert "from the 22 origins of the later half of the rows before the held-out part, one every 6 rows (" in (
        capsys.readouterr().err)
    task = ForecastTask(load_checkpoint(run).config)
    task.load_data()
    values, origins = task.series.values, np.arange(4, 267, 6)[22:]
    truth = values[origins[:, None] + np.arange(4)]
    scores = {"naive": naive_forecasts(values, origins, 4), "seasonal_naive":
              seasonal_naive_forecasts(values, origins, 4, 4), "ets": ets_forecasts(values, origins, 4, 4,
                                                                                    fits=task.ets_fits)[0]}
    scale = np.abs(np.diff(values[:task.fit_rows], axis=0)).mean(axis=0)
    assert task.anchor == min(scores, key=lambda name: forecast_metrics(truth, scores[name], scale)["mase"])


# ------------------------------------------------------------------ the CLI
def write_seasonal_csv(path, *, rows: int = 100, shift: float = 0.0) -> None:
    """A time index, and a series with a trend and a season of 4 (all positive), in CSV."""
    steps = np.arange(rows)
    noise = np.random.default_rng(3).normal(0, 0.3, rows)
    values = 10 + shift + 0.05 * steps + 2 * np.sin(2 * np.pi * steps / 4 + 0.5) + noise
    path.write_text("t,load\n" + "".join(f"{step},{value:.4f}\n" for step, value in zip(steps, values)),
                    encoding="utf-8")


@pytest.mark.parametrize("cells, expected", [
    (["0", "1", "2"], ["3", "4"]),
    (["1990", "1995", "2000"], ["2005", "2010"]),
    (["0.5", "1.0", "1.5"], ["2", "2.5"]),
    (["1", "2", "4"], None),  # no fixed step: not told
    (["1949-01", "1949-02", "1949-03"], ["1949-04", "1949-05"]),
    (["2024-01-31", "2024-02-29", "2024-03-31"], ["2024-04-30", "2024-05-31"]),  # month ends
    (["30/12/2019", "31/12/2019", "01/01/2020"], ["02/01/2020", "03/01/2020"]),  # day first, as written
    (["2020-01-09", "2020-01-10", "2020-01-13", "2020-01-14"], ["2020-01-15", "2020-01-16"]),  # business days
    (["2010/12/31 22:00", "2010/12/31 23:00", "2011/01/01 00:00"], ["2011/01/01 01:00", "2011/01/01 02:00"]),
    (["Jan 1 2000", "Feb 1 2000", "Mar 1 2000"], ["2000-04-01", "2000-05-01"]),  # a layout not written back: ISO
    (["1996Q4", "1997Q1", "1997Q2"], ["1997Q3", "1997Q4"]),  # quarters, as statistics offices write them
    (["1996-Q4", "1997-Q1", "1997-Q2"], ["1997-Q3", "1997-Q4"]),
    (["Apr 1992", "May 1992", "Jun 1992"], ["Jul 1992", "Aug 1992"]),  # months: pandas guesses no layout for them
    (["1992/10", "1992/11", "1992/12"], ["1993/01", "1993/02"]),
    (["1996 Q4", "1997 Q1", "1997 Q2"], ["1997 Q3", "1997 Q4"]),  # labels pandas cannot read: read at their start
    (["Q4 1996", "Q1 1997", "Q2 1997"], ["Q3 1997", "Q4 1997"]),
    (["1992M10", "1992M11", "1992M12"], ["1993M01", "1993M02"]),
    (["2019m10", "2019m11", "2019m12"], ["2020m1", "2020m2"]),  # Stata's months do not pad
    (["1999m7", "1999m8", "1999m9"], ["1999m10", "1999m11"]),
    (["Oct-19", "Nov-19", "Dec-19"], ["Jan-20", "Feb-20"]),  # Excel's mmm-yy: months of years, not days
    (["Jun-98", "Sep-98", "Dec-98"], ["Mar-99", "Jun-99"]),
    (["OCT-19", "NOV-19", "DEC-19"], ["JAN-20", "FEB-20"]),  # in capitals, as some exports write months
    (["Oct19", "Nov19", "Dec19"], ["Jan20", "Feb20"]),
    (["01-Oct-19", "01-Nov-19", "01-Dec-19"], ["01-Jan-20", "01-Feb-20"]),  # Excel's dd-mmm-yy
    (["2024q2", "2024q3", "2024q4"], ["2025q1", "2025q2"]),  # Stata's quarters (%tq)
    (["2016-06-27/2016-07-03", "2016-07-04/2016-07-10", "2016-07-11/2016-07-17"],  # pandas' weekly periods
     ["2016-07-18/2016-07-24", "2016-07-25/2016-07-31"]),
    (["2021-03-01 00:00:07.700", "2021-03-01 00:00:07.800", "2021-03-01 00:00:07.900"],  # pandas' to_csv, 100 ms
     ["2021-03-01 00:00:08.000", "2021-03-01 00:00:08.100"]),
    (["2021-03-23 05:00:00+01:00", "2021-03-23 06:00:00+01:00", "2021-03-23 07:00:00+01:00"],  # with a space, as
     ["2021-03-23 08:00:00+01:00", "2021-03-23 09:00:00+01:00"]),  # pandas writes an index with a time zone
    (["1 Jan 2020 00:00:00.5", "1 Jan 2020 00:00:01", "1 Jan 2020 00:00:01.5"],  # not written back: ISO, and the
     ["2020-01-01 00:00:02.000000", "2020-01-01 00:00:02.500000"]),  # half seconds kept
    (["2020-W51", "2020-W52", "2020-W53"], ["2021-W01", "2021-W02"]),  # ISO weeks: 2020 has 53, 2021 52
    (["2021W50", "2021W51", "2021W52"], ["2022W01", "2022W02"]),
    (["2020-01-01", "2020-01-02", "2020-01-05"], None),  # no frequency
    ([f"2022-05-16T{hour:02d}:00:00+02:00" for hour in (0, 1, 2, 6, 7, 8, 9, 10, 11, 12, 13)],  # a gap: hours still
     ["2022-05-16T14:00:00+02:00", "2022-05-16T15:00:00+02:00"]),
    (["2022-03-27T00:00:00+01:00", "2022-03-27T01:00:00+01:00", "2022-03-27T03:00:00+02:00"],  # clocks go forward
     ["2022-03-27T02:00:00+00:00", "2022-03-27T03:00:00+00:00"]),  # read in UTC, so written in UTC
    (["2022-03-20T11:00:00Z", "2022-03-20T12:00:00Z", "2022-03-20T13:00:00Z"],
     ["2022-03-20T14:00:00Z", "2022-03-20T15:00:00Z"]),
    (["2022-03-20T11:00:00.000Z", "2022-03-20T12:00:00.000Z", "2022-03-20T13:00:00.000Z"],  # as JavaScript writes
     ["2022-03-20T14:00:00.000Z", "2022-03-20T15:00:00.000Z"]),
    (["Q1", "Q2", "Q3"], None),
    (["20200129", "20200130", "20200131"], ["20200201", "20200202"]),  # dates as integers: the month rolls over
    ([f"2020{month:02d}" for month in range(7, 13)], ["202101", "202102"]),  # months as integers, the year too
    (["1990", "1991", "1992"], ["1993", "1994"]),  # years are numbers that rise by one
])
def test_future_times_go_on_as_the_time_column_does(cells, expected):
    assert future_times(cells, 2) == expected


def test_sdmx_csv_is_read_in_long_format_and_stacked_series_without_a_time_are_refused(tmp_path):
    """SDMX-CSV, as Eurostat, the OECD and the ECB export: constant label columns, the series' names (geo), the time
    as TIME_PERIOD, the value as OBS_VALUE and flags. TIME_PERIOD was not a time name, so with --target-columns the
    three countries were read one after another as one series of 144 rows, and without it the file was refused for
    its labels. OBS_VALUE is now the target by default. Where no column reads as the time of series stacked in
    blocks, the file is refused, not read so."""
    rows = [f"ESTAT:UNE_RT_M(1.0),05/11/24 23:00:00,M,PC_ACT,{geo},{2019 + month // 12}-{month % 12 + 1:02d},"
            f"{index + month % 5}.5,{'p' if month > 45 else ''}" for index, geo in enumerate(("AT", "BE", "DE"))
            for month in range(48)]
    path = tmp_path / "estat.csv"
    path.write_text("DATAFLOW,LAST UPDATE,freq,unit,geo,TIME_PERIOD,OBS_VALUE,OBS_FLAG\n" + "\n".join(rows) + "\n",
                    encoding="utf-8")
    for series in (read_series(path), read_series(path, target_columns="OBS_VALUE")):  # OBS_VALUE: the default
        assert series.stacked_by == ["geo"] and series.columns == ["AT", "BE", "DE"]
        assert series.time_name == "TIME_PERIOD" and len(series) == 48
        assert series.values[:, 1].tolist() == [1 + month % 5 + 0.5 for month in range(48)]
    assert read_series(path).sdmx and not read_series(path, target_columns="OBS_VALUE").sdmx
    path.write_text(path.read_text(encoding="utf-8").replace("TIME_PERIOD", "Zeitraum"), encoding="utf-8")
    with pytest.raises(SeqlabError, match="column 'geo' holds labels in blocks of rows \\(AT, BE, DE\\), as a file of "
                                          "several series stacked one after another does, but no column reads as "
                                          "their time; name it with --time-column"):
        read_series(path, target_columns="OBS_VALUE")
    assert read_series(path, target_columns="OBS_VALUE", time_column="Zeitraum").columns == ["AT", "BE", "DE"]
    assert len(read_series(path, target_columns="OBS_VALUE", time_column="none")) == 144  # one series, as told


def test_pandas_header_for_unnamed_index_and_columns_is_a_header(tmp_path):
    """``Series.to_csv`` of a series without a name (or a frame of an array) writes the header ",0" (",0,1"): names,
    not a first row of data. Read as data, it put a 0 before the series and an empty time before the dates."""
    pandas = pytest.importorskip("pandas")
    values = np.sin(np.arange(30) / 3.0) + 5
    path = tmp_path / "unnamed.csv"
    pandas.Series(values, index=pandas.date_range("2021-03-01", periods=30, freq="D")).to_csv(path)
    assert path.read_text().splitlines()[0] == ",0"
    series = read_series(path)
    assert series.named and series.columns == ["0"] and series.times[0] == "2021-03-01"
    np.testing.assert_array_equal(series.values[:, 0], values)
    frame = tmp_path / "frame.csv"
    pandas.DataFrame(np.stack([values, 2 * values], axis=1)).to_csv(frame)
    np.testing.assert_array_equal(read_series(frame).values, np.stack([values, 2 * values], axis=1))
    assert read_series(frame).columns == ["0", "1"]
    data = tmp_path / "data.csv"  # where such a first line is data after all, --header no says so
    data.write_text(",0\n" + "".join(f"{step},{step + 1}\n" for step in range(20)), encoding="utf-8")
    assert read_series(data).values[0, 0] == 1
    assert read_series(data, header="no", time_column="none", target_columns="1").values[0, 0] == 0


MONTH_NAMES = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@pytest.mark.parametrize("name, cells, future, swap, message", [
    # ISO 8601 weeks, as weekly business reports label them: read at each week's Monday
    ("week", [f"2020-W{week:02d}" for week in range(40, 54)] + [f"2021-W{week:02d}" for week in range(1, 10)],
     ["2021-W10", "2021-W11"], ("2021-W03", "2020-W03"), "line 18 \\(2020-W03 after 2021-W02\\)"),
    # Excel's mmm-yy: January 2015, where pandas alone reads the 15th of January of year 1, so that the months of
    # 2015 to 2019 did not increase
    ("month", [f"{month}-{year}" for year in range(15, 20) for month in MONTH_NAMES], ["Jan-20", "Feb-20"],
     ("Mar-17", "Mar-14"), "line 28 \\(Mar-14 after Feb-17\\)"),
    # Stata's months (%tm): 2019m9 comes before 2019m10
    ("t", [f"2019m{month}" for month in range(1, 13)], ["2020m1", "2020m2"], ("2019m4,", "2019m2,"),
     "line 5 \\(2019m2 after 2019m3\\)"),
])
def test_period_labels_are_read_as_dates_checked_and_gone_on_from(tmp_path, name, cells, future, swap, message):
    """A column of period labels pandas cannot read is the time: read at each period's start, checked to increase,
    and gone on from by predict in its own layout."""
    path = tmp_path / "periods.csv"
    path.write_text(f"{name},sales\n" + "".join(f"{cell},{index % 5 + 1}\n" for index, cell in enumerate(cells)),
                    encoding="utf-8")
    series = read_series(path)
    assert series.time_name == name and series.times == cells and series.columns == ["sales"]
    assert future_times(series.times, 2) == future
    path.write_text(path.read_text(encoding="utf-8").replace(*swap), encoding="utf-8")
    with pytest.raises(SeqlabError, match=f"the time column '{name}' does not increase at {message}"):
        read_series(path)


def test_days_without_a_year_and_weeks_that_do_not_exist(tmp_path):
    """Jan-14, Jan-15 in a daily column are days, not months of years (two in a row name the same month); a week 53
    in a year without one is not a week."""
    days = [f"{month}-{day:02d}" for month, last in (("Jan", 31), ("Feb", 28)) for day in range(1, last + 1)]
    path = tmp_path / "daily.csv"
    path.write_text("day,sales\n" + "".join(f"{day},{index % 7 + 1}\n" for index, day in enumerate(days)),
                    encoding="utf-8")
    assert read_series(path).times == days and future_times(days, 1) == ["Mar-01"]
    assert future_times(["2021-W52", "2021-W53", "2022-W01"], 1) is None  # 2021 has 52 weeks


def test_the_verdict_names_the_best_baseline_and_why_an_ets_anchor_differs_from_ets():
    metrics = {"mase": 0.907, "naive_mase": 0.885, "seasonal_naive_mase": 1.599, "ets_mase": 0.825}
    verdict = forecast_task._verdict("anchor", "ets", metrics)
    assert verdict.startswith("worse than the best baseline: the forecast (anchor, anchor ets) has MASE 0.907, ets "
                              "0.825") and "the anchor's ETS keeps its fit from training" in verdict
    behind_naive = forecast_task._verdict("anchor", "ets", {**metrics, "naive_mase": 0.8})
    assert "naive 0.800" in behind_naive and "fitted on the training rows" not in behind_naive
    seasonal = forecast_task._verdict("anchor", "seasonal_naive", {**metrics, "mase": 1.599})
    assert "fitted on the training rows" not in seasonal and "better than the best baseline" not in seasonal
    ahead = forecast_task._verdict("direct", "ets", {**metrics, "mase": 0.7})
    assert ahead.startswith("the forecast (direct, anchor ets) has MASE 0.700, better than the best baseline, ets "
                            "0.825") and "validation chose" not in ahead


def test_train_eval_predict_on_a_seasonal_csv(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data, run = tmp_path / "load.csv", tmp_path / "run"
    write_seasonal_csv(data)
    flags = ["--task", "forecast", "--data", str(data), "--block-size", "8", "--horizon", "4", "--hidden-size", "16",
             "--batch-size", "8", "--max-steps", "6", "--eval-interval", "3", "--threads", "1", "--quiet",
             "--anchor", "seasonal_naive"]  # an anchor that moves with the series: forecasts shift exactly
    assert main(["train", "--out", str(run), *flags]) == 0
    saved = json.loads((run / "scaler.json").read_text())
    assert saved["columns"] == ["load"] and saved["season"] == 4  # t is the time column, not a series
    assert saved["method"] in METHODS and saved["anchor"] == "seasonal_naive"
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    for prefix in ("", "naive_", "seasonal_naive_", "ets_"):
        for name in ("mae", "rmse", "mase"):
            assert math.isfinite(metrics[prefix + name])
    assert metrics["windows"] == 10 - 4 + 1 and metrics["method"] == saved["method"] and metrics["anchor"] == "seasonal_naive"
    assert 0 <= metrics["coverage"] <= 1 and metrics["msis"] > 0
    assert set(metrics["columns"]) == {"load"}
    assert metrics["columns"]["load"]["mase"] == pytest.approx(metrics["mase"])  # one column: its mean
    assert metrics["columns"]["load"]["ets_mase"] == pytest.approx(metrics["ets_mase"])
    best = min(("naive", "seasonal_naive", "ets"), key=lambda name: metrics[f"{name}_mase"])
    worse = metrics["mase"] > metrics[f"{best}_mase"]
    assert metrics["verdict"].startswith("worse than the best baseline") == worse and best in metrics["verdict"]
    assert metrics["ets_mase"] < metrics["naive_mase"]  # trend and season: ETS finds both
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [record for record in records if record["kind"] == "eval"][-1]["ets_mase"] > 0  # beside training too
    assert main(["eval", str(run), "--data", str(data)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == metrics["verdict"] and lines[1].startswith("  columns load: mae")
    assert main(["predict", str(run), "--file", str(data)]) == 0
    captured = capsys.readouterr()
    header, *lines = captured.out.splitlines()  # a CSV: the time and the columns, then one row per step
    assert [line.split(",")[0] for line in lines] == ["100", "101", "102", "103"]  # the rows after t = 99
    forecast = [float(line.split(",")[1]) for line in lines]
    assert header == "t,load" and len(forecast) == 4 and captured.err.strip() == f"plot: {data}.forecast.png"
    assert (tmp_path / "load.csv.forecast.png").stat().st_size > 1000
    assert main(["predict", str(run)]) == 0  # without --file: what follows the series it was trained on
    assert capsys.readouterr().out == captured.out
    shifted = tmp_path / "shifted.csv"  # the same series 500 higher: the forecast moves by exactly 500
    write_seasonal_csv(shifted, shift=500.0)
    assert main(["predict", str(run), "--file", str(shifted)]) == 0
    moved = [float(line.split(",")[1]) for line in capsys.readouterr().out.splitlines()[1:]]
    np.testing.assert_allclose(moved, np.array(forecast) + 500.0, atol=2e-3)
    tuned = tmp_path / "tuned"  # fine-tuning: the backbone (and the fitting embedding) from run, frozen
    assert main(["train", "--out", str(tuned), *flags, "--init-from", str(run), "--freeze-backbone", "true",
                 "--hidden-size", "32", "--learning-rate", "0.05"]) == 0
    source, target = load_checkpoint(run).model, load_checkpoint(tuned).model
    assert target.backbone.hidden_size == 16  # the source's architecture, not this run's --hidden-size
    for name, value in source.backbone.state_dict().items():
        assert torch.equal(value, target.backbone.state_dict()[name])
    assert not torch.equal(source.direct_head.weight, target.direct_head.weight)


@pytest.mark.parametrize("text, flags, expected", [
    ("x\n1\n2\nabc\n" + "3\n" * 40, [], "line 4, column 'x': 'abc' is not a number"),
    ("t,x\n" + "".join(f"{step},{step % 5}\n" for step in range(60)).replace("7,2", "7,"), ["--missing", "error"],
     "line 9, column 'x' is missing"),
    ("a,b\n" + "".join(f"{step % 7},1\n" for step in range(60)), [], "column 'b' is constant"),
    ("x\n" + "".join(f"{step % 7}\n" for step in range(60)), ["--horizon", "7"], "held-out part has 6 rows"),
    ("x\n" + "".join(f"{step % 7}\n" for step in range(60)), ["--season", "49"], "a season (49 rows) and --horizon 1 do not fit"),
    ("day,x\n" + "".join(f"2020-01-{day:02d},{day % 3}\n" for day in (1, 2, 4, 3, *range(5, 29))), [],
     "time column 'day' does not increase at line 5"),
    ("when,x,kind\n" + "".join(f"2020-01-{day:02d},{day % 3},{'rain' if day % 2 else 'dry'}\n"
                               for day in range(1, 29)), [],
     "column 'kind' holds text, not numbers ('rain' on line 2); forecast the numeric columns with --target-columns x"),
])
def test_cli_bad_forecast_inputs_end_in_one_line_and_write_nothing(tmp_path, capsys, text, flags, expected):
    data, out = tmp_path / "bad.csv", tmp_path / "run"
    data.write_text(text, encoding="utf-8")
    code = main(["train", "--task", "forecast", "--data", str(data), "--out", str(out), "--block-size", "4",
                 "--max-steps", "2", "--quiet", *flags])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and expected in error, error
    assert not out.exists()


def test_cli_reports_interpolated_values(tmp_path, capsys):
    data = tmp_path / "gaps.csv"
    data.write_text("t,x\n" + "".join(f"{step},{'' if step in (10, 11) else step % 6 + step / 10}\n"
                                       for step in range(80)), encoding="utf-8")
    assert main(["train", "--task", "forecast", "--data", str(data), "--out", str(tmp_path / "run"), "--block-size",
                 "8", "--horizon", "2", "--max-steps", "2", "--eval-interval", "2", "--threads", "1"]) == 0
    assert "filled 2 missing values by linear interpolation (x: 2)" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "run"), "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["interpolated"] == {"x": 2}


def test_history_length_known_answers():
    """Three seasons or two horizons, 12 to 128 rows, leaving 20 training windows, at least 4."""
    assert history_length(200, 12, 12) == 36  # three monthly seasons
    assert history_length(200, 5, 1) == 12  # no season, a short horizon: the floor of 12
    assert history_length(200, 10, 1) == 20  # two horizons
    assert history_length(5000, 48, 48) == 128  # three seasons of 48 would be 144: the cap
    assert history_length(59, 1, 12) == 36  # 59 - 1 - 19 = 39 rows of room
    assert history_length(40, 12, 12) == 9  # the room left: 40 - 12 - 19
    assert history_length(20, 12, 12) == 4  # no room: the least, which the training part then refuses


def test_a_short_monthly_series_trains_with_the_default_history(tmp_path, capsys):
    """72 monthly rows (the last 7 held out, 6 validating): the default --block-size 0 becomes 36 (3 seasons of
    12, inside 59 - 1 - 19), said on stderr, saved in config.json and used by eval; a fixed 128 refused it."""
    data, run = tmp_path / "monthly.csv", tmp_path / "run"
    data.write_text("month,sales\n" + "".join(f"{1990 + step // 12}-{step % 12 + 1:02d}-01,"
                                               f"{100 + 10 * math.sin(2 * math.pi * step / 12) + step / 4:.3f}\n"
                                               for step in range(72)), encoding="utf-8")
    assert main(["train", "--task", "forecast", "--data", str(data), "--out", str(run), "--hidden-size", "8",
                 "--max-steps", "2", "--eval-interval", "2", "--threads", "1"]) == 0
    assert ("the network reads the last 36 rows before each origin (season 12, horizon 1, 59 training rows"
            in capsys.readouterr().err)
    assert json.loads((run / "config.json").read_text())["data"]["block_size"] == 36
    assert load_checkpoint(run).task.context == 36
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["windows"] == 7
    code = main(["train", "--task", "forecast", "--data", str(data), "--out", str(tmp_path / "fixed"),
                 "--block-size", "128", "--max-steps", "2", "--quiet"])
    assert code == 2 and "fewer than one window of --block-size 128" in capsys.readouterr().err


def test_block_size_zero_is_refused_for_a_task_that_does_not_choose_it(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("hello world\n" * 50, encoding="utf-8")
    code = main(["train", "--data", str(text), "--out", str(tmp_path / "run"), "--block-size", "0", "--max-steps", "1"])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "--block-size 0 (chosen from the data) is for --task forecast" \
        in error, error
    assert not (tmp_path / "run").exists()


def test_train_and_predict_on_a_csv_with_dates(tmp_path, capsys):
    steps = np.arange(200)
    rows = [f"2024-01-01T{step // 60:02d}{step % 60:02d},{math.sin(step / 5):.4f},{math.cos(step / 7):.4f}"
            for step in steps]
    data = tmp_path / "sensor.csv"
    data.write_text("when,a,b\n" + "\n".join(rows) + "\n", encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--task", "forecast", "--data", str(data), "--out", str(run), "--block-size", "16",
                 "--horizon", "3", "--season", "10", "--hidden-size", "8", "--batch-size", "4", "--max-steps", "3",
                 "--forecast-mode", "autoregressive", "--backbone", "gru", "--threads", "1", "--quiet"]) == 0
    saved = json.loads((run / "scaler.json").read_text())
    assert saved["season"] == 10 and saved["method"] == "autoregressive"  # given, not guessed or chosen
    assert capsys.readouterr().err == ""  # --quiet: not even the notes (the anchor chosen)
    assert main(["predict", str(run), "--file", str(data), "--json"]) == 0
    steps_out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(steps_out) == 3 and all(len(step) == 2 for step in steps_out)
    assert (tmp_path / "sensor.csv.forecast.png").is_file()
    assert main(["predict", str(run), str(data)]) == 0  # a path as an input works too
    header, *lines = capsys.readouterr().out.splitlines()  # the 3 steps as a CSV, each after its minute
    assert header == "when,a,b" and [line.split(",")[0] for line in lines] == [
        "2024-01-01T0320", "2024-01-01T0321", "2024-01-01T0322"] and all(len(line.split(",")) == 3 for line in lines)
    other = tmp_path / "other.csv"
    other.write_text("when,a\n" + "\n".join(row.rsplit(",", 1)[0] for row in rows) + "\n", encoding="utf-8")
    assert main(["predict", str(run), "--file", str(other)]) == 2
    assert "the model was trained on a, b" in capsys.readouterr().err


def test_ets_on_fewer_rows_than_aicc_can_judge_is_simple_exponential_smoothing():
    """AICc needs more rows than parameters + 2: with 3 or 4 training rows no form has one, and fitting stopped
    with an AssertionError (a traceback from `train` on a short series). The simplest form is taken, fitted by
    statsmodels as any other, and its missing AICc is saved as JSON's null."""
    import json as json_module

    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    from seqlab.models.forecast_baselines import EtsFit, fit_ets

    train = np.array([1.0, 2.5, 2.0, 3.0])
    fit = fit_ets(train, 1)
    assert fit.options["trend"] is None and fit.options["seasonal"] is None and not math.isfinite(fit.aicc)
    expected = ETSModel(train, error="add").fit(disp=False, return_params=True)
    np.testing.assert_allclose(fit.params, expected)
    again = EtsFit.from_dict(json_module.loads(json_module.dumps(fit.to_dict(), allow_nan=False)))
    assert again.options == fit.options and not math.isfinite(again.aicc)
    assert math.isfinite(fit_ets(np.append(train, 2.8), 1).aicc)  # five rows: AICc chooses, as before
