"""The ball in the video (``--task ball --data builtin:ball``): predict the next frame, and so where the ball goes.

Training draws fresh videos of a bouncing ball (``seqlab.data.video``) every
step; validation is a fixed set drawn once with seed ``train.seed + 1``. The
model (``FramePredictor``) reads frames 1..t and writes the pixels of frame
t + 1; the loss is the binary cross-entropy of those pixels against the true
frame, over t = 1..T-1. The ball's position is read off a predicted frame as
its intensity-weighted centre, so a blurred guess lands between the places it
hedges over.

Metrics: ``val_loss`` (BCE), ``pixel_mse``, ``position_error`` (pixels, the
distance from the predicted frame's centre to the true centre of the ball),
and the same two for the baseline that predicts the ball stays where it is
(the last frame again): ``baseline_pixel_mse``, ``baseline_position_error``.

Any backbone: the ConvLSTM reads frames whole; any other backbone reads each
frame flattened to a vector of pixels (``feedforward``: the same network on
every frame, with no connection between frames). ``seqlab predict CKPT
video.npy`` reads a video saved with numpy.save, (T, H, W) or (T, 1, H, W) in
[0, 1], and prints where the ball will be in the next frame.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..backbones.base import State
from ..config import Config
from ..data.batches import Batch
from ..data.video import bouncing_ball, centroid, check_ball_options
from ..errors import SeqlabError
from ..models.frames import FramePredictor
from ..registry import backbone_class, build_backbone
from . import register_task
from .base import BatchSource, Task

DATA_PATH = "builtin:ball"
VALIDATION_SEED_OFFSET = 1
OPTIONS = {"frame_size": 16, "frames": 12, "radius": 2.0, "speed_min": 0.5, "speed_max": 1.5, "val_examples": 256}


def ball_options(options: dict[str, Any]) -> dict[str, Any]:
    """The data options with their defaults filled in; unknown or bad ones refused in one line."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise SeqlabError(f"the ball task has no data option {', '.join(unknown)}; its options are "
                          f"{', '.join(sorted(OPTIONS))}")
    merged = {**OPTIONS, **options}
    check_ball_options(**{key: merged[key] for key in ("frame_size", "frames", "radius", "speed_min", "speed_max")})
    if merged["val_examples"] < 1:
        raise SeqlabError("--val-examples must be at least 1")
    return merged


class BallBatches:
    """Fresh videos every step, deterministic given the seed: inputs are frames 1..T, targets frames 2..T."""

    carries_state = False

    def __init__(self, options: dict[str, Any], *, batch_size: int, seed: int) -> None:
        self.options, self.batch_size = options, batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def next_batch(self) -> Batch:
        frames, _ = render(self.options, self.batch_size, self.generator)
        return Batch(frames[:, :-1], frames[:, 1:], reset=True)

    def state_dict(self) -> dict[str, Tensor]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        self.generator.set_state(state["generator"])


