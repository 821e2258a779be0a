"""Data files in another encoding than UTF-8 (``--encoding``): read exactly as Python's codec reads them where the
flag names it, refused in one line naming the line and the flag where it does not."""
from __future__ import annotations

import codecs
import json

import numpy as np
import pytest

from seqlab.cli import main
from seqlab.data.labelled import read_labelled
from seqlab.data.text import check_encoding, read_lines, read_text
from seqlab.data.timeseries import read_series
from seqlab.errors import SeqlabError

from helpers import tree_digest

HEADER = "Datum;Umsatz (€);Temperatur (°C)"
REVIEWS = [("Très bon café et service impeccable", "oui"), ("Déçu : le gâteau était sec", "non"),
           ("Génial ! À refaire", "oui"), ("Trop cher pour la qualité", "non")]


def sales_rows(count: int = 160) -> list[str]:
    return [f"2020-{1 + day // 28:02d}-{1 + day % 28:02d};{100 + 10 * np.sin(day * 2 * np.pi / 7):.3f};"
            f"{15 + day / 40:.2f}" for day in range(count)]


def write(path, text: str, encoding: str):
    path.write_bytes(text.encode(encoding))
    return path


def run_bad(capsys, arguments):
    capsys.readouterr()
    assert main(arguments) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("seqlab: error:"), error
    return error


@pytest.mark.parametrize("encoding", ["cp1252", "latin-1", "shift_jis", "utf-16-le", "gb18030"])
def test_read_text_decodes_as_the_codec_does(tmp_path, encoding):
    text = "naïve café\n" if encoding in ("cp1252", "latin-1") else "料理はとても美味しかった\nnaive\n"
    path = write(tmp_path / "data.txt", text, encoding)
    assert read_text(path, encoding) == codecs.decode(path.read_bytes(), encoding) == text
    assert read_lines(path, encoding) == text.split("\n")[:-1]


def test_a_byte_order_mark_says_the_encoding_whatever_the_flag_says(tmp_path):
    text = "Umsatz (€)\n"
    assert read_text(write(tmp_path / "bom8.csv", "\ufeff" + text, "utf-8"), "cp1252") == text
    assert read_text(write(tmp_path / "bom16.csv", "\ufeff" + text, "utf-16-le"), "cp1252") == text


def test_not_utf8_is_refused_naming_the_line_how_cp1252_reads_it_and_the_flag(tmp_path):
    path = write(tmp_path / "sales.csv", "t;x\n1;2\n3;Café\n", "cp1252")
    with pytest.raises(SeqlabError) as refused:
        read_text(path)
    message = str(refused.value)
    assert "is not UTF-8: byte E9 on line 3 ('3;Café' as cp1252 reads it)" in message
    assert "--encoding cp1252" in message
    with pytest.raises(SeqlabError, match="is not shift_jis: byte 80 on line 1"):
        read_text(write(tmp_path / "euro.csv", "€\n", "cp1252"), "shift_jis")


@pytest.mark.parametrize("name, message", [("klingon", "not a text encoding Python knows"),
                                           ("base64", "not a text encoding;"), ("rot13", "not a text encoding;")])
def test_unknown_and_non_text_codecs_are_refused(name, message):
    with pytest.raises(SeqlabError, match=message):
        check_encoding(name)
    assert check_encoding("Latin1") == "iso8859-1" and check_encoding("UTF8") == "utf-8"


def test_series_and_labelled_readers_take_the_encoding(tmp_path):
    sales = write(tmp_path / "sales.csv", HEADER + "\n" + "\n".join(sales_rows()) + "\n", "cp1252")
    series = read_series(sales, encoding="cp1252")
    assert series.columns == ["Umsatz (€)", "Temperatur (°C)"] and series.time_name == "Datum"
    reviews = write(tmp_path / "avis.csv", "texte,label\n" + "".join(f"{text},{label}\n" for text, label in REVIEWS),
                    "cp1252")
    table = read_labelled(reviews, encoding="cp1252")
    assert table.texts == [text for text, _ in REVIEWS] and table.labels == [label for _, label in REVIEWS]


def test_forecast_train_eval_predict_with_encoding(tmp_path, capsys):
    sales = write(tmp_path / "sales.csv", HEADER + "\r\n" + "\r\n".join(sales_rows()) + "\r\n", "cp1252")
    run = tmp_path / "run"
    flags = ["--task", "forecast", "--horizon", "7", "--max-steps", "10", "--eval-interval", "5", "--threads", "1",
             "--quiet"]
    error = run_bad(capsys, ["train", "--data", str(sales), "--out", str(run), *flags])
    assert "line 1 ('Datum;Umsatz (€);Temperatur (°C)' as cp1252 reads it)" in error and not run.exists()
    assert main(["train", "--data", str(sales), "--out", str(run), "--encoding", "cp1252", *flags]) == 0
    assert json.loads((run / "scaler.json").read_text(encoding="utf-8"))["columns"] == ["Umsatz (€)",
                                                                                        "Temperatur (°C)"]
    before = tree_digest(run)
    # eval and predict read their files as UTF-8 unless told: a file's encoding is its own, not the model's
    assert "--encoding cp1252" in run_bad(capsys, ["eval", str(run), "--data", str(sales)])
    assert main(["eval", str(run), "--data", str(sales), "--encoding", "cp1252", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["windows"] > 0
    assert main(["predict", str(run), "--file", str(sales), "--encoding", "cp1252"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "Datum,Umsatz (€),Temperatur (°C)"
    assert tree_digest(run) == before


def test_classify_predict_reads_lines_in_the_encoding(tmp_path, capsys):
    reviews = write(tmp_path / "avis.csv", "texte,label\n" + "".join(f"{text} {index},{label}\n" for index in range(20)
                                                                      for text, label in REVIEWS), "cp1252")
    run = tmp_path / "run"
    assert main(["train", "--task", "classify", "--data", str(reviews), "--out", str(run), "--encoding", "cp1252",
                 "--max-steps", "5", "--eval-interval", "5", "--threads", "1", "--quiet", "--hidden-size", "8"]) == 0
    lines = write(tmp_path / "new.txt", "Très bon\nDéçu\n", "cp1252")
    assert "byte E8 on line 1" in run_bad(capsys, ["predict", str(run), "--file", str(lines)])
    assert main(["predict", str(run), "--file", str(lines), "--encoding", "cp1252", "--json"]) == 0
    assert all(json.loads(line) in ("oui", "non") for line in capsys.readouterr().out.splitlines())


def test_encoding_flag_refusals(tmp_path, capsys):
    text = write(tmp_path / "corpus.txt", "the cat sat on the mat\n" * 50, "utf-8")
    assert "not a text encoding Python knows" in run_bad(
        capsys, ["train", "--task", "classify", "--data", str(text), "--out", str(tmp_path / "c"),
                 "--encoding", "klingon", "--max-steps", "1"])
    assert not (tmp_path / "c").exists()
