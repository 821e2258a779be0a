"""Fuzzing with hypothesis: every input gives a result or one clear line (a SeqlabError; exit code 2), never a traceback.

Bounded to a few seconds a test and derandomized, so ``make test`` is repeatable; set
SEQLAB_FUZZ_EXAMPLES=2000 to search harder (with a fresh random seed each run).
"""
from __future__ import annotations

import json
import os
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqlab.cli import main
from seqlab.config import SECTIONS, Config, flag_names, load_config_file
from seqlab.data.labelled import read_labelled
from seqlab.data.pairs import read_pairs
from seqlab.data.timeseries import read_series
from seqlab.data.tokenizers import UNKNOWN_TEXT, BPETokenizer, CharTokenizer, WordTokenizer, tokenizer_from_dict
from seqlab.errors import SeqlabError
from seqlab.registry import backbone_names, backbone_options, build_backbone

from helpers import words_text

EXAMPLES = int(os.environ.get("SEQLAB_FUZZ_EXAMPLES", "30"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="SEQLAB_FUZZ_EXAMPLES" not in os.environ,
                database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# what real text and real tables hold: separators, quotes, line breaks of every kind, marks, emoji, NUL
AWKWARD = ",\t\"' \r\n\u0085\u2028\u2029\x0b\x0c\x00\ufeff-.e0123456789\u0301\u05d0\U0001F600"
cell_text = st.text(alphabet=st.sampled_from(AWKWARD) | st.characters(), max_size=12)
json_scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
                | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=10))
json_values = json_scalars | st.lists(json_scalars, max_size=2) | st.dictionaries(st.text(max_size=4), json_scalars,
                                                                                  max_size=2)


FIELD_NAMES = sorted({name for section in Config().to_dict().values() for name in section})
config_documents = st.dictionaries(
    st.sampled_from(sorted(SECTIONS)) | st.text(max_size=4),
    st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=4), json_values, max_size=4) | json_scalars,
    max_size=4)


@FUZZ
@given(document=config_documents)
def test_config_documents_are_accepted_or_refused_in_one_line(document):
    config = Config()
    try:
        config.update(document, source="fuzzed.json")
        config.validate()
    except SeqlabError as error:
        assert "\n" not in str(error)


@FUZZ
@given(content=st.binary(max_size=60) | config_documents.map(lambda document: json.dumps(document).encode()))
def test_config_files_are_read_or_refused_in_one_line(tmp_path, content):
    path = tmp_path / "config.json"
    path.write_bytes(content)
    try:
        Config.from_dict(load_config_file(str(path)), source=str(path)).validate()
    except SeqlabError as error:
        assert "\n" not in str(error)


FLAGS = sorted(flag for flag in flag_names() if flag not in ("data", "init-from"))
flag_values = (st.sampled_from(["0", "-1", "1", "3", "2.5", "1e308", "nan", "inf", "-inf", "true", "no", "", "lstm",
                                "transformer", "tcn", "synthetic", "classify", "forecast", "seq2seq", "music", "bpe",
                                "word", "stream", "onehot", "sgd"])
               | st.text(max_size=6))
command_lines = st.lists(st.tuples(st.sampled_from(FLAGS), flag_values), max_size=5).map(
    lambda pairs: [part for flag, value in pairs for part in (f"--{flag}", value)])


def run_cli(capsys, arguments: list[str]) -> int:
    """The command's exit code; with 2, exactly one line on stderr and no traceback."""
    capsys.readouterr()
    try:
        code = main(arguments)
    except SystemExit as exit_:  # argparse's own refusals
        code = exit_.code
    error = capsys.readouterr().err
    assert code in (0, 2), (arguments, code, error)
    if code == 2:
        assert error.count("\n") == 1 and error.startswith("seqlab") and "Traceback" not in error, (arguments, error)
    return code


@FUZZ
@given(flags=command_lines, extra=st.lists(st.sampled_from(["--variant", "--kernel-size", "--num-heads", "--length",
                                                             "--fused", "x", "--", "-h3", "--resume", "--overwrite"]),
                                          max_size=3))
def test_train_command_lines_run_or_are_refused_in_one_line(tmp_path, capsys, flags, extra):
    # no data file: every command line stops before training, after the config, backbone and source checks
    code = run_cli(capsys, ["train", "--out", str(tmp_path / "run"), "--data", str(tmp_path / "absent.txt"),
                            *flags, *extra])
    assert code == 2


option_values = (st.none() | st.booleans() | st.integers(-3, 70) | st.floats(-2, 70) | st.just(float("nan"))
                 | st.sampled_from(["", "zeros", "learned", "peephole", "coupled", "no_forget", "relu", "tanh",
                                    "orthogonal", "identity", "rotary", "sinusoidal", "learned", "none"]))


@FUZZ
@given(data=st.data())
def test_backbone_options_build_a_module_or_are_refused_in_one_line(data):
    name = data.draw(st.sampled_from(backbone_names()))
    known = sorted(set(backbone_options(name)) - {"num_layers", "dropout"})
    options = data.draw(st.dictionaries(st.sampled_from([*known, "colour", "size"]), option_values, max_size=3))
    try:
        build_backbone(name, input_size=4, hidden_size=8, num_layers=1, **options)
    except SeqlabError as error:
        assert "\n" not in str(error)


