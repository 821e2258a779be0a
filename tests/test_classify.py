"""The classify task: padding never changes a prediction, metrics by hand, CSV/TSV layouts, bad inputs, the CLI."""
import json
import random
import re

import pytest
import torch
from torch.nn import functional as F

from seqlab import backbone_names, build_backbone
from seqlab.registry import backbone_class
from seqlab.cli import main
from seqlab.data.labelled import LabelledBatches, read_labelled, split_indices
from seqlab.errors import SeqlabError
from seqlab.models.classifier import POOLINGS, SequenceClassifier, reverse_within_lengths
from seqlab.tasks.classify import classification_metrics, confusion_matrix
from seqlab.train.checkpoint import load_checkpoint

from helpers import run_bad

VOCAB = 11
OPTIONS = {"transformer": {"num_heads": 2}, "linear_attention": {"num_heads": 2}}


def classifier(backbone: str, pooling: str, *, bidirectional: bool = False, seed: int = 0) -> SequenceClassifier:
    torch.manual_seed(seed)

    def make():
        return build_backbone(backbone, input_size=6, hidden_size=8, num_layers=2, **OPTIONS.get(backbone, {}))

    model = SequenceClassifier(VOCAB, 3, make(), reverse_backbone=make() if bidirectional else None, pooling=pooling)
    return model.double().eval()


@pytest.mark.parametrize("backbone", [name for name in backbone_names() if not backbone_class(name).reads_frames])
def test_padding_never_changes_a_prediction(backbone):
    """Every backbone x pooling, one- and bidirectional: logits with junk padding equal each row's alone."""
    generator = torch.Generator().manual_seed(1)
    lengths = torch.tensor([5, 2, 7])
    tokens = torch.randint(1, VOCAB, (3, 7), generator=generator)
    tokens[lengths.unsqueeze(1) <= torch.arange(7)] = 5  # junk in the padding
    wider = torch.cat([tokens, torch.randint(1, VOCAB, (3, 4), generator=generator)], dim=1)  # (B, 11)
    for bidirectional in (False, True):
        model = classifier(backbone, "attention", bidirectional=bidirectional)
        with torch.no_grad():
            # the backbones run once; every pooling then reads the same outputs, as forward would
            alone = [model.features(tokens[row:row + 1, :length], torch.tensor([length]))
                     for row, length in enumerate(lengths.tolist())]
            batched = model.features(wider, lengths)  # (B, 11, D)
            for pooling in POOLINGS:
                model.pooling = pooling
                expected = torch.cat([model.head(model.pool(features, torch.tensor([features.shape[1]])))
                                      for features in alone])
                torch.testing.assert_close(model.head(model.pool(batched, lengths)), expected, rtol=1e-9, atol=1e-9,
                                           msg=f"{backbone} pooling={pooling} bidirectional={bidirectional}")
        model.pooling = "last"
        with torch.no_grad():  # and forward itself, end to end
            torch.testing.assert_close(model(wider, lengths)[1:2], model(tokens[1:2, :2]), rtol=1e-9, atol=1e-9)


def test_reverse_within_lengths_reverses_only_real_positions():
    x = torch.arange(8.0).view(2, 4, 1).expand(2, 4, 2)
    reversed_x = reverse_within_lengths(x, torch.tensor([3, 4]))
    assert reversed_x[0, :, 0].tolist() == [2, 1, 0, 3]
    assert reversed_x[1, :, 0].tolist() == [7, 6, 5, 4]
    torch.testing.assert_close(reverse_within_lengths(reversed_x, torch.tensor([3, 4])), x)


def test_bidirectional_reverse_direction_reads_the_unpadded_sequence_backwards():
    model = classifier("gru", "mean", bidirectional=True)
    tokens = torch.tensor([[3, 1, 4, 1, 5, 9], [2, 6, 5, 0, 0, 0]])
    lengths = torch.tensor([6, 3])
    with torch.no_grad():
        features = model.features(tokens, lengths)  # (2, 6, 16)
        for row, length in enumerate(lengths.tolist()):
            reversed_tokens = tokens[row, :length].flip(0).unsqueeze(0)  # (1, L)
            expected, _ = model.reverse_backbone(model.embedding(reversed_tokens))  # (1, L, 8)
            torch.testing.assert_close(features[row, :length, 8:], expected[0].flip(0))
        assert features[1, 3:].abs().max().item() == 0


def test_masks_reach_the_loss():
    """Loss and gradients ignore padding: padded positions get no gradient, the loss does not change."""
    model = classifier("lstm", "attention", bidirectional=True)
    tokens = torch.tensor([[3, 1, 4, 1, 5], [2, 6, 0, 0, 0]])
    lengths = torch.tensor([5, 2])
    targets = torch.tensor([0, 2])
    embedded = model.embedding(tokens).detach().requires_grad_(True)
    hook = model.embedding.register_forward_hook(lambda module, inputs, output: embedded)
    F.cross_entropy(model(tokens, lengths), targets).backward()
    hook.remove()
    assert embedded.grad[1, 2:].abs().max().item() == 0
    assert embedded.grad[1, :2].abs().max().item() > 0
    shorter = F.cross_entropy(model(tokens[:, :5], lengths), targets)
    longer = F.cross_entropy(model(torch.cat([tokens, torch.full((2, 3), 7)], dim=1), lengths), targets)
    torch.testing.assert_close(shorter, longer)


