r"""The ball in the video: where does it go next?

Three models learn next-frame prediction on videos of a bouncing ball (the
``ball`` task) for the same number of steps:

- per-frame: the ``feedforward`` backbone, the same network applied to every
  frame with no connection between frames (the lectures' "copies of the same
  network, one per frame");
- LSTM: a plain LSTM reading each frame flattened to a vector of pixels;
- ConvLSTM (Shi et al. 2015): convolutions in place of the LSTM's products.

Each then reads the first ``observed`` frames of held-out videos and predicts
the next ``horizon`` frames, each prediction fed back as the next input. The
error at h frames ahead is the distance (pixels) from the predicted frame's
intensity-weighted centre to the ball's true centre, beside the baseline that
says the ball stays where it was last seen.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.video import centroid
from ..tasks.ball import ball_options, render
from .base import ExperimentResult, Finding, register_experiment
from .common import save_figure
from .common_synthetic import train_synthetic

MODELS = {"per-frame": "feedforward", "lstm": "lstm", "convlstm": "convlstm"}
SETTINGS = {
    "smoke": {"steps": 3, "frame_size": 8, "frames": 6, "observed": 3, "horizon": 3, "test": 8, "widths":
              {"per-frame": 8, "lstm": 8, "convlstm": 2}, "speed": (1.5, 2.5), "radius": 1.0},
    "quick": {"steps": 700, "frame_size": 12, "frames": 10, "observed": 4, "horizon": 6, "test": 256, "widths":
              {"per-frame": 128, "lstm": 128, "convlstm": 8}, "speed": (1.0, 2.0), "radius": 2.0},
    "full": {"steps": 3000, "frame_size": 16, "frames": 16, "observed": 6, "horizon": 10, "test": 512, "widths":
             {"per-frame": 256, "lstm": 256, "convlstm": 16}, "speed": (1.0, 3.0), "radius": 2.0, "memory_gib": 3.0},
}
KERNEL = 5  # the ConvLSTM's kernel: a ball moving up to 2 pixels a frame stays within its reach of +-2 per layer
# Adam: 3e-3 for the per-frame net and the LSTM; the ConvLSTM at 3e-3 was still blurred after 400 steps (position
# error 2.36 pixels, worse than saying the ball stays), at 1e-2 it reached 0.85 (the baseline: 1.40)
LEARNING_RATES = {"per-frame": 3e-3, "lstm": 3e-3, "convlstm": 1e-2}
BEATS = 0.8  # a model "beats" another at one frame ahead when its position error is below this fraction of the other's


def verdict(rows: list[dict[str, Any]], settings: dict[str, Any]) -> Finding:
    """Reproduced: at one frame ahead both recurrent models' position error is below BEATS x the per-frame model's.
    The per-frame model's error against the baseline (the ball stays) and the ranking further ahead are reported."""
    by = {row["model"]: row for row in rows}
    horizon = settings["horizon"]
    first, last = "error_h1", f"error_h{horizon}"
    per_frame = by["per-frame"][first]
    beaten = {name: by[name][first] < BEATS * per_frame for name in ("lstm", "convlstm")}
    reproduced = all(beaten.values())
    text = (f"Position error (pixels) of the predicted frame's centre, after reading {settings['observed']} frames, "
            f"1 and {horizon} frames ahead: "
            + ", ".join(f"{row['model']} {row[first]:.2f} / {row[last]:.2f}" for row in rows)
            + f" (ball speed {settings['speed'][0]:g}-{settings['speed'][1]:g} pixels a frame). ")
    stays = by["baseline (stays)"][first]
    text += (f"The per-frame model's error one frame ahead is {per_frame / stays:.2f} x that of saying the ball stays "
             f"where it is ({stays:.2f}). ")
    text += (f"Both recurrent models beat it one frame ahead (below {BEATS:g} x its error): the claim reproduces."
             if reproduced else
             f"The claim did not reproduce: it needs both recurrent models below {BEATS:g} x the per-frame model's "
             "error one frame ahead; " + (", ".join(name for name, yes in beaten.items() if yes) or "neither")
             + " got there.")
    models = [row for row in rows if row["model"] in MODELS]
    best = min(models, key=lambda row: row[last])
    text += f" Lowest error {horizon} frames ahead: {best['model']} ({best[last]:.2f})."
    return Finding(text, reproduced)


