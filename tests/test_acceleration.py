"""Gradient accumulation, mixed precision, compilation and their refusals, on the CPU."""
import math

import pytest
import torch
from safetensors.torch import load_file

from seqlab.backbones.base import final_state_unused
from seqlab.backbones.transformer import FREQUENCY_BASE, Transformer, sinusoidal_encoding
from seqlab.cli import main
from seqlab.data.batches import Batch
from seqlab.train.trainer import Trainer

from helpers import small_config, words_text


def _text(tmp_path):
    path = tmp_path / "text.txt"
    path.write_text(words_text(3000), encoding="utf-8")
    return path


def _weights(directory):
    return load_file(str(directory / "model.safetensors"))


@pytest.mark.parametrize("batching", ["random", "stream"])
def test_accumulating_four_micro_batches_is_one_step_on_the_whole_batch(tmp_path, batching):
    """float64, so that only the order of additions differs: 1e-6 is then a strict bound."""
    runs = {}
    torch.set_default_dtype(torch.float64)
    try:
        for accumulate in (1, 4):
            config = small_config(_text(tmp_path), max_steps=3, batch_size=32, accumulate=accumulate, eval_interval=3)
            config.data.block_size, config.data.batching = 8, batching
            runs[accumulate] = Trainer(config, tmp_path / f"accumulate-{accumulate}", quiet=True).fit()
    finally:
        torch.set_default_dtype(torch.float32)
    assert [record["loss"] for record in runs[4].history if record["kind"] == "train"] == pytest.approx(
        [record["loss"] for record in runs[1].history if record["kind"] == "train"], abs=1e-9)
    whole, accumulated = _weights(tmp_path / "accumulate-1"), _weights(tmp_path / "accumulate-4")
    for key, value in whole.items():
        assert value.dtype == torch.float64
        torch.testing.assert_close(accumulated[key], value, atol=1e-6, rtol=0, msg=key)


@pytest.mark.parametrize("backbone", ["lstm", "transformer"])
def test_bf16_training_ends_within_two_percent_of_float32(tmp_path, backbone):
    losses = {}
    for precision in ("fp32", "bf16"):
        config = small_config(_text(tmp_path), max_steps=40, eval_interval=40, batch_size=8, precision=precision,
                              learning_rate=1e-2)
        config.model.backbone = backbone
        if backbone == "transformer":
            config.model.options = {"context_length": 16, "num_heads": 2}
        summary = Trainer(config, tmp_path / precision, quiet=True).fit()
        losses[precision] = summary.metrics["val_loss"]
        assert all(value.dtype == torch.float32 for value in _weights(tmp_path / precision).values())
    assert losses["fp32"] < 0.8 * math.log(14)  # it learned: well under the uniform guess over the characters
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.02)


