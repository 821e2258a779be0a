import pytest
import torch

from seqlab import build_backbone
from seqlab.config import Config
from seqlab.errors import SeqlabError
from seqlab.models import LanguageModel, build_model


def test_one_hot_embedding_equals_a_learned_embedding_fixed_to_the_identity():
    torch.manual_seed(0)
    vocab = 7
    one_hot = LanguageModel(vocab, build_backbone("gru", input_size=vocab, hidden_size=10), embedding="onehot")
    learned = LanguageModel(vocab, build_backbone("gru", input_size=vocab, hidden_size=10), embedding="learned")
    learned.backbone.load_state_dict(one_hot.backbone.state_dict())
    learned.head.load_state_dict(one_hot.head.state_dict())
    with torch.no_grad():
        learned.embedding.weight.copy_(torch.eye(vocab))
    tokens = torch.randint(vocab, (3, 9))
    torch.testing.assert_close(one_hot(tokens)[0], learned(tokens)[0], rtol=0, atol=1e-6)


def test_tied_head_shares_the_embedding_matrix_and_its_gradient():
    model = LanguageModel(11, build_backbone("lstm", input_size=8, hidden_size=8), tie_weights=True)
    assert model.head.weight is model.embedding.weight
    logits, _ = model(torch.randint(11, (2, 5)))
    logits.sum().backward()
    assert model.embedding.weight.grad is not None and sum(1 for _ in model.parameters()) == 6  # embedding (= head weight), 4 LSTM tensors, head bias


def test_step_equals_forward_for_the_whole_model():
    torch.manual_seed(1)
    model = LanguageModel(9, build_backbone("lstm", input_size=6, hidden_size=12, num_layers=2)).eval()
    tokens = torch.randint(9, (2, 7))
    logits, final = model(tokens)
    state = model.init_state(2)
    for position in range(7):
        step_logits, state = model.step(tokens[:, position], state)
        torch.testing.assert_close(step_logits, logits[:, position], rtol=1e-5, atol=1e-6)


def test_build_model_from_config_and_its_errors():
    config = Config()
    config.model.backbone, config.model.hidden_size, config.model.embedding_size = "rnn", 16, 16
    config.model.options = {"nonlinearity": "relu", "init": "identity"}
    model = build_model(config, vocab_size=20)
    assert torch.equal(model.backbone.weight_hh_l0, torch.eye(16))
    config.model.tie_weights, config.model.embedding_size = True, 8
    with pytest.raises(SeqlabError, match="tied weights"):
        build_model(config, vocab_size=20)
    config.model.tie_weights, config.model.options = False, {"colour": "blue"}
    with pytest.raises(SeqlabError, match="no option colour"):
        build_model(config, vocab_size=20)
