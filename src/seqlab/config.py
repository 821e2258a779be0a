"""Typed configuration: dataclasses whose fields are the command line.

A run's configuration is four sections (task, model, data, train). It comes from
defaults, then a preset or JSON file (``--config``), then command-line flags:
every field is a flag named after it (``hidden_size`` -> ``--hidden-size``),
options of the chosen backbone (``--variant peephole``) land in
``model.options`` and options of a synthetic source (``--length 200``) in
``data.options``. Every value is checked for type and range here, so a bad
config fails before anything touches the disk.
"""
from __future__ import annotations

import dataclasses
import json
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import SeqlabError

PRESET_DIRECTORY = Path(__file__).parent / "configs"


@dataclass
class TaskConfig:
    name: str = field(default="lm", metadata={"flag": "task"})  # the problem shape: lm, classify, forecast, seq2seq, music, synthetic
    # starting point: a trained checkpoint's embedding and backbone (pretraining, then fine-tuning)
    init_from: str = ""
    freeze_backbone: bool = False
    # classify: CSV/TSV columns by index (0, -1) or header name; "" text columns: all but the label
    label_column: str = "-1"
    text_columns: str = ""
    header: str = "auto"  # "auto" (guess), "yes" or "no"
    pooling: str = "last"  # "last", "mean", "max" or "attention"
    bidirectional: bool = False
    class_weights: bool = False
    # forecast: predict `horizon` steps from the last `data.block_size` values
    horizon: int = 1
    forecast_mode: str = "direct"  # "direct" (all H at once) or "autoregressive" (one step, fed back)
    target_columns: str = ""  # "" : every numeric column but the time column
    time_column: str = ""
    season: int = 0  # seasonal-naive baseline period; 0: guessed from the data
    # seq2seq: the recurrent decoder's attention; decoding (also for eval and predict)
    attention: str = "bahdanau"  # "bahdanau" (additive), "luong" (multiplicative) or "none"
    beam_size: int = 1  # 1: greedy
    max_target_length: int = 100  # tokens decoded at most (EOS included); longer training targets are refused


@dataclass
class ModelConfig:
    backbone: str = "lstm"
    hidden_size: int = 256
    num_layers: int = 1
    dropout: float = 0.0
    embedding: str = "learned"  # "learned" or "onehot"
    embedding_size: int = 0  # 0: the hidden size
    tie_weights: bool = False
    # conditioned models (music): the condition enters the "state", the "input"s, or "auto" (state where it can)
    conditioning: str = "auto"
    options: dict = field(default_factory=dict)  # the backbone's own options, e.g. {"variant": "peephole"}


@dataclass
class DataConfig:
    path: str = field(default="", metadata={"flag": "data"})
    tokenizer: str = "char"  # "char", "word" or "bpe" (byte-level, trained on this text)
    vocab_size: int = 0  # word and bpe: the vocabulary's size; 0: their default (10,000 words, 1,024 BPE tokens)
    unknown: str = "unk"  # characters unseen in training: "unk" -> <unk>, "error" -> refuse
    val_fraction: float = 0.1  # the last part of the text; 0 disables validation
    block_size: int = 128  # T, positions per training window (and per truncated-BPTT segment)
    batching: str = "random"  # "random" windows, or contiguous "stream"s with the state carried
    bucketing: bool = False  # variable-length examples (classify, seq2seq): batch rows of similar length, less padding
    options: dict = field(default_factory=dict)  # a synthetic source's own options, e.g. {"length": 200}


