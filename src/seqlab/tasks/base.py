"""What the one trainer needs to know about a problem shape.

A task reads its data, fits what the model needs from the training part (a
tokenizer, a label set, a scaler), builds the model, hands out global batches,
computes a batch's loss and evaluates a model. What it fitted is its *assets*:
JSON files saved in every checkpoint, from which the task (and so the model)
is rebuilt without the training data.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Protocol

from torch import Tensor, nn

from ..backbones.base import State
from ..config import Config
from ..data.batches import Batch
from ..errors import SeqlabError


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

    def __init__(self, config: Config, assets: dict[str, Any] | None = None) -> None:
        self.config = config

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

    def batches(self) -> BatchSource:
        """Global training batches, deterministic given ``config.train.seed``."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Batch, state: State) -> tuple[Tensor, State]:
        """Mean loss over a (per-process) batch, and the state to carry into the next batch."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, *, context: Any, max_batches: int = 0) -> dict[str, float]:
        """Metrics on the validation part, lower-case keys, including ``selection_metric``."""
        raise NotImplementedError

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
