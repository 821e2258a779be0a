"""The music task: ABC tunes, conditions into the initial state, music21 checks, MIDI export, the CLI."""
import json
import random

import pytest
import torch
from torch import nn

from seqlab.cli import main
from seqlab.data.abc import conditions_first, normalize_key, normalize_meter, read_tunes, titles_first, tune_conditions
from seqlab.data.conditions import ConditionVocabulary
from seqlab.data.labelled import IGNORED_TARGET, ConditionedSequenceBatches
from seqlab.errors import SeqlabError
from seqlab.generate import generate
from seqlab.models import ConditionedLanguageModel, LanguageModel
import seqlab.music as music_module
from seqlab.music import (MusicReport, bars_in_meter, check_tune, export_midi, find_synthesiser, key_relation,
                          parse_tune, tune_problem)
from seqlab.registry import build_backbone
from seqlab.train.checkpoint import load_checkpoint

from test_cli import run_bad

music21 = pytest.importorskip("music21")

SCALE = "T:Scale\nM:4/4\nL:1/4\nK:D\nDEFG|ABcd|]"
UNPARSEABLE = "T:Broken\nM:6/8\nL:1/0\nK:D\nDFA dAF|"  # a zero unit length: music21 divides by zero


def tunes_text(count: int, *, broken: int = 0, seed: int = 0) -> str:
    """``count`` small tunes in D (6/8) or G (3/4) with a little randomness, then ``broken`` unparseable ones."""
    rng = random.Random(seed)
    records = []
    for number in range(count):
        key, meter, bar = ("D", "6/8", 6) if number % 2 else ("G", "3/4", 3)
        notes = "DEFGABc" if key == "D" else "GABcdef"
        body = "|".join("".join(rng.choice(notes) for _ in range(bar)) for _ in range(4))
        records.append(f"X:{number + 1}\nT:Tune {number}\nM:{meter}\nL:1/8\nK:{key}\n{body}|]")
    records += [f"X:{count + index + 1}\n{UNPARSEABLE}" for index in range(broken)]
    return "\n\n".join(records) + "\n"