@register_experiment(
    "ball-video", title="The ball in the video: per-frame network vs LSTM vs ConvLSTM", settings=SETTINGS,
    verdict=verdict,
    claim="A network applied to each frame on its own (copies of the same network, one per frame, without "
          "connections) sees where the ball is but not where it is going; a recurrent network carries the motion "
          "from frame to frame in its state and predicts the next frames (the lectures' running example), and a "
          "convolutional LSTM does so while keeping the frames' spatial layout (Shi et al. 2015).")
def run(settings: dict[str, Any], out_dir: Path) -> ExperimentResult:
    import matplotlib.pyplot as plt

    speed_min, speed_max = settings["speed"]
    options = {"frame_size": settings["frame_size"], "frames": settings["frames"], "radius": settings["radius"],
               "speed_min": speed_min,
               "speed_max": speed_max, "val_examples": min(256, settings["test"])}
    observed, horizon = settings["observed"], settings["horizon"]
    # held-out videos as long as reading and predicting take: recurrent models roll on past their training length
    frames, centres = render(ball_options({**options, "frames": observed + horizon}), settings["test"],
                             torch.Generator().manual_seed(12345))
    future, truth = frames[:, observed:], centres[:, observed:]  # (N, horizon, 1, S, S), (N, horizon, 2)
    rows, predictions = [], {}
    for label, backbone in MODELS.items():
        model = {"backbone": backbone, "hidden_size": settings["widths"][label]}
        if backbone == "convlstm":
            model["options"] = {"kernel_size": KERNEL}
        config = {"task": {"name": "ball"}, "data": {"path": "builtin:ball", "options": options}, "model": model,
                  "train": {"max_steps": settings["steps"], "batch_size": 16, "learning_rate": LEARNING_RATES[label],
                            "warmup_steps": min(50, settings["steps"] // 10), "weight_decay": 0.0,
                            "eval_interval": settings["steps"], "log_interval": max(1, settings["steps"] // 10),
                            "seed": 0, "threads": 1, "device": settings["device"]}}
        metrics, checkpoint, seconds = train_synthetic(config)
        predicted = checkpoint.model.cpu().eval().rollout(frames[:, :observed], horizon)  # (N, horizon, 1, S, S)
        predictions[label] = predicted
        errors = (centroid(predicted) - truth).norm(dim=-1).mean(0)  # (horizon,)
        rows.append({"model": label, "parameters": sum(p.numel() for p in checkpoint.model.parameters()),
                     **{f"error_h{h + 1}": float(errors[h]) for h in range(horizon)},
                     "pixel_mse_h1": float(((predicted[:, 0] - future[:, 0]) ** 2).mean()),
                     "val_loss": metrics.get("val_loss", float("nan")), "train_s": round(seconds, 1)})
    stays = (centres[:, observed - 1:observed] - truth).norm(dim=-1).mean(0)  # (horizon,)
    rows.append({"model": "baseline (stays)", "parameters": 0,
                 **{f"error_h{h + 1}": float(stays[h]) for h in range(horizon)},
                 "pixel_mse_h1": float(((frames[:, observed - 1] - future[:, 0]) ** 2).mean()),
                 "val_loss": float("nan"), "train_s": 0.0})

    figure, axis = plt.subplots(figsize=(7, 4.5))
    ahead = np.arange(1, horizon + 1)
    for row in rows:
        axis.plot(ahead, [row[f"error_h{h}"] for h in ahead], marker="o", label=row["model"],
                  linestyle=":" if row["model"].startswith("baseline") else "-")
    axis.set_xlabel("frames ahead (each prediction fed back)")
    axis.set_ylabel("position error (pixels)")
    axis.set_title(f"after reading {observed} frames")
    axis.legend()
    figures = [save_figure(figure, out_dir, "error_by_horizon.png")]

    labels = ["truth", *predictions]
    figure, axes = plt.subplots(len(labels), horizon, figsize=(1.3 * horizon, 1.4 * len(labels)), squeeze=False)
    for row_axes, label in zip(axes, labels):
        video = future[0] if label == "truth" else predictions[label][0]  # (horizon, 1, S, S)
        for h, axis in enumerate(row_axes):
            axis.imshow(video[h, 0].numpy(), cmap="gray", vmin=0, vmax=1)
            axis.set_xticks([])
            axis.set_yticks([])
            if h == 0:
                axis.set_ylabel(label, fontsize=8)
            if label == "truth":
                axis.set_title(f"+{h + 1}", fontsize=8)
    figures.append(save_figure(figure, out_dir, "predicted_frames.png"))
    return ExperimentResult(rows=rows, figures=figures)