@dataclass
class TrainConfig:
    batch_size: int = 32  # global: shared out among processes under torchrun
    max_steps: int = 2000  # 0: no step limit (then max_seconds must be set)
    max_seconds: float = 0.0  # 0: no time limit; otherwise the schedule spans this time
    optimizer: str = "adamw"  # "adamw", or "sgd" (plain SGD with ``momentum``, as in Pascanu et al. 2013)
    learning_rate: float = 2e-3
    min_learning_rate: float = 1e-4
    warmup_steps: int = 50
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99
    momentum: float = 0.0  # sgd only (with sgd, weight_decay is an L2 penalty added to the gradient)
    clip_norm: float = 1.0  # 0: no clipping by norm
    clip_value: float = 0.0  # 0: no clipping by value
    pascanu_weight: float = 0.0  # weight of the Pascanu et al. 2013 vanishing-gradient regulariser; 0: off
    eval_interval: int = 250  # steps between validations (and checkpoints)
    eval_max_batches: int = 0  # 0: the whole validation split
    log_interval: int = 10
    log_format: str = "jsonl"  # "jsonl" or "csv"
    seed: int = 1337
    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:1", ...
    threads: int = 0  # torch threads per process; 0: the cores shared among processes
    max_nonfinite_steps: int = field(default=10, metadata={
        "help": "steps in a row with a non-finite loss or gradient that are skipped before training stops "
                "(0: stop at the first)"})


@dataclass
class Config:
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, source: str = "config") -> "Config":
        config = cls()
        config.update(values, source=source)
        return config

    def update(self, values: dict[str, Any], *, source: str = "config") -> None:
        """Set fields from a nested dict {"model": {...}, ...}, checking names and types."""
        if not isinstance(values, dict):
            raise SeqlabError(f"{source} must be a JSON object with sections {', '.join(SECTIONS)}")
        for section_name, section_values in values.items():
            if section_name not in SECTIONS:
                raise SeqlabError(f"{source}: unknown section {section_name!r}; sections are {', '.join(SECTIONS)}")
            if not isinstance(section_values, dict):
                raise SeqlabError(f"{source}: section {section_name!r} must be an object")
            section = getattr(self, section_name)
            for name, value in section_values.items():
                set_field(section, section_name, name, value, source=source)

    def validate(self) -> None:
        """Range and choice checks that need more than a type."""
        from .tasks import task_class

        task_class(self.task.name)
        model, data, train = self.model, self.data, self.train
        _choice("model.embedding", model.embedding, ("learned", "onehot"))
        _choice("model.conditioning", model.conditioning, ("auto", "state", "input"))
        _choice("data.tokenizer", data.tokenizer, ("char", "word", "bpe"))
        _choice("data.unknown", data.unknown, ("unk", "error"))
        _choice("data.batching", data.batching, ("random", "stream"))
        _choice("train.log_format", train.log_format, ("jsonl", "csv"))
        _choice("train.optimizer", train.optimizer, ("adamw", "sgd"))
        for name, value in (("model.hidden_size", model.hidden_size), ("model.num_layers", model.num_layers),
                            ("data.block_size", data.block_size), ("train.batch_size", train.batch_size),
                            ("train.eval_interval", train.eval_interval), ("train.log_interval", train.log_interval)):
            if value < 1:
                raise SeqlabError(f"{name} must be at least 1, got {value}")
        for name, value in (("model.embedding_size", model.embedding_size), ("data.vocab_size", data.vocab_size),
                            ("train.max_steps", train.max_steps),
                            ("train.warmup_steps", train.warmup_steps), ("train.eval_max_batches", train.eval_max_batches),
                            ("train.threads", train.threads), ("train.max_seconds", train.max_seconds),
                            ("train.max_nonfinite_steps", train.max_nonfinite_steps),
                            ("train.clip_norm", train.clip_norm), ("train.clip_value", train.clip_value),
                            ("train.pascanu_weight", train.pascanu_weight),
                            ("train.weight_decay", train.weight_decay), ("train.min_learning_rate", train.min_learning_rate)):
            if value < 0 or (isinstance(value, float) and not math.isfinite(value)):
                raise SeqlabError(f"{name} must be zero or more, got {value}")
        if not 0.0 <= model.dropout < 1.0:
            raise SeqlabError(f"model.dropout must be in [0, 1), got {model.dropout}")
        if not 0.0 <= data.val_fraction < 1.0:
            raise SeqlabError(f"data.val_fraction must be in [0, 1), got {data.val_fraction}")
        if not (train.learning_rate > 0 and math.isfinite(train.learning_rate)):
            raise SeqlabError(f"train.learning_rate must be positive, got {train.learning_rate}")
        if not (0 <= train.beta1 < 1 and 0 <= train.beta2 < 1):
            raise SeqlabError("train.beta1 and train.beta2 must be in [0, 1)")
        if not 0 <= train.momentum < 1:
            raise SeqlabError(f"train.momentum must be in [0, 1), got {train.momentum}")
        if train.max_steps == 0 and train.max_seconds == 0:
            raise SeqlabError("training needs a budget: give --max-steps or --max-seconds (or both)")
        if model.tie_weights and model.embedding == "onehot":
            raise SeqlabError("--tie-weights needs a learned embedding, not a one-hot one")