TRAIN_FLAGS = ["--task", "music", "--max-steps", "8", "--eval-interval", "4", "--batch-size", "4", "--block-size", "100",
               "--hidden-size", "16", "--embedding-size", "8", "--val-fraction", "0.2", "--threads", "1", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("music")
    data = root / "tunes.abc"
    data.write_text(tunes_text(20, broken=2), encoding="utf-8")
    assert main(["train", "--data", str(data), "--out", str(root / "run"), *TRAIN_FLAGS]) == 0
    return data, root / "run"


# ------------------------------------------------------------------ ABC and music21
def test_midi_export_reads_back_with_the_same_notes(tmp_path):
    path = export_midi(SCALE, tmp_path / "scale.mid")
    score = music21.converter.parse(str(path))
    pitches = [note.pitch.midi for note in score.flatten().notes]
    assert pitches == [62, 64, 66, 67, 69, 71, 73, 74]  # D major: F and C sharp
    assert [float(note.quarterLength) for note in score.flatten().notes] == [1.0] * 8


def test_music21_check_and_headers():
    assert tune_problem(SCALE) is None and tune_problem(SCALE, full=False) is None
    assert "ZeroDivisionError" in tune_problem(UNPARSEABLE) and tune_problem(UNPARSEABLE, full=False)
    assert tune_problem("T:Empty\nK:D\n|||") == "no notes"
    assert [normalize_key(text) for text in ("D Major", "A Dorian", "Em", "AMix", "F# Minor", "Bb", "HP", None)] == \
        ["D", "Ador", "Em", "Amix", "F#m", "Bb", None, None]
    assert [normalize_meter(text) for text in ("C", "C|", "6 / 8", "none")] == ["4/4", "2/2", "6/8", None]
    assert tune_conditions(SCALE) == {"K": "D", "M": "4/4"}


JIG = ("T:Hand-written jig\nT:second title\nM:6/8\nL:1/8\nK:D\n"
       "A|d2f a2f|d2f a2f|g2e f2d|e3 e2A|d2f a2f|d2f a2d|g2e cde|d3 d2|]")  # arpeggios on D, cadence on D


def test_conditions_first_keeps_the_notes_and_round_trips():
    moved = conditions_first(JIG)
    assert moved.startswith("M:6/8\nK:D\nT:Hand-written jig\nT:second title\nL:1/8\nA|")
    assert titles_first(moved) == JIG and tune_conditions(moved) == tune_conditions(JIG)
    original, reordered = parse_tune(JIG), parse_tune(moved)
    notes = [(str(note.pitch), float(note.quarterLength)) for note in original.flatten().notes]
    assert notes == [(str(note.pitch), float(note.quarterLength)) for note in reordered.flatten().notes]
    assert notes[:2] == [("A4", 0.5), ("D5", 1.0)] and reordered.metadata.title == original.metadata.title
    assert conditions_first("no header") == "no header" == titles_first("no header")
    generated = "M:2/4\nK:G\nL:1/16\nT:Polka\nG2B2 d4|]"  # as a model trained on conditions_first writes
    assert titles_first(generated) == "T:Polka\nM:2/4\nL:1/16\nK:G\nG2B2 d4|]"


def test_key_analysis_and_bar_lengths_of_a_hand_written_tune():
    check = check_tune(JIG, {"K": "D", "M": "6/8"})
    assert check.problem is None and check.key == "D" and check.key_relation == "exact"
    assert (check.bars, check.bars_in_meter) == (7, 7)  # a pickup and 8 bars, less the pickup and the last
    score = parse_tune(JIG)
    assert bars_in_meter(score, "3/4") == (7, 7) and bars_in_meter(score, "2/4") == (0, 7)  # 3/4 lasts as long
    short = JIG.replace("|g2e f2d|", "|g2e f2|")  # one bar an eighth short
    assert bars_in_meter(parse_tune(short), "6/8") == (6, 7)
    minor = "M:3/4\nL:1/8\nK:Am\nE2|A2 c2 e2|a4 e2|d2 B2 G2|E4 E2|A2 c2 B2|A6|]"
    assert check_tune(minor, {"K": "Am"}).key == "Am"
    assert [key_relation("D", found) for found in ("D", "Bm", "Dm", "G")] == ["exact", "related", "related", "other"]
    assert key_relation("Ador", "G") == "related" and key_relation("Ador", "Am") == "related"
    assert check_tune(UNPARSEABLE, {"K": "D"}).problem is not None


def test_a_tune_whose_analysis_fails_is_left_out_not_counted_as_fine(monkeypatch):
    analysed = check_tune(JIG, {"K": "D"})

    def failing_analysis(score):
        raise ZeroDivisionError("an odd score")

    monkeypatch.setattr(music_module, "analysed_key", failing_analysis)
    failed = check_tune(JIG, {"K": "D"})
    assert failed.problem is None and failed.key is None and failed.key_relation is None
    assert failed.analysis_problem == "ZeroDivisionError: an odd score"
    report = MusicReport([JIG, JIG], [analysed, failed], {"K": "D"})
    assert report.parse_share == 1.0 and report.unanalysed == 1
    assert report.body() == {"key exact": 1.0, "key related": 1.0}  # over the one analysed tune, not two
    assert "2 parse with music21 (100%), 1 of them not analysable" in report.summary()


def test_read_tunes_from_a_folder_and_refusals(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "one.abc").write_text(tunes_text(2), encoding="utf-8")
    (tmp_path / "a" / "b" / "two.abc").write_text(tunes_text(3, seed=1), encoding="utf-8")
    assert len(read_tunes(tmp_path / "a")) == 5
    (tmp_path / "empty").mkdir()
    with pytest.raises(SeqlabError, match="no .abc files"):
        read_tunes(tmp_path / "empty")
    (tmp_path / "prose.abc").write_text("no tunes here\n", encoding="utf-8")
    with pytest.raises(SeqlabError, match="no ABC tunes"):
        read_tunes(tmp_path / "prose.abc")


def test_condition_vocabulary():
    vocabulary = ConditionVocabulary.fit([{"K": "D", "M": "6/8"}, {"K": "G", "M": None}, {"K": "D", "M": "3/4"}])
    assert vocabulary.groups == {"K": {"D": 2, "G": 1}, "M": {"3/4": 1, "6/8": 1}}
    assert vocabulary.encode({"K": "G", "M": "6/8"}, strict=True).tolist() == [0, 1, 0, 1]
    assert vocabulary.encode({"K": "Bb", "M": None}, strict=False).tolist() == [0, 0, 0, 0]
    with pytest.raises(SeqlabError, match="knows K: D G"):
        vocabulary.encode({"K": "Bb"}, strict=True)
    assert vocabulary.parse("K:D M:6/8") == {"K": "D", "M": "6/8"}
    assert vocabulary.parse("K: G major M:3/4") == {"K": "G major", "M": "3/4"}
    with pytest.raises(SeqlabError, match="not group:label"):
        vocabulary.parse("D")
    with pytest.raises(SeqlabError, match="unknown condition X:3; the conditions are K, M"):
        vocabulary.parse("K:D X:3")
    assert ConditionVocabulary.from_dict(json.loads(json.dumps(vocabulary.to_dict()))).slots == vocabulary.slots


def test_tune_batches_cover_an_epoch_with_shifted_targets():
    sequences = [torch.arange(2, 2 + length) for length in (3, 9, 4, 7, 5, 2, 8, 6)]
    conditions = torch.eye(8)
    batches = ConditionedSequenceBatches(sequences, conditions, batch_size=2, seed=0)
    seen = []
    for _ in range(4):
        batch = batches.next_batch()
        for row in range(2):
            index = int(batch.condition[row].argmax())
            seen.append(index)
            length = len(sequences[index]) - 1
            assert int(batch.lengths[row]) == length
            assert batch.inputs[row, :length].tolist() == sequences[index][:-1].tolist()
            assert batch.targets[row, :length].tolist() == sequences[index][1:].tolist()
            assert (batch.targets[row, length:] == IGNORED_TARGET).all()
    assert sorted(seen) == list(range(8))


# ------------------------------------------------------------------ conditioned model
def test_condition_sets_the_lstm_initial_state_like_nn_lstm():
    torch.manual_seed(0)
    backbone = build_backbone("lstm", input_size=6, hidden_size=5, num_layers=2)
    model = ConditionedLanguageModel(11, backbone, condition_size=3)
    assert model.conditioning == "state"
    nn.init.normal_(model.condition_projection.weight)
    condition = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    tokens = torch.randint(0, 11, (2, 7))
    logits, _ = model(tokens, model.condition_state(condition))
    reference = nn.LSTM(6, 5, num_layers=2, batch_first=True)
    reference.load_state_dict({name: value for name, value in backbone.state_dict().items()})
    projected = (condition @ model.condition_projection.weight.t()).view(2, 2, 2, 5)  # (B, (h, c), L, H)
    h0, c0 = projected[:, 0].transpose(0, 1), projected[:, 1].transpose(0, 1)  # (L, B, H) each
    hidden, _ = reference(model.embedding(tokens), (h0.contiguous(), c0.contiguous()))
    torch.testing.assert_close(logits, model.head(hidden))


@pytest.mark.parametrize("backbone_name", ["gru", "transformer"])
def test_two_conditions_differ_and_a_zero_projection_is_unconditioned(backbone_name):
    torch.manual_seed(0)
    backbone = build_backbone(backbone_name, input_size=8, hidden_size=8)
    model = ConditionedLanguageModel(11, backbone, condition_size=2)
    assert model.conditioning == ("state" if backbone_name == "gru" else "input")
    plain = LanguageModel(11, backbone)
    plain.embedding, plain.head = model.embedding, model.head
    tokens = torch.randint(0, 11, (2, 5))
    first, second = torch.eye(2)[:1], torch.eye(2)[1:]
    unconditioned, _ = plain(tokens[:1])
    for condition in (first, second):  # the projection starts at zero
        torch.testing.assert_close(model(tokens[:1], model.condition_state(condition))[0], unconditioned)
    nn.init.normal_(model.condition_projection.weight)
    step_first, _ = model.step(tokens[:1, 0], model.condition_state(first))  # (1, V): the first step's logits
    step_second, _ = model.step(tokens[:1, 0], model.condition_state(second))
    assert not torch.allclose(step_first, step_second)
    # the condition lasts: stepping equals the whole-sequence forward from the same condition
    state, steps = model.condition_state(second), []
    for position in range(5):
        logits, state = model.step(tokens[:1, position], state)
        steps.append(logits)
    torch.testing.assert_close(torch.stack(steps, 1), model(tokens[:1], model.condition_state(second))[0])


def test_state_conditioning_refused_where_the_state_cannot_take_it():
    with pytest.raises(ValueError, match="cannot set it"):
        ConditionedLanguageModel(5, build_backbone("tcn", input_size=4, hidden_size=4), condition_size=2,
                                 conditioning="state")


# ------------------------------------------------------------------ task and CLI
def test_training_skips_and_counts_unparseable_tunes(trained, capsys):
    data, run = trained
    checkpoint = load_checkpoint(run)
    assert sorted(checkpoint.task.vocabulary.groups) == ["K", "M"]
    metrics = checkpoint.task.evaluate_file(checkpoint.model, data, split="all")
    assert metrics["skipped"] == 2 and metrics["tunes"] == 20
    capsys.readouterr()
    checkpoint.task.load_data()  # what training read: noted for the trainer to print, not printed by the library
    assert capsys.readouterr().err == ""
    (report,) = checkpoint.task.notes
    assert "22 tunes" in report and "2 skipped (music21 cannot parse them); 16 train, 4 validate" in report, report
    assert len(checkpoint.task.train_tunes.sequences) == 16 and len(checkpoint.task.val_tunes.sequences) == 4


def test_eval_json_matches_the_trainer(trained, capsys):
    data, run = trained
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    last_eval = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
                 if json.loads(line)["kind"] == "eval"][-1]
    assert metrics["val_loss"] == pytest.approx(last_eval["val_loss"], abs=1e-5)
    assert metrics["bpc"] == pytest.approx(last_eval["bpc"], abs=1e-5)
    assert metrics["tunes"] == 4  # 20% of the 20 readable tunes