def render(options: dict[str, Any], count: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    return bouncing_ball(count, frames=options["frames"], frame_size=options["frame_size"], radius=options["radius"],
                         speed_min=options["speed_min"], speed_max=options["speed_max"], generator=generator)


def frame_metrics(predicted: Tensor, frames: Tensor, centres: Tensor) -> dict[str, float]:
    """predicted (N, T, 1, S, S) probabilities of frames (N, T, 1, S, S) whose balls are at centres (N, T, 2)."""
    return {"pixel_mse": float(((predicted - frames) ** 2).mean()),
            "position_error": float((centroid(predicted) - centres).norm(dim=-1).mean())}


@register_task("ball")
class BallTask(Task):
    """Next-frame prediction of a bouncing ball (see the module docstring)."""

    asset_files = ()
    metric_names = ("val_loss", "pixel_mse", "position_error", "baseline_pixel_mse", "baseline_position_error")
    selection_metric = "val_loss"

    def __init__(self, config: Config, assets: dict[str, Any] | None = None) -> None:
        super().__init__(config, assets)
        if config.data.path != DATA_PATH:
            raise SeqlabError(f"the ball task renders its own videos; give --data {DATA_PATH}, not "
                              f"{config.data.path or 'nothing'}")
        self.options = ball_options(config.data.options)
        size = self.options["frame_size"]
        self.frame_shape = (1, size, size)
        self.validation: tuple[Tensor, Tensor] | None = None

    def load_data(self) -> None:
        generator = torch.Generator().manual_seed(self.config.train.seed + VALIDATION_SEED_OFFSET)
        self.validation = render(self.options, self.options["val_examples"], generator)

    @property
    def has_validation(self) -> bool:
        return True

    def assets(self) -> dict[str, Any]:
        return {}

    def build_model(self) -> nn.Module:
        model = self.config.model
        channels, height, width = self.frame_shape
        try:
            frames = backbone_class(model.backbone).reads_frames
            options = {"frame_height": height, "frame_width": width, **model.options} if frames else model.options
            backbone = build_backbone(model.backbone, input_size=channels if frames else channels * height * width,
                                      hidden_size=model.hidden_size, num_layers=model.num_layers,
                                      dropout=model.dropout, frames=frames, **options)
            return FramePredictor(backbone, frame_shape=self.frame_shape)
        except (ValueError, TypeError) as error:
            raise SeqlabError(f"cannot build the model: {error}") from None

    def batches(self) -> BatchSource:
        return BallBatches(self.options, batch_size=self.config.train.batch_size, seed=self.config.train.seed)

    def loss(self, model: nn.Module, batch: Batch, state: State) -> tuple[Tensor, State]:
        """The pixels' cross-entropy summed over every target pixel (the trainer divides by ``counted``: all of them)."""
        logits, state = model(batch.inputs)
        return F.binary_cross_entropy_with_logits(logits, batch.targets, reduction="sum"), state

    @torch.no_grad()
    def metrics(self, model: nn.Module, frames: Tensor, centres: Tensor) -> dict[str, float]:
        """The task's metrics on videos frames (N, T, 1, S, S) with centres (N, T, 2)."""
        device = next(model.parameters()).device
        was_training = model.training
        model.eval()
        batch_size = self.config.train.batch_size
        logits = torch.cat([model(frames[first:first + batch_size, :-1].to(device))[0].float().cpu()
                            for first in range(0, len(frames), batch_size)])  # (N, T - 1, 1, S, S)
        model.train(was_training)
        targets, target_centres = frames[:, 1:], centres[:, 1:]
        found = {"val_loss": float(F.binary_cross_entropy_with_logits(logits, targets)),
                 **frame_metrics(torch.sigmoid(logits), targets, target_centres)}
        baseline = frame_metrics(frames[:, :-1], targets, target_centres)  # the ball stays where it is
        return {**found, **{f"baseline_{name}": value for name, value in baseline.items()}}

    def evaluate(self, model: nn.Module, *, context: Any, max_batches: int = 0) -> dict[str, float]:
        frames, centres = self.validation
        if max_batches:
            frames, centres = (tensor[:max_batches * self.config.train.batch_size] for tensor in (frames, centres))
        return self.metrics(model, frames, centres)

    def evaluate_file(self, model: nn.Module, path: str | Path, *, split: str) -> dict[str, Any]:
        if str(path) != DATA_PATH:
            raise SeqlabError(f"the ball task evaluates on its own videos; give --data {DATA_PATH}")
        if split != "val":
            raise SeqlabError("the ball task draws fresh training videos every step; evaluate --split val")
        if self.validation is None:
            self.load_data()
        return {"split": split, "examples": self.options["val_examples"], **self.evaluate(model, context=None)}

    # ------------------------------------------------------------- predict
    def read_inputs(self, path: str | Path) -> list[Any]:
        return [str(path)]

    def read_video(self, path: str | Path) -> Tensor:
        """A video saved with numpy.save -> frames (T, 1, S, S) float32; the wrong rank or size is refused."""
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise SeqlabError(f"cannot read {path} as a .npy video ({error}); save frames with numpy.save") from None
        size = self.frame_shape[-1]
        if array.ndim == 3:
            array = array[:, None]
        if array.ndim != 4 or tuple(array.shape[1:]) != self.frame_shape:
            raise SeqlabError(f"{path}: frames of shape {tuple(array.shape)}; this checkpoint reads videos (T, {size}, "
                              f"{size}) or (T, 1, {size}, {size})")
        if not np.issubdtype(array.dtype, np.number) or len(array) < 1:
            raise SeqlabError(f"{path}: give at least one frame of numbers in [0, 1]")
        return torch.from_numpy(array.astype(np.float32))

    @torch.no_grad()
    def predict(self, model: nn.Module, inputs: list[Any]) -> list[Any]:
        """For each video file: the ball's position (row, column) in the frame after its last one."""
        device = next(model.parameters()).device
        results = []
        for path in inputs:
            frames = self.read_video(path).unsqueeze(0).to(device)  # (1, T, 1, S, S)
            logits, _ = model.eval()(frames)
            row, column = centroid(torch.sigmoid(logits[0, -1].float())).tolist()
            results.append({"next_row": round(row, 2), "next_column": round(column, 2)})
        return results
