"""What the one trainer needs to know about a problem shape.

A task reads its data, fits what the model needs from the training part (a
tokenizer, a label set, a scaler), builds the model, hands out global batches,
computes a batch's loss and evaluates a model. What it fitted is its *assets*:
JSON files saved in every checkpoint, from which the task (and so the model)
is rebuilt without the training data.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar, Protocol

from torch import Tensor, nn

from ..backbones.base import State
from ..config import Config
from ..data.batches import Batch
from ..errors import SeqlabError
from ..train.checkpoint import load_checkpoint


class BatchSource(Protocol):
    carries_state: bool

    def next_batch(self) -> Batch: ...

    def state_dict(self) -> dict[str, Tensor]: ...

    def load_state_dict(self, state: dict[str, Tensor]) -> None: ...


class Task:
    """Base class of tasks; subclasses register with ``@register_task(name)``.

    Args:
        config: the run's configuration.
        assets: what a checkpoint saved ({file name: JSON value}); None when
            training afresh, in which case ``load_data`` fits them.
    """

    name: ClassVar[str]
    asset_files: ClassVar[tuple[str, ...]] = ()
    metric_names: ClassVar[tuple[str, ...]] = ("val_loss",)  # what ``evaluate`` returns
    selection_metric: ClassVar[str] = "val_loss"  # picks the checkpoint kept in best/
    higher_is_better: ClassVar[bool] = False
    # this task's defaults over the general ones ({section: {field: value}}), for ``Config.for_task``
    defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    chooses_block_size: ClassVar[bool] = False  # data.block_size 0: the task picks it from the data in load_data
    goes_on_from_its_data: ClassVar[bool] = False  # predict without inputs: what follows the data it was trained on

    def __init__(self, config: Config, assets: dict[str, Any] | None = None) -> None:
        self.config = config
        # what load_data found that the user should hear (gaps filled, a choice made from the data), one line
        # each: the trainer prints them once, in the main process; a library call prints nothing
        self.notes: list[str] = []

    def load_data(self) -> None:
        """Read ``config.data.path`` into training and validation parts (fitting assets if there are none)."""
        raise NotImplementedError

    @property
    def has_validation(self) -> bool:
        raise NotImplementedError

    def assets(self) -> dict[str, Any]:
        """{file name: JSON-able value}, one entry per ``asset_files`` name."""
        raise NotImplementedError

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def undecayed(self, model: nn.Module) -> list[nn.Parameter]:
        """Weights of ``model`` that weight decay leaves alone (pretrained ones it would pull toward zero, say);
        biases and gains never decay either."""
        return []

    def batches(self) -> BatchSource:
        """Global training batches, deterministic given ``config.train.seed``."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Batch, state: State) -> tuple[Tensor, State]:
        """The loss summed over the positions ``counted`` counts in a (per-process, per-micro-batch) batch,
        and the state to carry into the next batch. ``model`` may be wrapped: reach its methods by ``unwrap``.

        The trainer divides the sum by ``counted`` of the whole global batch, so the mean is over every
        process's positions at once and N processes take the one-process step.
        """
        raise NotImplementedError

    def counted(self, batch: Batch) -> float:
        """How many positions ``loss`` sums over in ``batch`` (their summed weight, with weights): every target."""
        return float(batch.targets.numel())

    def tokens(self, batch: Batch) -> int:
        """How many tokens (or rows of a series) the model reads in ``batch``: the real ones, without padding."""
        if batch.lengths is not None:
            return int(batch.lengths.sum())
        return batch.inputs.shape[0] * batch.inputs.shape[1]

    def evaluate(self, model: nn.Module, *, context: Any, max_batches: int = 0) -> dict[str, float]:
        """Metrics on the validation part, lower-case keys, including ``selection_metric``."""
        raise NotImplementedError

    def baseline_metrics(self) -> dict[str, float]:
        """A classical baseline's metrics on the validation part, named after it (e.g. ``bow_accuracy``); {} if none."""
        return {}

    def evaluate_file(self, model: nn.Module, path: str | Path, *, split: str) -> dict[str, Any]:
        """Metrics on ``split`` (val, train or all) of another file laid out like the training data."""
        raise NotImplementedError

    def condition_state(self, model: nn.Module, text: str) -> State:
        """The state (batch 1) from which a conditioned model generates for the condition ``text``."""
        raise SeqlabError(f"task {self.name!r} takes no condition; --condition needs a checkpoint of a conditioned "
                          "task such as --task music")

    def read_inputs(self, path: str | Path) -> list[Any]:
        """Inputs for ``predict`` from a file (one per line, or laid out like the training data)."""
        raise SeqlabError(f"task {self.name!r} has no predict; use seqlab sample for generation")

    def predict(self, model: nn.Module, inputs: list[Any]) -> list[Any]:
        """One prediction per input, in order."""
        raise SeqlabError(f"task {self.name!r} has no predict; use seqlab sample for generation")

    def draw(self, model: nn.Module, inputs: list[Any]) -> list[Path]:
        """Figures of the predictions for ``inputs`` (a task that draws none returns []); the paths written."""
        return []

    def prediction_header(self, predictions: list[Any]) -> str | None:
        """A line naming what each of ``predictions`` (``predict``'s) holds when printed (a forecast's time and
        columns), printed before them; None: none."""
        return None


