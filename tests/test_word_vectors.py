"""Pretrained word vectors (--word-vectors): reading GloVe / word2vec files, the embedding they start, bad files."""
import gzip
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from seqlab.cli import main
from seqlab.data.vectors import read_word_vectors
from test_classify import FLAGS, run_bad, sentiment_rows, write

DIMENSION = 6


def vector(word: str) -> list[float]:
    """A fixed vector per word (from its letters), so a test knows every value."""
    rng = np.random.default_rng(sum(ord(letter) * 31 ** index for index, letter in enumerate(word)) % 2 ** 32)
    return [round(float(value), 4) for value in rng.normal(0, 0.5, DIMENSION)]


def vectors_file(path, words, *, header=False):
    lines = [f"{len(words)} {DIMENSION}"] if header else []
    lines += [" ".join([word, *map(str, vector(word))]) for word in words]
    return write(path, "\n".join(lines) + "\n")


def test_reading_glove_and_word2vec_files(tmp_path):
    words = ["the", "Good", "good", "film", "superb", "dreadful"]
    for header in (False, True):
        path = vectors_file(tmp_path / f"v{header}.txt", words, header=header)
        found = read_word_vectors(path, {"good", "film", "missing"})
        assert found.dimension == DIMENSION and found.words == ["Good", "good", "film"]  # what was asked for
        assert found.lookup("good").tolist() == pytest.approx(vector("good"))  # its own form first
        assert found.lookup("film").tolist() == pytest.approx(vector("film"))
        assert found.lookup("Film").tolist() == pytest.approx(vector("film"))  # a lower-case form stands in
        assert found.lookup("missing") is None and "missing" not in found
        first = read_word_vectors(path, set(), first=2)
        assert first.words == ["the", "Good"]
        assert first.lookup("good").tolist() == pytest.approx(vector("Good"))  # the first form of a word stands in


def test_gzip_packed_and_byte_order_marked_files_read_alike(tmp_path):
    plain = vectors_file(tmp_path / "v.txt", ["the", "good", "film"], header=True)
    packed = tmp_path / "v.vec.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    marked = tmp_path / "marked.txt"
    marked.write_bytes("\ufeff".encode() + plain.read_bytes())
    expected = read_word_vectors(plain, {"the", "film"})
    for other in (packed, marked):
        found = read_word_vectors(other, {"the", "film"})
        assert found.words == expected.words == ["the", "film"] and np.array_equal(found.vectors, expected.vectors)


def test_word_vectors_start_the_embedding_and_words_unseen_in_training_keep_theirs(tmp_path, capsys):
    rows = sentiment_rows(80, 0) + ["a rare moment\tyes"] * 1  # "rare" and "moment" are seen once
    data = write(tmp_path / "train.tsv", "\n".join(rows) + "\n")
    unseen = ["superb", "dreadful"]
    vectors = vectors_file(tmp_path / "vectors.txt", ["the", *unseen, "good", "bad", "film", "rare", "lovely"])
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--tokenizer", "word", "--min-count", "2",
                 "--word-vectors", str(vectors), "--vector-words", "3", "--weight-decay", "1.0", *FLAGS]) == 0
    pieces = json.loads((run / "tokenizer.json").read_text())["pieces"]
    assert set(unseen) <= set(pieces)  # the file's first words join the vocabulary
    assert "rare" in pieces and "moment" not in pieces  # seen once: kept only with a vector
    assert "lovely" in pieces and json.loads((run / "config.json").read_text())["model"]["embedding_size"] == DIMENSION
    embedding = load_file(str(run / "model.safetensors"))["embedding.weight"]
    assert embedding.shape == (len(pieces) + 1, DIMENSION)
    for word in unseen:  # never in a batch, and weight decay leaves the vectors alone: exactly the file's still
        assert embedding[pieces.index(word) + 1].tolist() == pytest.approx(vector(word), abs=1e-6)
    trained = embedding[pieces.index("good") + 1]
    assert not torch.allclose(trained, torch.tensor(vector("good")), atol=1e-4)  # the words it trained on moved
    vectors.unlink()  # the checkpoint holds what it needs
    capsys.readouterr()
    assert main(["predict", str(run), "superb", "good lovely film"]) == 0
    assert capsys.readouterr().out.splitlines()[1] == "yes"
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0


def test_a_run_with_word_vectors_resumes_exactly(tmp_path):
    data = write(tmp_path / "train.tsv", "\n".join(sentiment_rows(60, 4)) + "\n")
    vectors = vectors_file(tmp_path / "vectors.txt", ["good", "bad", "film", "superb"])
    flags = ["--data", str(data), "--tokenizer", "word", "--word-vectors", str(vectors), *FLAGS]
    assert main(["train", "--out", str(tmp_path / "whole"), *flags, "--max-steps", "6", "--eval-interval", "3"]) == 0
    assert main(["train", "--out", str(tmp_path / "parts"), *flags, "--max-steps", "3", "--eval-interval", "3"]) == 0
    assert main(["train", "--out", str(tmp_path / "parts"), "--resume", "--max-steps", "6", "--quiet"]) == 0
    whole, parts = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("whole", "parts"))
    assert whole.keys() == parts.keys() and all(torch.equal(whole[name], parts[name]) for name in whole)


def test_bad_word_vectors_are_refused_and_nothing_is_written(tmp_path, capsys):
    data = write(tmp_path / "train.tsv", "\n".join(sentiment_rows(40, 5)) + "\n")
    good = vectors_file(tmp_path / "good.txt", ["good", "bad"])
    short = write(tmp_path / "short.txt", "the 0.1 0.2 0.3\ngood 0.1 0.2\n")
    wrong = write(tmp_path / "wrong.txt", "the 0.1 0.2\ngood 0.1 x\n")
    empty = write(tmp_path / "empty.txt", "\n")
    infinite = write(tmp_path / "infinite.txt", "good 0.1 inf 0.2\n")
    foreign = vectors_file(tmp_path / "foreign.txt", ["gut", "schlecht", "der"])
    binary = tmp_path / "vectors.bin"  # word2vec's binary format: a text header, then raw float32s
    binary.write_bytes(b"2 3\ngood " + np.array([0.5, -1.5, 2.0], np.float32).tobytes() + b"bad "
                       + np.array([1e-30, 2.5, -7.0], np.float32).tobytes())
    broken = tmp_path / "vectors.txt.gz"
    broken.write_bytes(gzip.compress(good.read_bytes())[:-12])
    cases = [
        (["--word-vectors", str(tmp_path / "missing.txt")], "does not exist"),
        (["--word-vectors", str(short)], "line 2 has 2 numbers where the first vector has 3"),
        (["--word-vectors", str(wrong)], "line 2: the vector of 'good' holds something that is not a number"),
        (["--word-vectors", str(empty)], "holds no word vectors"),
        (["--word-vectors", str(infinite)], "line 1: the vector of 'good' holds nan or inf"),
        (["--word-vectors", str(foreign)], "has a vector for none of the training text's"),
        (["--word-vectors", str(binary)], "line 2 is not UTF-8 text (word2vec's binary format?)"),
        (["--word-vectors", str(broken)], "is not a whole gzip file"),
        (["--word-vectors", str(good), "--tokenizer", "char"], "pass --tokenizer word"),
        (["--word-vectors", str(good), "--init-from", str(tmp_path)], "pass one of them"),
    ]
    for number, (flags, message) in enumerate(cases):
        out = tmp_path / f"run{number}"
        assert message in run_bad(capsys, ["train", "--data", str(data), "--out", str(out), "--tokenizer", "word",
                                           *FLAGS, *flags])
        assert not out.exists()
