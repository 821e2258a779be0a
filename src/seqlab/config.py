"""Typed configuration: dataclasses whose fields are the command line.

A run's configuration is four sections (task, model, data, train). It comes from
defaults (the task's own over the general ones: ``Config.for_task``), then a
preset or JSON file (``--config``), then command-line flags:
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

from .data.text import check_encoding
from .errors import SeqlabError, did_you_mean
from .registry import backbone_names, task_names

PRESET_DIRECTORY = Path(__file__).parent / "configs"


@dataclass
class TaskConfig:
    name: str = field(default="lm", metadata={
        "flag": "task", "help": "the problem shape (its own options: seqlab train --task NAME --help)",
        "choices": lambda: _registered("task")})
    init_from: str = field(default="", metadata={
        "help": "start from a trained checkpoint: its tokenizer, embedding and backbone (pretrain, then fine-tune)"})
    freeze_backbone: bool = field(default=False, metadata={
        "help": "keep the backbone's weights fixed (with --init-from: a pretrained one; without: a random one)"})
    word_vectors: str = field(default="", metadata={
        "help": "start the embedding from pretrained word vectors (a GloVe, word2vec or fastText text file) and "
                "take their width", "tasks": ("classify",)})
    vector_words: int = field(default=20_000, metadata={
        "help": "with --word-vectors, the file's N most frequent words join the vocabulary, so words unseen in "
                "training are read", "minimum": 0, "tasks": ("classify",)})
    label_column: str = field(default="auto", metadata={
        "help": "the CSV/TSV column of the label, by index (0, -1) or header name; auto: the last, or the one column of "
                "classes where the last holds text", "tasks": ("classify",)})
    text_columns: str = field(default="", metadata={
        "help": "the text's columns, comma-separated indices or names; empty: all but the label", "tasks": ("classify",)})
    header: str = field(default="auto", metadata={
        "help": "does the file's first row name the columns: auto (guess), yes or no", "choices": ("auto", "yes", "no"),
        "tasks": ("classify", "forecast", "seq2seq")})
    pooling: str = field(default="last", metadata={
        "help": "how the positions' outputs become one vector", "choices": ("last", "mean", "max", "attention"),
        "tasks": ("classify",)})
    bidirectional: bool = field(default=False, metadata={
        "help": "a second encoder reads right to left", "tasks": ("classify", "seq2seq")})
    class_weights: bool = field(default=False, metadata={
        "help": "weigh each class's loss by its inverse frequency (rare classes up)", "tasks": ("classify",)})
    bag_of_tokens: bool = field(default=False, metadata={
        "help": "add a linear model of the bag of tokens to the logits (a wide path beside the encoder)",
        "tasks": ("classify",)})
    ngrams: int = field(default=1, metadata={
        "help": "the bag-of-tokens path also reads every run of 2..N tokens (hashed): 1: single tokens only",
        "minimum": 1, "tasks": ("classify",)})
    subwords: int = field(default=0, metadata={
        "help": "the bag-of-tokens path also reads each word's character n-grams of 3..N characters (hashed), so "
                "a word unseen in training counts by its pieces: 0: none", "minimum": 0, "tasks": ("classify",)})
    word_dropout: float = field(default=0.0, metadata={
        "help": "in training, replace each token by the unknown token with this probability", "minimum": 0,
        "below": 1, "tasks": ("classify",)})
    words_only: bool = field(default=False, metadata={
        "help": "with --tokenizer word, white space is not a token (recorded in the tokenizer: an --init-from "
                "checkpoint must read text the same way)", "tasks": ("classify", "lm")})
    label_smoothing: float = field(default=0.0, metadata={
        "help": "train towards (1 - e) on the label plus e spread over every class", "minimum": 0, "below": 1,
        "tasks": ("classify",)})
    members: int = field(default=1, metadata={
        "help": "train this many networks side by side (different initialisations) and predict with their mean "
                "probability", "minimum": 1, "tasks": ("classify",)})
    ensemble: bool = field(default=False, metadata={
        "help": "predict with the mean of the network's and the bag-of-words baseline's class probabilities",
        "tasks": ("classify",)})
    horizon: int = field(default=1, metadata={
        "help": "steps predicted from the last --block-size values", "minimum": 1, "tasks": ("forecast",)})
    forecast_mode: str = field(default="auto", metadata={
        "help": "direct: all steps at once; autoregressive: one at a time, fed back; auto: the anchor unless these (or "
                "their mean with it) clearly beat it on validation",
        "choices": ("auto", "direct", "autoregressive"), "tasks": ("forecast",)})
    target_columns: str = field(default="", metadata={
        "help": "the columns to forecast, comma-separated; empty: every numeric column but the time column",
        "tasks": ("forecast",)})
    time_column: str = field(default="", metadata={
        "help": "the date or time column; empty: recognised by itself; none: no column is time, the rows are in time "
                "order as they stand", "tasks": ("forecast",)})
    season: int = field(default=0, metadata={
        "help": "the seasonal-naive baseline's period; 0: guessed from the data", "minimum": 0, "tasks": ("forecast",)})
    missing: str = field(default="interpolate", metadata={
        "help": "missing values: filled by linear interpolation (and counted), or refused with error",
        "choices": ("interpolate", "error"), "tasks": ("forecast",)})
    validation_rows: int = field(default=0, metadata={
        "help": "rows before the held-out part that choose the method and best/ (not trained on); 0: max(2 horizons, "
                "a tenth)", "minimum": 0,
        "tasks": ("forecast",)})
    anchor: str = field(default="auto", metadata={
        "help": "the classical forecast the network corrects (untrained, it is that forecast); auto: the lowest MASE "
                "on the later half of the rows before the held-out part",
        "choices": ("auto", "naive", "seasonal_naive", "ets"), "tasks": ("forecast",)})
    calendar: bool = field(default=True, metadata={
        "help": "give the network each row's position in the season (a sine and a cosine)", "tasks": ("forecast",)})
    attention: str = field(default="bahdanau", metadata={
        "help": "the recurrent decoder's attention: bahdanau (additive), luong (multiplicative) or none",
        "choices": ("bahdanau", "luong", "none"), "tasks": ("seq2seq",)})
    beam_size: int = field(default=1, metadata={
        "help": "decoding beam for validation, eval and predict; 1: greedy", "minimum": 1, "tasks": ("seq2seq",)})
    max_target_length: int = field(default=100, metadata={
        "help": "tokens decoded at most (end token included); longer training targets are refused", "minimum": 1,
        "tasks": ("seq2seq",)})
    bleu_tokenize: str = field(default="13a", metadata={
        "help": "sacreBLEU's tokenizer for BLEU on the decoded text: 13a (words, as WMT), intl, char, zh or none",
        "choices": ("13a", "intl", "char", "zh", "none"), "tasks": ("seq2seq",)})


@dataclass
class ModelConfig:
    backbone: str = field(default="lstm", metadata={
        "help": "the sequence model (its own options: seqlab train --backbone NAME --help)",
        "choices": lambda: _registered("backbone")})
    hidden_size: int = field(default=256, metadata={"help": "H, the width of the state and outputs", "minimum": 1})
    num_layers: int = field(default=1, metadata={"help": "stacked layers (Transformer: blocks)", "minimum": 1})
    dropout: float = field(default=0.0, metadata={"help": "dropout between layers", "minimum": 0, "below": 1})
    embedding: str = field(default="learned", metadata={
        "help": "how tokens enter: a learned embedding or a fixed one-hot vector", "choices": ("learned", "onehot")})
    embedding_size: int = field(default=0, metadata={
        "help": "the learned embedding's width; 0: the hidden size", "minimum": 0})
    tie_weights: bool = field(default=False, metadata={
        "help": "share the embedding with the output layer (needs --embedding-size equal to --hidden-size, or 0)"})
    conditioning: str = field(default="auto", metadata={
        "help": "where a condition (music: key, meter) enters: the initial state, every input, or auto (state where "
                "the backbone has one)", "choices": ("auto", "state", "input"), "tasks": ("music",)})
    options: dict = field(default_factory=dict, metadata={
        "help": "the backbone's own options, e.g. {\"variant\": \"peephole\"} (flags: --variant peephole)"})


ENCODING_TASKS = ("lm", "classify", "forecast", "seq2seq", "music")  # the tasks that read files as text: --encoding


@dataclass
class DataConfig:
    path: str = field(default="", metadata={
        "flag": "data", "help": "the data: a text, CSV/TSV or ABC file, a folder, a corpus made by seqlab prepare (lm), "
                "or builtin:NAME"})
    tokenizer: str = field(default="char", metadata={
        "help": "char, word, or bpe (byte-level, trained on this text)", "choices": ("char", "word", "bpe")})
    vocab_size: int = field(default=0, metadata={
        "help": "word and bpe: the vocabulary's size; 0: their default (10,000 words, 1,024 BPE tokens)", "minimum": 0})
    unknown: str = field(default="unk", metadata={
        "help": "tokens unseen in training: unk (become <unk>) or error (refused)", "choices": ("unk", "error")})
    min_count: int = field(default=1, metadata={
        "help": "tokens seen fewer times in the training part become <unk> (bpe: the fewest occurrences of a merge)",
        "minimum": 1})
    lowercase: bool = field(default=False, metadata={"help": "case-fold the text before tokenizing"})
    encoding: str = field(default="utf-8", metadata={
        "help": "the data file's text encoding: utf-8, or e.g. cp1252 (Excel on Windows), latin-1, shift_jis",
        "tasks": ENCODING_TASKS})
    val_fraction: float = field(default=0.1, metadata={
        "help": "the share held out for validation (the last part of a text, whole documents of a folder); "
                "0: no validation", "minimum": 0, "below": 1})
    block_size: int = field(default=128, metadata={
        "help": "T, positions per training window (and per truncated-BPTT segment); 0 (forecast's default): "
                "chosen from the series (3 seasons or 2 horizons, 12 to 128 rows)", "minimum": 0})
    batching: str = field(default="random", metadata={
        "help": "random windows, or contiguous streams with the state carried (truncated BPTT)",
        "choices": ("random", "stream")})
    bucketing: bool = field(default=False, metadata={
        "help": "variable-length examples (classify, seq2seq): batch rows of similar length, less padding"})
    options: dict = field(default_factory=dict, metadata={
        "help": "a synthetic source's own options, e.g. {\"length\": 200} (flags: --length 200)"})


@dataclass
class TrainConfig:
    batch_size: int = field(default=32, metadata={
        "help": "rows per step, global: shared out among processes under torchrun", "minimum": 1})
    max_steps: int = field(default=2000, metadata={
        "help": "the step budget; 0: none (then --max-seconds must be set)", "minimum": 0})
    max_seconds: float = field(default=0.0, metadata={
        "help": "the training-time budget in seconds (validation not counted); 0: none", "minimum": 0})
    optimizer: str = field(default="adamw", metadata={
        "help": "adamw, or sgd (plain SGD with --momentum, as Pascanu et al. 2013)", "choices": ("adamw", "sgd")})
    learning_rate: float = field(default=2e-3, metadata={"help": "the peak learning rate, after warmup"})
    min_learning_rate: float = field(default=1e-4, metadata={
        "help": "where the cosine schedule ends", "minimum": 0})
    warmup_steps: int = field(default=50, metadata={"help": "steps of linear warmup", "minimum": 0})
    weight_decay: float = field(default=0.01, metadata={
        "help": "AdamW's decoupled weight decay (sgd: an L2 penalty), on matrices only", "minimum": 0})
    beta1: float = field(default=0.9, metadata={"help": "AdamW's first-moment decay", "minimum": 0, "below": 1})
    beta2: float = field(default=0.99, metadata={"help": "AdamW's second-moment decay", "minimum": 0, "below": 1})
    momentum: float = field(default=0.0, metadata={"help": "sgd's momentum", "minimum": 0, "below": 1})
    clip_norm: float = field(default=1.0, metadata={
        "help": "clip the gradient's global norm to this; 0: no clipping by norm", "minimum": 0})
    clip_value: float = field(default=0.0, metadata={
        "help": "clip each gradient entry to [-v, v]; 0: no clipping by value", "minimum": 0})
    pascanu_weight: float = field(default=0.0, metadata={
        "help": "weight of Pascanu et al.'s vanishing-gradient regulariser (rnn, lstm, gru); 0: off", "minimum": 0})
    eval_interval: int = field(default=250, metadata={
        "help": "steps between validations (and checkpoints)", "minimum": 1})
    eval_max_batches: int = field(default=0, metadata={
        "help": "validate on at most this many batches (the first part of the split); 0: the whole split",
        "minimum": 0})
    patience: int = field(default=0, metadata={
        "help": "early stopping: stop after this many validations in a row (after the warmup) without a new best "
                "selection metric; 0: never", "minimum": 0})
    log_interval: int = field(default=10, metadata={"help": "steps between training records", "minimum": 1})
    log_format: str = field(default="jsonl", metadata={
        "help": "where metrics go: jsonl (metrics.jsonl), csv (metrics.csv), tensorboard (DIR/tensorboard), "
                "or several joined by commas: jsonl,tensorboard"})
    seed: int = field(default=1337, metadata={"help": "the seed of initialisation, batches and dropout"})
    device: str = field(default="auto", metadata={
        "help": "auto (CUDA if there is one), cpu, cuda, cuda:1, ..."})
    threads: int = field(default=0, metadata={
        "help": "torch threads per process; 0: the cores shared among processes", "minimum": 0})
    precision: str = field(default="fp32", metadata={
        "help": "the forward's arithmetic: fp32, or bf16 / fp16 mixed precision (autocast; fp16 on CUDA only)",
        "choices": ("fp32", "bf16", "fp16")})
    compile: bool = field(default=False, metadata={"help": "compile the training forward with torch.compile"})
    accumulate: int = field(default=1, metadata={
        "help": "micro-batches per optimizer step; --batch-size stays the batch of the whole step", "minimum": 1})
    max_nonfinite_steps: int = field(default=10, metadata={
        "help": "steps in a row with a non-finite loss or gradient that are skipped before training stops "
                "(0: stop at the first)", "minimum": 0})


@dataclass
class Config:
    task: TaskConfig = field(default_factory=TaskConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def for_task(cls, name: str) -> "Config":
        """The defaults for task ``name``: its own (``Task.defaults``, what suits its problem shape) over the general ones."""
        from .tasks import task_class

        config = cls()
        config.update(task_class(name).defaults, source=f"the {name} task's defaults")
        config.task.name = name
        return config

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
        """The declared choices and minimums of every field, then the checks that need more than one field."""
        for section_name, section_class in SECTIONS.items():
            section = getattr(self, section_name)
            for item in dataclasses.fields(section_class):
                value = getattr(section, item.name)
                name = f"{section_name}.{item.name}"
                choices = field_choices(item)
                if choices and value not in choices:
                    raise SeqlabError(f"{name} must be one of {', '.join(choices)}, got {value!r}"
                                      f"{did_you_mean(value, choices, prefix=f'--{flag_of(item)} ')}")
                minimum, below = item.metadata.get("minimum"), item.metadata.get("below")
                if below is not None and not minimum <= value < below:
                    raise SeqlabError(f"{name} must be in [{minimum}, {below}), got {value}")
                if minimum is not None and (value < minimum or (isinstance(value, float) and not math.isfinite(value))):
                    raise SeqlabError(f"{name} must be {'zero or more' if minimum == 0 else f'at least {minimum}'}, "
                                      f"got {value}")
        model, data, train = self.model, self.data, self.train
        check_encoding(data.encoding)
        if data.block_size == 0:
            from .tasks import task_class

            if not task_class(self.task.name).chooses_block_size:
                raise SeqlabError(f"--block-size 0 (chosen from the data) is for --task forecast; --task "
                                  f"{self.task.name} needs a positive --block-size")
        for log_format in train.log_format.split(","):
            if log_format not in LOG_FORMATS:
                raise SeqlabError(f"--log-format takes {', '.join(LOG_FORMATS)} or several joined by commas, "
                                  f"got {train.log_format!r}")
        if not (train.learning_rate > 0 and math.isfinite(train.learning_rate)):
            raise SeqlabError(f"train.learning_rate must be positive, got {train.learning_rate}")
        if not data.path:
            raise SeqlabError("no training data: give --data PATH (a text file, a CSV/TSV, ABC tunes, or builtin:NAME), "
                              "or a preset that names its data (--config music)")
        if train.max_steps == 0 and train.max_seconds == 0:
            raise SeqlabError("training needs a budget: give --max-steps or --max-seconds (or both)")
        if model.tie_weights and model.embedding == "onehot":
            raise SeqlabError("--tie-weights needs a learned embedding, not a one-hot one: drop --embedding onehot")
        if model.tie_weights and model.embedding_size not in (0, model.hidden_size):
            raise SeqlabError(f"--tie-weights true shares the embedding with the output layer, so its width "
                              f"(--embedding-size {model.embedding_size}) must be the hidden size ({model.hidden_size}):"
                              f" add --embedding-size {model.hidden_size} (or 0)")


LOG_FORMATS = ("jsonl", "csv", "tensorboard")
SECTIONS = {"task": TaskConfig, "model": ModelConfig, "data": DataConfig, "train": TrainConfig}


def _registered(kind: str) -> tuple[str, ...]:
    """The names a registry holds."""
    return tuple(task_names() if kind == "task" else backbone_names())


def field_choices(item: dataclasses.Field) -> tuple[str, ...]:
    """A field's allowed values: declared in its metadata (a tuple, or a registry's names for task and backbone)."""
    choices = item.metadata.get("choices", ())
    return tuple(choices()) if callable(choices) else tuple(choices)


def flag_of(item: dataclasses.Field) -> str:
    """The command-line flag of a config field, without the dashes."""
    return item.metadata.get("flag", item.name.replace("_", "-"))


def _field_types(section_class: type) -> dict[str, Any]:
    return typing.get_type_hints(section_class)


def set_field(section: Any, section_name: str, name: str, value: Any, *, source: str) -> None:
    """Set one field after checking that it exists and that the value has its type."""
    types = _field_types(type(section))
    if name not in types:
        raise SeqlabError(
            f"{source}: unknown field {section_name}.{name}{did_you_mean(name, types)}; {section_name} has "
            f"{', '.join(sorted(types))}")
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
            flag = flag_of(item)
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
                f"no config file or preset named {name_or_path!r}; presets are {', '.join(preset_names())}"
                f"{did_you_mean(name_or_path, preset_names(), prefix='--config ')}")
        path = preset
    if path.is_dir():
        raise SeqlabError(f"--config {name_or_path} is a directory, not a JSON file")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SeqlabError(f"{path} is not valid JSON ({error}); fix the file or pick a preset") from None