@pytest.fixture(scope="module")
def language_model(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fuzzed-lm")
    (root / "text.txt").write_text(words_text(1500), encoding="utf-8")
    assert main(["train", "--data", str(root / "text.txt"), "--out", str(root / "run"), "--max-steps", "1",
                 "--hidden-size", "8", "--block-size", "8", "--batch-size", "2", "--eval-interval", "1",
                 "--threads", "1", "--quiet"]) == 0
    return root / "run"


sample_flags = st.lists(st.tuples(
    st.sampled_from(["--max-tokens", "--temperature", "--top-k", "--top-p", "--seed", "--stop", "--prompt",
                     "--condition"]),
    st.sampled_from(["0", "1", "-1", "7", "0.5", "1e9", "-inf", "inf", "x", ""]) | st.text(max_size=4)),
    max_size=4).map(lambda pairs: [part for flag, value in pairs for part in (flag, value)])


@FUZZ
@given(flags=sample_flags)
def test_sample_command_lines_sample_or_are_refused_in_one_line(language_model, capsys, flags):
    if "--max-tokens" not in flags or flags[flags.index("--max-tokens") + 1] == "1e9":
        flags = [*flags, "--max-tokens", "5"]  # the last one wins: a bounded run
    run_cli(capsys, ["sample", str(language_model), *flags])


@FUZZ
@given(text=st.text(max_size=40))
def test_char_tokenizer_round_trips_any_text(text):
    tokenizer = CharTokenizer.fit(text)
    assert tokenizer.decode(tokenizer.encode(text)) == text
    again = tokenizer_from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert again.encode(text).tolist() == tokenizer.encode(text).tolist()
    unseen = "".join(character for character in "\u2028\U0001F600x" if character not in text)
    assert tokenizer.decode(tokenizer.encode(unseen)) == UNKNOWN_TEXT * len(unseen)


@FUZZ
@given(text=st.text(max_size=40))
def test_word_tokenizer_round_trips_any_text(text):
    tokenizer = WordTokenizer.fit(text)
    assert tokenizer.decode(tokenizer.encode(text)) == text
    again = tokenizer_from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert again.encode(text).tolist() == tokenizer.encode(text).tolist()


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return BPETokenizer.fit(words_text(3000) + "caf\u00e9 \u05e9\u05dc\u05d5\u05dd \U0001F600\n", vocab_size=300)


@FUZZ
@given(text=st.text(max_size=40), training=st.text(max_size=40))
def test_bpe_tokenizer_round_trips_any_text(bpe, text, training):
    assert bpe.decode(bpe.encode(text)) == text
    fitted = BPETokenizer.fit(training, vocab_size=270)  # its own merges, from arbitrary text
    assert fitted.decode(fitted.encode(text)) == text
    again = tokenizer_from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert again.encode(text).tolist() == fitted.encode(text).tolist()


tables = st.lists(st.lists(cell_text, min_size=1, max_size=4), max_size=6)


def write_table(path: Path, rows: list[list[str]], delimiter: str, bom: bool, line_end: str) -> Path:
    text = line_end.join(delimiter.join(row) for row in rows)
    path.write_bytes((("\ufeff" if bom else "") + text).encode("utf-8"))
    return path


table_layouts = st.tuples(st.sampled_from([("a.csv", ","), ("a.tsv", "\t"), ("a.txt", "\t"), ("a.txt", ",")]),
                          st.booleans(), st.sampled_from(["\n", "\r\n"]))
selectors = st.sampled_from(["-1", "0", "1", "5", "-7", "label", "text", "", "0,1", "x,-1"])
headers = st.sampled_from(["auto", "yes", "no"])


@FUZZ
@given(rows=tables, layout=table_layouts, label=selectors, text_columns=selectors, header=headers)
def test_classify_tables_are_read_or_refused_in_one_line(tmp_path, rows, layout, label, text_columns, header):
    (name, delimiter), bom, line_end = layout
    path = write_table(tmp_path / name, rows, delimiter, bom, line_end)
    try:
        examples = read_labelled(path, label_column=label, text_columns=text_columns, header=header)
    except SeqlabError as error:
        assert "\n" not in str(error)
        return
    assert len(examples.texts) == len(examples.labels) == len(examples.line_numbers) > 0
    assert all(text.strip() and label.strip() for text, label in zip(examples.texts, examples.labels))


@FUZZ
@given(rows=tables, layout=table_layouts, header=headers)
def test_seq2seq_pair_files_are_read_or_refused_in_one_line(tmp_path, rows, layout, header):
    (name, delimiter), bom, line_end = layout
    path = write_table(tmp_path / name, rows, delimiter, bom, line_end)
    try:
        pairs = read_pairs(path, header=header)
    except SeqlabError as error:
        assert "\n" not in str(error)
        return
    assert len(pairs.sources) == len(pairs.targets) > 0


numeric_cells = st.sampled_from(["1", "-2.5", "1e3", "nan", "inf", "", " 7 ", "2024-01-02", "x", "1,5", "0x1F"])
series_tables = st.lists(st.lists(numeric_cells | cell_text, min_size=1, max_size=3), max_size=8)


@FUZZ
@given(rows=series_tables, layout=table_layouts, targets=selectors, time_column=selectors, header=headers)
def test_forecast_tables_are_read_or_refused_in_one_line(tmp_path, rows, layout, targets, time_column, header):
    (name, delimiter), bom, line_end = layout
    path = write_table(tmp_path / name.replace(".tsv", ".csv"), rows, delimiter, bom, line_end)
    try:
        series = read_series(path, target_columns=targets, time_column=time_column, header=header)
    except SeqlabError as error:
        assert "\n" not in str(error)
        return
    assert series.values.ndim == 2 and series.values.shape[1] == len(series.columns) > 0
