import torch
import pytest

from seqlab import build_backbone
from seqlab.data.tokenizers import CharTokenizer
from seqlab.generate import filter_logits, generate
from seqlab.models import LanguageModel


def reference_filter(logits, top_k, top_p):
    """Keep-set by brute force: the k best, then the shortest prefix of the sorted distribution reaching p."""
    probabilities = torch.softmax(logits, -1).tolist()
    order = sorted(range(len(probabilities)), key=lambda index: -probabilities[index])
    keep = set(order[:top_k] if top_k else order)
    if top_p < 1:
        kept_probabilities = torch.softmax(torch.tensor([logits[index] for index in order if index in keep]), -1)
        total, chosen = 0.0, set()
        for index, probability in zip([index for index in order if index in keep], kept_probabilities.tolist()):
            if total >= top_p:
                break
            chosen.add(index)
            total += probability
        keep = chosen
    return keep


@pytest.mark.parametrize("top_k, top_p", [(0, 1.0), (3, 1.0), (0, 0.5), (4, 0.7), (1, 0.99), (0, 0.999)])
def test_filter_keeps_exactly_the_reference_set(top_k, top_p):
    generator = torch.Generator().manual_seed(top_k * 100 + int(top_p * 100))
    for _ in range(20):
        logits = torch.randn(10, generator=generator) * 3
        kept = filter_logits(logits.unsqueeze(0), top_k=top_k, top_p=top_p)[0]
        assert {index for index in range(10) if kept[index] > float("-inf")} == reference_filter(logits, top_k, top_p)


class CountingLSTM(LanguageModel):
    """Counts forward and step calls, to show the prompt runs once and each new token costs one step."""

    forwards = 0
    steps = 0

    def forward(self, tokens, state=None, lengths=None):
        CountingLSTM.forwards += 1
        return super().forward(tokens, state, lengths)

    def step(self, token, state):
        CountingLSTM.steps += 1
        return super().step(token, state)


def make_model(text="abcdefgh \n"):
    torch.manual_seed(0)
    tokenizer = CharTokenizer.fit(text)
    model = CountingLSTM(tokenizer.vocab_size, build_backbone("lstm", input_size=8, hidden_size=16))
    return model, tokenizer


def test_generation_streams_through_step_and_matches_recomputing_the_prefix():
    model, tokenizer = make_model()
    CountingLSTM.forwards = CountingLSTM.steps = 0
    text = "".join(generate(model, tokenizer, "abc", max_tokens=20, temperature=0))
    assert len(text) == 20 and CountingLSTM.forwards == 1 and CountingLSTM.steps == 19
    # greedy decoding by recomputing the whole prefix with forward each time gives the same text
    ids = tokenizer.encode("abc")
    with torch.no_grad():
        for _ in range(20):
            ids = torch.cat([ids, model(ids.unsqueeze(0))[0][0, -1].argmax().view(1)])
    assert tokenizer.decode(ids[3:]) == text


def test_stop_string_ends_generation_and_is_not_emitted():
    model, tokenizer = make_model()
    full = "".join(generate(model, tokenizer, "ab", max_tokens=200, seed=3))
    stop = full[50:52]
    stopped = "".join(generate(model, tokenizer, "ab", max_tokens=200, seed=3, stop=stop))
    assert stopped == full[: full.index(stop)]


def test_same_seed_same_text_and_temperature_zero_is_greedy():
    model, tokenizer = make_model()
    first = "".join(generate(model, tokenizer, "a", max_tokens=50, seed=7, top_k=4))
    assert first == "".join(generate(model, tokenizer, "a", max_tokens=50, seed=7, top_k=4))
    assert "".join(generate(model, tokenizer, "a", max_tokens=30, temperature=0, seed=1)) == \
        "".join(generate(model, tokenizer, "a", max_tokens=30, temperature=0, seed=2))


def test_a_prompt_longer_than_learned_positions_is_fed_by_steps_and_matches_recomputation():
    torch.manual_seed(0)
    tokenizer = CharTokenizer.fit("abcdefgh \n")
    backbone = build_backbone("transformer", input_size=16, hidden_size=16, context_length=8, positional="learned")
    model = LanguageModel(tokenizer.vocab_size, backbone).eval()
    prompt = "abcdefghabcd"  # 12 characters, past the 8 learned positions
    text = "".join(generate(model, tokenizer, prompt, max_tokens=6, temperature=0))
    ids = tokenizer.encode(prompt)
    with torch.no_grad():
        for _ in range(6):  # nanoGPT's way: crop the context to the last 8 positions every time
            ids = torch.cat([ids, model(ids[-8:].unsqueeze(0))[0][0, -1].argmax().view(1)])
    assert tokenizer.decode(ids[len(prompt):]) == text