def test_positions_past_256_keep_their_place_under_bf16_autocast():
    """bfloat16 holds integers exactly only to 256: positions and angles must stay float32."""
    positions = torch.arange(1000, 1008).unsqueeze(0)  # (1, 8)
    width = 32
    pairs = torch.arange(width // 2, dtype=torch.float64)
    angles = positions.double().unsqueeze(-1) * FREQUENCY_BASE ** -(2 * pairs / width)  # (1, 8, 16)
    expected = torch.stack([angles.sin(), angles.cos()], dim=-1).flatten(-2)
    backbone = Transformer(width, width, num_heads=2, context_length=2048, positional="rotary")
    half = backbone.head_size // 2
    rotary_angles = positions.double().unsqueeze(-1) * FREQUENCY_BASE ** -(torch.arange(half).double() / half)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        encoding = sinusoidal_encoding(positions, width, torch.bfloat16)
        plan = backbone._plan(positions[:, 0], positions, use_cache=False, explicit=False, dtype=torch.bfloat16,
                              filled=0)
    torch.testing.assert_close(encoding.double(), expected, atol=1e-2, rtol=0)  # bf16 rounding of values in [-1, 1]
    cos, sin = plan.rotary
    torch.testing.assert_close(cos.double()[:, 0], rotary_angles.cos(), atol=1e-2, rtol=0)
    torch.testing.assert_close(sin.double()[:, 0], rotary_angles.sin(), atol=1e-2, rtol=0)


def test_the_training_forward_builds_no_cache_and_computes_the_same():
    torch.manual_seed(0)
    backbone = Transformer(8, 8, num_heads=2, context_length=16)
    x = torch.randn(3, 10, 8)
    y, state = backbone(x)
    with final_state_unused():
        y_training, no_state = backbone(x)
    assert state is not None and no_state is None
    torch.testing.assert_close(y_training, y, atol=0, rtol=0)


@pytest.mark.slow
def test_a_compiled_model_trains_like_the_eager_one(tmp_path):
    losses = {}
    for compiled in (False, True):
        config = small_config(_text(tmp_path), max_steps=3, eval_interval=3, compile=compiled)
        config.model.backbone, config.model.options = "transformer", {"context_length": 16, "num_heads": 2}
        summary = Trainer(config, tmp_path / str(compiled), quiet=True).fit()
        losses[compiled] = [record["loss"] for record in summary.history if record["kind"] == "train"]
    assert losses[True] == pytest.approx(losses[False], abs=1e-4)


def test_tokens_count_what_the_model_reads(tmp_path):
    from seqlab.tasks.language_model import LanguageModelTask
    from seqlab.tasks.seq2seq import SeqToSeqTask

    config = small_config(_text(tmp_path))
    batch = Batch(torch.zeros(4, 16, dtype=torch.long), torch.zeros(4, 16, dtype=torch.long))
    assert LanguageModelTask(config).tokens(batch) == 64
    padded = Batch(torch.zeros(2, 5, dtype=torch.long), torch.tensor([[1, 4, 2, 0], [1, 4, 4, 2]]),
                   lengths=torch.tensor([3, 5]))
    config.task.name = "seq2seq"
    assert SeqToSeqTask(config).tokens(padded) == 3 + 5 + 3 + 3  # real sources, then the decoder inputs (no PAD)


@pytest.mark.parametrize("flags, message", [
    (["--precision", "fp16"], "--precision fp16 needs a CUDA GPU"),
    (["--accumulate", "0"], "train.accumulate must be at least 1"),
    (["--accumulate", "5", "--batch-size", "4"], "--accumulate 5 asks for more micro-batches than the 4 rows"),
    (["--device", "cuda"], "asked for CUDA, which this machine does not have"),
    (["--precision", "half"], "train.precision must be one of fp32, bf16, fp16"),
])
def test_bad_acceleration_flags_are_one_line_and_touch_nothing(tmp_path, capsys, flags, message):
    if "cuda" in flags and torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    out = tmp_path / "run"
    code = main(["train", "--data", str(_text(tmp_path)), "--out", str(out), "--max-steps", "1", "--threads", "1",
                 "--quiet", *flags])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and message in error, error
    assert not out.exists()


def test_compile_without_a_compiler_is_refused(tmp_path, capsys, monkeypatch):
    from torch._inductor import config as inductor_config

    monkeypatch.setattr(inductor_config.cpp, "cxx", (None, "no-such-compiler++"))
    out = tmp_path / "run"
    code = main(["train", "--data", str(_text(tmp_path)), "--out", str(out), "--max-steps", "1", "--threads", "1",
                 "--quiet", "--compile", "true", "--device", "cpu"])
    error = capsys.readouterr().err
    assert code == 2 and error.count("\n") == 1 and "needs a C++ compiler" in error and "--compile false" in error
    assert not out.exists()


def test_every_checkpoint_verb_takes_a_device(tmp_path, capsys):
    data = _text(tmp_path)
    Trainer(small_config(data, max_steps=2, eval_interval=2), tmp_path / "run", quiet=True).fit()
    checkpoint = str(tmp_path / "run")
    for verb in (["eval", checkpoint, "--data", str(data)], ["sample", checkpoint, "--max-tokens", "5"],
                 ["diagnose", checkpoint, "--data", str(data), "--length", "8", "--what", "gradients,gates",
                  "--out", str(tmp_path / "diagnostics")]):
        assert main([*verb, "--device", "cpu"]) == 0, verb
        if not torch.cuda.is_available():
            capsys.readouterr()
            assert main([*verb, "--device", "cuda"]) == 2
            error = capsys.readouterr().err
            assert error.count("\n") == 1 and "does not have; use --device cpu" in error
