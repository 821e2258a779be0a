"""Sequence to sequence: dates, pairs files, BLEU by hand, masks, attention against references, decoding, the CLI."""
import datetime
import itertools
import json
import math

import pytest
import torch
from torch.nn import functional as F

from seqlab.cli import main
from seqlab.config import Config
from seqlab.data.dates import FORMATS, builtin_date_pairs, date_pairs, ordinal
from seqlab.data.pairs import BOS, EOS, PAD, PairBatches, read_pairs
from seqlab.decode import beam_search, greedy_decode
from seqlab.errors import SeqlabError
from seqlab.models.seq2seq import (AdditiveAttention, CrossAttention, MultiplicativeAttention, attend,
                                   build_seq2seq)
from seqlab.tasks.seq2seq import SeqToSeqTask, bleu_from_statistics, bleu_metric, bleu_signature, bleu_statistics

VOCAB = 9  # 3 specials + 6 tokens


def seq2seq_config(backbone: str = "gru", attention: str = "bahdanau", *, bidirectional: bool = True,
                   path: str = "") -> Config:
    config = Config()
    config.task.name = "seq2seq"
    config.task.attention = attention
    config.task.bidirectional = bidirectional and backbone != "transformer"
    config.data.path = path
    config.model.backbone = backbone
    config.model.hidden_size = 8
    config.model.embedding_size = 6
    config.model.num_layers = 2
    if backbone == "transformer":
        config.model.options = {"num_heads": 2}
    config.train.batch_size = 8
    config.train.threads = 1
    return config


MODELS = [("gru", "bahdanau"), ("lstm", "luong"), ("gru", "none"), ("mingru", "luong"), ("transformer", "bahdanau")]


def random_model(backbone: str, attention: str, *, seed: int = 0, vocab: int = VOCAB):
    torch.manual_seed(seed)
    return build_seq2seq(seq2seq_config(backbone, attention), vocab).double().eval()


def padded_batch(seed: int = 1):
    generator = torch.Generator().manual_seed(seed)
    src_len = torch.tensor([5, 2, 7])
    src = torch.randint(3, VOCAB, (3, 7), generator=generator)
    src[src_len.unsqueeze(1) <= torch.arange(7)] = 4  # junk, not PAD, in the padding: masks must do the work
    tgt_in = torch.cat([torch.full((3, 1), BOS), torch.randint(3, VOCAB, (3, 4), generator=generator)], dim=1)
    return src, src_len, tgt_in


