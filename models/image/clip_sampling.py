"""Sampling a user's clip the way Make-Your-Video reads its input videos, pure PyTorch.

``load_data_prompts`` (Make-Your-Video@9817461 ``scripts/evaluation/inference_videorerendering.py:55-92``):

* frame indices ``stride·i`` for ``i < frames``; ``stride = max_frames // frames`` when ``frame_stride == -1``
  or when the clip is too short for the requested stride (``stride·(frames-1) >= max_frames``);
* every frame resized straight to ``height × width`` by decord/FFmpeg (aspect **not** kept), then
  ``(uint8/255 − 0.5)·2``.

Here frames are ComfyUI IMAGEs ``[N, H, W, C]`` in 0..1. The resize is bicubic with antialiasing (FFmpeg's
scaler filters over the source footprint when it shrinks; PyTorch's ``antialias=True`` does the same), so it is
close to, not bit-equal with, decord's. ``center crop`` first crops to the target aspect, for users who want the
aspect kept (not what the original did).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

RESIZE_MODES = ("squash (original)", "center crop")


def original_frame_indices(total: int, frames: int, frame_stride: int) -> list[int]:
    """The frame indices Make-Your-Video reads (module docstring); ``frame_stride`` -1 = spread over the clip."""
    total, frames, frame_stride = int(total), int(frames), int(frame_stride)
    if frames < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    if frame_stride == 0 or frame_stride < -1:
        raise ValueError(f"frame_stride must be >= 1, or -1 to spread the frames over the clip; got {frame_stride}")
    if total < frames:
        raise ValueError(f"the clip has {total} frames, fewer than the {frames} requested: lower 'frames' or use a "
                         "longer clip")
    stride = total // frames if frame_stride == -1 else frame_stride
    if stride * (frames - 1) >= total:
        stride = total // frames  # the original's fallback for clips too short for the stride
    return [stride * i for i in range(frames)]


def center_crop_to_aspect(images: torch.Tensor, width: int, height: int) -> torch.Tensor:
    """Crop ``[N, H, W, C]`` around the centre to the aspect ``width : height``."""
    h, w = images.shape[1:3]
    if w * height > h * width:  # too wide
        new_w = max(1, round(h * width / height))
        x0 = (w - new_w) // 2
        return images[:, :, x0:x0 + new_w]
    new_h = max(1, round(w * height / width))
    y0 = (h - new_h) // 2
    return images[:, y0:y0 + new_h]


def resize_frames(images: torch.Tensor, width: int, height: int, mode: str = RESIZE_MODES[0]) -> torch.Tensor:
    """``[N, H, W, C]`` in 0..1 → ``[N, height, width, C]`` (bicubic, antialiased, clamped to 0..1)."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; choose one of {RESIZE_MODES}")
    if mode == RESIZE_MODES[1]:
        images = center_crop_to_aspect(images, width, height)
    if tuple(images.shape[1:3]) == (height, width):
        return images
    x = images.movedim(-1, 1).float()
    x = F.interpolate(x, size=(height, width), mode="bicubic", align_corners=False, antialias=True)
    return x.clamp(0.0, 1.0).movedim(1, -1).to(images.dtype)


def sample_clip(images: torch.Tensor, frames: int, frame_stride: int, width: int, height: int,
                mode: str = RESIZE_MODES[0]) -> torch.Tensor:
    """The original's input clip: ``frames`` frames every ``frame_stride``, resized to ``width × height``."""
    indices = original_frame_indices(images.shape[0], frames, frame_stride)
    return resize_frames(images[indices], width, height, mode)
