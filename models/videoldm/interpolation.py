"""Keyframe interpolation by masked generation (VideoLDM §3.3), as pure tensor math.

VideoLDM trains a dedicated latent interpolation model: keyframes are given, the frames between
them are generated with a mask telling the model which frames are known (T → 4T, applied twice
for 16T). The training-free form here uses the video model as it is and holds the keyframes
through the sampler's inpainting mask (ComfyUI ``noise_mask``: 1 = generate, 0 = keep), so every
step the keyframes re-enter at the current noise level and the temporal layers pull the
in-betweens towards them.

Layout of a ×k result: ``k·T`` frames, keyframe ``i`` at frame ``k·i``. A T-frame clip at f fps and
the k·T-frame clip at k·f fps last the same time, so the frame-rate condition scales by k too;
the ``k − 1`` frames after the last keyframe are its continuation (generated with one bound).
"""
from __future__ import annotations

import math

import torch

FACTORS = (2, 4, 8, 16)
INIT_MODES = ("noise", "linear", "slerp", "nearest")


def keyframe_positions(keyframes: int, factor: int) -> list[int]:
    """Frame index of each keyframe in the ×factor result."""
    return [factor * i for i in range(keyframes)]


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of two latents seen as vectors (linear when they are parallel)."""
    a_flat, b_flat = a.reshape(-1).double(), b.reshape(-1).double()
    cos = torch.dot(a_flat, b_flat) / (a_flat.norm() * b_flat.norm()).clamp_min(1e-12)
    theta = torch.arccos(cos.clamp(-1.0, 1.0))
    if float(theta) < 1e-4:
        return torch.lerp(a, b, t)
    sin = torch.sin(theta)
    wa, wb = torch.sin((1.0 - t) * theta) / sin, torch.sin(t * theta) / sin
    return (wa * a.double() + wb * b.double()).to(a.dtype)


def in_between(a: torch.Tensor, b: torch.Tensor | None, t: float, mode: str) -> torch.Tensor:
    """Initial value of an in-between frame at fraction ``t`` from keyframe ``a`` to ``b``.

    ``noise``: zeros (at denoise 1 only the sampling noise matters); ``nearest``: the closer
    keyframe; ``linear`` / ``slerp``: blends. After the last keyframe (``b`` is None) every mode
    except ``noise`` holds ``a``.
    """
    if mode == "noise":
        return torch.zeros_like(a)
    if b is None:
        return a.clone()
    if mode == "nearest":
        return (a if t <= 0.5 else b).clone()
    if mode == "linear":
        return torch.lerp(a, b, t)
    if mode == "slerp":
        return slerp(a, b, t)
    raise ValueError(f"init must be one of {INIT_MODES}, got {mode!r}")


def assemble_keyframes(keyframes: torch.Tensor, factor: int, init: str = "linear"):
    """``[T, C, h, w]`` keyframes → (``[k·T, C, h, w]`` latent, ``[k·T, 1, h, w]`` noise_mask).

    The mask is built for the assembled frames (1 = generate, 0 = keep), so it cannot be
    misaligned by a later concatenation.
    """
    if factor not in FACTORS:
        raise ValueError(f"factor must be one of {FACTORS}, got {factor}")
    if init not in INIT_MODES:
        raise ValueError(f"init must be one of {INIT_MODES}, got {init!r}")
    count = keyframes.shape[0]
    frames = []
    for i in range(count):
        a = keyframes[i]
        b = keyframes[i + 1] if i + 1 < count else None
        frames.append(a.clone())
        frames.extend(in_between(a, b, j / factor, init) for j in range(1, factor))
    latent = torch.stack(frames)
    mask = torch.ones((latent.shape[0], 1, *latent.shape[2:]), dtype=torch.float32, device=latent.device)
    mask[keyframe_positions(count, factor)] = 0.0
    return latent, mask


def kept_frames(mask: torch.Tensor) -> list[int]:
    """Frames a noise_mask keeps entirely (all zeros): the keyframes."""
    flat = mask.reshape(mask.shape[0], -1)
    return [i for i in range(flat.shape[0]) if float(flat[i].abs().max()) == 0.0]


def keyframe_windows(frames: int, kept: list[int], window: int) -> list[tuple[int, int]]:
    """Windows ``[start, end)`` covering all frames, each bounded by keyframes, ≤ ``window`` long.

    Consecutive windows share their bounding keyframe (held, so both windows agree on it). A
    gap longer than ``window − 1`` becomes one window of ``gap + 1`` frames (a ×16 gap with two
    bounds is 17 frames): the bounds are what makes the in-betweens interpolate. Without
    keyframes, or when everything fits, one window holds all frames.
    """
    if window < 2:
        raise ValueError(f"window must be at least 2 frames, got {window}")
    if frames <= window or not kept:
        return [(0, frames)]
    bounds = sorted(set(kept))
    windows = []
    if bounds[0] > 0:  # frames before the first keyframe: continuation backwards from it
        windows.extend(_plain_windows(0, bounds[0] + 1, window))
    start = bounds[0]
    i = 0
    while i < len(bounds) - 1:
        j = i + 1
        while j + 1 < len(bounds) and bounds[j + 1] - start + 1 <= window:
            j += 1
        windows.append((start, bounds[j] + 1))
        start, i = bounds[j], j
    if start < frames - 1:  # after the last keyframe
        windows.extend(_plain_windows(start, frames, window))
    return windows


def _plain_windows(start: int, end: int, window: int) -> list[tuple[int, int]]:
    """Cover ``[start, end)`` with windows of ≤ ``window`` frames that overlap by one frame (the
    sampler holds a frame made by an earlier window as a keyframe of the next)."""
    if end - start <= window:
        return [(start, end)]
    count = math.ceil((end - start - 1) / (window - 1))
    edges = [start + round(i * (end - 1 - start) / count) for i in range(count + 1)]
    return [(edges[i], edges[i + 1] + 1) for i in range(count)]
