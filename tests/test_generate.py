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
