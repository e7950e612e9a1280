"""The original VideoCrafter DDIM inside ComfyUI: a SAMPLER, its SIGMAS and original-order NOISE.

- :func:`sample_videocrafter_ddim` is a k-diffusion-style sampler function: ComfyUI hands it ``y``
  on the σ' ladder (see :mod:`.model`); it converts to the model's ``x_t`` space and applies
  ``models.sampling.ddim.ddim_step`` — upstream ``p_sample_ddim`` arithmetic, float32 coefficients —
  with the eps recovered from ComfyUI's (guided) denoised output, ``ε = (y − D) / σ'``.
- :class:`VideoCrafterDDIM` overrides ``max_denoise``: a complete original ladder starts from
  ``x_T ~ N(0, I)`` in ``x_t`` space at its top step (t = 981 for 50 steps), like the original,
  although that step is below σ'_max.
- :func:`ddim_sigmas` is the original ladder (``arange(0, 1000, 1000 // S) + 1``) ending at
  t = 0, so the last step goes to ``ᾱ_0``, not 1 (ddim.py:22-60).
- :class:`OriginalOrderVideoNoise` draws ``torch.randn([B, C, T, H, W])`` from the seed as the
  original does and lays it out batch-as-frames; the sampler continues the same generator for
  the per-step noise, so a seed gives the original's video.
"""
from __future__ import annotations

import comfy.samplers
import torch
from einops import rearrange
from tqdm.auto import trange

from ..models.sampling.ddim import OriginalOrderNoise, ddim_step, ddim_timesteps
from ..models.sampling.ddim_ladder import ddim_arrays_for_ladder, is_original_ladder
from .model import VideoCrafterModelSampling


def _tables(model_sampling):
    """(ᾱ per timestep float32, s_t per timestep or None, x_t/y factor per timestep)."""
    if isinstance(model_sampling, VideoCrafterModelSampling):
        return model_sampling.alphas_cumprod, model_sampling.scale_per_timestep, model_sampling.input_scale
    sigmas = model_sampling.sigmas.double()  # any other EPS model: ᾱ = 1 / (1 + σ²), no scale
    acp = (1.0 / (1.0 + sigmas ** 2)).float()
    return acp, None, acp.double().sqrt().float()


def _ladder(model_sampling, sigmas):
    """Integer timesteps of every sigma; a trailing 0 means the clean end (None)."""
    steps = [int(t) for t in model_sampling.timestep(sigmas[:-1]).reshape(-1).tolist()]
    previous = steps[1:] + [None if float(sigmas[-1]) == 0.0 else int(model_sampling.timestep(sigmas[-1:])[0])]
    return steps, previous


def frames_per_video(model_wrap, batch: int) -> int:
    """Frames of one video: the ``num_video_frames`` the model will see (one video per batch)."""
    conds = getattr(model_wrap, "conds", None) or {}
    for cond_list in conds.values():
        for cond in cond_list or []:
            value = cond.get("model_conds", {}).get("num_video_frames")
            if value is not None:
                return int(value.cond)
    return batch


def original_order_noise(seed: int, latent: torch.Tensor, frames: int) -> OriginalOrderNoise:
    videos = latent.shape[0] // frames
    return OriginalOrderNoise(seed, (videos, latent.shape[1], frames, *latent.shape[2:]))