def check_text_inputs(inputs: list[Any], purpose: str) -> None:
    """Refuse, naming it, the first input that is not a non-empty text (``purpose``: "classify", "translate", ...)."""
    for number, text in enumerate(inputs, start=1):
        if not isinstance(text, str) or not text.strip():
            raise SeqlabError(f"input {number} is empty; give some text to {purpose}")


class InitialWeights:
    """``--init-from CKPT``: a trained checkpoint's architecture and weights as the start of a fresh run.

    Building one sets ``config.model`` to the checkpoint's (keeping this run's
    dropout) and copies the weights of the model's named ``parts`` (e.g.
    embedding and backbone: the GPT recipe of pretraining as initialisation).
    ``apply`` loads them into the new model and freezes the backbone when asked.
    """

    def __init__(self, config: Config, parts: tuple[str, ...]) -> None:
        self.source_dir = config.task.init_from
        self.checkpoint = load_checkpoint(self.source_dir)
        config.model = dataclasses.replace(self.checkpoint.config.model, dropout=config.model.dropout,
                                           options=dict(self.checkpoint.config.model.options))
        self.weights = {name: {key: value.detach().clone() for key, value in getattr(self.checkpoint.model, name)
                               .state_dict().items()}
                        for name in parts if hasattr(self.checkpoint.model, name)}

    def tokenizer(self, config: Config, *, words_only: bool | None = None) -> Any:
        """The checkpoint's tokenizer, refusing a run that asked for another kind, or to read text otherwise than
        it does: ``--lowercase``, and for a task that takes it (``words_only`` not None) ``--words-only``."""
        source = getattr(self.checkpoint.task, "tokenizer", None)
        if source is None:
            raise SeqlabError(f"--init-from {self.source_dir} has no tokenizer (a {self.checkpoint.config.task.name} "
                              "checkpoint); start a text task from a text checkpoint")
        if source.kind != config.data.tokenizer:
            raise SeqlabError(
                f"--init-from {self.source_dir} was trained with a {source.kind} tokenizer but this run asks "
                f"for --tokenizer {config.data.tokenizer}; pass --tokenizer {source.kind} (its tokenizer is reused)")
        # what the checkpoint's tokenizer records of how it reads text, against what this run asks for
        asked = {"lowercase": config.data.lowercase, "words_only": words_only}
        recorded = {name: getattr(source, name) for name, value in asked.items()
                    if value is not None and hasattr(source, name)}
        differing = [name for name, value in recorded.items() if value != asked[name]]
        if differing:
            def flags(values: dict[str, Any]) -> str:
                return " ".join(f"--{name.replace('_', '-')} {str(values[name]).lower()}" for name in differing)

            raise SeqlabError(
                f"--init-from {self.source_dir}'s tokenizer reads text with {flags(recorded)} but this run asks for "
                f"{flags(asked)}; pass {flags(recorded)} (its tokenizer is reused), or pretrain with {flags(asked)}")
        return source

    def apply(self, model: nn.Module, *, optional: tuple[str, ...] = ()) -> None:
        """Load every copied part into ``model``; a part in ``optional`` is skipped where its shapes differ."""
        for name, weights in self.weights.items():
            fresh = getattr(model, name).state_dict()
            fits = weights.keys() == fresh.keys() and all(weights[key].shape == fresh[key].shape for key in fresh)
            if not fits and name in optional:
                continue
            try:
                getattr(model, name).load_state_dict(weights)
            except RuntimeError as error:
                raise SeqlabError(f"the {name} of --init-from {self.source_dir} does not fit ({error})") from None


def start_model(model: nn.Module, config: Config, initial: InitialWeights | None, *,
                optional: tuple[str, ...] = ()) -> nn.Module:
    """A freshly built model, given ``--init-from``'s weights (if any) and frozen with ``--freeze-backbone``
    (which, without --init-from, leaves a random backbone fixed: reservoir computing)."""
    if initial is not None:
        initial.apply(model, optional=optional)
    if config.task.freeze_backbone:
        (model.backbone if hasattr(model, "backbone") else model.encoder).requires_grad_(False)
    return model
