"""Running a MiDaS DPT on video frames the way Make-Your-Video does, and a display form of its output.

Make-Your-Video ``LatentDepthDiffusion.get_batch_depth`` (``lvdm/models/ddpm3d.py:658-680``, reference
README §3 "Depth path") steps 1-3, which are the depth *estimation* part:

1. frames ``[N, 3, H, W]`` in [-1, 1] (``(uint8/255 - 0.5)·2``, ``inference_videorerendering.py:86-87``;
   this *is* MiDaS's NormalizeImage(0.5, 0.5), no other normalisation is applied);
2. ``F.interpolate(size=(384, 384), mode='bicubic')`` — align_corners False, **no antialias**, aspect
   not kept (``structure.midas_input``, shared with the structure path);
3. the DPT, then ``unsqueeze(1)`` and a same-size bicubic resize (``MiDaSInference.forward``,
   ``midas/api.py:158-170``; an exact identity, kept for fidelity).

Steps 4-6 (resize to the latent size and per-frame min-max to [-1, 1]) are structure conditioning
(``models/depth/structure.py``). :func:`depth_to_unit_range` is the display form used by the depth
node: the same bicubic resize and per-frame min-max (same ``1e-7`` guard) mapped to [0, 1], so that
``2·image - 1`` is exactly the original's normalised depth at that size (near = bright, since MiDaS
predicts inverse depth).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .dpt import NET_SIZE
from .structure import NORM_EPS as MINMAX_EPS  # get_batch_depth: 2*(d - min)/(max - min + 1e-7) - 1 (ddpm3d.py:676)
from .structure import midas_input


@torch.no_grad()
def estimate_inverse_depth(model: torch.nn.Module, frames: torch.Tensor, size: int = NET_SIZE) -> torch.Tensor:
    """Steps 1-3: frames ``[N, 3, H, W]`` in [-1, 1] → MiDaS inverse depth ``[N, 1, size, size]`` (≥ 0)."""
    if frames.ndim != 4 or frames.shape[1] != 3:
        raise ValueError(f"expected frames [N, 3, H, W], got {tuple(frames.shape)}")
    x = midas_input(frames, size)
    prediction = model(x).unsqueeze(1)
    return F.interpolate(prediction, size=x.shape[2:], mode="bicubic", align_corners=False)


def depth_to_unit_range(depth: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
    """``[N, 1, h, w]`` → bicubic to ``size`` (if given) → per-frame min-max to [0, 1]."""
    if size is not None and tuple(depth.shape[-2:]) != tuple(size):
        depth = F.interpolate(depth, size=tuple(size), mode="bicubic", align_corners=False)
    low = depth.amin(dim=(1, 2, 3), keepdim=True)
    high = depth.amax(dim=(1, 2, 3), keepdim=True)
    return (depth - low) / (high - low + MINMAX_EPS)
