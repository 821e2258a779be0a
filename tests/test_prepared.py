"""Prepared corpora: chunked preparation gives the in-memory tokens, training from a folder follows
training from the file, documents are held out whole, damaged folders and bad input are refused."""
import gzip
import hashlib
import json
import math
import shutil
import subprocess
import sys
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file

from seqlab.cli import main
from seqlab.data import prepared
from seqlab.data.batches import evaluation_streams
from seqlab.data.prepared import load_prepared, prepare_corpus
from seqlab.data.text import chunk_ranges, scan_document, split_text, text_pieces
from seqlab.data.tokenizers import BPETokenizer, CharTokenizer, WordTokenizer
from seqlab.tasks.language_model import evaluate_tokens
from seqlab.train.checkpoint import load_checkpoint
from seqlab.train.trainer import Trainer

from helpers import small_config, tree_digest, words_text
from test_cli import run_bad

# pieces every tokenizer splits differently: runs of spaces and newlines, CRLF, tabs, contractions,
# digits, punctuation and characters of two, three and four bytes
MIXED = ("It's 2024 -- naïve café  costs €3.50!\r\n\tThe   quick\n\n\nbrown fox's den: 42 lines.  \n"
         "Ünïcödé wörds, 日本語 and 🙂 emoji; x=y+1  # comment\n    indented(code) [brackets] {braces}\n")


