r"""Videos of a bouncing ball, rendered in code: the lectures' running example of a sequence.

A ball of radius r starts at a random position p_0 with a random velocity v
(speed between ``speed_min`` and ``speed_max`` pixels per frame, any
direction) and moves p_{t+1} = p_t + v, reflecting off the walls of an S x S
frame (a coordinate past a wall is mirrored back and that component of v
changes sign). Each frame is the ball drawn with an anti-aliased edge:

    pixel(y, x) = clamp(r + 1/2 - ||(y, x) - p_t||, 0, 1)

so frames are (1, S, S) in [0, 1] and the ball's centre p_t = (row, column) is
known exactly at every frame. One frame shows where the ball is; only two or
more show where it is going.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from ..errors import SeqlabError


def check_ball_options(*, frame_size: int, frames: int, radius: float, speed_min: float, speed_max: float) -> None:
    """Refuse, in one line, options that cannot make a video."""
    if frame_size < 4:
        raise SeqlabError(f"--frame-size {frame_size} is too small; give at least 4 pixels")
    if frames < 3:
        raise SeqlabError(f"--frames {frames} is too few; give at least 3 (two to read, one to predict)")
    if not 0.5 <= radius < frame_size / 4:
        raise SeqlabError(f"--radius {radius:g} must be at least 0.5 and below a quarter of the frame "
                          f"({frame_size / 4:g})")
    if not 0 <= speed_min <= speed_max:
        raise SeqlabError(f"--speed-min {speed_min:g} and --speed-max {speed_max:g}: need 0 <= speed-min <= speed-max")


def bouncing_ball(count: int, *, frames: int, frame_size: int, radius: float, speed_min: float, speed_max: float,
                  generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``count`` videos -> (frames (N, T, 1, S, S) float32 in [0, 1], centres (N, T, 2) float32 (row, column))."""
    low, high = radius, frame_size - 1 - radius  # where the centre may be
    position = low + (high - low) * torch.rand(count, 2, generator=generator, dtype=torch.float64)  # (N, 2)
    angle = 2 * math.pi * torch.rand(count, generator=generator, dtype=torch.float64)
    speed = speed_min + (speed_max - speed_min) * torch.rand(count, generator=generator, dtype=torch.float64)
    velocity = torch.stack([speed * torch.sin(angle), speed * torch.cos(angle)], dim=1)  # (N, 2)
    centres = []
    for _ in range(frames):
        centres.append(position)
        position = position + velocity
        below, above = position < low, position > high
        position = torch.where(below, 2 * low - position, torch.where(above, 2 * high - position, position))
        velocity = torch.where(below | above, -velocity, velocity)
    centre = torch.stack(centres, dim=1)  # (N, T, 2)
    grid = torch.arange(frame_size, dtype=torch.float64)
    rows = grid.view(1, 1, frame_size, 1) - centre[..., 0, None, None]  # (N, T, S, 1)
    columns = grid.view(1, 1, 1, frame_size) - centre[..., 1, None, None]  # (N, T, 1, S)
    distance = torch.sqrt(rows ** 2 + columns ** 2)  # (N, T, S, S)
    pictures = (radius + 0.5 - distance).clamp(0.0, 1.0)
    return pictures.unsqueeze(2).float(), centre.float()


def centroid(frames: Tensor) -> Tensor:
    """The intensity-weighted centre (row, column) of frames (..., 1, S, S) -> (..., 2); the frame's middle where
    a frame is blank."""
    size = frames.shape[-1]
    weights = frames.squeeze(-3).clamp_min(0.0)  # (..., S, S)
    total = weights.sum((-2, -1))  # (...,)
    grid = torch.arange(size, dtype=frames.dtype, device=frames.device)
    row = (weights.sum(-1) * grid).sum(-1)  # (...,)
    column = (weights.sum(-2) * grid).sum(-1)
    middle = torch.full_like(total, (size - 1) / 2)
    blank = total <= 1e-6
    safe = torch.where(blank, torch.ones_like(total), total)
    return torch.stack([torch.where(blank, middle, row / safe), torch.where(blank, middle, column / safe)], dim=-1)