SECTIONS = {"task": TaskConfig, "model": ModelConfig, "data": DataConfig, "train": TrainConfig}


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SeqlabError(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def _field_types(section_class: type) -> dict[str, Any]:
    return typing.get_type_hints(section_class)


def set_field(section: Any, section_name: str, name: str, value: Any, *, source: str) -> None:
    """Set one field after checking that it exists and that the value has its type."""
    types = _field_types(type(section))
    if name not in types:
        raise SeqlabError(
            f"{source}: unknown field {section_name}.{name}; {section_name} has {', '.join(sorted(types))}")
    expected = types[name]
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected is int and isinstance(value, float) and value.is_integer():
        value = int(value)
    valid = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if not valid:
        raise SeqlabError(
            f"{source}: {section_name}.{name} must be {expected.__name__}, got {type(value).__name__} {value!r}")
    setattr(section, name, value)


def flag_names() -> dict[str, tuple[str, str]]:
    """Command-line flag (without --) -> (section, field), for every config field."""
    flags: dict[str, tuple[str, str]] = {}
    for section_name, section_class in SECTIONS.items():
        for item in dataclasses.fields(section_class):
            if item.name == "options":
                continue
            flag = item.metadata.get("flag", item.name.replace("_", "-"))
            if flag in flags:
                raise AssertionError(f"config flag --{flag} is ambiguous")
            flags[flag] = (section_name, item.name)
    return flags


def parse_flag_value(section_name: str, name: str, text: str) -> Any:
    """Turn a command-line string into the field's type."""
    expected = _field_types(SECTIONS[section_name])[name]
    flag = f"--{name.replace('_', '-')}"
    if expected is bool:
        lowered = text.lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
        raise SeqlabError(f"{flag} takes true or false, got {text!r}")
    if expected in (int, float):
        try:
            return expected(text)
        except ValueError:
            raise SeqlabError(f"{flag} takes a number ({expected.__name__}), got {text!r}") from None
    return text


def parse_option_value(text: str) -> Any:
    """A backbone option from the command line: a JSON literal (1, 0.5, true, null) or else a string."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def preset_names() -> list[str]:
    return sorted(path.stem for path in PRESET_DIRECTORY.glob("*.json"))


def load_config_file(name_or_path: str) -> dict[str, Any]:
    """Read a preset by name (see ``configs/``) or a JSON file by path."""
    path = Path(name_or_path)
    if not path.exists():
        preset = PRESET_DIRECTORY / f"{name_or_path}.json"
        if not preset.exists():
            raise SeqlabError(
                f"no config file or preset named {name_or_path!r}; presets are {', '.join(preset_names())}")
        path = preset
    if path.is_dir():
        raise SeqlabError(f"--config {name_or_path} is a directory, not a JSON file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SeqlabError(f"{path} is not valid JSON ({error}); fix the file or pick a preset") from None
