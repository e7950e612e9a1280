"""Long video by prediction (VideoLDM §3.2), the bookkeeping as pure tensor math.

VideoLDM trains its model to predict new frames from S = 0, 1 or 2 given context frames (a mask
over frames, as for interpolation) and rolls it out: each new segment is conditioned on the last
frames of what already exists. The training-free form holds the context frames through the
sampler's inpainting mask; this module says which frames are context, how strongly they are held
(the overlap blend) and how the segments join into one clip.
"""
from __future__ import annotations

import math

import torch

BLENDS = ("hold", "linear", "cosine")


def context_mask_values(context: int, blend: str) -> list[float]:
    """noise_mask value (0 = keep, 1 = generate) of each context frame, oldest first.

    ``hold``: every context frame is kept exactly. ``linear`` / ``cosine``: the hold fades out
    towards the new frames (m_i = ramp((i + 1) / (S + 1))), so the newest context frames are partly
    re-generated and the segment joins the clip with a cross-fade instead of a hard cut.
    """
    if blend not in BLENDS:
        raise ValueError(f"blend must be one of {BLENDS}, got {blend!r}")
    fractions = [(i + 1) / (context + 1) for i in range(context)]
    if blend == "hold":
        return [0.0] * context
    if blend == "linear":
        return fractions
    return [0.5 - 0.5 * math.cos(math.pi * f) for f in fractions]


def segment_layout(existing: int, segment_frames: int, context: int) -> tuple[int, int]:
    """(context frames actually used, new frames) of the next segment given ``existing`` frames."""
    if segment_frames < 1:
        raise ValueError(f"segment_frames must be at least 1, got {segment_frames}")
    if not 0 <= context < segment_frames:
        raise ValueError(f"context frames must be between 0 and segment_frames - 1 ({segment_frames - 1}), "
                         f"got {context}")
    used = min(context, existing)
    return used, segment_frames - used


def total_frames(existing: int, segments: int, segment_frames: int, context: int) -> int:
    """Length of the clip after ``segments`` predicted segments."""
    for _ in range(segments):
        used, new = segment_layout(existing, segment_frames, context)
        existing += new
    return existing


def segment_input(clip: torch.Tensor, segment_frames: int, context: int, blend: str):
    """(segment latent, segment noise_mask ``[F, 1, h, w]``, context count) for the next segment.

    The context frames are the last frames of ``clip``; the new frames start at zeros (their
    content comes from the noise; at denoise < 1 they start from zeros, a blank).
    """
    used, new = segment_layout(clip.shape[0], segment_frames, context)
    fresh = torch.zeros((new, *clip.shape[1:]), dtype=clip.dtype, device=clip.device)
    latent = torch.cat([clip[clip.shape[0] - used:], fresh]) if used else fresh
    values = context_mask_values(used, blend) + [1.0] * new
    mask = torch.tensor(values, dtype=torch.float32, device=clip.device).view(-1, 1, 1, 1)
    mask = mask.expand(-1, 1, *clip.shape[2:]).contiguous()
    return latent, mask, used


def join_segment(clip: torch.Tensor, segment: torch.Tensor, used: int, blend: str) -> torch.Tensor:
    """Append a sampled segment: held context frames stay as they were; blended ones take the
    segment's (already cross-faded) version."""
    if used == 0:
        return torch.cat([clip, segment])
    if blend == "hold":
        return torch.cat([clip, segment[used:]])
    return torch.cat([clip[:clip.shape[0] - used], segment])