def test_metrics_on_a_known_confusion():
    targets = torch.tensor([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    predicted = torch.tensor([0, 0, 1, 2, 1, 1, 0, 2, 2, 2])
    confusion = confusion_matrix(targets, predicted, 4)  # class 3 never occurs: left out of the macro average
    assert confusion[:3, :3].tolist() == [[2, 1, 1], [1, 2, 0], [0, 0, 3]]
    metrics = classification_metrics(confusion)
    assert metrics["accuracy"] == pytest.approx(7 / 10)
    f1 = [2 * 2 / (4 + 1 + 2), 2 * 2 / (4 + 1 + 1), 2 * 3 / (6 + 1 + 0)]  # 2TP / (2TP + FP + FN)
    assert metrics["macro_f1"] == pytest.approx(sum(f1) / 3)


# ------------------------------------------------------------------ reading
def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_reading_csv_and_tsv_with_and_without_header(tmp_path):
    plain = read_labelled(write(tmp_path / "a.tsv", "good film\tpos\nbad, bad film\tneg\nfine\tpos\ndull\tneg\n"))
    assert plain.texts == ["good film", "bad, bad film", "fine", "dull"] and plain.labels == ["pos", "neg", "pos", "neg"]
    headed = write(tmp_path / "b.csv", 'id,text,sentiment\n1,"good, really",1\n2,awful,-1\n3,great,1\n4,poor,-1\n')
    guessed = read_labelled(headed)  # auto: "sentiment" never recurs while 1 and -1 do
    assert guessed.labels == ["1", "-1", "1", "-1"] and guessed.texts[0] == "1 good, really"
    named = read_labelled(headed, label_column="sentiment", text_columns="text")
    assert named.texts == ["good, really", "awful", "great", "poor"]
    by_index = read_labelled(headed, label_column="0", text_columns="1", header="yes")
    assert by_index.labels == ["1", "2", "3", "4"] and by_index.texts[1] == "awful"
    sniffed = read_labelled(write(tmp_path / "c.txt", "So good, yes.\t1\nNo.\t-1\n"), header="no")
    assert sniffed.texts == ["So good, yes.", "No."]
    first, second = split_indices(10, 0.3, seed=4), split_indices(10, 0.3, seed=4)
    assert first == second and len(first[1]) == 3 and sorted(first[0] + first[1]) == list(range(10))


def test_a_quoted_text_over_several_lines_keeps_its_line_breaks(tmp_path):
    """A review of two paragraphs is one quoted cell spanning lines, as spreadsheets and pandas write it: read whole,
    its line break kept (not "phone.Battery", one word glued of two), and numbered by the line it ends on."""
    path = write(tmp_path / "reviews.csv", 'text,label\n"Great phone.\nBattery lasts, really.",pos\n'
                                            '"Broke in a day",neg\nfine,pos\n"Slow.\r\n\r\nAvoid.",neg\n')
    read = read_labelled(path, label_column="label", text_columns="text")
    assert read.texts == ["Great phone.\nBattery lasts, really.", "Broke in a day", "fine", "Slow.\n\nAvoid."]
    assert read.labels == ["pos", "neg", "pos", "neg"] and read.line_numbers == [3, 4, 5, 8]


def test_a_first_row_with_more_cells_than_the_header_reads_its_unquoted_commas_as_text(tmp_path):
    # an unquoted comma inside a text splits it into one more cell than the header names; the label is still the
    # last cell and the text all the others (as without a header); the header's names are the layout (this crashed
    # with an IndexError where the first example was such a row)
    data = write(tmp_path / "reviews.csv", "review,label\nGreat food, lovely staff,pos\nBad,neg\nFine,pos\nAwful,neg\n")
    table = read_labelled(data)
    assert table.texts == ["Great food lovely staff", "Bad", "Fine", "Awful"]
    assert table.labels == ["pos", "neg", "pos", "neg"]
    assert table.layout == {"label": "label", "text": ["review"]}


def test_a_text_longer_than_the_csv_modules_cell_limit_is_read_whole(tmp_path):
    # a whole article in one cell: the csv module's default limit (128 KiB) refused it as broken quoting
    article = " ".join(["word"] * 60_000)  # 300,000 characters
    data = write(tmp_path / "articles.tsv", f"short text\tpos\n{article}\tneg\nanother\tpos\nmore\tneg\n")
    table = read_labelled(data)
    assert table.texts[1] == article and table.labels == ["pos", "neg", "pos", "neg"]


@pytest.mark.parametrize("header, first", [("", 0), ("Unnamed: 0", 0), ('""', 1)])
def test_row_numbers_as_pandas_and_r_write_them_are_not_text(tmp_path, header, first):
    """DataFrame.to_csv writes its index (0, 1, 2, ... under an empty name, "Unnamed: 0" once read back) and R's
    write.csv its row names (1, 2, 3, ...) as a first column: row numbers, left out of the text, which was "0 great
    food". A first column of other numbers under no name is still text."""
    rows = [("great food", "pos"), ("cold food", "neg"), ("lovely staff", "pos"), ("rude staff", "neg")]
    data = write(tmp_path / "reviews.csv", f"{header},text,label\n" + "".join(
        f"{first + index},{text},{label}\n" for index, (text, label) in enumerate(rows)))
    table = read_labelled(data)
    assert table.texts == [text for text, _ in rows] and table.layout == {"label": "label", "text": ["text"]}
    data.write_text(",text,label\n" + "".join(f"{number},{text},{label}\n"
                                               for number, (text, label) in zip((7, 3, 9, 4), rows)), encoding="utf-8")
    assert read_labelled(data).texts[0] == "7 great food"


def test_a_table_as_excel_saves_it(tmp_path):
    """A first line "sep=;" names the separator (and the examples keep their lines' numbers); "Unicode text" is
    UTF-16 with a byte-order mark."""
    path = write(tmp_path / "reviews.csv", "sep=;\ntext;label\ngood, really;pos\nawful;neg\nfine;pos\ndull;neg\n")
    read = read_labelled(path)
    assert read.texts == ["good, really", "awful", "fine", "dull"] and read.line_numbers == [3, 4, 5, 6]
    wide = tmp_path / "reviews.txt"
    wide.write_bytes("text\tlabel\r\nbon film\tpos\r\nnul\tneg\r\nsuper\tpos\r\nfade\tneg\r\n".encode("utf-16"))
    assert read_labelled(wide).labels == ["pos", "neg", "pos", "neg"]


@pytest.mark.parametrize("content, options, message", [
    ("a\t1\nb\t2\n", {"label_column": "3"}, "does not exist"),
    ("text,label\na,1\nb,2\n", {"label_column": "stars"}, "not in the header"),
    ("a\t1\n\nb\t2\n", {}, "is empty"),
    ("a\t1\n\t2\n", {}, "no text"),
    ("text\tlabel\ngood\tpos\nbad\tneg\ntext\tlabel\nfine\tpos\n", {"label_column": "label"},
     "line 4 repeats the header \\(files joined one after another\\?\\); remove it$"),
])
def test_bad_layouts_are_refused(tmp_path, content, options, message):
    with pytest.raises(SeqlabError, match=message):
        read_labelled(write(tmp_path / "bad.tsv", content), **options)


@pytest.mark.parametrize("bucketing", [False, True])
def test_batches_resume_exactly(bucketing):
    sequences = [torch.arange(1, length + 1) for length in (3, 1, 4, 1, 5, 9, 2)]
    batches = LabelledBatches(sequences, torch.arange(7) % 2, batch_size=3, seed=5, bucketing=bucketing)
    batches.next_batch()
    saved = {name: value.clone() for name, value in batches.state_dict().items()}
    expected = [batches.next_batch() for _ in range(4)]
    resumed = LabelledBatches(sequences, torch.arange(7) % 2, batch_size=3, seed=0, bucketing=bucketing)
    resumed.load_state_dict(saved)
    for want, got in zip(expected, (resumed.next_batch() for _ in range(4))):
        assert torch.equal(want.inputs, got.inputs) and torch.equal(want.lengths, got.lengths)
        assert torch.equal(want.targets, got.targets)
    assert expected[0].inputs.shape[1] == int(expected[0].lengths.max())


def test_bucketing_covers_every_example_once_per_epoch_with_less_padding():
    generator = torch.Generator().manual_seed(0)
    lengths = torch.randint(1, 60, (1000,), generator=generator).tolist()
    sequences = [torch.full((length,), index + 1) for index, length in enumerate(lengths)]
    labels = torch.arange(1000)
    padding = {}
    for bucketing in (False, True):
        batches = LabelledBatches(sequences, labels, batch_size=16, seed=3, bucketing=bucketing)
        BATCHES_PER_EPOCH = 1000 // 16
        seen, padded = [], 0
        for _ in range(BATCHES_PER_EPOCH):
            batch = batches.next_batch()
            seen += batch.targets.tolist()
            padded += int((batch.inputs == 0).sum())
            # each row is its own example, intact, with its label
            for row, target in zip(batch.inputs, batch.targets.tolist()):
                assert torch.equal(row[:lengths[target]], sequences[target]) and not row[lengths[target]:].any()
        assert len(set(seen)) == len(seen) == BATCHES_PER_EPOCH * 16  # no repeats within an epoch
        padding[bucketing] = padded
    assert padding[True] < padding[False] / 10


# ---------------------------------------------------------------------- CLI
FLAGS = ["--task", "classify", "--hidden-size", "16", "--max-steps", "40", "--eval-interval", "20", "--batch-size", "8",
         "--warmup-steps", "5", "--learning-rate", "0.01", "--threads", "1", "--quiet", "--val-fraction", "0.25"]


def sentiment_rows(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    words = {"yes": ["good", "great", "fine", "lovely"], "no": ["bad", "awful", "poor", "dull"]}
    rows = []
    for _ in range(count):
        label = rng.choice(["yes", "no"])
        sentence = " ".join(rng.choice(words[label] + ["the", "film", "was"]) for _ in range(rng.randint(2, 6)))
        rows.append(f"{sentence} {rng.choice(words[label])}\t{label}")
    return rows



def test_command_line_train_eval_predict(tmp_path, capsys):
    data = write(tmp_path / "train.tsv", "\n".join(sentiment_rows(80, 0)) + "\n")
    other = write(tmp_path / "other.tsv", "\n".join(sentiment_rows(30, 1)) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--tokenizer", "word", "--pooling", "mean",
                 "--bidirectional", "true", "--class-weights", "true", *FLAGS]) == 0
    assert json.loads((run / "labels.json").read_text()) == {"labels": ["no", "yes"], "layout": None}  # no header
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    last_eval = [record for record in records if record["kind"] == "eval"][-1]
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["split"] == "val" and metrics["examples"] == 20 and metrics["labels"] == ["no", "yes"]
    assert metrics["accuracy"] == pytest.approx(last_eval["accuracy"]) and metrics["accuracy"] >= 0.8
    assert sum(map(sum, metrics["confusion_matrix"])) == 20
    assert main(["eval", str(run), "--data", str(other), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split"] == "all"
    assert main(["predict", str(run), "a good great film", "awful dull poor"]) == 0
    assert capsys.readouterr().out.splitlines() == ["yes", "no"]
    lines = write(tmp_path / "inputs.txt", "great lovely\nbad awful\n")
    assert main(["predict", str(run), "--file", str(lines)]) == 0
    assert capsys.readouterr().out.splitlines() == ["yes", "no"]
    assert main(["predict", str(run), "--file", str(other)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 30
    column = write(tmp_path / "column.csv", "great lovely\nbad awful\n")  # one column of texts, no labels
    assert main(["predict", str(run), "--file", str(column)]) == 0
    assert capsys.readouterr().out.splitlines() == ["yes", "no"]
    one_class = write(tmp_path / "one.tsv", "a\tx\nb\tx\nc\tx\n")
    assert "two classes" in run_bad(capsys, ["train", "--data", str(one_class), "--out", str(tmp_path / "r1"), *FLAGS])
    too_few = write(tmp_path / "few.tsv", "a\tx\nb\ty\nc\tx\nd\ty\n")
    assert "too few" in run_bad(capsys, ["train", "--data", str(too_few), "--out", str(tmp_path / "r2"), *FLAGS,
                                         "--val-fraction", "0.9"])
    latin = tmp_path / "latin.tsv"
    latin.write_bytes("caf\u00e9\tx\nno\ty\n".encode("latin-1"))
    assert "UTF-8" in run_bad(capsys, ["train", "--data", str(latin), "--out", str(tmp_path / "r3"), *FLAGS])


def test_json_lines_train_and_predict_like_a_table(tmp_path, capsys):
    """A file of JSON Lines, as datasets libraries export text ({"text": ..., "label": 1}), is a table whose header
    is the first object's keys: train names its columns, numbers are labels as JSON writes them, blank lines are
    skipped (lines keep their numbers); predict reads a file without the label key, gzipped too, and gives what
    the same texts given as arguments give."""
    import gzip

    rows = [row.split("\t") for row in sentiment_rows(80, 0)]
    data = write(tmp_path / "train.jsonl", "".join(
        json.dumps({"id": index, "review": text, "stars": int(label == "yes")}) + "\n" + ("\n" if index == 3 else "")
        for index, (text, label) in enumerate(rows)))
    read = read_labelled(data, label_column="stars", text_columns="review")
    assert read.labels[:4] == [str(int(label == "yes")) for _, label in rows[:4]] and read.texts[0] == rows[0][0]
    assert read.line_numbers[3:5] == [4, 6] and read.layout == {"label": "stars", "text": ["review"]}
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--text-columns", "review", "--label-column", "stars",
                 *FLAGS]) == 0
    texts = ["a good great film", "awful dull poor", "great lovely", "bad awful"]
    capsys.readouterr()
    assert main(["predict", str(run), *texts]) == 0
    expected = capsys.readouterr().out.splitlines()
    unlabelled = tmp_path / "new.jsonl.gz"
    unlabelled.write_bytes(gzip.compress("".join(json.dumps({"id": index, "review": text}) + "\n"
                                                 for index, text in enumerate(texts)).encode()))
    assert main(["predict", str(run), "--file", str(unlabelled)]) == 0
    assert capsys.readouterr().out.splitlines() == expected


@pytest.mark.parametrize("content, message", [
    ('{"text": "good", "label": 1}\n{"text": "bad"}\n', "line 2 has keys text, line 1 text, label; give every "
                                                          "object the same keys"),
    ('{"text": "good", "label": 1}\n{"text": ["bad"], "label": 0}\n', "line 2: 'text' holds a JSON list, not text"),
    ('{"text": "good", "label": 1}\n{"text": "bad", \n', "line 2: not a JSON object"),
    ('[{"text": "good", "label": 1}]\n', "is a JSON array; write it as JSON Lines"),
])
def test_bad_json_lines_are_refused_with_one_clear_line(tmp_path, content, message):
    with pytest.raises(SeqlabError, match=re.escape(message)):
        read_labelled(write(tmp_path / "bad.jsonl", content))


def test_predict_reads_a_table_without_its_label_column(tmp_path, capsys):
    """A CSV to predict on need not carry labels: one whose header names the training file's text columns but not
    its label column, or one of a single column (its first row a header when it is the text column's name); the
    file laid out like the training data still reads, its labels unused. A checkpoint whose labels.json is a bare
    list (before the layout was saved) still loads."""
    rows = [row.split("\t") for row in sentiment_rows(80, 0)]
    data = write(tmp_path / "train.csv", "title,review,stars\n" + "".join(f"t{index},{text},{label}\n"
                                                                     for index, (text, label) in enumerate(rows)))
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--text-columns", "review", "--label-column", "stars",
                 *FLAGS]) == 0
    assert json.loads((run / "labels.json").read_text()) == {"labels": ["no", "yes"],
                                                            "layout": {"label": "stars", "text": ["review"]}}
    texts = ["a good great film", "awful dull poor", "great lovely", "bad awful"]
    capsys.readouterr()
    assert main(["predict", str(run), *texts]) == 0
    expected = capsys.readouterr().out.splitlines()
    layouts = {"named.csv": "id,review\n" + "".join(f"{index},{text}\n" for index, text in enumerate(texts)),
               "header.csv": "review\n" + "".join(f"{text}\n" for text in texts),
               "bare.csv": "".join(f"{text}\n" for text in texts),
               "labelled.csv": "title,review,stars\n" + "".join(f"x,{text},yes\n" for text in texts)}
    for name, content in layouts.items():
        assert main(["predict", str(run), "--file", str(write(tmp_path / name, content))]) == 0
        assert capsys.readouterr().out.splitlines() == expected, name
    from seqlab.tasks.classify import LABELS_FILE, ClassifyTask
    from seqlab.train.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(run)
    old = ClassifyTask(checkpoint.config, {**checkpoint.task.assets(), LABELS_FILE: ["no", "yes"]})  # as before
    assert old.labels == ["no", "yes"] and old.layout is None


def test_init_from_a_language_model(tmp_path, capsys):
    text = write(tmp_path / "text.txt", " ".join(row.split("\t")[0] for row in sentiment_rows(200, 2)) + "\n")
    language_model = tmp_path / "lm"
    assert main(["train", "--data", str(text), "--out", str(language_model), "--tokenizer", "word", "--block-size", "16",
                 "--hidden-size", "16", "--max-steps", "4", "--eval-interval", "4", "--batch-size", "4",
                 "--threads", "1", "--quiet", "--lowercase", "true", "--words-only", "true"]) == 0
    data = write(tmp_path / "train.tsv", "\n".join(sentiment_rows(40, 3)) + "\n")
    error = run_bad(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "mismatch"),
                             "--init-from", str(language_model), *FLAGS, "--tokenizer", "char"])
    assert "word tokenizer" in error and "--tokenizer char" in error
    run = tmp_path / "fine"
    assert main(["train", "--data", str(data), "--out", str(run), "--init-from", str(language_model), "--tokenizer",
                 "word", "--freeze-backbone", "true", *FLAGS, "--max-steps", "4", "--eval-interval", "4"]) == 0
    from safetensors.torch import load_file

    before, after = load_file(str(language_model / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert json.loads((run / "tokenizer.json").read_text()) == json.loads((language_model / "tokenizer.json").read_text())
    backbone = [name for name in before if name.startswith("backbone.")]
    assert backbone and all(torch.equal(before[name], after[name]) for name in backbone)  # frozen


def test_class_weights_are_inverse_frequency(tmp_path):
    from seqlab.config import Config
    from seqlab.tasks.classify import ClassifyTask

    config = Config()
    config.data.path = str(write(tmp_path / "skewed.tsv", "a\tx\nb\tx\nc\tx\nd\ty\ne\ty\nf\tx\n"))
    config.data.val_fraction = 0.0
    config.task.class_weights = True
    task = ClassifyTask(config)
    task.load_data()
    assert task.labels == ["x", "y"] and not task.has_validation
    torch.testing.assert_close(task.loss_weights, torch.tensor([6 / (2 * 4), 6 / (2 * 2)]))


# ------------------------------------------- baseline, early stopping, defaults
def test_bag_of_words_baseline_is_reported_by_eval_json(tmp_path, capsys):
    """eval --json gives bow_accuracy / bow_macro_f1: scikit-learn's own TF-IDF + logistic regression, fitted on the
    rows the network trained on and scored on the rows the network is scored on."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    rows = sentiment_rows(60, 4) + [f"{row.split(chr(9))[0]} was\tmeh" for row in sentiment_rows(20, 5)]
    data = write(tmp_path / "train.tsv", "\n".join(rows) + "\n")
    other = write(tmp_path / "other.tsv", "\n".join(sentiment_rows(25, 6)) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), *FLAGS, "--max-steps", "2", "--eval-interval", "2"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["tokenizer"] == "word" and config["train"]["patience"] > 0  # the classify task's defaults
    texts, labels = [row.split("\t")[0] for row in rows], [row.split("\t")[1] for row in rows]
    train_rows, val_rows = split_indices(len(rows), 0.25, seed=config["train"]["seed"])
    vectorizer = TfidfVectorizer()
    reference = LogisticRegression(max_iter=1000).fit(vectorizer.fit_transform([texts[i] for i in train_rows]),
                                                      [labels[i] for i in train_rows])
    for path, chosen in ((data, val_rows), (other, None)):
        test_texts = [texts[i] for i in chosen] if chosen else [line.split("\t")[0] for line in sentiment_rows(25, 6)]
        truth = [labels[i] for i in chosen] if chosen else [line.split("\t")[1] for line in sentiment_rows(25, 6)]
        predicted = reference.predict(vectorizer.transform(test_texts))
        capsys.readouterr()
        assert main(["eval", str(run), "--data", str(path), "--json"]) == 0
        captured = capsys.readouterr()
        metrics = json.loads(captured.out)
        assert metrics["examples"] == len(truth)
        # what was measured, as the task measured it: another file than the training one is scored whole
        assert captured.err.strip() == f"{path}: " + ("all of the val split" if chosen else "all of it")
        assert metrics["bow_accuracy"] == pytest.approx(accuracy_score(truth, predicted))
        assert metrics["bow_macro_f1"] == pytest.approx(f1_score(truth, predicted, average="macro"))
    assert 0.5 < metrics["bow_accuracy"] < 1.0  # the other file: the baseline is neither blind nor trivially perfect

    # --ensemble: predictions are the argmax of the mean of the network's softmax and scikit-learn's predict_proba
    from seqlab.train.checkpoint import load_checkpoint

    checkpoint = load_checkpoint(run)
    checkpoint.task.config.task.ensemble = True
    test_texts = [line.split("\t")[0] for line in sentiment_rows(25, 6)]
    with torch.no_grad():
        network = checkpoint.task._network_scores(checkpoint.model, [checkpoint.task._encode(text) for text in test_texts])
    mixed = network.exp().numpy() + reference.predict_proba(vectorizer.transform(test_texts))
    expected = [checkpoint.task.labels[index] for index in mixed.argmax(1)]
    assert checkpoint.task.predict(checkpoint.model, test_texts) == expected


def test_early_stopping_keeps_the_best_validation_checkpoint(tmp_path, monkeypatch):
    """Scripted validation accuracies: the run stops `patience` validations after its best, and best/ holds the
    weights of the step that scored best; validations during the warmup do not count against patience."""
    from safetensors.torch import load_file

    from seqlab.config import Config
    from seqlab.tasks.classify import ClassifyTask
    from seqlab.train.trainer import Trainer

    # validated every 2 steps: step 2 0.4 (best), 4 0.3 (in the warmup: not counted), 6 0.35 and 8 0.3 (two without
    # improvement), 10 0.8 (best), 12 0.7, 14 0.8 (a tie is no improvement), 16 0.75: three in a row, stop before 0.9
    scripted = iter([0.4, 0.3, 0.35, 0.3, 0.8, 0.7, 0.8, 0.75, 0.9])
    monkeypatch.setattr(ClassifyTask, "evaluate",
                        lambda self, model, **_: {"val_loss": 1.0, "accuracy": next(scripted), "macro_f1": 0.5})
    config = Config.for_task("classify")
    config.data.path = str(write(tmp_path / "train.tsv", "\n".join(sentiment_rows(40, 7)) + "\n"))
    config.model.hidden_size = config.model.embedding_size = 8
    for name, value in {"max_steps": 100, "eval_interval": 2, "warmup_steps": 5, "patience": 3, "threads": 1}.items():
        setattr(config.train, name, value)
    weights_at: dict[int, dict] = {}

    def keep_weights(trainer: Trainer, step: int, loss: float) -> None:
        weights_at[step] = {name: value.clone() for name, value in trainer.model.state_dict().items()}

    summary = Trainer(config, tmp_path / "run", step_callback=keep_weights, quiet=True).fit()
    assert summary.steps == 16 and summary.out_of_patience and not summary.stopped_early
    assert summary.best == 0.8 and summary.best_step == 10
    best = load_file(str(tmp_path / "run" / "best" / "model.safetensors"))
    assert all(torch.equal(best[name], weights_at[10][name]) for name in best)
    assert not all(torch.equal(best[name], weights_at[16][name]) for name in best)
    assert json.loads((tmp_path / "run" / "trainer.json").read_text())["best_step"] == 10


def test_best_checkpoint_is_chosen_on_the_network_alone_not_the_ensemble(tmp_path, monkeypatch):
    """With --ensemble the network's and the ensemble's validation accuracies are scripted to disagree: best/ is the
    step where the network alone scored best, and each figure is logged under its own name."""
    from safetensors.torch import load_file

    from seqlab.config import Config
    from seqlab.tasks.classify import ClassifyTask
    from seqlab.train.trainer import Trainer

    def scripted(accuracies):
        """Log-probabilities (N, 2) that get the first round(a N) validation rows right, a taken from accuracies."""
        def scores(self, *_):
            right = round(next(accuracies) * len(self.val_targets))
            predicted = torch.cat([self.val_targets[:right], 1 - self.val_targets[right:]])
            return (4.0 * F.one_hot(predicted, 2).double()).log_softmax(1)
        return scores

    # validations at steps 2, 4, 6, 8: the network is best at step 4, the ensemble at step 6
    monkeypatch.setattr(ClassifyTask, "_network_scores", scripted(iter([0.5, 0.9, 0.6, 0.7])))
    monkeypatch.setattr(ClassifyTask, "_ensemble_scores", scripted(iter([0.9, 0.5, 1.0, 0.8])))
    config = Config.for_task("classify")
    config.task.ensemble = True
    config.data.path = str(write(tmp_path / "train.tsv", "\n".join(sentiment_rows(40, 7)) + "\n"))
    config.data.val_fraction = 0.25
    config.model.hidden_size = config.model.embedding_size = 8
    for name, value in {"max_steps": 8, "eval_interval": 2, "warmup_steps": 0, "patience": 0, "threads": 1}.items():
        setattr(config.train, name, value)
    weights_at: dict[int, dict] = {}

    def keep_weights(trainer: Trainer, step: int, loss: float) -> None:
        weights_at[step] = {name: value.clone() for name, value in trainer.model.state_dict().items()}

    summary = Trainer(config, tmp_path / "run", step_callback=keep_weights, quiet=True).fit()
    assert summary.best_step == 4 and summary.best == 0.9
    assert summary.best_metrics["accuracy"] == 0.9 and summary.best_metrics["ensemble_accuracy"] == 0.5
    best = load_file(str(tmp_path / "run" / "best" / "model.safetensors"))
    assert all(torch.equal(best[name], weights_at[4][name]) for name in best)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = [(record["accuracy"], record["ensemble_accuracy"]) for record in records if record["kind"] == "eval"]
    assert logged == [(0.5, 0.9), (0.9, 0.5), (0.6, 1.0), (0.7, 0.8)]


@pytest.mark.parametrize("header, rows, expected", [
    ("label,text", [(f"{'pos' if index % 2 else 'neg'}", f"text number {index}") for index in range(30)], 0),
    ("text,label", [(f"text number {index}", f"{'pos' if index % 2 else 'neg'}") for index in range(30)], -1),
    # many classes in the last column (intents seen a few times each), two in another: the last is still the label
    ("lang,text,intent", [("en" if index % 2 else "fr", f"text {index}", f"intent{index // 3}") for index in range(60)],
     -1),
    # two columns of classes beside a last column of text: which is the label cannot be told, so the last, refused
    ("topic,stars,text", [(f"t{index % 3}", str(index % 5), f"text {index}") for index in range(60)], -1),
])
def test_the_label_column_auto_is_the_last_or_the_one_column_of_classes(tmp_path, header, rows, expected):
    path = write(tmp_path / "table.csv", header + "\n" + "".join(",".join(row) + "\n" for row in rows))
    read = read_labelled(path, label_column="auto")
    assert read.label_index == expected
    column = expected % len(rows[0])
    assert read.labels[-len(rows):] == [row[column] for row in rows]
    # the header is told by the label column, which a column of texts cannot tell
    assert (read.layout is None) == (header == "topic,stars,text")
    assert read.layout is None or read.layout["label"] == header.split(",")[column]


def test_rare_and_missing_classes_are_refused(tmp_path, capsys):
    once = write(tmp_path / "once.tsv", "\n".join(sentiment_rows(20, 8)) + "\nan odd one\tmaybe\n")
    error = run_bad(capsys, ["train", "--data", str(once), "--out", str(tmp_path / "r1"), *FLAGS])
    assert "line 21" in error and "'maybe' occurs only once" in error
    # the label first: told to take the last column, the labels are the texts, and the message names the column
    swapped = write(tmp_path / "swapped.csv", "label,text\n" + "".join(
        f"{row.split(chr(9))[1]},{row.split(chr(9))[0]} {index}\n" for index, row in enumerate(sentiment_rows(30, 8))))
    error = run_bad(capsys, ["train", "--data", str(swapped), "--out", str(tmp_path / "r0"), *FLAGS,
                             "--label-column", "-1"])
    assert error.strip().endswith("31 of 31 rows have a label no other row has, so the label column (--label-column -1) "
                                  "holds text, not classes; pass --label-column 0"), error
    # by default (auto) that column of classes is the label, said once, and saved for eval
    spoken = [flag for flag in FLAGS if flag != "--quiet"]
    assert main(["train", "--data", str(swapped), "--out", str(tmp_path / "r0"), *spoken]) == 0
    assert capsys.readouterr().err.count("the last column holds text, so the labels are column 'label' (2 classes)") == 1
    assert load_checkpoint(tmp_path / "r0").config.task.label_column == "label"
    # two rows of "maybe" that the seeded split puts both into the validation part
    rows = sentiment_rows(20, 9)
    validation = split_indices(22, 0.25, seed=1337)[1]
    for index in validation[:2]:
        rows.insert(index, "an odd one\tmaybe")
    missing = write(tmp_path / "missing.tsv", "\n".join(rows) + "\n")
    error = run_bad(capsys, ["train", "--data", str(missing), "--out", str(tmp_path / "r2"), *FLAGS, "--seed", "1337"])
    assert "'maybe' fell into the validation part" in error and "--seed" in error
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_word_tokenizer_minimum_count_and_lower_case():
    from seqlab.data.tokenizers import WordTokenizer, tokenizer_from_dict

    tokenizer = WordTokenizer.fit("Good good film. Bad film", min_count=2, lowercase=True)
    assert tokenizer.pieces[1:] == [" ", "good", "film"]  # "." and "bad" occur once
    assert tokenizer.encode("FILM bad").tolist() == [3, 1, 0]
    again = tokenizer_from_dict(json.loads(json.dumps(tokenizer.to_dict())))
    assert again.encode("Good Film").tolist() == [2, 1, 3]


def test_bag_of_tokens_adds_the_mean_of_its_rows_over_real_positions():
    torch.manual_seed(0)
    make = lambda: build_backbone("gru", input_size=6, hidden_size=8)  # noqa: E731
    model = SequenceClassifier(VOCAB, 3, make(), pooling="mean", bag_of_tokens=True).double().eval()
    torch.nn.init.normal_(model.bag.weight)
    tokens = torch.tensor([[3, 1, 4, 1], [2, 6, 9, 9]])
    lengths = torch.tensor([4, 2])
    with torch.no_grad():
        deep = model.head(model.pool(model.features(tokens, lengths), lengths))  # (2, 3)
        bag = torch.stack([model.bag.weight[tokens[0]].mean(0), model.bag.weight[tokens[1, :2]].mean(0)])
        torch.testing.assert_close(model(tokens, lengths), deep + bag)


def test_bag_of_ngrams_hashes_each_run_of_tokens_and_averages_over_real_ones():
    from seqlab.models.classifier import NGRAM_BUCKETS

    torch.manual_seed(0)
    make = lambda: build_backbone("gru", input_size=6, hidden_size=8)  # noqa: E731
    model = SequenceClassifier(VOCAB, 3, make(), pooling="max", bag_of_tokens=True, ngrams=3).double().eval()
    torch.nn.init.normal_(model.bag.weight)
    tokens = torch.tensor([[3, 1, 4, 1], [2, 6, 9, 9]])
    lengths = torch.tensor([4, 2])

    def row(gram):  # the n-gram's row of U, hashed by hand
        if len(gram) == 1:
            return gram[0]
        value = 0
        for token in gram:
            value = (value * VOCAB + token) % NGRAM_BUCKETS
        return VOCAB + value

    with torch.no_grad():
        deep = model.head(model.pool(model.features(tokens, lengths), lengths))  # (2, 3)
        expected = []
        for sequence, length in zip(tokens.tolist(), lengths.tolist()):
            grams = [sequence[start:start + n] for n in (1, 2, 3) for start in range(length - n + 1)]
            expected.append(torch.stack([model.bag.weight[row(gram)] for gram in grams]).mean(0))
        torch.testing.assert_close(model(tokens, lengths), deep + torch.stack(expected))
    assert len(grams) == 3  # the 2-token row: two tokens and one bigram, no trigram


def test_word_dropout_replaces_tokens_by_unknown_in_training_only():
    torch.manual_seed(0)
    make = lambda: build_backbone("gru", input_size=6, hidden_size=8)  # noqa: E731
    model = SequenceClassifier(VOCAB, 3, make(), pooling="mean", bag_of_tokens=True, word_dropout=0.5).double()
    torch.nn.init.normal_(model.bag.weight)
    tokens = torch.randint(1, VOCAB, (4, 7))
    lengths = torch.tensor([7, 5, 3, 1])
    torch.manual_seed(1)
    trained = model.train()(tokens, lengths)
    torch.manual_seed(1)
    dropped = tokens.masked_fill(torch.rand(tokens.shape) < 0.5, 0)
    assert 0 < int((dropped == 0).sum()) < tokens.numel()
    with torch.no_grad():
        torch.testing.assert_close(trained, model.eval()(dropped, lengths))
        torch.testing.assert_close(model(tokens, lengths), model(tokens, lengths))  # no dropout at evaluation
        assert not torch.allclose(model(tokens, lengths), model(dropped, lengths))


def test_members_predict_with_their_mean_probability_and_train_on_their_mean_loss(tmp_path):
    from seqlab.config import Config
    from seqlab.models.classifier import ClassifierEnsemble
    from seqlab.tasks.classify import ClassifyTask

    config = Config.for_task("classify")
    config.data.path = str(write(tmp_path / "train.tsv", "\n".join(sentiment_rows(40, 10)) + "\n"))
    config.task.members, config.task.label_smoothing = 3, 0.1
    config.model.hidden_size = config.model.embedding_size = 8
    task = ClassifyTask(config)
    task.load_data()
    model = task.build_model().double().eval()
    assert isinstance(model, ClassifierEnsemble) and len(model.members) == 3
    sequences = task.val_sequences
    with torch.no_grad():
        mean_probability = torch.stack([
            torch.cat([member(sequence.unsqueeze(0)).softmax(1) for sequence in sequences])
            for member in model.members]).mean(0)  # (N, C)
        torch.testing.assert_close(task._network_scores(model, sequences).exp(), mean_probability)
        batch = task.batches().next_batch()
        loss, _ = task.loss(model, batch, None)
        expected = sum(F.cross_entropy(member(batch.inputs, batch.lengths), batch.targets, reduction="sum",
                                       label_smoothing=0.1) for member in model.members) / 3
        torch.testing.assert_close(loss, expected)
    assert not torch.equal(model.members[0].head.weight, model.members[1].head.weight)  # initialised apart


def test_words_only_reads_no_white_space(tmp_path):
    from seqlab.config import Config
    from seqlab.tasks.classify import ClassifyTask

    config = Config.for_task("classify")
    config.data.path = str(write(tmp_path / "train.tsv", "\n".join(sentiment_rows(40, 11)) + "\n"))
    read = {}
    config.task.subwords = 0  # the tokens alone, (L,) each
    for words_only in (False, True):
        config.task.words_only = words_only
        task = ClassifyTask(config)
        task.load_data()
        assert task.tokenizer.words_only == words_only  # recorded in the tokenizer, so every reader reads alike
        read[words_only] = [[task.tokenizer.pieces[index] for index in sequence.tolist()]
                            for sequence in task.train_sequences]
        pieces = task.tokenizer.pieces
    for with_spaces, without in zip(read[False], read[True]):
        assert without == [piece for piece in with_spaces if not piece.isspace()]
    assert " " in read[False][0] and not any(piece.isspace() for piece in pieces)  # nor in the vocabulary


def test_a_checkpoint_from_before_words_only_was_the_tokenizers_reads_as_it_was_trained(tmp_path, capsys):
    """Its tokenizer.json has no words_only: the run applied task.words_only when encoding, so loading does too."""
    from seqlab.manifest import file_entries
    from seqlab.train.checkpoint import MANIFEST, load_checkpoint

    data = write(tmp_path / "train.tsv", "\n".join(sentiment_rows(60, 5)) + "\n")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--tokenizer", "word", *FLAGS]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0
    before = json.loads(capsys.readouterr().out)
    trained = load_checkpoint(run).task.tokenizer
    tokenizer = json.loads((run / "tokenizer.json").read_text())
    assert tokenizer.pop("words_only") is True
    (run / "tokenizer.json").write_text(json.dumps(tokenizer))
    manifest = json.loads((run / MANIFEST).read_text())
    manifest["files"].update(file_entries([run / "tokenizer.json"]))
    (run / MANIFEST).write_text(json.dumps(manifest))
    text = "a good  great\tfilm, awful"
    assert load_checkpoint(run).task.tokenizer.encode(text).tolist() == trained.encode(text).tolist()
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == before["accuracy"]


def test_a_language_model_reads_text_as_the_classifier_does_and_a_classifier_from_it_reads_alike(tmp_path, capsys):
    from seqlab.data.prepared import load_corpus
    from seqlab.generate import TextDecoder
    from seqlab.train.checkpoint import load_checkpoint

    text = write(tmp_path / "text.txt", "The film was GOOD. The film, the end\nthe end was good, dull\n")
    language_model = tmp_path / "lm"
    lm_flags = ["--tokenizer", "word", "--block-size", "4", "--hidden-size", "8", "--max-steps", "1",
                "--eval-interval", "1", "--threads", "1", "--quiet", "--val-fraction", "0"]
    assert main(["train", "--task", "lm", "--data", str(text), "--out", str(language_model), *lm_flags,
                 "--lowercase", "true", "--min-count", "2", "--words-only", "true"]) == 0
    # the known answer: the text read lower-cased, without white space: the 4, film was good , end 2 (in order of
    # first appearance), "." and dull once: below --min-count 2
    tokenizer = load_checkpoint(language_model).tokenizer
    assert tokenizer.pieces == ["<unk>", "the", "film", "was", "good", ",", "end"]
    assert tokenizer.encode("THE film, the  END.\n").tolist() == [1, 2, 5, 1, 6, 0]
    assert tokenizer.decode([1, 2, 3, 4]) == "the film was good"
    decoder = TextDecoder(tokenizer)  # sampling: each token after a space, as the text goes on from the prompt
    assert "".join(decoder.add(token) for token in (2, 3, 4)) == " film was good"
    # a classifier with its defaults (lower case, words only) starts from it and reads every text as it does
    rows = "\n".join(sentiment_rows(40, 12)) + "\nThe FILM, was good.\tyes\n"
    data = write(tmp_path / "train.tsv", rows)
    run = tmp_path / "fine"
    assert main(["train", "--data", str(data), "--out", str(run), "--init-from", str(language_model), *FLAGS,
                 "--tokenizer", "word", "--max-steps", "2", "--eval-interval", "2", "--val-fraction", "0"]) == 0
    classifier = load_checkpoint(run)
    for row in rows.splitlines():
        sentence = row.split("\t")[0]
        alone = write(tmp_path / "one.txt", sentence)
        as_read = load_corpus(alone, tokenizer_kind="word", unknown="unk", val_fraction=0, tokenizer=tokenizer).train
        assert classifier.task._encode(sentence)[:, 0].tolist() == as_read.tolist()  # each token, then its pieces
    assert classifier.task._encode("The FILM, was good.")[:, 0].tolist() == [1, 2, 5, 3, 4, 0]
    # a language model that reads text otherwise (cased, white space as tokens) is refused, nothing written
    cased = tmp_path / "cased"
    assert main(["train", "--task", "lm", "--data", str(text), "--out", str(cased), *lm_flags]) == 0
    error = run_bad(capsys, ["train", "--data", str(data), "--out", str(tmp_path / "refused"), "--init-from",
                             str(cased), *FLAGS, "--tokenizer", "word"])
    assert "--lowercase false --words-only false but this run asks for --lowercase true --words-only true" in error
    assert not (tmp_path / "refused").exists()


def test_subword_ids_frame_each_word_and_hash_its_character_ngrams():
    import zlib

    from seqlab.data.tokenizers import subword_ids

    buckets = 1000
    ids = subword_ids(["abc", "a", "abcd"], 5, buckets)

    def bucket(gram):  # the library's own CRC-32, to 1..buckets
        return zlib.crc32(gram.encode("utf-8")) % buckets + 1

    abc = ["<ab", "abc", "bc>", "<abc", "abc>", "<abc>"]
    abcd = ["<ab", "abc", "bcd", "cd>", "<abc", "abcd", "bcd>", "<abcd", "abcd>"]  # 6 letters framed: no 6-gram
    assert ids.shape == (3, len(abcd))
    assert ids[0].tolist() == [bucket(gram) for gram in abc] + [0] * 3  # padded with "none"
    assert ids[1].tolist() == [bucket("<a>")] + [0] * 8  # as short as the shortest n-gram: itself framed
    assert ids[2].tolist() == [bucket(gram) for gram in abcd]
    assert subword_ids(["abc"], 3, buckets)[0].tolist() == [bucket(gram) for gram in abc[:3]]
    long = subword_ids(["x" * 33, "ab"], 5, buckets)  # past SUBWORD_PIECE_LIMIT: no word, no pieces
    assert long.tolist() == [[0, 0, 0], [bucket("<ab"), bucket("ab>"), bucket("<ab>")]]


def test_subwords_add_each_words_pieces_to_its_row_of_the_bag():
    from seqlab.data.labelled import pad_right
    from seqlab.models.classifier import NGRAM_BUCKETS, subword_buckets

    torch.manual_seed(0)
    make = lambda: build_backbone("gru", input_size=6, hidden_size=8)  # noqa: E731
    model = SequenceClassifier(VOCAB, 3, make(), pooling="max", bag_of_tokens=True, subwords=True).double().eval()
    torch.nn.init.normal_(model.bag.weight)
    sequences = [torch.tensor([[3, 5, 9, 0], [0, 7, 0, 0], [4, 1, 2, 3]]),  # a token and its pieces (0: none)
                 torch.tensor([[2, subword_buckets(3), 1]])]  # the last subword row
    inputs, lengths = pad_right(sequences)
    assert inputs.shape == (2, 3, 4) and lengths.tolist() == [3, 1]
    with torch.no_grad():
        expected = []
        for sequence in sequences:
            tokens = sequence[:, 0]
            deep = model.head(model.pool(model.features(tokens[None], torch.tensor([len(tokens)])), torch.tensor([len(tokens)])))
            rows = [model.bag.weight[token] + sum((model.bag.weight[VOCAB + piece - 1]
                                                   for piece in pieces.tolist() if piece), torch.zeros(3))
                    for token, pieces in zip(tokens.tolist(), sequence[:, 1:])]
            expected.append(deep[0] + torch.stack(rows).mean(0))  # a word's row holds its pieces; mean over words
        torch.testing.assert_close(model(inputs, lengths), torch.stack(expected))
        wider = torch.cat([inputs, torch.zeros(2, 3, 2, dtype=torch.long)], 2)  # more "none" pieces change nothing
        torch.testing.assert_close(model(wider, lengths), model(inputs, lengths))
    # many classes share fewer subword rows (the bag's size and each step's work stay bounded), after the n-grams'
    many = SequenceClassifier(VOCAB, 100, make(), bag_of_tokens=True, ngrams=2, subwords=True)
    assert subword_buckets(2) == NGRAM_BUCKETS and subword_buckets(100) == 1 << 14
    assert many.bag.weight.shape == (VOCAB + NGRAM_BUCKETS + (1 << 14), 100)


def test_subwords_read_words_never_seen_in_training_by_their_pieces(tmp_path, capsys):
    """Every training word but "the" and "one" occurs once, so the vocabulary (--min-count 2) reads each as unknown;
    the label is in its ending. With subwords, new words with those endings are classified; without, they cannot be.
    The run with subwords records them, and its bag is left out of weight decay."""
    rng = random.Random(0)

    def stem():
        return "".join(rng.choice("bcdfghjkmnprstvwz") + rng.choice("aeiou") for _ in range(3))

    def rows(count):
        return [f"the {stem()}ful one\tyes" if index % 2 else f"the {stem()}less one\tno" for index in range(count)]

    data = write(tmp_path / "train.tsv", "\n".join(rows(120)) + "\n")
    new = write(tmp_path / "new.tsv", "\n".join(rows(40)) + "\n")
    accuracy = {}
    for subwords in ("5", "0"):
        run = tmp_path / f"run{subwords}"
        assert main(["train", "--data", str(data), "--out", str(run), *FLAGS, "--max-steps", "60",
                     "--subwords", subwords]) == 0
        assert json.loads((run / "config.json").read_text())["task"]["subwords"] == int(subwords)
        capsys.readouterr()
        assert main(["eval", str(run), "--data", str(new), "--json"]) == 0
        accuracy[subwords] = json.loads(capsys.readouterr().out)["accuracy"]
    assert accuracy["5"] >= 0.9 and accuracy["0"] <= 0.6
    assert main(["predict", str(tmp_path / "run5"), "the wonderful one", "the hopeless one"]) == 0
    assert capsys.readouterr().out.splitlines() == ["yes", "no"]


def test_subwords_need_the_word_tokenizer_and_are_off_with_another(tmp_path):
    from seqlab.config import Config
    from seqlab.tasks.classify import ClassifyTask

    config = Config.for_task("classify")
    assert config.task.subwords == 5  # the default
    config.data.path = str(write(tmp_path / "train.tsv", "\n".join(sentiment_rows(40, 11)) + "\n"))
    config.data.tokenizer = "char"
    task = ClassifyTask(config)
    task.load_data()
    assert config.task.subwords == 0 and "--subwords reads the words of --tokenizer word" in task.notes[-1]
    assert all(sequence.dim() == 1 for sequence in task.train_sequences)  # tokens alone


def test_the_bag_of_tokens_is_left_out_of_weight_decay(tmp_path):
    """AdamW's decay would shrink the rows of rare words and subwords between their updates."""
    from seqlab.config import Config
    from seqlab.train.trainer import Trainer

    config = Config.for_task("classify")
    config.data.path = str(write(tmp_path / "train.tsv", "\n".join(sentiment_rows(40, 11)) + "\n"))
    config.train.max_steps, config.train.threads = 1, 1
    seen = {}

    def record(trainer, step, loss):
        decay = {id(parameter): group["weight_decay"] for group in trainer.optimizer.param_groups
                 for parameter in group["params"]}
        seen.update(bag=decay[id(trainer.model.bag.weight)], head=decay[id(trainer.model.head.weight)])

    Trainer(config, tmp_path / "run", quiet=True, step_callback=record).fit()
    assert config.train.weight_decay == 1.0 and seen == {"bag": 0.0, "head": 1.0}
