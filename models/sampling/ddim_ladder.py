"""DDIM arrays for an arbitrary descending ladder of timesteps (what a ComfyUI SIGMAS tensor encodes).

The original sampler builds its arrays from ``S`` alone (``models.sampling.ddim.make_ddim_arrays``). Inside
ComfyUI the step ladder arrives as SIGMAS, which may be the original DDIM ladder, a truncated
one (denoise < 1), or any other scheduler's. This module builds the same :class:`DDIMArrays`
from the ladder itself: step ``k`` goes from ``timesteps[k]`` to ``previous[k]`` (``None`` = the
clean end, ᾱ = 1, s = 1). For the original ladder (previous of the lowest step = t 0) the result
equals ``make_ddim_arrays`` exactly (tested), so the same ``ddim_step`` reproduces the original.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .ddim import DDIMArrays, sampling_parameters


def ddim_arrays_for_ladder(alphas_cumprod: torch.Tensor, scale_per_timestep: torch.Tensor | None,
                           timesteps: Sequence[int], previous: Sequence[int | None], eta: float) -> DDIMArrays:
    """Arrays indexed like the original's (ascending t): ``timesteps`` and ``previous`` are given
    in sampling order (descending t) and reversed here.

    Dtypes and arithmetic are ``make_ddim_arrays``'s (through ``sampling_parameters``): ``alphas``
    float32, ``alphas_prev`` float64 of float32 values, ``sigmas`` float64.
    """
    if len(timesteps) != len(previous):
        raise ValueError("timesteps and previous must have the same length")
    acp = alphas_cumprod.float().numpy()
    ts = torch.tensor(list(reversed([int(t) for t in timesteps])), dtype=torch.int64)
    prev = list(reversed(previous))
    alphas = torch.from_numpy(acp[ts.numpy()].copy())
    alphas_prev = torch.tensor([float(acp[p]) if p is not None else 1.0 for p in prev], dtype=torch.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # a clean end (a_prev = 1) gives 0, not NaN, below
        sigmas, sqrt_one_minus = sampling_parameters(alphas, alphas_prev, eta)
    sigmas = torch.nan_to_num(sigmas.clamp_min(0.0))
    scale_arr = scale_prev = None
    if scale_per_timestep is not None:
        scale = scale_per_timestep.float()
        scale_arr = scale[ts]
        scale_prev = torch.tensor([float(scale[p]) if p is not None else 1.0 for p in prev], dtype=torch.float64)
    return DDIMArrays(ts, alphas, alphas_prev, sqrt_one_minus, sigmas, scale_arr, scale_prev, float(eta))


def is_original_ladder(timesteps_desc: Sequence[int], num_train_timesteps: int = 1000) -> bool:
    """True when the ladder is a complete original 'uniform' DDIM ladder ``arange(0, T, c) + 1``.

    Such a run starts, as the original does, from pure noise ``x_T ~ N(0, I)`` at its top step.
    """
    ascending = [int(t) for t in reversed(list(timesteps_desc))]
    if not ascending or ascending[0] != 1:
        return False
    if len(ascending) == 1:
        return True
    stride = ascending[1] - ascending[0]
    return stride > 0 and ascending == list(range(1, num_train_timesteps + 1, stride))[:len(ascending)] and \
        ascending[-1] + stride > num_train_timesteps