def test_conditioned_sampling_uses_the_condition(trained, capsys):
    _, run = trained
    checkpoint = load_checkpoint(run)
    model, task = checkpoint.model, checkpoint.task
    jig, waltz = task.condition_state(model, "K:D M:6/8"), task.condition_state(model, "K: G major M:3/4")
    first_jig, _ = model(torch.tensor([[1]]), jig)
    first_waltz, _ = model(torch.tensor([[1]]), waltz)
    assert not torch.allclose(first_jig, first_waltz)
    sampled = "".join(generate(model, checkpoint.tokenizer, "", max_tokens=40, seed=3, state=jig))
    capsys.readouterr()
    assert main(["sample", str(run), "--condition", "K:D M:6/8", "--max-tokens", "40", "--seed", "3"]) == 0
    assert capsys.readouterr().out == sampled + "\n"


def test_music_command_writes_abc_and_midi(trained, tmp_path, capsys):
    _, run = trained
    capsys.readouterr()
    assert main(["music", str(run), "--tunes", "3", "--condition", "K:D M:6/8", "--out", str(tmp_path / "out"),
                 "--midi", "--max-tokens", "200", "--temperature", "0.5"]) == 0
    summary = capsys.readouterr().err.splitlines()[-1]  # after the progress and any tune skipped, by name
    assert summary.startswith("3 tunes: ") and "header K:D in" in summary
    abc_files = sorted((tmp_path / "out").glob("*.abc"))
    assert [path.name for path in abc_files] == ["tune-001.abc", "tune-002.abc", "tune-003.abc"]
    for path in abc_files:
        midi = path.with_suffix(".mid")
        assert midi.exists() == (tune_problem(path.read_text()) is None)
        if midi.exists():
            assert len(music21.converter.parse(str(midi)).flatten().notes) > 0