@torch.no_grad()
def sample_videocrafter_ddim(model, x, sigmas, extra_args=None, callback=None, disable=None, eta=1.0,
                             noise_sampler=None):
    """Exact VideoCrafter DDIM over the given sigma ladder (see the module docstring)."""
    extra_args = {} if extra_args is None else extra_args
    model_sampling = model.inner_model.inner_model.model_sampling
    acp, scale, input_scale = _tables(model_sampling)
    steps, previous = _ladder(model_sampling, sigmas)
    arrays = ddim_arrays_for_ladder(acp, scale, steps, previous, eta)
    frames = frames_per_video(model.inner_model, x.shape[0])
    if noise_sampler is None:
        noise_stream = original_order_noise(extra_args.get("seed", 0), x, frames)
        noise_sampler = lambda i: rearrange(noise_stream(i), "b c t h w -> (b t) c h w")  # noqa: E731
    factor = lambda t: input_scale[t].to(x)  # noqa: E731
    x_t = x * factor(steps[0])
    total = len(steps)
    for i in trange(total, disable=disable):
        index = total - i - 1
        sigma = sigmas[i]
        y = x_t / factor(steps[i])
        denoised = model(y, sigma * y.new_ones([y.shape[0]]), **extra_args)
        eps = (y - denoised) / sigma
        noise = noise_sampler(i).to(x_t)  # drawn every step, even at eta 0, as the original (common.py:31-34)
        x_t, pred_x0 = ddim_step(x_t, eps, index, arrays, noise)
        if callback is not None:
            callback({"x": y, "i": i, "sigma": sigma, "sigma_hat": sigma, "denoised": denoised})
    end = previous[-1]
    result = x_t if end is None else x_t / factor(end)
    if end is None or end == 0:  # the clean end (a RePaint stretch may stop higher up the ladder)
        result = _hold_kept_frames(model, extra_args, result, None if end is None else factor(end))
    return result


def _hold_kept_frames(model, extra_args, result, end_factor):
    """Frames a ``noise_mask`` keeps (0 = keep) end exactly as given (keyframes, context frames).

    Core samplers end at σ = 0, where ``KSamplerX0Inpaint`` has already replaced them. This ladder
    ends at t = 0 (``ᾱ_0`` < 1) in the model's ``x_t`` space, where the kept frames would carry the
    last step's residual noise; written as ``latent / factor`` they come out of core's
    ``inverse_noise_scaling`` (× factor) equal to the input latent.
    """
    mask = extra_args.get("denoise_mask")
    latent = getattr(model, "latent_image", None)
    if mask is None or latent is None:
        return result
    kept = latent if end_factor is None else latent / end_factor
    return result * mask + kept.to(result) * (1.0 - mask)


class VideoCrafterDDIM(comfy.samplers.KSAMPLER):
    """KSAMPLER whose run starts from pure noise on a complete original DDIM ladder."""

    def __init__(self, eta: float = 1.0, noise_sampler=None):
        options = {"eta": eta}
        if noise_sampler is not None:
            options["noise_sampler"] = noise_sampler
        super().__init__(sample_videocrafter_ddim, extra_options=options)

    def max_denoise(self, model_wrap, sigmas):
        if super().max_denoise(model_wrap, sigmas):
            return True
        model_sampling = model_wrap.inner_model.model_sampling
        steps, previous = _ladder(model_sampling, sigmas)
        return previous[-1] == 0 and is_original_ladder(steps, len(model_sampling.sigmas))


def ddim_sigmas(model_sampling, steps: int, denoise: float = 1.0) -> torch.Tensor:
    """σ' of the original DDIM ladder for ``steps`` steps, ending at t = 0 (ᾱ_0), as SIGMAS.

    ``denoise < 1`` keeps the last ``steps`` of a ``round(steps / denoise)``-step ladder, as core
    schedulers do.
    """
    total_train = len(model_sampling.sigmas)
    total = steps if denoise >= 1.0 else max(steps, int(round(steps / max(denoise, 1e-4))))
    total = min(total, total_train - 1)
    try:
        ladder = ddim_timesteps(total, total_train).flip(0)
    except ValueError:  # e.g. 3 steps: the original's ladder would index t = 1000 and crash; drop that step
        ladder = torch.arange(0, total_train, total_train // total) + 1
        ladder = ladder[ladder < total_train].flip(0)
    keep = ladder[-min(steps, len(ladder)):] if denoise < 1.0 else ladder
    indices = torch.cat([keep, torch.zeros(1, dtype=torch.int64)])
    return model_sampling.sigmas[indices].float().clone()


class OriginalOrderVideoNoise:
    """NOISE for SamplerCustomAdvanced: the original's ``x_T`` for a seed, batch-as-frames."""

    def __init__(self, seed: int, frames: int | None = None):
        self.seed = int(seed)
        self.frames = frames

    def generate_noise(self, input_latent):
        latent = input_latent["samples"]
        frames = self.frames or latent.shape[0]
        noise = original_order_noise(self.seed, latent, frames).x_T()
        return rearrange(noise, "b c t h w -> (b t) c h w").to(latent.dtype)