# -------------------------------------------------------------------- dates
def test_every_format_writes_the_date_as_a_person_would():
    day = datetime.date(2017, 3, 3)  # a Friday
    written = [format_date(day) for format_date in FORMATS]
    assert written == [
        "3 March 2017", "03 Mar 2017", "March 3, 2017", "Mar 3rd, 2017", "Mar. 3, 2017", "Friday, March 3, 2017",
        "Fri, 3 Mar 2017", "3rd of March 2017", "the 3rd of March, 2017", "03/03/17", "3/3/2017", "2017.03.03",
        "2017/3/3", "3.3.2017", "03.03.17", "3-MAR-2017", "03-Mar-17", "20170303", "March 3rd 2017", "3 Mar '17",
        "2017-03-03"]
    assert [ordinal(day) for day in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st"]


def test_date_pairs_are_seeded_unambiguous_and_the_test_set_is_held_out():
    pairs = builtin_date_pairs("dates")
    assert len(pairs) == 22_000 and pairs == builtin_date_pairs("dates")
    assert date_pairs(50, seed=1) != date_pairs(50, seed=2)
    meaning: dict[str, str] = {}
    for source, target in pairs:
        assert meaning.setdefault(source, target) == target, f"{source!r} names two dates"
        date = datetime.date.fromisoformat(target)
        assert datetime.date(1950, 1, 1) <= date <= datetime.date(2049, 12, 31)
    test = builtin_date_pairs("dates-test")
    assert len(test) == 2000 and not {source for source, _ in test} & set(meaning)
    cases = {("lower" if s.islower() else "upper" if s.isupper() else "mixed") for s, _ in pairs[:300]}
    assert cases == {"lower", "upper", "mixed"}


# -------------------------------------------------------------------- pairs
def test_read_pairs_layouts(tmp_path):
    tsv = tmp_path / "pairs.tsv"
    tsv.write_text('source\ttarget\n3 March 2017\t2017-03-03\nsay "hi"\thello, "you"\n\n', encoding="utf-8")
    pairs = read_pairs(tsv)
    assert pairs.sources == ["3 March 2017", 'say "hi"'] and pairs.targets == ["2017-03-03", 'hello, "you"']
    assert pairs.line_numbers == [2, 3]
    csv_file = tmp_path / "pairs.csv"
    csv_file.write_text('"Mar 3, 2017",2017-03-03\n', encoding="utf-8")
    assert read_pairs(csv_file).sources == ["Mar 3, 2017"]
    with pytest.raises(SeqlabError, match="no pairs"):
        read_pairs(csv_file, header="yes")


@pytest.mark.parametrize("content", [
    ',source,target\n0,"Mar 3, 2017",2017-03-03\n1,4 May 2018,2018-05-04\n',  # DataFrame.to_csv's index
    '"","source","target"\n"1","Mar 3, 2017","2017-03-03"\n"2","4 May 2018","2018-05-04"\n',  # R's row names
    'source,target\r"Mar 3, 2017",2017-03-03\r4 May 2018,2018-05-04\r',  # Excel for Mac: lines end in CR alone
])
def test_read_pairs_as_pandas_r_and_excel_for_mac_write_them(tmp_path, content):
    path = tmp_path / "pairs.csv"
    path.write_bytes(content.encode("utf-8"))
    pairs = read_pairs(path)
    assert pairs.sources == ["Mar 3, 2017", "4 May 2018"] and pairs.targets == ["2017-03-03", "2018-05-04"]
    assert pairs.line_numbers == [2, 3]


@pytest.mark.parametrize("content, message", [
    (b"a\tb\nc\n", "line 2 has 1 column"),
    (b"a\tb\nc\td\te\n", "line 2 has 3 column"),
    (b"a\tb\n\t\nc\td\n", "line 2 is empty"),
    (b"a\t\n", "empty target"),
    (b"\tb\n", "empty source"),
    (b"a\tb\n\xff\xfe\tc\n", "is not UTF-8: byte FF on line 2"),
    (b"", "is empty"),
])
def test_bad_pairs_files_end_in_one_line(tmp_path, capsys, content, message):
    data = tmp_path / "bad.tsv"
    data.write_bytes(content)
    out = tmp_path / "run"
    assert main(["train", "--task", "seq2seq", "--data", str(data), "--out", str(out), "--max-steps", "1"]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1 and "Traceback" not in error
    assert not out.exists()


def test_pair_batches_pad_with_pad_and_resume_exactly():
    sources = [torch.tensor([5, 6, 7]), torch.tensor([4]), torch.tensor([8, 8])]
    targets = [torch.tensor([BOS, 5, EOS]), torch.tensor([BOS, 4, 4, 4, EOS]), torch.tensor([BOS, EOS])]
    batches = PairBatches(sources, targets, batch_size=2, seed=3)
    first = batches.next_batch()
    rows = [next(i for i, s in enumerate(sources) if len(s) == length and torch.equal(s, first.inputs[r, :length]))
            for r, length in enumerate(first.lengths.tolist())]
    for row, index in enumerate(rows):
        target = targets[index]
        assert torch.equal(first.targets[row, :len(target)], target)
        assert (first.targets[row, len(target):] == PAD).all() and (first.inputs[row, len(sources[index]):] == PAD).all()
    saved = batches.state_dict()
    expected = [batches.next_batch() for _ in range(3)]
    batches.load_state_dict(saved)
    for batch in expected:
        again = batches.next_batch()
        assert torch.equal(again.inputs, batch.inputs) and torch.equal(again.targets, batch.targets)


# --------------------------------------------------------------------- BLEU
def test_bleu_is_sacrebleu_on_text_and_agrees_with_a_hand_computed_example():
    import sacrebleu

    metric = bleu_metric("13a")
    # 13a words: p1 = 5/6, p2 = 3/5, p3 = 1/4, no 4-gram matches of 3: exponential smoothing makes p4 = 1/(2 * 3);
    # 6 words each side: BP = 1
    statistics = bleu_statistics(metric, "the cat sat on the mat", "the cat is on the mat")
    assert statistics == [5, 3, 1, 0, 6, 5, 4, 3, 6, 6]
    expected = 100 * (5 / 6 * 3 / 5 * 1 / 4 * 1 / 6) ** 0.25
    assert bleu_from_statistics(metric, statistics) == pytest.approx(expected, rel=1e-9)
    # 13a splits punctuation from words: "Hello , world !" against "Hello , world ." matches 3 of 4 words, 2 of 3
    # bigrams, 1 of 2 trigrams, no 4-gram (of 1, smoothed to 1/2)
    punctuated = bleu_statistics(metric, "Hello, world!", "Hello, world.")
    assert punctuated == [3, 2, 1, 0, 4, 3, 2, 1, 4, 4]
    assert bleu_from_statistics(metric, punctuated) == pytest.approx(100 * (3 / 4 * 2 / 3 * 1 / 2 * 1 / 2) ** 0.25)
    # corpus BLEU adds statistics over pairs (so it adds across processes too): sacreBLEU's own corpus score
    hypotheses = ["the cat sat on the mat", "Hello, world!", "2017-03-03", "a b c d e f"]
    references = ["the cat is on the mat", "Hello, world.", "2017-03-04", "a b c d e f g"]
    summed = [sum(column) for column in zip(*(bleu_statistics(metric, hypothesis, reference)
                                              for hypothesis, reference in zip(hypotheses, references)))]
    assert bleu_from_statistics(metric, summed) == pytest.approx(
        sacrebleu.corpus_bleu(hypotheses, [references]).score, rel=1e-12)
    characters = bleu_metric("char")
    assert bleu_from_statistics(characters, bleu_statistics(characters, "2017-03-03", "2017-03-04")) == pytest.approx(
        sacrebleu.corpus_bleu(["2017-03-03"], [["2017-03-04"]], tokenize="char").score, rel=1e-12)
    assert bleu_signature("13a") == metric.get_signature().format() and "tok:char" in bleu_signature("char")


# ---------------------------------------------------------------- attention
def test_additive_and_multiplicative_scores_against_the_formulas():
    torch.manual_seed(0)
    query, outputs = torch.randn(2, 5, dtype=torch.double), torch.randn(2, 4, 3, dtype=torch.double)
    mask = torch.tensor([[True, True, True, False], [True, True, True, True]])
    additive = AdditiveAttention(5, 3, 7).double()
    multiplicative = MultiplicativeAttention(5, 3).double()
    W, U, b, v = additive.query.weight, additive.memory.weight, additive.memory.bias, additive.vector.weight[0]
    M = multiplicative.weight.weight  # (5, 3): q^T M h
    for attention, score in ((additive, lambda q, h: v @ torch.tanh(W @ q + U @ h + b)),
                             (multiplicative, lambda q, h: q @ M @ h)):
        memory = {"outputs": outputs, "mask": mask, "keys": attention.keys(outputs)}
        context, weights = attend(attention, query, memory)
        for row in range(2):
            scores = torch.stack([score(query[row], outputs[row, s]) for s in range(4)])
            scores[~mask[row]] = -math.inf
            expected = torch.softmax(scores, 0)
            torch.testing.assert_close(weights[row], expected)
            torch.testing.assert_close(context[row], expected @ outputs[row])
        assert weights[0, 3] == 0


def test_cross_attention_equals_torch_multihead_attention():
    torch.manual_seed(0)
    cross = CrossAttention(8, 2).double()
    reference = torch.nn.MultiheadAttention(8, 2, batch_first=True).double()
    with torch.no_grad():
        reference.in_proj_weight.copy_(torch.cat([cross.query.weight, cross.key_value.weight]))
        reference.in_proj_bias.copy_(torch.cat([cross.query.bias, cross.key_value.bias]))
        reference.out_proj.weight.copy_(cross.output.weight)
        reference.out_proj.bias.copy_(cross.output.bias)
    x, memory = torch.randn(2, 3, 8, dtype=torch.double), torch.randn(2, 5, 8, dtype=torch.double)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    out, weights = cross(x, *cross.project(memory), mask)
    expected, expected_weights = reference(x, memory, memory, key_padding_mask=~mask)
    torch.testing.assert_close(out, expected)
    torch.testing.assert_close(weights.mean(1), expected_weights)


# -------------------------------------------------------------------- models
@pytest.mark.parametrize("backbone, attention", MODELS)
def test_padding_never_changes_an_output_and_gets_zero_attention(backbone, attention):
    model = random_model(backbone, attention)
    src, src_len, tgt_in = padded_batch()
    with torch.no_grad():
        logits, weights = model.teacher_forced(src, src_len, tgt_in)  # (B, T, V), (B, T, S)
        for row, length in enumerate(src_len.tolist()):
            alone, alone_weights = model.teacher_forced(src[row:row + 1, :length], src_len[row:row + 1], tgt_in[row:row + 1])
            torch.testing.assert_close(logits[row], alone[0], rtol=1e-9, atol=1e-9)
            if weights is not None:
                torch.testing.assert_close(weights[row, :, :length], alone_weights[0], rtol=1e-9, atol=1e-9)
                assert (weights[row, :, length:] == 0).all()  # no weight on padding (an empty slice for the longest)
    assert (weights is None) == (attention == "none" and backbone != "transformer")


@pytest.mark.parametrize("backbone, attention", MODELS)
def test_stepping_the_decoder_equals_teacher_forcing(backbone, attention):
    model = random_model(backbone, attention)
    src, src_len, tgt_in = padded_batch()
    with torch.no_grad():
        logits, weights = model.teacher_forced(src, src_len, tgt_in)
        memory = model.encode(src, src_len)
        state = model.start(memory)
        for t in range(tgt_in.shape[1]):
            logits_t, state, weights_t = model.step(tgt_in[:, t], state, memory)
            torch.testing.assert_close(logits_t, logits[:, t], rtol=1e-9, atol=1e-9)
            if weights is not None:
                torch.testing.assert_close(weights_t, weights[:, t], rtol=1e-9, atol=1e-9)


def test_without_attention_the_decoder_sees_only_the_final_state():
    """--attention none: the same summary with any other encoder outputs decodes the same."""
    model = random_model("gru", "none")
    src, src_len, tgt_in = padded_batch()
    with torch.no_grad():
        memory = model.encode(src, src_len)
        scrambled = {**memory, "outputs": torch.randn_like(memory["outputs"])}
        for t in range(tgt_in.shape[1]):
            state = model.start(memory) if t == 0 else state
            logits, state, weights = model.step(tgt_in[:, t], state, memory)
            other_state = model.start(scrambled) if t == 0 else other_state
            other, other_state, _ = model.step(tgt_in[:, t], other_state, scrambled)
            torch.testing.assert_close(other, logits, rtol=0, atol=0)
            assert weights is None
        changed = {**memory, "summary": memory["summary"] + 1.0}
        assert not torch.allclose(model.step(tgt_in[:, 0], model.start(changed), changed)[0],
                                  model.step(tgt_in[:, 0], model.start(memory), memory)[0])


def test_the_loss_ignores_padded_targets():
    config = seq2seq_config("lstm", "luong")
    torch.manual_seed(0)
    model = build_seq2seq(config, VOCAB).double()
    task = SeqToSeqTask(config)
    src, src_len, _ = padded_batch()
    targets = torch.tensor([[BOS, 5, 6, EOS, PAD], [BOS, 7, EOS, PAD, PAD], [BOS, 3, 4, 5, EOS]])
    from seqlab.data.batches import Batch

    batch = Batch(src, targets, lengths=src_len)
    loss, _ = task.loss(model, batch, None)
    wider = Batch(src, torch.cat([targets, torch.full((3, 3), PAD)], dim=1), lengths=src_len)
    torch.testing.assert_close(task.loss(model, wider, None)[0], loss)
    assert task.counted(batch) == task.counted(wider) == 3 + 2 + 4
    logits = model(src, src_len, targets[:, :-1])
    real = targets[:, 1:] != PAD
    expected = -F.log_softmax(logits, -1).gather(2, targets[:, 1:].unsqueeze(2)).squeeze(2)[real].mean()
    torch.testing.assert_close(loss / task.counted(batch), expected)


# ------------------------------------------------------------------ decoding
@torch.no_grad()
def sequence_score(model, src, tokens) -> float:
    """log p(tokens | src) by teacher forcing: the trusted second path."""
    tgt_in = torch.tensor([[BOS, *tokens[:-1]]])
    logits = model(src.unsqueeze(0), torch.tensor([len(src)]), tgt_in)[0]
    return float(F.log_softmax(logits.float(), -1).double().gather(1, torch.tensor(tokens).unsqueeze(1)).sum())


@pytest.mark.parametrize("backbone, attention", MODELS)
def test_beam_size_one_is_greedy_decoding(backbone, attention):
    for seed in range(2):
        model = random_model(backbone, attention, seed=seed)
        src, src_len, _ = padded_batch(seed)
        greedy = greedy_decode(model, src, src_len, max_length=6)
        for row, length in enumerate(src_len.tolist()):
            (beam,) = beam_search(model, src[row, :length], beam_size=1, max_length=6)
            assert beam.tokens == greedy[row].tokens
            assert beam.score == pytest.approx(greedy[row].score, abs=1e-9)
            assert beam.score == pytest.approx(sequence_score(model, src[row, :length], beam.tokens), abs=1e-6)


@pytest.mark.parametrize("backbone, attention", [("gru", "bahdanau"), ("transformer", "bahdanau")])
def test_a_beam_that_holds_every_prefix_finds_the_best_sequence(backbone, attention):
    """With k >= V^n the beam prunes nothing: it must return the best length-normalised sequence of all."""
    vocab, length = 5, 3
    model = random_model(backbone, attention, seed=4, vocab=vocab)
    src = torch.tensor([3, 4, 4, 3])
    candidates = []
    for size in range(1, length + 1):
        for tokens in itertools.product(range(vocab), repeat=size):
            if EOS in tokens[:-1] or (size < length and tokens[-1] != EOS):
                continue  # EOS ends a sequence; without it only full-length sequences are complete
            score = sequence_score(model, src, list(tokens))
            candidates.append((score / size, list(tokens)))
    best_score, best_tokens = max(candidates)
    hypotheses = beam_search(model, src, beam_size=vocab ** length, max_length=length)
    assert hypotheses[0].tokens == best_tokens
    assert hypotheses[0].normalised_score == pytest.approx(best_score, abs=1e-6)
    assert len(hypotheses) == len(candidates)


@pytest.mark.parametrize("backbone, attention", MODELS)
def test_beam_search_scores_at_least_as_well_as_greedy(backbone, attention):
    """Not a theorem (greedy's path can fall out of the beam) but true of these seeded random models."""
    for seed in range(2):
        model = random_model(backbone, attention, seed=seed)
        src, src_len, _ = padded_batch(seed)
        greedy = greedy_decode(model, src, src_len, max_length=6)
        for row, length in enumerate(src_len.tolist()):
            best = beam_search(model, src[row, :length], beam_size=3, max_length=6)[0]
            assert best.normalised_score >= greedy[row].normalised_score - 1e-9


# ---------------------------------------------------------------- end to end
def test_cli_train_predict_eval_align(tmp_path, capsys):
    data = tmp_path / "dates.tsv"
    data.write_text("".join(f"{source}\t{target}\n" for source, target in date_pairs(64, seed=5)), encoding="utf-8")
    run = tmp_path / "run"
    flags = ["--task", "seq2seq", "--data", str(data), "--backbone", "gru", "--hidden-size", "16",
             "--bidirectional", "true", "--batch-size", "8", "--max-steps", "6", "--eval-interval", "3",
             "--threads", "1", "--max-target-length", "14", "--quiet"]
    assert main(["train", "--out", str(run), *flags]) == 0
    capsys.readouterr()
    assert main(["predict", str(run), "3 March 2017", "Mar 3rd, 2017", "--beam-size", "3", "--json"]) == 0
    outputs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(outputs) == 2 and all(isinstance(text, str) and len(text) <= 14 for text in outputs)
    assert main(["eval", str(run), "--data", str(data), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"val_loss", "exact_match", "bleu", "bleu_signature", "split", "examples"} <= set(metrics)
    assert 0 <= metrics["bleu"] <= 100 and metrics["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    assert all(key == key.lower() for key in metrics) and 0 <= metrics["exact_match"] <= 1
    figure = tmp_path / "align.png"
    assert main(["align", str(run), "3 March 2017", "--out", str(figure)]) == 0
    numbers = json.loads(figure.with_suffix(".json").read_text(encoding="utf-8"))
    assert figure.stat().st_size > 0 and numbers["source"] == list("3 March 2017")
    weights = torch.tensor(numbers["weights"])
    assert weights.shape == (len(numbers["output"]), 12)
    torch.testing.assert_close(weights.sum(1), torch.ones(len(weights)), atol=1e-4, rtol=0)
    assert main(["predict", str(run), "x", "--beam-size", "0"]) == 2
    assert "--beam-size must be at least 1" in capsys.readouterr().err


def test_cli_refuses_alignment_without_attention_and_bad_options(tmp_path, capsys):
    data = tmp_path / "dates.tsv"
    data.write_text("".join(f"{source}\t{target}\n" for source, target in date_pairs(20, seed=6)), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), "--task", "seq2seq", "--data", str(data), "--attention", "none",
                 "--hidden-size", "8", "--batch-size", "4", "--max-steps", "1", "--threads", "1", "--quiet"]) == 0
    assert main(["align", str(run), "3 March 2017", "--out", str(tmp_path / "a.png")]) == 2
    assert "no attention" in capsys.readouterr().err
    for flags, message in ((["--attention", "dot"], "task.attention must be one of"),
                           (["--backbone", "transformer", "--attention", "none"], "always attends"),
                           (["--max-target-length", "5"], "more than --max-target-length 5")):
        code = main(["train", "--out", str(tmp_path / "other"), "--task", "seq2seq", "--data", str(data),
                     "--max-steps", "1", *flags])
        error = capsys.readouterr().err
        assert code == 2 and message in error and len(error.strip().splitlines()) == 1


def test_init_from_a_language_model_encodes_with_its_backbone(tmp_path, capsys):
    pairs = date_pairs(64, seed=5)
    text = tmp_path / "text.txt"
    text.write_text("".join(f"{source}\n{target}\n" for source, target in pairs) * 4, encoding="utf-8")
    language_model = tmp_path / "lm"
    assert main(["train", "--data", str(text), "--out", str(language_model), "--backbone", "gru", "--hidden-size", "16",
                 "--embedding-size", "8", "--block-size", "16", "--batch-size", "4", "--max-steps", "2",
                 "--eval-interval", "2", "--threads", "1", "--quiet"]) == 0
    data = tmp_path / "dates.tsv"
    data.write_text("".join(f"{source}\t{target}\n" for source, target in pairs), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--task", "seq2seq", "--data", str(data), "--out", str(run), "--init-from", str(language_model),
                 "--freeze-backbone", "true", "--batch-size", "8", "--max-steps", "2", "--eval-interval", "2",
                 "--threads", "1", "--max-target-length", "14", "--quiet"]) == 0
    from safetensors.torch import load_file

    before, after = load_file(str(language_model / "model.safetensors")), load_file(str(run / "model.safetensors"))
    encoder = {name[len("backbone."):]: value for name, value in before.items() if name.startswith("backbone.")}
    assert encoder and all(torch.equal(after[f"encoder.{name}"], value) for name, value in encoder.items())  # frozen
    shifted = after["embedding.weight"][3:]  # past PAD, BOS, EOS; trained a little, so close, not equal
    assert shifted.shape == before["embedding.weight"].shape
    assert torch.allclose(shifted, before["embedding.weight"], atol=0.05)
    assert json.loads((run / "tokenizer.json").read_text()) == json.loads((language_model / "tokenizer.json").read_text())
