"""RePaint resampling schedule (Lugmayr et al. 2022, "RePaint", §4.2 "Resampling").

Plain replacement of the known region (here: the keyframes) at every step harmonises the
generated region with it only weakly: the known content enters through the noisy input alone.
RePaint lets the sampler go ``jump`` steps down, re-noises back up those ``jump`` steps, and
repeats, ``resample`` passes in all, so the generated frames are denoised again with
better-matched context. The schedule follows the official ``get_schedule_jump``
(andreas128/RePaint ``guided_diffusion/scheduler.py``): jump points every ``jump`` steps counted
from the last noisy level, ``resample − 1`` jumps back at each; ``resample = 1`` is the plain
schedule.

Levels are indices into a sigma ladder of ``steps + 1`` entries (0 = noisiest, ``steps`` = end).
"""
from __future__ import annotations


def repaint_schedule(steps: int, jump: int, resample: int) -> list[tuple[str, int, int]]:
    """Segments ``("down", a, b)`` (sample from level a to b > a) and ``("up", a, b)`` (re-noise
    from level a back to b < a), in order, merging consecutive down steps."""
    if steps < 1:
        return []
    if jump < 1 or resample < 1:
        raise ValueError(f"jump and resample must be at least 1, got jump={jump}, resample={resample}")
    last_noisy = steps - 1
    jumps = {p: resample - 1 for p in range(last_noisy, jump - 1, -jump)} if resample > 1 else {}
    segments: list[tuple[str, int, int]] = []
    level = 0
    start = 0
    while level < steps:
        level += 1
        if jumps.get(level, 0) > 0:
            jumps[level] -= 1
            segments.append(("down", start, level))
            segments.append(("up", level, level - jump))
            start = level = level - jump
    segments.append(("down", start, steps))
    return segments


def model_calls(schedule: list[tuple[str, int, int]]) -> int:
    """Sampler steps a schedule runs (its cost in model evaluations per step of the sampler)."""
    return sum(b - a for kind, a, b in schedule if kind == "down")
