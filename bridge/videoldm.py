"""VideoLDM blocks in ComfyUI: RePaint SAMPLER wrapper, keyframe windows, prediction, tiled re-denoise.

Every block drives the user's own GUIDER / SAMPLER / SIGMAS / NOISE (what SamplerCustomAdvanced
takes), one piece at a time — a window of frames, a segment, a spatial tile — so memory is that of
one piece and every core sampler and the pack's DDIM work. Known frames are held by core's
``noise_mask`` (``KSamplerX0Inpaint``: 1 = generate, 0 = keep); the math lives in
``models/videoldm``.
"""
from __future__ import annotations

import copy
import math

import comfy.model_management
import comfy.model_sampling
import comfy.sample
import comfy.samplers
import comfy.utils
import latent_preview
import torch

from ..models.videoldm.interpolation import keyframe_windows, kept_frames
from ..models.videoldm.prediction import join_segment, segment_input
from ..models.videoldm.repaint import model_calls, repaint_schedule
from ..models.videoldm.tiles import tile_grid, tiled_apply


class RePaintSampler(comfy.samplers.Sampler):
    """RePaint resampling (Lugmayr 2022) around any KSAMPLER: sample ``jump`` steps down, re-noise
    them back up, ``resample`` passes over every stretch (``models/videoldm/repaint.py``).

    ``resample = 1`` hands the whole run to the base sampler unchanged, so it equals it exactly.
    Each down stretch runs the base sampler's own function on that part of the ladder (seed offset
    per stretch, so ancestral noise is not repeated); re-noising is ``x + sqrt(σ_hi² − σ_lo²)·n``,
    the forward process of EPS / V models in ComfyUI's ``x = x0 + σ·ε`` space.
    """

    def __init__(self, base, jump: int, resample: int):
        self.base = base
        self.jump = int(jump)
        self.resample = int(resample)

    def max_denoise(self, model_wrap, sigmas):
        return self.base.max_denoise(model_wrap, sigmas)

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):
        steps = len(sigmas) - 1
        schedule = repaint_schedule(steps, self.jump, self.resample)
        if self.resample <= 1 or len(schedule) == 1:
            return self.base.sample(model_wrap, sigmas, extra_args, callback, noise, latent_image, denoise_mask,
                                    disable_pbar)
        if not isinstance(self.base, comfy.samplers.KSAMPLER):
            raise ValueError(f"RePaint resampling needs a KSAMPLER-based sampler (every core sampler and the "
                             f"VideoCrafter DDIM are); got {type(self.base).__name__}. Use resample 1 with it.")
        model_sampling = model_wrap.inner_model.model_sampling
        if isinstance(model_sampling, comfy.model_sampling.CONST):
            raise ValueError("RePaint resampling re-noises as x + sqrt(σ_hi² − σ_lo²)·n (EPS / V models); this "
                             "model is a flow (CONST) model. Use resample 1 with it.")
        seed = int(extra_args.get("seed", 0) or 0)
        extra_args["denoise_mask"] = denoise_mask
        model_k = comfy.samplers.KSamplerX0Inpaint(model_wrap, sigmas)
        model_k.latent_image = latent_image
        if self.base.inpaint_options.get("random", False):  # as KSAMPLER.sample (core "ddim")
            generator = torch.manual_seed(seed + 1)
            model_k.noise = torch.randn(noise.shape, generator=generator, device="cpu").to(noise)
        else:
            model_k.noise = noise
        x = model_sampling.noise_scaling(sigmas[0], noise, latent_image, self.max_denoise(model_wrap, sigmas))
        total, done = model_calls(schedule), 0
        generator = torch.Generator(device="cpu").manual_seed(seed + 0x5EED)
        for index, (kind, a, b) in enumerate(schedule):
            if kind == "up":
                spread = (sigmas[b] ** 2 - sigmas[a] ** 2).clamp_min(0).sqrt()
                fresh = torch.randn(x.shape, generator=generator, device="cpu").to(x)
                x = x + spread * fresh
                continue
            k_callback = None
            if callback is not None:
                k_callback = (lambda offset: lambda d: callback(offset + d["i"], d["denoised"], d["x"], total))(done)
            stretch_args = dict(extra_args, seed=seed + index)
            x = self.base.sampler_function(model_k, x, sigmas[a:b + 1], extra_args=stretch_args, callback=k_callback,
                                           disable=disable_pbar, **self.base.extra_options)
            done += b - a
        return model_sampling.inverse_noise_scaling(sigmas[-1], x)


class PieceProgress:
    """One progress bar and latent preview over several sampler runs (windows, segments, tiles)."""

    def __init__(self, model_patcher, pieces: int, steps: int):
        self.previewer = latent_preview.get_previewer(model_patcher.load_device, model_patcher.model.latent_format)
        self.pieces, self.steps = pieces, max(steps, 1)
        self.bar = comfy.utils.ProgressBar(pieces * self.steps)

    def callback(self, piece: int):
        def report(step, x0, x, total_steps):
            preview = self.previewer.decode_latent_to_preview_image("JPEG", x0) if self.previewer else None
            self.bar.update_absolute(piece * total_steps + step + 1, self.pieces * total_steps, preview)
        return report


