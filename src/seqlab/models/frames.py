"""The next-frame model: frames in, the next frame's pixels out, through any backbone."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from ..backbones.base import Backbone, State


class FramePredictor(nn.Module):
    r"""Predicts frame t + 1 from frames 1..t.

    With a backbone that reads frames (the ConvLSTM) the frames go in whole and a 1 x 1 convolution reads the
    logits off its state maps; with any other backbone each frame is flattened to a vector of C H W pixels and a
    linear head writes the C H W logits back:

        h_t, s_t = backbone(x_t, s_{t-1})        x_t (C, H, W), or flattened (C H W)
        z_t = conv_1x1(h_t)  or  W_o h_t + b_o    (C, H, W) logits of frame t + 1
        \hat{x}_{t+1} = sigmoid(z_t)

    Args:
        backbone: any registered backbone; for a vector backbone its input size must be C H W.
        frame_shape: (C, H, W).

    Inputs/outputs: frames (B, T, C, H, W) -> logits (B, T, C, H, W) and the state.
    """

    def __init__(self, backbone: Backbone, *, frame_shape: tuple[int, int, int]) -> None:
        super().__init__()
        channels, height, width = frame_shape
        self.frame_shape = tuple(frame_shape)
        self.backbone = backbone
        if backbone.reads_frames:
            if backbone.input_shape != self.frame_shape:
                raise ValueError(f"the backbone reads frames {backbone.input_shape}, the data has {self.frame_shape}")
            self.head: nn.Module = nn.Conv2d(backbone.output_size, channels, 1)
        else:
            if backbone.input_size != channels * height * width:
                raise ValueError(f"a vector backbone here reads {channels * height * width} pixels, "
                                 f"not {backbone.input_size}")
            self.head = nn.Linear(backbone.output_size, channels * height * width)

    def init_state(self, batch_size: int) -> State:
        return self.backbone.init_state(batch_size)

    def forward(self, frames: Tensor, state: State = None) -> tuple[Tensor, State]:
        batch, time_steps = frames.shape[:2]
        if self.backbone.reads_frames:
            hidden, state = self.backbone(frames, state)  # (B, T, hidden, H, W)
            logits = self.head(hidden.flatten(0, 1)).unflatten(0, (batch, time_steps))  # (B, T, C, H, W)
        else:
            hidden, state = self.backbone(frames.flatten(2), state)  # (B, T, hidden)
            logits = self.head(hidden).unflatten(2, self.frame_shape)  # (B, T, C, H, W)
        return logits, state

    def step(self, frame: Tensor, state: State) -> tuple[Tensor, State]:
        """frame (B, C, H, W) -> the next frame's logits (B, C, H, W) and the state."""
        if self.backbone.reads_frames:
            hidden, state = self.backbone.step(frame, state)  # (B, hidden, H, W)
            return self.head(hidden), state
        hidden, state = self.backbone.step(frame.flatten(1), state)  # (B, hidden)
        return self.head(hidden).unflatten(1, self.frame_shape), state

    @torch.no_grad()
    def rollout(self, frames: Tensor, horizon: int) -> Tensor:
        """Read frames (B, K, C, H, W), then predict the next ``horizon`` frames, each fed back as the next input
        -> probabilities (B, horizon, C, H, W)."""
        logits, state = self(frames)
        predicted = [torch.sigmoid(logits[:, -1])]  # (B, C, H, W)
        for _ in range(horizon - 1):
            logits, state = self.step(predicted[-1], state)
            predicted.append(torch.sigmoid(logits))
        return torch.stack(predicted, dim=1)