def test_bad_music_inputs(trained, tmp_path, capsys):
    data, run = trained
    error = run_bad(capsys, ["sample", str(run), "--condition", "K:Q"])
    assert "K:Q" in error and "D G" in error  # lists the known keys
    run_bad(capsys, ["sample", str(run), "--condition", "X:3"])
    run_bad(capsys, ["music", str(run), "--midi"])  # files need --out
    if find_synthesiser() is None:
        error = run_bad(capsys, ["music", str(run), "--wav", "--out", str(tmp_path / "wav")])
        assert "timidity" in error
        assert not (tmp_path / "wav").exists()
    broken = tmp_path / "broken.abc"
    broken.write_text(tunes_text(0, broken=3), encoding="utf-8")
    run_bad(capsys, ["train", "--data", str(broken), "--out", str(tmp_path / "never"), *TRAIN_FLAGS])
    assert not (tmp_path / "never").exists()
    lm_data = tmp_path / "text.txt"
    lm_data.write_text("abcdefgh " * 200, encoding="utf-8")
    assert main(["train", "--data", str(lm_data), "--out", str(tmp_path / "lm"), "--max-steps", "2", "--block-size",
                 "8", "--hidden-size", "8", "--batch-size", "2", "--threads", "1", "--quiet"]) == 0
    assert "takes no condition" in run_bad(capsys, ["sample", str(tmp_path / "lm"), "--condition", "K:D"])
    assert "--task music" in run_bad(capsys, ["music", str(tmp_path / "lm")])


