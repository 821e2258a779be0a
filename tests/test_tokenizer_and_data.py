import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from seqlab.data.batches import RandomWindows, StreamWindows, evaluation_streams
from seqlab.data.text import split_text
from seqlab.data.tokenizers import CharTokenizer, tokenizer_from_dict
from seqlab.errors import SeqlabError


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1, max_size=200))
def test_char_tokenizer_round_trips_any_text(text):
    tokenizer = CharTokenizer.fit(text)
    ids = tokenizer.encode(text)
    assert ids.dtype == torch.long and len(ids) == len(text)
    assert tokenizer.decode(ids) == text
    again = tokenizer_from_dict(tokenizer.to_dict())
    assert torch.equal(again.encode(text), ids)


def test_char_ids_follow_code_point_order_after_unk():
    tokenizer = CharTokenizer.fit("cab")
    assert tokenizer.vocab_size == 4
    assert tokenizer.encode("abc").tolist() == [1, 2, 3]


def test_unseen_characters_become_unk_or_are_refused():
    unk = CharTokenizer.fit("abc", unknown="unk")
    assert unk.encode("axb").tolist() == [1, 0, 2]
    assert unk.decode([1, 0, 2]) == "a\ufffdb"
    strict = CharTokenizer.fit("abc", unknown="error")
    assert strict.encode("cab").tolist() == [2, 0, 1]
    with pytest.raises(SeqlabError, match="never saw"):
        strict.encode("abz")


def test_split_is_first_part_train_last_part_validation():
    train, val = split_text("0123456789", 0.1)
    assert (train, val) == ("012345678", "9")
    assert split_text("abc", 0.0) == ("abc", "")


def test_random_windows_targets_are_inputs_shifted_and_state_restores():
    tokens = torch.arange(100)
    batches = RandomWindows(tokens, block_size=8, batch_size=5, seed=3)
    batch = batches.next_batch()
    assert batch.inputs.shape == (5, 8) and batch.reset
    assert torch.equal(batch.targets, batch.inputs + 1)  # consecutive tokens of the arange
    saved = batches.state_dict()
    following = batches.next_batch()
    batches.load_state_dict(saved)
    assert torch.equal(batches.next_batch().inputs, following.inputs)


def test_stream_windows_are_contiguous_per_row_and_wrap_with_a_reset():
    tokens = torch.arange(2 * 3 * 4 + 1)  # 2 streams, 3 windows of 4 each
    batches = StreamWindows(tokens, block_size=4, batch_size=2)
    first, second, third, wrapped = (batches.next_batch() for _ in range(4))
    assert first.reset and not second.reset and not third.reset and wrapped.reset
    row0 = torch.cat([first.inputs[0], second.inputs[0], third.inputs[0]])
    row1 = torch.cat([first.inputs[1], second.inputs[1], third.inputs[1]])
    assert torch.equal(row0, torch.arange(12)) and torch.equal(row1, torch.arange(12, 24))
    assert torch.equal(second.targets, second.inputs + 1)
    assert torch.equal(wrapped.inputs, first.inputs)


def test_stream_windows_refuse_text_too_short_for_the_batch():
    with pytest.raises(SeqlabError, match="fewer than one window"):
        StreamWindows(torch.arange(20), block_size=8, batch_size=4)


def test_evaluation_streams_cover_the_split_in_order():
    tokens = torch.arange(103)
    inputs, targets = evaluation_streams(tokens, block_size=10, batch_size=4)
    assert inputs.shape == (4, 25)
    assert torch.equal(inputs.flatten(), torch.arange(100)) and torch.equal(targets, inputs + 1)
    short_inputs, _ = evaluation_streams(torch.arange(7), block_size=10, batch_size=4)
    assert short_inputs.shape == (1, 6)


from seqlab.data.tokenizers import BPETokenizer, WordTokenizer  # noqa: E402

BPE_CORPUS = "the quick brown fox jumps over the lazy dog.\nThe dog sleeps; the fox runs!\n" * 20


@pytest.fixture(scope="module")
def bpe():
    return BPETokenizer.fit(BPE_CORPUS, vocab_size=300)


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=120))
def test_bpe_round_trips_any_text_even_unseen_characters(bpe, text):
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    assert all(0 <= index < bpe.vocab_size for index in ids.tolist())


def test_bpe_merges_frequent_words_and_survives_saving(bpe):
    assert 256 < bpe.vocab_size <= 300  # bytes plus merges, up to the asked size (this corpus runs out first)
    assert len(bpe.encode("the fox")) < len("the fox")  # merges shorten frequent text
    again = tokenizer_from_dict(bpe.to_dict())
    assert torch.equal(again.encode(BPE_CORPUS), bpe.encode(BPE_CORPUS))


def test_word_tokenizer_round_trips_seen_text_and_marks_unseen_words():
    text = "Hello, world!\n  Hello again."
    words = WordTokenizer.fit(text)
    assert words.decode(words.encode(text)) == text
    ids = words.encode("Hello there")
    assert ids.tolist()[-1] == 0 and words.decode(ids) == "Hello \ufffd"
    small = WordTokenizer.fit("a a a b b c", vocab_size=3)  # <unk>, "a", " " survive
    assert small.decode(small.encode("a b")) == "a \ufffd"
    with pytest.raises(SeqlabError, match="1 word\\(s\\) outside the vocabulary \\('Goodbye'\\): unseen in training"):
        WordTokenizer.fit(text, unknown="error").encode("Goodbye")
    rare = WordTokenizer.fit("a a b", unknown="error", min_count=2)  # seen once: outside, and the message says why
    with pytest.raises(SeqlabError, match="\\('b'\\): unseen in training, or seen fewer than --min-count times"):
        rare.encode("a b")
