"""Text from the wild through every verb that reads text: one input line is what "\\n" or "\\r\\n" ends.

Lines hold what ``str.splitlines`` would break at (NEL, U+2028, U+2029, \\v, \\f), emoji with joiners and
skin tones, combining marks, right-to-left scripts, a NUL byte past the binary probe, and a very long line;
the files carry a UTF-8 byte-order mark and mix CRLF with LF.
"""
from __future__ import annotations

import json

import pytest

from seqlab.cli import main
from seqlab.data.labelled import read_labelled
from seqlab.data.pairs import read_pairs
from seqlab.data.text import BINARY_PROBE_BYTES, read_lines, read_text, split_lines
from seqlab.data.timeseries import read_series
from seqlab.train.checkpoint import load_checkpoint

from helpers import words_text

WILD = [
    "a line with NEL\u0085inside",
    "a line with a line separator\u2028and a paragraph separator\u2029inside",
    "vertical\u000btab and form\u000cfeed",
    "emoji \U0001F600 \U0001F44D\U0001F3FD family \U0001F468\u200d\U0001F469\u200d\U0001F467",
    "combining e\u0301 and a\u0308, precomposed \u00e9",
    "right to left \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 mixed",
    "long " + "word " * 2000,  # pushes the NUL below past the binary probe
    "a NUL\x00inside, past the first kilobytes",
    "a carriage return\rinside",
]


def wild_file(path, lines: list[str]) -> str:
    """The lines with a byte-order mark, CRLF after the even ones and LF after the odd ones."""
    path.write_bytes(("\ufeff" + "".join(line + ("\r\n" if index % 2 == 0 else "\n")
                                           for index, line in enumerate(lines))).encode("utf-8"))
    assert b"\x00" not in path.read_bytes()[:BINARY_PROBE_BYTES]
    return str(path)


def test_lines_end_only_at_newlines(tmp_path):
    assert split_lines("a\u2028b\r\nc\u0085d\ne") == ["a\u2028b", "c\u0085d", "e"]
    assert split_lines("one\n") == ["one"] and split_lines("one\n\n") == ["one", ""] and split_lines("") == []
    # a lone carriage return ends a line only in a text without "\n" (classic Mac OS, Excel for Mac's CSV)
    assert split_lines("a\rb\r") == ["a", "b"] and split_lines("a\rb\nc\r\n") == ["a\rb", "c"]
    path = wild_file(tmp_path / "wild.txt", WILD)
    assert read_lines(path) == WILD
    assert read_text(path) == "".join(line + ("\r\n" if index % 2 == 0 else "\n") for index, line in enumerate(WILD))
    assert len("\n".join(WILD).splitlines()) > len(WILD)  # what str.splitlines would have made of them


def test_tables_keep_wild_cells_whole(tmp_path):
    cells = [line for line in WILD if "\r" not in line]  # a lone CR inside an unquoted CSV cell is refused
    labelled = read_labelled(wild_file(tmp_path / "wild.tsv", [f"{text}\t{index % 2}" for index, text in enumerate(cells)]))
    assert labelled.texts == [text.strip() for text in cells] and labelled.labels == [str(index % 2) for index in range(len(cells))]
    pairs = read_pairs(wild_file(tmp_path / "pairs.tsv", [f"{text}\t{text[::-1]}" for text in cells]))
    assert pairs.sources == [text.strip() for text in cells]
    assert pairs.targets == [text[::-1].strip() for text in cells]
    series = read_series(wild_file(tmp_path / "series.csv", ["t,caf\u00e9 \U0001F600,load\u2028kW",
                                                             *[f"{row},{row * 0.5},{row * 2}" for row in range(6)]]),
                         time_column="t")
    assert series.columns == ["caf\u00e9 \U0001F600", "load\u2028kW"]
    assert series.values[:, 1].tolist() == [row * 2 for row in range(6)]


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    root = tmp_path_factory.mktemp("classifier")
    rows = [f"{text} {'good' if index % 2 else 'bad'}\t{'pos' if index % 2 else 'neg'}"
            for index, text in enumerate(WILD[:6] * 4)]
    data = wild_file(root / "train.tsv", rows)
    assert main(["train", "--task", "classify", "--data", data, "--out", str(root / "run"), "--max-steps", "2",
                 "--hidden-size", "8", "--batch-size", "4", "--eval-interval", "2", "--threads", "1", "--quiet"]) == 0
    return root / "run"


def test_predict_file_gives_one_prediction_per_input_line(classifier, tmp_path, capsys):
    path = wild_file(tmp_path / "inputs.txt", WILD)
    capsys.readouterr()
    assert main(["predict", str(classifier), "--file", path, "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.split("\n")[:-1]]
    checkpoint = load_checkpoint(classifier)
    assert printed == checkpoint.task.predict(checkpoint.model, WILD)  # one each, in the file's order
    assert len(printed) == len(WILD)


def test_a_language_model_trains_evaluates_and_samples_on_wild_text(tmp_path, capsys):
    data = wild_file(tmp_path / "wild.txt", WILD[:6] + [words_text(3000)] + WILD[6:])
    run = str(tmp_path / "run")
    assert main(["train", "--data", data, "--out", run, "--max-steps", "2", "--hidden-size", "8", "--block-size", "16",
                 "--batch-size", "2", "--eval-interval", "2", "--threads", "1", "--quiet"]) == 0
    assert "\ufeff" not in load_checkpoint(run).tokenizer.characters  # the byte-order mark is not text
    assert main(["eval", run, "--data", data, "--json"]) == 0
    capsys.readouterr()
    prompt = "\u05e9\u05dc\u05d5\u05dd\u2028\U0001F600e\u0301\u0085"
    assert main(["sample", run, "--prompt", prompt, "--max-tokens", "5", "--seed", "1"]) == 0
    assert capsys.readouterr().out.startswith(prompt)
