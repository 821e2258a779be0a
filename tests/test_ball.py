"""The bouncing-ball videos, the next-frame model and the ball task end to end, bad inputs included."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from seqlab.cli import main
from seqlab.data.video import bouncing_ball, centroid
from seqlab.models.frames import FramePredictor
from seqlab.registry import build_backbone


def folded(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    """Free motion reflected between two walls is a triangle wave of the unreflected coordinate."""
    span = high - low
    return low + span - ((x - low) % (2 * span) - span).abs()


def test_bouncing_ball_is_free_motion_folded_at_the_walls():
    size, radius, count, frames = 16, 2.0, 50, 40
    ours, centres = bouncing_ball(count, frames=frames, frame_size=size, radius=radius, speed_min=0.5, speed_max=2.5,
                                  generator=torch.Generator().manual_seed(3))
    # the same draws, in the documented order: start, direction, speed
    generator = torch.Generator().manual_seed(3)
    low, high = radius, size - 1 - radius
    start = low + (high - low) * torch.rand(count, 2, generator=generator, dtype=torch.float64)
    angle = 2 * math.pi * torch.rand(count, generator=generator, dtype=torch.float64)
    speed = 0.5 + 2.0 * torch.rand(count, generator=generator, dtype=torch.float64)
    velocity = torch.stack([speed * torch.sin(angle), speed * torch.cos(angle)], dim=1)
    free = start.unsqueeze(1) + torch.arange(frames, dtype=torch.float64).view(1, -1, 1) * velocity.unsqueeze(1)
    torch.testing.assert_close(centres.double(), folded(free, low, high), rtol=0, atol=1e-5)
    assert ours.shape == (count, frames, 1, size, size) and float(ours.min()) >= 0 and float(ours.max()) == 1.0
    # the picture's centre of intensity is the ball's centre (to the grid's sampling)
    torch.testing.assert_close(centroid(ours), centres, rtol=0, atol=0.05)


def test_frame_predictor_reads_frames_whole_or_flattened_and_rolls_out():
    frames = torch.rand(2, 5, 1, 6, 6)
    for backbone in (build_backbone("convlstm", input_size=1, hidden_size=3, frames=True, frame_height=6, frame_width=6),
                     build_backbone("lstm", input_size=36, hidden_size=7)):
        model = FramePredictor(backbone, frame_shape=(1, 6, 6)).eval()
        logits, _ = model(frames)
        assert logits.shape == (2, 5, 1, 6, 6)
        # rolling out = reading, then stepping on the model's own predictions
        rolled = model.rollout(frames[:, :3], 4)
        with torch.no_grad():
            expected, state = model(frames[:, :3])
            step = torch.sigmoid(expected[:, -1])
            manual = [step]
            for _ in range(3):
                logits, state = model.step(manual[-1], state)
                manual.append(torch.sigmoid(logits))
        torch.testing.assert_close(rolled, torch.stack(manual, dim=1))
    with pytest.raises(ValueError, match="reads 36 pixels"):
        FramePredictor(build_backbone("lstm", input_size=30, hidden_size=4), frame_shape=(1, 6, 6))


@pytest.fixture(scope="module")
def ball_checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("ball") / "run"
    assert main(["train", "--task", "ball", "--data", "builtin:ball", "--backbone", "convlstm", "--hidden-size", "2",
                 "--max-steps", "2", "--batch-size", "4", "--eval-interval", "2", "--threads", "1", "--quiet",
                 "--out", str(out)]) == 0
    return out


def test_ball_checkpoint_predicts_and_refuses_frames_of_the_wrong_rank_or_size(ball_checkpoint, tmp_path, capsys):
    video, centres = bouncing_ball(1, frames=5, frame_size=16, radius=2.0, speed_min=1.0, speed_max=1.0,
                                   generator=torch.Generator().manual_seed(0))
    good = tmp_path / "video.npy"
    np.save(good, video[0, :, 0].numpy())  # (T, H, W)
    assert main(["predict", str(ball_checkpoint), str(good), "--json"]) == 0
    prediction = json.loads(capsys.readouterr().out.strip())
    assert set(prediction) == {"next_row", "next_column"} and 0 <= prediction["next_row"] <= 15

    for name, array in (("flat.npy", np.zeros((5, 256))), ("small.npy", np.zeros((5, 12, 12))),
                        ("channels.npy", np.zeros((5, 3, 16, 16)))):
        np.save(tmp_path / name, array)
        assert main(["predict", str(ball_checkpoint), str(tmp_path / name)]) == 2
        error = capsys.readouterr().err.strip()
        assert "this checkpoint reads videos (T, 16, 16) or (T, 1, 16, 16)" in error and "\n" not in error
    (tmp_path / "text.npy").write_text("not an array")
    assert main(["predict", str(ball_checkpoint), str(tmp_path / "text.npy")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_ball_task_refuses_other_data_and_vector_tasks_refuse_the_convlstm(tmp_path, capsys):
    assert main(["train", "--task", "ball", "--data", "x.txt", "--out", str(tmp_path / "a")]) == 2
    assert "give --data builtin:ball" in capsys.readouterr().err
    text = tmp_path / "text.txt"
    text.write_text("hello world " * 200)
    assert main(["train", "--data", str(text), "--backbone", "convlstm", "--out", str(tmp_path / "b")]) == 2
    assert "reads frames (B, T, C, H, W); use it with --task ball" in capsys.readouterr().err


def test_ball_loss_is_the_sum_the_trainer_divides_by_the_count():
    from torch.nn import functional as F

    from seqlab.config import Config
    from seqlab.tasks import task_class

    config = Config()
    config.update({"task": {"name": "ball"}, "model": {"backbone": "feedforward", "hidden_size": 8},
                   "data": {"path": "builtin:ball", "options": {"frame_size": 8, "frames": 4, "radius": 1.0}}})
    task = task_class("ball")(config)
    model = task.build_model()
    batch = task.batches().next_batch()
    summed, _ = task.loss(model, batch, None)
    logits, _ = model(batch.inputs)
    expected = F.binary_cross_entropy_with_logits(logits, batch.targets)  # the mean over every target pixel
    torch.testing.assert_close(summed / task.counted(batch), expected)
