"""Guidance formulas: StyleCrafter's multi-condition CFG and temporal-consistency guidance.

Pure functions on model outputs (noise predictions ε, or ComfyUI's denoised x̂₀ = x − σ·ε: every
formula here is an affine combination whose weights sum to 1, so it gives the same guided result in
either space for the same x and σ). No ComfyUI import.

* :func:`multi_condition_cfg` — StyleCrafter's ``DDIMStyleSampler`` (SC ``lvdm/models/samplers/ddim.py:
  373-375``)::

      e = e(t, s) + λ_s · (e(t, s) − e(t, ∅)) + λ_t · (e(t, ∅) − e(∅, ∅))

  with ``t`` the text and ``s`` the second condition (style tokens; I2V image tokens work the same
  way). Note the form: it starts from the fully conditional prediction, not from ``e(∅, ∅)`` as
  ordinary CFG does; with λ_s = λ_t = λ it equals ordinary CFG of scale ``1 + λ``. The original's
  video defaults are λ_t = 15, λ_s = 7.5 (``scripts/run_infer_video.sh``).
* :func:`temporal_guidance` — Gen-1's temporal-consistency guidance ω_t (Esser et al. 2023, §3.3),
  VideoCrafter's ``unconditional_guidance_scale_temporal`` (``lvdm/models/samplers/ddim.py:245-248``)::

      e = e_guided + ω_t · (e_video(c) − e_frames(c))

  where ``e_frames`` is the model with its temporal layers switched off (each frame denoised as an
  image). In the original this is a silent no-op: the sampler passes ``no_temporal_attn=True`` but the
  UNet never reads it (``openaimodel3d.py:534``), so ``e_video == e_frames`` there. Here the frames
  pass really runs without temporal layers.
"""
from __future__ import annotations

import torch

#: StyleCrafter's video defaults (scripts/run_infer_video.sh: --unconditional_guidance_scale 15.0,
#: --unconditional_guidance_scale_style 7.5).
DEFAULT_TEXT_SCALE = 15.0
DEFAULT_STYLE_SCALE = 7.5


def multi_condition_cfg(e_full: torch.Tensor, e_text_only: torch.Tensor, e_uncond: torch.Tensor,
                        text_scale: float, condition_scale: float) -> torch.Tensor:
    """``e(t,s) + λ_s·(e(t,s) − e(t,∅)) + λ_t·(e(t,∅) − e(∅,∅))`` in the original's operation order.

    Args:
        e_full: prediction with text and the second condition, ``e(t, s)``.
        e_text_only: text without the second condition, ``e(t, ∅)``.
        e_uncond: neither, ``e(∅, ∅)`` (empty-prompt embedding, no style).
        text_scale: λ_t (``unconditional_guidance_scale``).
        condition_scale: λ_s (``unconditional_guidance_scale_style``).
    """
    return e_full + condition_scale * (e_full - e_text_only) + text_scale * (e_text_only - e_uncond)


def temporal_guidance(e_guided: torch.Tensor, e_video: torch.Tensor, e_frames: torch.Tensor,
                      temporal_scale: float) -> torch.Tensor:
    """``e_guided + ω_t · (e_video − e_frames)``; ``ω_t = 0`` returns ``e_guided`` itself.

    ``e_video`` and ``e_frames`` are the conditional prediction with and without temporal layers.
    """
    if temporal_scale == 0:
        return e_guided
    return e_guided + temporal_scale * (e_video - e_frames)
