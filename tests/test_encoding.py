"""Data files in another encoding than UTF-8 (``--encoding``): read exactly as Python's codec reads them where the
flag names it, refused in one line naming the line and the flag where it does not."""
from __future__ import annotations

import codecs
import gzip
import json

import numpy as np
import pytest

from seqlab.cli import main
from seqlab.data.labelled import read_labelled
from seqlab.data.text import check_encoding, read_lines, read_text
from seqlab.data.timeseries import read_series
from seqlab.errors import SeqlabError

from helpers import run_bad, tree_digest

HEADER = "Datum;Umsatz (€);Temperatur (°C)"
REVIEWS = [("Très bon café et service impeccable", "oui"), ("Déçu : le gâteau était sec", "non"),
           ("Génial ! À refaire", "oui"), ("Trop cher pour la qualité", "non")]


def sales_rows(count: int = 160) -> list[str]:
    return [f"2020-{1 + day // 28:02d}-{1 + day % 28:02d};{100 + 10 * np.sin(day * 2 * np.pi / 7):.3f};"
            f"{15 + day / 40:.2f}" for day in range(count)]


def write(path, text: str, encoding: str):
    path.write_bytes(text.encode(encoding))
    return path



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
    given = json.loads(capsys.readouterr().out)
    assert given["windows"] > 0
    assert main(["eval", str(run), "--json"]) == 0  # without --data: the file it was trained on, read as then
    assert json.loads(capsys.readouterr().out) == given
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


# ------------------------------------------------------------------ language-model corpora (seqlab prepare, lm)
FRENCH = "Il était une fois une très belle île où l'on mangeait des crêpes. Ça, c'est très français.\n" * 40


def test_a_corpus_in_another_encoding_is_the_corpus_its_utf8_copy_makes(tmp_path):
    from seqlab.data.prepared import prepare_corpus

    for folder in ("latin", "utf8"):
        (tmp_path / folder).mkdir()
    latin = write(tmp_path / "latin" / "conte.txt", FRENCH, "latin-1")
    utf8 = write(tmp_path / "utf8" / "conte.txt", FRENCH, "utf-8")
    ours = prepare_corpus([latin], out=tmp_path / "ours", encoding="latin-1")
    reference = prepare_corpus([utf8], out=tmp_path / "reference")
    assert ours.tokenizer.to_dict() == reference.tokenizer.to_dict() and "é" in ours.tokenizer.to_dict()["characters"]
    assert np.array_equal(ours.train, reference.train) and np.array_equal(ours.val, reference.val)
    assert ours.train_characters + ours.val_characters == len(FRENCH)
    manifest = json.loads((tmp_path / "ours" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["encoding"] == "iso8859-1" and manifest["sources"][0]["path"] == str(latin)
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".seqlab-")]  # the UTF-8 copies are gone
    # compressed as well: decompressed, then written as UTF-8 (the decompressed copy removed), the same corpus
    packed = tmp_path / "latin" / "conte.txt.gz"
    packed.write_bytes(gzip.compress(latin.read_bytes()))
    latin.unlink()
    both = prepare_corpus([packed], out=tmp_path / "packed", encoding="latin-1")
    assert np.array_equal(both.train, reference.train) and np.array_equal(both.val, reference.val)
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(".seqlab-")]


def test_a_folder_in_another_encoding_skips_what_it_cannot_read(tmp_path, capsys):
    folder = tmp_path / "corpus"
    folder.mkdir()
    write(folder / "a.txt", FRENCH, "cp1252")
    write(folder / "b.txt", "\ufeff" + "Déjà UTF-8, as its byte-order mark says.\n" * 20, "utf-8")  # not cp1252
    write(folder / "c.txt", "abc \x81 def\n", "latin-1")  # 0x81: no character in cp1252
    (folder / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert main(["prepare", "--data", str(folder), "--out", str(tmp_path / "prepared"), "--encoding", "cp1252",
                 "--quiet"]) == 0
    error = capsys.readouterr().err
    assert "skipped 2 of 4 files that are not cp1252 text" in error
    assert "c.txt is not valid cp1252 (bad byte at offset 4)" in error and "d.png looks binary" in error
    manifest = json.loads((tmp_path / "prepared" / "manifest.json").read_text(encoding="utf-8"))
    assert sum(source["characters"] for source in manifest["sources"]) == len(FRENCH) + 41 * 20
    error = run_bad(capsys, ["prepare", "--data", str(folder), "--out", str(tmp_path / "strict"), "--encoding",
                             "cp1252", "--strict"])
    assert "2 of 4 files are not cp1252 text" in error and not (tmp_path / "strict").exists()


def test_language_model_train_and_eval_take_the_encoding(tmp_path, capsys):
    text = write(tmp_path / "conte.txt", FRENCH, "latin-1")
    run = tmp_path / "run"
    flags = ["--config", "tiny", "--max-steps", "2", "--eval-interval", "2", "--threads", "1", "--quiet"]
    error = run_bad(capsys, ["train", "--data", str(text), "--out", str(run), *flags])
    assert "is not valid UTF-8 (bad byte at offset 3); pass the encoding it was saved in with --encoding" in error
    assert main(["train", "--data", str(text), "--out", str(run), "--encoding", "latin-1", *flags]) == 0
    assert "é" in json.loads((run / "tokenizer.json").read_text(encoding="utf-8"))["characters"]
    assert main(["eval", str(run), "--data", str(text), "--encoding", "latin-1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["characters"] > 0
    diagnose = ["diagnose", str(run), "--data", str(text), "--length", "8", "--what", "gradients", "--out",
                str(tmp_path / "figures")]
    assert "byte E9 on line 1" in run_bad(capsys, diagnose)
    assert main([*diagnose, "--encoding", "latin-1"]) == 0 and (tmp_path / "figures" / "gradients.json").is_file()
    assert main(["prepare", "--data", str(text), "--out", str(tmp_path / "prepared"), "--encoding", "latin-1",
                 "--quiet"]) == 0
    assert "prepared corpus, tokens already" in run_bad(
        capsys, ["eval", str(run), "--data", str(tmp_path / "prepared"), "--encoding", "latin-1"])


def test_a_full_disk_while_a_corpus_is_written_as_utf8_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch):
    import builtins
    import errno
    import os

    from seqlab.data import text as text_module

    real_open = builtins.open

    class FullDisk:
        def __enter__(self):
            return self

        def __exit__(self, *exception):
            return False

        def write(self, text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def opening(file, mode="r", *arguments, **options):
        return FullDisk() if "w" in mode else real_open(file, mode, *arguments, **options)

    monkeypatch.setattr(text_module, "open", opening, raising=False)
    corpus = write(tmp_path / "conte.txt", FRENCH, "latin-1")
    error = run_bad(capsys, ["prepare", "--data", str(corpus), "--out", str(tmp_path / "out"), "--encoding",
                             "latin-1", "--workers", "1"])
    assert "not enough disk space to write" in error and "as UTF-8 beside --out" in error
    assert sorted(path.name for path in tmp_path.iterdir()) == ["conte.txt"]  # no copy, no partial corpus