def test_init_from_a_language_model_trained_on_abc(trained, tmp_path):
    data, _ = trained
    language_model = tmp_path / "lm"
    assert main(["train", "--data", str(data), "--out", str(language_model), "--hidden-size", "16", "--embedding-size",
                 "8", "--block-size", "32", "--batch-size", "4", "--max-steps", "2", "--eval-interval", "2",
                 "--threads", "1", "--quiet"]) == 0
    tuned = tmp_path / "tuned"
    assert main(["train", "--data", str(data), "--out", str(tuned), *TRAIN_FLAGS, "--init-from", str(language_model),
                 "--max-steps", "1", "--learning-rate", "1e-12", "--min-learning-rate", "0", "--warmup-steps", "0"]) == 0
    from safetensors.torch import load_file

    before, after = load_file(str(language_model / "model.safetensors")), load_file(str(tuned / "model.safetensors"))
    shared = [name for name in before if name.split(".")[0] in ("embedding", "backbone", "head")]
    assert shared and all(torch.allclose(before[name], after[name], atol=1e-6) for name in shared)
    assert json.loads((tuned / "tokenizer.json").read_text()) == json.loads((language_model / "tokenizer.json").read_text())


def test_asked_header_is_written_for_the_model_when_asked(trained):
    from seqlab.music import generate_tunes

    checkpoint = load_checkpoint(trained[1])
    written = generate_tunes(checkpoint, 3, condition="K:D M:6/8", max_tokens=60, seed=5, write_header=True)
    for tune in written:
        assert tune_conditions(tune) == {"K": "D", "M": "6/8"}, tune
    # free: the model writes its header itself from the same state and seeds, so the tunes differ
    assert generate_tunes(checkpoint, 3, condition="K:D M:6/8", max_tokens=60, seed=5) != written