def library_bpe(text: str, vocab_size: int):
    """The trusted reference: the tokenizers library's own trainer on the whole text in one piece."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator([text], trainer=trainer)
    return BPETokenizer(tokenizer)


def reference_tokenizer(kind: str, text: str):
    return {"char": lambda: CharTokenizer.fit(text), "word": lambda: WordTokenizer.fit(text, vocab_size=40),
            "bpe": lambda: library_bpe(text, 300)}[kind]()


@pytest.mark.parametrize("kind", ["char", "word", "bpe"])
def test_prepared_tokens_equal_the_whole_text_encoded_at_once(tmp_path, kind):
    text = MIXED * 30
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    corpus = prepare_corpus([path], out=tmp_path / "prepared", tokenizer_kind=kind,
                            vocab_size=0 if kind == "char" else (40 if kind == "word" else 300),
                            val_fraction=0.2, chunk_bytes=97)  # dozens of chunks, cut mid-text
    train_text, val_text = split_text(text, 0.2)
    reference = reference_tokenizer(kind, train_text)
    assert corpus.tokenizer.to_dict() == reference.to_dict()
    assert isinstance(corpus.train, np.memmap)
    assert corpus.train.dtype == (np.uint8 if reference.vocab_size <= 256 else np.uint16)
    assert np.array_equal(corpus.train, reference.encode(train_text).numpy())
    assert np.array_equal(corpus.val, reference.encode(val_text).numpy())
    assert (corpus.train_characters, corpus.val_characters) == (len(train_text), len(val_text))
    in_memory = prepare_corpus([path], tokenizer_kind=kind, vocab_size=corpus.tokenizer.vocab_size
                               if kind != "char" else 0, val_fraction=0.2)  # what train --data FILE does
    assert np.array_equal(in_memory.train, corpus.train) and np.array_equal(in_memory.val, corpus.val)
    if kind != "word":  # every token's characters add up to the text's (bpc over part of a split)
        assert corpus.tokenizer.token_characters()[np.asarray(corpus.val)].sum() == len(val_text)


def test_a_prepared_corpus_reads_text_as_the_tokenizer_fitted_at_once_with_the_same_reading(tmp_path):
    text = MIXED * 30
    path = tmp_path / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    assert main(["prepare", "--data", str(path), "--out", str(tmp_path / "prepared"), "--tokenizer", "word",
                 "--min-count", "3", "--lowercase", "true", "--words-only", "true", "--val-fraction", "0.2",
                 "--workers", "1", "--quiet"]) == 0
    corpus = load_prepared(tmp_path / "prepared")
    streamed = prepare_corpus([path], tokenizer_kind="word", min_count=3, lowercase=True, words_only=True,
                              val_fraction=0.2, chunk_bytes=97, workers=2)  # dozens of chunks, two processes
    train_text, val_text = split_text(text, 0.2)
    reference = WordTokenizer.fit(train_text, min_count=3, lowercase=True, words_only=True)
    pieces = WordTokenizer.pattern.findall(train_text.lower())
    assert reference.pieces[1:] == [piece for piece, count in Counter(pieces).most_common()
                                    if count >= 3 and not piece.isspace()]
    for prepared in (corpus, streamed):
        assert prepared.tokenizer.to_dict() == reference.to_dict()
        assert np.array_equal(prepared.train, reference.encode(train_text).numpy())
        assert np.array_equal(prepared.val, reference.encode(val_text).numpy())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "é", "日", "'s", "1", ".", " ", "  ", "\n", "\r\n", "\t", "🙂"]),
                min_size=1, max_size=120), st.integers(1, 40))
def test_safe_cuts_never_change_any_tokenization(tmp_path_factory, bpe_and_words, pieces, size):
    text = "".join(pieces)
    path = tmp_path_factory.mktemp("cuts") / "text.txt"
    path.write_bytes(text.encode("utf-8"))
    ranges = list(chunk_ranges(path, 0, path.stat().st_size, size))
    chunks = [text.encode("utf-8")[start:end].decode("utf-8") for start, end in ranges]
    assert "".join(chunks) == text and "".join(text_pieces(text, size)) == text
    for tokenizer in bpe_and_words:
        whole = tokenizer.encode(text).tolist()
        assert [token for chunk in chunks for token in tokenizer.encode(chunk).tolist()] == whole
        assert [token for piece in text_pieces(text, size) for token in tokenizer.encode(piece).tolist()] == whole


@pytest.fixture(scope="module")
def bpe_and_words():
    sample = MIXED * 5
    return library_bpe(sample, 320), WordTokenizer.fit(sample)


def write_documents(folder):
    """Six text documents (one nested), plus what a real folder holds: a hidden file, an empty file,
    a Latin-1 file and a binary one."""
    texts = {f"doc{index}.txt": words_text(600 + 150 * index, seed=index) for index in range(5)}
    texts["nested/deeper.txt"] = words_text(900, seed=9)
    for name, text in texts.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    (folder / ".hidden.txt").write_text("never read", encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "latin1.txt").write_bytes("café au lait".encode("latin-1"))
    (folder / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (folder / "report.pdf").write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    return texts


def test_a_utf16_corpus_is_named_as_such(tmp_path):
    """Corpora are read in place, by byte ranges: a UTF-16 file (Excel's "Unicode text") is named, not "binary"."""
    path = tmp_path / "notes.txt"
    path.write_bytes("some notes\n".encode("utf-16"))
    assert scan_document(path).problem.startswith("is UTF-16 text (convert it to UTF-8")


def test_several_files_are_split_by_documents_and_bad_files_skipped_or_refused(tmp_path, capsys):
    folder = tmp_path / "texts"
    texts = write_documents(folder)
    assert main(["prepare", "--data", str(folder), "--out", str(tmp_path / "prepared"), "--tokenizer", "word",
                 "--val-fraction", "0.3", "--workers", "1"]) == 0
    error = capsys.readouterr().err
    assert "skipped 3 of 10 files that are not UTF-8 text" in error
    assert scan_document(folder / "report.pdf").problem == "is a PDF, not text"  # beyond the names shown
    assert "latin1.txt is not valid UTF-8" in error and "image.png looks binary" in error
    manifest = json.loads((tmp_path / "prepared" / "manifest.json").read_text())
    sources = {source["path"]: source for source in manifest["sources"]}
    assert sorted(sources) == sorted(str(folder / name) for name in texts)  # no hidden, empty or bad file
    for name, text in texts.items():
        source = sources[str(folder / name)]
        assert source["sha256"] == hashlib.sha256(text.encode()).hexdigest()
        assert source["characters"] == len(text) and source["bytes"] == len(text.encode())
    held = [path for path, source in sources.items() if source["part"] == "val"]
    trained = [path for path, source in sources.items() if source["part"] == "train"]
    assert held and trained and manifest["split"]["by"] == "documents"
    held_characters = sum(sources[path]["characters"] for path in held)
    assert held_characters >= 0.3 * sum(len(text) for text in texts.values())  # until the fraction is held out
    assert held_characters - min(sources[path]["characters"] for path in held) < 0.3 * sum(map(len, texts.values()))

    corpus = load_prepared(tmp_path / "prepared")
    reference = WordTokenizer.fit("".join(open(path, encoding="utf-8").read() for path in trained))
    assert corpus.tokenizer.to_dict() == reference.to_dict()  # fitted on the training documents only
    for part, paths in (("train", trained), ("val", held)):
        expected = np.concatenate([reference.encode(open(path, encoding="utf-8").read()).numpy() for path in paths])
        assert np.array_equal(getattr(corpus, part), expected)  # each document encoded whole, in listing order
        assert manifest["parts"][part]["characters"] == sum(sources[path]["characters"] for path in paths)

    respelled = prepare_corpus([folder / "nested" / ".."], tokenizer_kind="word", val_fraction=0.3)
    assert np.array_equal(respelled.val, corpus.val)  # the split follows the documents, not how paths are written

    before = sorted(path.name for path in tmp_path.iterdir())
    error = run_bad(capsys, ["prepare", "--data", str(folder), "--out", str(tmp_path / "strict"), "--strict"])
    assert "3 of 10 files are not UTF-8 text" in error and "latin1.txt" in error
    assert sorted(path.name for path in tmp_path.iterdir()) == before  # nothing written, not even a temporary


def test_a_compressed_corpus_is_read_as_its_text(tmp_path, capsys):
    """Corpora compressed whole (gzip, bzip2, xz: how large ones are shipped) are decompressed, streamed, into a
    hidden folder beside --out, read from there like the others and removed: the corpus is the one their plain
    copies make, and the manifest names each by its own path with its text's hash. A zip archive (which may
    hold many files, or be an Office document) is skipped as not text; nothing is left behind."""
    import bz2
    import lzma
    import zipfile

    texts = {f"part{index}.txt": words_text(500 + 100 * index, seed=20 + index) for index in range(4)}
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    for folder in (plain, packed):
        folder.mkdir()
    compressors = {"part0.txt": None, "part1.txt": ("gz", gzip.compress), "part2.txt": ("bz2", bz2.compress),
                   "part3.txt": ("xz", lzma.compress)}
    for name, text in texts.items():
        (plain / name).write_text(text, encoding="utf-8")
        packer = compressors[name]
        if packer is None:
            (packed / name).write_text(text, encoding="utf-8")
        else:
            (packed / f"{name}.{packer[0]}").write_bytes(packer[1](text.encode()))
    with zipfile.ZipFile(packed / "more.zip", "w") as archive:
        archive.writestr("more.txt", "a zip is not read")
    outputs = tmp_path / "outputs"
    for name, folder in (("plain", plain), ("packed", packed)):
        assert main(["prepare", "--data", str(folder), "--out", str(outputs / name), "--tokenizer", "word",
                     "--val-fraction", "0.3", "--workers", "1"]) == 0
    assert "more.zip is zip-compressed (decompress it first)" in capsys.readouterr().err
    ours, theirs = load_prepared(outputs / "packed"), load_prepared(outputs / "plain")
    assert np.array_equal(ours.train, theirs.train) and np.array_equal(ours.val, theirs.val)
    sources = {source["path"]: source for source in
               json.loads((outputs / "packed" / "manifest.json").read_text())["sources"]}
    assert sources[str(packed / "part1.txt.gz")]["sha256"] == hashlib.sha256(texts["part1.txt"].encode()).hexdigest()
    assert sorted(path.name for path in outputs.iterdir()) == ["packed", "plain"]  # no decompressed copies left
    single = prepare_corpus([packed / "part3.txt.xz"], tokenizer_kind="char", val_fraction=0.1)  # in memory
    assert np.array_equal(single.train, prepare_corpus([plain / "part3.txt"], tokenizer_kind="char",
                                                       val_fraction=0.1).train)
    damaged = tmp_path / "damaged.txt.gz"
    damaged.write_bytes(gzip.compress(texts["part0.txt"].encode())[:200])
    error = run_bad(capsys, ["prepare", "--data", str(damaged), "--out", str(outputs / "damaged")])
    assert "damaged.txt.gz is gzip-compressed but cannot be decompressed" in error
    assert sorted(path.name for path in outputs.iterdir()) == ["packed", "plain"]


def test_worker_processes_write_the_same_folder(tmp_path):
    folder = tmp_path / "texts"
    write_documents(folder)
    prepare_corpus([folder], out=tmp_path / "one", tokenizer_kind="bpe", vocab_size=280, chunk_bytes=300)
    command = [sys.executable, "-m", "seqlab.cli", "prepare", "--data", str(folder), "--out", str(tmp_path / "two"),
               "--tokenizer", "bpe", "--vocab-size", "280", "--workers", "2", "--quiet"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert tree_digest(tmp_path / "one") == tree_digest(tmp_path / "two")


def losses(run):
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [(record["kind"], record.get("loss"), record.get("val_loss"), record.get("bpc")) for record in records]


@pytest.mark.parametrize("batching", ["random", "stream"])
def test_training_from_a_prepared_folder_follows_training_from_the_file(tmp_path, batching):
    data = tmp_path / "text.txt"
    data.write_text(words_text(4000), encoding="utf-8")
    prepare_corpus([data], out=tmp_path / "prepared", val_fraction=0.1)
    for name, path in (("file", data), ("folder", tmp_path / "prepared")):
        config = small_config(path, max_steps=8, eval_interval=4)
        config.data.batching = batching
        Trainer(config, tmp_path / name, quiet=True).fit()
    assert losses(tmp_path / "folder") == losses(tmp_path / "file")
    assert losses(tmp_path / "file")[-1][2] < losses(tmp_path / "file")[1][1]  # it learned: the curve means something


def test_resume_from_a_prepared_folder_is_bit_identical(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text(words_text(4000), encoding="utf-8")
    prepare_corpus([data], out=tmp_path / "prepared", tokenizer_kind="bpe", vocab_size=300)

    def config():
        built = small_config(tmp_path / "prepared", max_steps=10, eval_interval=5)
        built.data.tokenizer = "bpe"
        built.model.dropout = 0.2
        return built

    Trainer(config(), tmp_path / "whole", quiet=True).fit()

    def interrupt(trainer, step, loss):
        if step == 6:
            trainer.request_stop()

    assert Trainer(config(), tmp_path / "parts", step_callback=interrupt, quiet=True).fit().steps == 6
    assert main(["train", "--out", str(tmp_path / "parts"), "--resume", "--quiet"]) == 0
    whole, parts = (load_file(str(tmp_path / name / "model.safetensors")) for name in ("whole", "parts"))
    assert all(torch.equal(whole[name], parts[name]) for name in whole)
    assert json.loads((tmp_path / "parts" / "config.json").read_text())["data"]["path"] == str(tmp_path / "prepared")


def test_damaged_prepared_folders_and_other_tokenizers_are_refused(tmp_path, capsys):
    data = tmp_path / "text.txt"
    data.write_text(words_text(3000), encoding="utf-8")
    good = tmp_path / "prepared"
    prepare_corpus([data], out=good, tokenizer_kind="bpe", vocab_size=300)
    train = ["--out", str(tmp_path / "run"), "--max-steps", "2", "--block-size", "16", "--hidden-size", "8",
             "--threads", "1", "--quiet"]
    for name, damage, message in (
            ("truncated", lambda folder: (folder / "train.bin").write_bytes((folder / "train.bin").read_bytes()[:-2]),
             "truncated or damaged"),
            ("tampered", lambda folder: (folder / "val.bin").write_bytes(
                bytes([255 - (folder / "val.bin").read_bytes()[0]]) + (folder / "val.bin").read_bytes()[1:]),
             "changed since it was written"),
            ("missing", lambda folder: (folder / "tokenizer.json").unlink(), "lacks tokenizer.json"),
            ("manifest", lambda folder: (folder / "manifest.json").write_text("{", encoding="utf-8"), "damaged")):
        folder = tmp_path / name
        shutil.copytree(good, folder)
        damage(folder)
        assert message in run_bad(capsys, ["train", "--data", str(folder), *train])
    assert not (tmp_path / "run").exists()

    assert main(["train", "--data", str(data), *train]) == 0  # a char checkpoint
    error = run_bad(capsys, ["eval", str(tmp_path / "run"), "--data", str(good)])
    assert "prepared with another tokenizer (bpe, vocabulary" in error
    assert "pass the text files" in error
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["characters"] == len(split_text(data.read_text(), 0.1)[1])


def test_bad_inputs_leave_nothing_behind(tmp_path, capsys, monkeypatch):
    (tmp_path / "empty").mkdir()
    assert "data folder" in run_bad(capsys, ["prepare", "--data", str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    binary = tmp_path / "binary"
    binary.mkdir()
    (binary / "a.bin").write_bytes(b"\x00\x01")
    (binary / "b.bin").write_bytes(b"\xff\xfe")
    assert "none of the 2 files" in run_bad(capsys, ["prepare", "--data", str(binary), "--out", str(tmp_path / "o")])
    assert "no files match" in run_bad(capsys, ["prepare", "--data", str(tmp_path / "*.nothing"),
                                                 "--out", str(tmp_path / "o")])
    text = tmp_path / "text.txt"
    text.write_text(words_text(3000), encoding="utf-8")
    monkeypatch.setattr(prepared.shutil, "disk_usage", lambda path: SimpleNamespace(total=10 ** 9, used=10 ** 9, free=1000))
    assert "not enough disk space" in run_bad(capsys, ["prepare", "--data", str(text), "--out", str(tmp_path / "o")])
    monkeypatch.undo()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine", encoding="utf-8")
    assert "already exists" in run_bad(capsys, ["prepare", "--data", str(text), "--out", str(tmp_path / "taken")])
    assert sorted(path.name for path in tmp_path.iterdir()) == ["binary", "empty", "taken", "text.txt"]

    def fail(*arguments, **keywords):
        raise KeyboardInterrupt  # interrupted while encoding

    monkeypatch.setattr(prepared, "_manifest", fail)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus([text], out=tmp_path / "interrupted")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["binary", "empty", "taken", "text.txt"]


def test_bits_per_character_counts_what_was_measured(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text(words_text(6000), encoding="utf-8")
    config = small_config(data, max_steps=2, eval_interval=2, batch_size=2)
    config.data.tokenizer = "word"
    Trainer(config, tmp_path / "run", quiet=True).fit()
    checkpoint = load_checkpoint(tmp_path / "run")
    task, model = checkpoint.task, checkpoint.model
    task.load_data()
    whole = task.evaluate(model, context=prepared_context())
    val_text = split_text(data.read_text(), 0.1)[1]
    loss, _ = evaluate_tokens(model, task.data.val, block_size=16, batch_size=2, carry_state=False)
    assert whole["bpc"] == pytest.approx(loss / math.log(2) * len(task.data.val) / len(val_text))
    first = task.evaluate(model, context=prepared_context(), max_batches=1)  # 2 streams x 16 targets
    loss, count = evaluate_tokens(model, task.data.val, block_size=16, batch_size=2, carry_state=False, max_batches=1)
    _, targets = evaluation_streams(task.data.val, block_size=16, batch_size=2)
    measured = "".join(checkpoint.tokenizer.decode(np.asarray(row[:16]).tolist()) for row in targets)
    assert count == 32 and first["bpc"] == pytest.approx(loss / math.log(2) * 32 / len(measured))


def prepared_context():
    from seqlab.train.distributed import ProcessContext

    return ProcessContext()