def _noise_for(noise, offset: int, latent: dict) -> torch.Tensor:
    """The NOISE's tensor for ``latent`` with its seed moved by ``offset`` (0 = the NOISE as given)."""
    if offset and hasattr(noise, "seed"):
        noise = copy.copy(noise)
        noise.seed = int(noise.seed) + offset
    return noise.generate_noise(latent)


def _sample(guider, sampler, sigmas, noise, latent, mask, seed, callback):
    out = guider.sample(noise, latent, sampler, sigmas, denoise_mask=mask, callback=callback,
                        disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
    return out.to(comfy.model_management.intermediate_device())


def _frame_mask(latent: dict, samples: torch.Tensor) -> torch.Tensor | None:
    mask = latent.get("noise_mask")
    if mask is None:
        return None
    return comfy.utils.reshape_mask(mask, samples.shape).to(samples.device)[:, :1]


def sample_keyframe_windows(guider, sampler, sigmas, noise, latent: dict, window: int) -> torch.Tensor:
    """Sample a keyframe-masked clip window by window (VideoLDM §3.3 at any length).

    Each window spans the keyframes that bound it (``keyframe_windows``); the whole clip's noise is
    drawn once and sliced, so a clip that fits one window gives what SamplerCustomAdvanced gives.
    A frame made by an earlier window is held in the next. Kept frames are copied from the input
    untouched (bit-exact).
    """
    samples = comfy.sample.fix_empty_latent_channels(guider.model_patcher, latent["samples"])
    latent = dict(latent, samples=samples)
    mask = _frame_mask(latent, samples)
    full_noise = noise.generate_noise(latent)
    seed = getattr(noise, "seed", None)
    if mask is None:
        return _sample(guider, sampler, sigmas, full_noise, samples, None, seed,
                       PieceProgress(guider.model_patcher, 1, len(sigmas) - 1).callback(0))
    windows = keyframe_windows(samples.shape[0], kept_frames(mask), window)
    progress = PieceProgress(guider.model_patcher, len(windows), len(sigmas) - 1)
    result, mask, done = samples.clone(), mask.clone(), torch.zeros(samples.shape[0], dtype=torch.bool)
    for index, (a, b) in enumerate(windows):
        window_mask = mask[a:b].clone()
        window_mask[done[a:b]] = 0.0  # made by an earlier window: now a keyframe of this one
        out = _sample(guider, sampler, sigmas, full_noise[a:b], result[a:b], window_mask,
                      None if seed is None else seed + index, progress.callback(index))
        generated = window_mask.reshape(b - a, -1).amax(dim=1) > 0
        result[a:b][generated] = out[generated].to(result)
        done[a:b] = True
    return result


def extend_by_prediction(guider, sampler, sigmas, noise, clip: torch.Tensor, segments: int, segment_frames: int,
                         context: int, blend: str, on_segment=None) -> torch.Tensor:
    """Append ``segments`` segments of ``segment_frames`` frames, each predicted from the last
    ``context`` frames of the clip so far (VideoLDM §3.2). Only one segment is sampled at a time."""
    clip = comfy.sample.fix_empty_latent_channels(guider.model_patcher, clip)
    progress = PieceProgress(guider.model_patcher, segments, len(sigmas) - 1)
    for index in range(segments):
        segment, mask, used = segment_input(clip, segment_frames, context, blend)
        seed = getattr(noise, "seed", None)
        segment_noise = _noise_for(noise, index, {"samples": segment})
        out = _sample(guider, sampler, sigmas, segment_noise, segment, mask,
                      None if seed is None else seed + index, progress.callback(index))
        clip = join_segment(clip, out.to(clip), used, blend)
        if on_segment is not None:
            on_segment(index, segment.shape[0])
    return clip


def tiled_redenoise(guider, sampler, sigmas, noise, latent: dict, tile_height: int, tile_width: int,
                    overlap: int) -> torch.Tensor:
    """Re-denoise a whole clip in overlapping spatial tiles (all frames of a tile together, so the
    temporal layers keep the frames consistent) and blend them seamlessly (``models/videoldm/tiles``).

    Sizes are in latent pixels. The noise is drawn once for the whole clip and cropped per tile.
    """
    samples = comfy.sample.fix_empty_latent_channels(guider.model_patcher, latent["samples"])
    latent = dict(latent, samples=samples)
    mask = _frame_mask(latent, samples)
    full_noise = noise.generate_noise(latent)
    seed = getattr(noise, "seed", None)
    count = len(tile_grid(samples.shape[-2], samples.shape[-1], tile_height, tile_width, overlap))
    progress = PieceProgress(guider.model_patcher, count, len(sigmas) - 1)
    index = iter(range(count))

    def denoise_tile(tile):
        y0, y1, x0, x1 = tile
        i = next(index)
        crop_mask = None if mask is None else mask[..., y0:y1, x0:x1]
        return _sample(guider, sampler, sigmas, full_noise[..., y0:y1, x0:x1], samples[..., y0:y1, x0:x1],
                       crop_mask, seed, progress.callback(i))

    return tiled_apply(denoise_tile, samples, tile_height, tile_width, overlap)


def latent_tile_size(pixels: int) -> int:
    """Pixels → latent pixels (the SD VAE downsamples by 8)."""
    return max(1, math.ceil(pixels / 8))
