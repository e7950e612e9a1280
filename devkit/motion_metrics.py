"""Measure what a generated shapes video shows: where the object is, how it moves, its colour, flicker.

Every block's quality tests use these on videos of the demonstration model (``devkit/demo_model``):
motion follows the prompt, the colour is the prompt's, frames are temporally consistent, an I2V video
keeps its first frame, keyframe interpolation puts the object between its keyframes, long videos
move without jumps at window seams.

The object is found by saturation: the dataset's objects are saturated colours (red, green, blue,
yellow) and its backgrounds are greys (plain, black or checkered), so ``max(rgb) − min(rgb)`` separates
them without knowing the background. Frames are ``[T, H, W, 3]`` in ``[0, 1]`` (ComfyUI IMAGE).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .shapes_dataset import COLOURS, DIRECTIONS

SATURATION_THRESHOLD = 0.25  # dataset objects have saturation >= 0.7, backgrounds 0; decoded edges blur between


def object_mask(frames: torch.Tensor, threshold: float = SATURATION_THRESHOLD) -> torch.Tensor:
    """``[T, H, W]`` bool: the pixels whose saturation says they belong to the object."""
    frames = frames.float().clamp(0, 1)
    return (frames.amax(-1) - frames.amin(-1)) > threshold


@dataclass
class Track:
    """The object per frame: centre (x, y) in pixels, area in pixels, and whether it was found."""

    centres: torch.Tensor  # [T, 2]
    areas: torch.Tensor  # [T]
    found: torch.Tensor  # [T] bool (area >= min_area)

    @property
    def velocity(self) -> torch.Tensor:
        """Least-squares slope (dx, dy) in pixels per frame over the frames where the object was found."""
        return _slope(self.centres, self.found)

    @property
    def growth(self) -> float:
        """Least-squares slope of log(area) per frame (> 0 growing, < 0 shrinking)."""
        return float(_slope(self.areas.clamp_min(1.0).log().unsqueeze(-1), self.found)[0])

    @property
    def jitter(self) -> float:
        """RMS distance (px) of the centres from their straight-line fit: the trajectory's unsteadiness."""
        t = torch.arange(self.centres.shape[0], dtype=torch.float32)
        mask = self.found
        if int(mask.sum()) < 3:
            return float("inf")
        fit = self.centres[mask].mean(0) + (t[mask] - t[mask].mean()).unsqueeze(-1) * self.velocity
        return float((self.centres[mask] - fit).pow(2).sum(-1).mean().sqrt())


def _slope(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    t = torch.arange(values.shape[0], dtype=torch.float32)[mask]
    v = values[mask].float()
    if t.numel() < 2:
        return torch.zeros(values.shape[-1])
    tc = t - t.mean()
    return (tc.unsqueeze(-1) * (v - v.mean(0))).sum(0) / tc.pow(2).sum()


def track_object(frames: torch.Tensor, min_area: float = 12.0) -> Track:
    """Centroid and area of the object in every frame (``min_area`` pixels to count as found)."""
    mask = object_mask(frames).float()
    t, h, w = mask.shape
    areas = mask.sum((1, 2))
    ys = torch.arange(h, dtype=torch.float32).view(1, h, 1) + 0.5
    xs = torch.arange(w, dtype=torch.float32).view(1, 1, w) + 0.5
    safe = areas.clamp_min(1e-6)
    centres = torch.stack([(mask * xs).sum((1, 2)) / safe, (mask * ys).sum((1, 2)) / safe], -1)
    return Track(centres, areas, areas >= min_area)


def classify_motion(track: Track, min_speed: float = 0.5, min_growth: float = 0.03) -> str:
    """``left``/``right``/``up``/``down``/``growing``/``shrinking``, or ``still`` / ``lost``.

    A translation needs ≥ ``min_speed`` px/frame along its dominant axis; otherwise a change of
    log-area of ≥ ``min_growth`` per frame is growing/shrinking. Dataset clips move 1.7–2.9 px/frame
    and grow/shrink by 0.07–0.14 log-area per frame, so both limits sit well below real motion.
    """
    if int(track.found.sum()) < track.found.numel() // 2:
        return "lost"
    dx, dy = track.velocity.tolist()
    if max(abs(dx), abs(dy)) >= min_speed:
        if abs(dx) >= abs(dy):
            return "right" if dx > 0 else "left"
        return "down" if dy > 0 else "up"
    growth = track.growth
    if abs(growth) >= min_growth:
        return "growing" if growth > 0 else "shrinking"
    return "still"


def direction_agreement(track: Track, motion: str) -> float:
    """Cosine between the measured velocity and the prompt's direction (1 = exactly as asked)."""
    velocity = track.velocity
    norm = float(velocity.norm())
    if norm == 0.0:
        return 0.0
    return float(velocity @ torch.tensor(DIRECTIONS[motion])) / norm


def object_colour(frames: torch.Tensor) -> str | None:
    """The dataset colour name nearest to the object's mean colour (None if no object is found)."""
    mask = object_mask(frames).float().unsqueeze(-1)
    if float(mask.sum()) < 12.0:
        return None
    mean = (frames.float().clamp(0, 1) * mask).sum((0, 1, 2)) / mask.sum()
    return min(COLOURS, key=lambda name: float((torch.tensor(COLOURS[name]) - mean).pow(2).sum()))


def background_flicker(frames: torch.Tensor) -> float:
    """Mean absolute change between consecutive frames on pixels that are background in both (0..1 scale).

    A still background should not change; this is the temporal inconsistency that per-frame
    generation (temporal layers off) shows and temporal guidance is meant to reduce.
    """
    frames = frames.float().clamp(0, 1)
    mask = object_mask(frames)
    background = (~mask[1:]) & (~mask[:-1])
    change = (frames[1:] - frames[:-1]).abs().mean(-1)
    return float((change * background).sum() / background.sum().clamp_min(1))


def frame_error(frames: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean absolute difference between ``frames[0]`` and a reference image ``[H, W, 3]`` (I2V keeps it)."""
    return float((frames[0].float() - reference.float()).abs().mean())