@pytest.mark.parametrize("backbone", ["lstm", "transformer"])
def test_a_batch_of_samples_equals_lone_runs_with_seeds_s_plus_i_each_with_its_own_stop(backbone):
    from seqlab.generate import generate_batch

    torch.manual_seed(0)
    tokenizer = CharTokenizer.fit("abcdefgh \n")
    model = LanguageModel(tokenizer.vocab_size, build_backbone(backbone, input_size=16, hidden_size=16)).eval()
    alone = ["".join(generate(model, tokenizer, "ab", max_tokens=40, seed=5 + index, temperature=1.5, stop="a"))
             for index in range(4)]
    assert len({len(text) for text in alone}) > 1  # the stops fall at different places
    texts = [""] * 4
    steps = list(generate_batch(model, tokenizer, "ab", num_samples=4, max_tokens=40, seed=5, temperature=1.5,
                                stop="a"))
    for step in steps:
        texts = [text + piece for text, piece in zip(texts, step.texts)]
    assert texts == alone
    assert steps[-1].finished == [True] * 4


class ScriptedModel(torch.nn.Module):
    """A language model that predicts a fixed script of token ids, one after another, whatever it reads."""

    def __init__(self, script, vocab_size):
        super().__init__()
        self.script = script
        self.vocab_size = vocab_size
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # so the model has a device

    def init_state(self, batch_size):
        return torch.zeros(batch_size, dtype=torch.long)

    def _logits(self, positions):
        ids = torch.tensor([self.script[min(int(position), len(self.script) - 1)] for position in positions])
        return torch.nn.functional.one_hot(ids, self.vocab_size).float() * 10  # (B, V)

    def forward(self, tokens, state=None, lengths=None):
        state = self.init_state(tokens.shape[0]) if state is None else state
        logits = self._logits(state).unsqueeze(1).expand(-1, tokens.shape[1], -1)  # (B, T, V): only the last counts
        return logits, state

    def step(self, token, state):
        state = state + 1
        return self._logits(state), state


def test_byte_level_bpe_decodes_characters_split_across_tokens_whole_and_catches_stops_across_tokens():
    from seqlab.data.tokenizers import BPETokenizer

    text = "héllo wörld ☃ snowman 日本語 日本 " * 20
    tokenizer = BPETokenizer.fit(text, vocab_size=290)
    target = "x日本語 ☃ wörld 日本 x"
    script = tokenizer.encode(target).tolist()
    # the test means something: some character's bytes are split across tokens, so token-by-token decoding breaks it
    assert any("\ufffd" in tokenizer.decode([token]) for token in script)
    model = ScriptedModel(script, tokenizer.vocab_size)
    pieces = list(generate(model, tokenizer, "a", max_tokens=len(script), temperature=0))
    assert "".join(pieces) == target and not any("\ufffd" in piece for piece in pieces)
    # a stop string whose characters straddle token boundaries is caught; the text before it is exact
    stop = "語 ☃"
    assert "".join(generate(model, tokenizer, "a", max_tokens=len(script), temperature=0, stop=stop)) == "x日本"
    # bytes that never complete a character come out as U+FFFD at the end, as UTF-8's own decoder says
    cut = next(index for index in range(1, len(script)) if "\ufffd" in tokenizer.decode(script[:index]))
    truncated = "".join(generate(model, tokenizer, "a", max_tokens=cut, temperature=0))
    assert truncated == tokenizer.decode(script[:cut])


def test_byte_level_alphabet_is_the_libraries_and_token_bytes_decode_as_the_library_does():
    from tokenizers import pre_tokenizers

    from seqlab.data.tokenizers import BPETokenizer, byte_level_alphabet

    alphabet = byte_level_alphabet()
    assert set(alphabet) == set(pre_tokenizers.ByteLevel.alphabet()) and sorted(alphabet.values()) == list(range(256))
    tokenizer = BPETokenizer.fit("héllo wörld ☃ 日本語\n\t " * 10, vocab_size=280)
    for token in range(tokenizer.vocab_size):
        assert tokenizer.token_bytes(token).decode("utf-8", errors="replace") == tokenizer.decode([token])
    ids = tokenizer.encode("a ☃\n日本").tolist()
    assert b"".join(tokenizer.token_bytes(token) for token in ids) == "a ☃\n日本".encode()


def test_sample_num_samples_prints_what_lone_runs_print_joined_by_a_blank_line(tmp_path, capsys):
    from seqlab.cli import main

    from helpers import words_text

    data = tmp_path / "text.txt"
    data.write_text(words_text(2000), encoding="utf-8")
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--config", "tiny", "--max-steps", "3",
                 "--batch-size", "4", "--block-size", "16", "--hidden-size", "16", "--threads", "1", "--quiet"]) == 0
    flags = ["--prompt", "the ", "--max-tokens", "40", "--temperature", "1.2", "--stop", "a"]
    capsys.readouterr()
    alone = []
    for index in range(4):
        assert main(["sample", str(run), *flags, "--seed", str(11 + index)]) == 0
        alone.append(capsys.readouterr().out.rstrip("\n"))
    assert main(["sample", str(run), *flags, "--seed", "11", "--num-samples", "4"]) == 0
    assert capsys.readouterr().out == "\n\n".join(alone) + "\n"
    assert len(set(alone)) > 1
