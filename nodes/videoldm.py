"""VideoLDM blocks (Blattmann et al. 2023, "Align your Latents"), training-free on VideoCrafter models:
keyframe interpolation (§3.3) with RePaint resampling, long video by prediction (§3.2), frame-rate
and spatial temporal upscaling (§3.3, §3.4 patch-wise), temporal VAE decoding (§3.1.1)."""
from __future__ import annotations

import comfy.model_management
import torch

from ..bridge.api import io
from ..bridge.temporal_vae import decode_clips, require_temporal
from ..bridge.videoldm import RePaintSampler, extend_by_prediction, latent_tile_size, sample_keyframe_windows, \
    tiled_redenoise
from ..bridge.vocabulary import FPS
from ..models.unet.unet3d import DEFAULT_FPS
from ..models.videoldm.interpolation import FACTORS, INIT_MODES, assemble_keyframes
from ..models.videoldm.prediction import BLENDS
from .common import CATEGORY, MAX_FRAMES, InputError
from .validation import checked_inputs

GROUP = f"{CATEGORY}/videoldm"

SAMPLING_INPUTS = [
    io.Noise.Input("noise", tooltip="NOISE (RandomNoise or VideoCrafter Noise); drawn once for the whole clip."),
    io.Guider.Input("guider", tooltip="GUIDER (CFGGuider, VideoCrafter guiders) holding the model and prompts."),
    io.Sampler.Input("sampler", tooltip="Any SAMPLER: core samplers, VideoCrafter DDIM, VideoCrafter RePaint."),
    io.Sigmas.Input("sigmas", tooltip="SIGMAS; their denoise decides how much of the input survives."),
]


def check_factor(factor: int) -> None:
    if factor not in FACTORS:
        raise InputError(f"factor must be one of {', '.join(map(str, FACTORS))} (VideoLDM interpolates ×4 per pass, "
                         f"×16 in two passes); got {factor}.")


def factor_problem(factor: int) -> str | bool:
    """``validate_inputs`` answer: the error text, or True."""
    try:
        check_factor(factor)
    except InputError as error:
        return str(error)
    return True


def keyframes_from(keyframes, keyframe_images, vae) -> torch.Tensor:
    """The keyframe latents: the LATENT's frames, then the IMAGEs encoded by the VAE."""
    parts = []
    if keyframes is not None:
        parts.append(keyframes["samples"])
    if keyframe_images is not None:
        if vae is None:
            raise InputError("keyframe_images need a vae to encode them: connect the checkpoint's VAE.")
        parts.append(vae.encode(keyframe_images[:, :, :, :3]).to(comfy.model_management.intermediate_device()))
    if not parts:
        raise InputError("no keyframes: connect a keyframes LATENT or keyframe_images (with a vae).")
    if len(parts) == 2 and parts[0].shape[1:] != parts[1].shape[1:]:
        (_, _, h0, w0), (_, _, h1, w1) = parts[0].shape, parts[1].shape
        raise InputError(f"keyframes of another size: the keyframes LATENT is {w0 * 8}×{h0 * 8} px but "
                         f"keyframe_images encode to {w1 * 8}×{h1 * 8} px; resize the images (Upscale Image) to "
                         f"{w0 * 8}×{h0 * 8}.")
    return torch.cat([p.to(parts[0]) for p in parts])


@checked_inputs
class VideoCrafterKeyframeInterpolation(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterKeyframeInterpolation",
            display_name="VideoCrafter Keyframe Interpolation (VideoLDM)",
            category=GROUP,
            description="VideoLDM §3.3, training-free: T keyframes → a k·T-frame LATENT, keyframe i at frame k·i, the "
                        "frames between them to be generated. The keyframes are held by core's noise_mask (0 = keep, "
                        "1 = generate), set after assembly so it cannot be misaligned. Sample it with 'VideoCrafter "
                        "Keyframe Sampler' (window by window, any length) or any sampler node for one clip.",
            inputs=[io.Int.Input("factor", default=4, min=2, max=16,
                                 tooltip="Frames per keyframe k: 2, 4, 8 or 16 (VideoLDM: ×4, twice for ×16)."),
                    io.Combo.Input("init", options=list(INIT_MODES), default="linear",
                                   tooltip="Start value of the in-between frames: noise (zeros; only the noise "
                                           "counts), linear / slerp blend of the two keyframes, nearest keyframe. "
                                           "It matters below denoise 1."),
                    io.Latent.Input("keyframes", optional=True, tooltip="Keyframe latents (batch = frames)."),
                    io.Image.Input("keyframe_images", optional=True,
                                   tooltip="Keyframe images, encoded with the vae and appended after the LATENT's."),
                    io.Vae.Input("vae", optional=True, tooltip="Encodes keyframe_images (the checkpoint's VAE).")],
            outputs=[io.Latent.Output(tooltip="k·T frames with noise_mask (keyframes 0, in-betweens 1).")],
        )

    @classmethod
    def validate_inputs(cls, factor):
        return factor_problem(factor)

    @classmethod
    def execute(cls, factor, init, keyframes=None, keyframe_images=None, vae=None) -> io.NodeOutput:
        check_factor(factor)
        keys = keyframes_from(keyframes, keyframe_images, vae)
        if keys.shape[0] * factor > MAX_FRAMES * 4:
            raise InputError(f"{keys.shape[0]} keyframes × {factor} = {keys.shape[0] * factor} frames is more than "
                             f"{MAX_FRAMES * 4}; interpolate fewer keyframes at a time.")
        latent, mask = assemble_keyframes(keys, factor, init)
        return io.NodeOutput({"samples": latent, "noise_mask": mask})


@checked_inputs
class VideoCrafterFrameRateScale(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterFrameRateScale",
            display_name="VideoCrafter Frame Rate ×k (conditioning)",
            category=GROUP,
            description="Temporal upscaling: k·T frames showing the time of T frames play at k× the frame rate, so "
                        "the fps condition is multiplied by k on positive and negative (unset counts as the UNet's "
                        "default 16). Use with the keyframe interpolation of the same factor.",
            inputs=[io.Conditioning.Input("positive", tooltip="Positive conditioning (with or without fps)."),
                    io.Conditioning.Input("negative", tooltip="Negative conditioning."),
                    io.Int.Input("factor", default=4, min=2, max=16, tooltip="k: 2, 4, 8 or 16.")],
            outputs=[io.Conditioning.Output(display_name="positive"),
                     io.Conditioning.Output(display_name="negative")],
        )

    @classmethod
    def validate_inputs(cls, factor):
        return factor_problem(factor)

    @classmethod
    def execute(cls, positive, negative, factor) -> io.NodeOutput:
        check_factor(factor)
        return io.NodeOutput(*(scale_fps(c, factor) for c in (positive, negative)))


def scale_fps(conditioning, factor: int):
    out = []
    for embedding, options in conditioning:
        options = dict(options)
        options[FPS] = int(options.get(FPS, DEFAULT_FPS)) * factor
        out.append([embedding, options])
    return out


@checked_inputs
class VideoCrafterRePaintSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterRePaintSampler",
            display_name="VideoCrafter RePaint Resampling (SAMPLER)",
            category=GROUP,
            description="Wraps any SAMPLER with RePaint resampling (Lugmayr 2022): go jump steps down, re-noise back "
                        "up, resample passes in all, so generated frames harmonise with the held keyframes better "
                        "than plain replacement. resample 1 = the base sampler exactly. Costs about resample× steps.",
            inputs=[io.Sampler.Input("sampler", tooltip="The base SAMPLER (core or VideoCrafter DDIM)."),
                    io.Int.Input("jump", default=2, min=1, max=100, tooltip="j: steps gone down before jumping back."),
                    io.Int.Input("resample", default=2, min=1, max=20,
                                 tooltip="r: passes over each stretch (RePaint used 10 with j = 10; 1 = off).")],
            outputs=[io.Sampler.Output()],
        )

    @classmethod
    def execute(cls, sampler, jump, resample) -> io.NodeOutput:
        return io.NodeOutput(RePaintSampler(sampler, jump, resample))


@checked_inputs
class VideoCrafterKeyframeSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterKeyframeSampler",
            display_name="VideoCrafter Keyframe Sampler (windows)",
            category=GROUP,
            description="SamplerCustomAdvanced for keyframe-masked clips of any length: samples window by window, "
                        "each spanning the keyframes that bound it, so memory is that of one window. A clip that "
                        "fits one window gives what SamplerCustomAdvanced gives. Keyframes are copied unchanged.",
            inputs=[*SAMPLING_INPUTS,
                    io.Latent.Input("latent_image", tooltip="A LATENT with noise_mask (from Keyframe Interpolation)."),
                    io.Int.Input("window_frames", default=16, min=2, max=MAX_FRAMES,
                                 tooltip="Frames per window (VideoCrafter was trained on 16); a longer keyframe gap "
                                         "(×16: 17 frames with both bounds) gets its own window.")],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, noise, guider, sampler, sigmas, latent_image, window_frames) -> io.NodeOutput:
        samples = sample_keyframe_windows(guider, sampler, sigmas, noise, latent_image, window_frames)
        out = {k: v for k, v in latent_image.items() if k != "noise_mask"}
        out["samples"] = samples
        return io.NodeOutput(out)


@checked_inputs
class VideoCrafterExtendByPrediction(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterExtendByPrediction",
            display_name="VideoCrafter Extend Video by Prediction (VideoLDM)",
            category=GROUP,
            description="VideoLDM §3.2, training-free: appends segments one by one, each predicted from the last "
                        "context frames of the clip so far (held by noise_mask), so memory is that of one segment "
                        "and the result is one LATENT of any length. Start from a generated clip (T2V or I2V: the "
                        "I2V image conditions every segment through the guider) or an encoded image.",
            inputs=[*SAMPLING_INPUTS,
                    io.Latent.Input("latent_image", tooltip="The clip to extend (its frames are kept)."),
                    io.Int.Input("segments", default=4, min=1, max=64, tooltip="N: segments to append."),
                    io.Int.Input("segment_frames", default=16, min=2, max=MAX_FRAMES,
                                 tooltip="Frames per segment, context included (the model's 16)."),
                    io.Int.Input("context_frames", default=4, min=0, max=MAX_FRAMES - 1,
                                 tooltip="S: last frames of the clip each segment sees (VideoLDM: 0, 1 or 2; more "
                                         "= smoother joins, fewer new frames per segment). 0 = independent."),
                    io.Combo.Input("blend", options=list(BLENDS), default="hold",
                                   tooltip="hold: context frames kept exactly. linear / cosine: the hold fades towards "
                                           "the new frames, which re-generates and cross-fades the overlap.")],
            outputs=[io.Latent.Output(tooltip="The whole clip: input frames + N·(segment − context) new frames.")],
        )

    @classmethod
    def execute(cls, noise, guider, sampler, sigmas, latent_image, segments, segment_frames, context_frames,
                blend) -> io.NodeOutput:
        if context_frames >= segment_frames:
            raise InputError(f"context_frames ({context_frames}) must be smaller than segment_frames "
                             f"({segment_frames}): each segment needs new frames.")
        clip = extend_by_prediction(guider, sampler, sigmas, noise, latent_image["samples"], segments,
                                    segment_frames, context_frames, blend)
        return io.NodeOutput({"samples": clip})


@checked_inputs
class VideoCrafterTiledRedenoise(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterTiledRedenoise",
            display_name="VideoCrafter Tiled Re-denoise (spatial upscale)",
            category=GROUP,
            description="Spatial temporal-consistent upscaling (VideoLDM's patch-wise upsampler): after an upscale "
                        "(e.g. Upscale Latent By ×2), re-denoise the whole clip with the video model in overlapping "
                        "spatial tiles, all frames of a tile together so the temporal layers keep frames consistent; "
                        "tiles blend without seams. Memory is that of one tile.",
            inputs=[*SAMPLING_INPUTS,
                    io.Latent.Input("latent_image", tooltip="The upscaled clip."),
                    io.Int.Input("tile_width", default=512, min=32, max=4096, step=8,
                                 tooltip="Tile width in pixels (the model's training width is a good choice)."),
                    io.Int.Input("tile_height", default=320, min=32, max=4096, step=8,
                                 tooltip="Tile height in pixels (VC2/VC1-512: 320)."),
                    io.Int.Input("overlap", default=64, min=0, max=1024, step=8,
                                 tooltip="Overlap of neighbouring tiles in pixels; blended linearly across it.")],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, noise, guider, sampler, sigmas, latent_image, tile_width, tile_height, overlap) -> io.NodeOutput:
        th, tw, ov = latent_tile_size(tile_height), latent_tile_size(tile_width), overlap // 8
        if ov >= min(th, tw):
            raise InputError(f"overlap ({overlap} px) must be smaller than the tile ({tile_width}×{tile_height} px).")
        samples = tiled_redenoise(guider, sampler, sigmas, noise, latent_image, th, tw, ov)
        return io.NodeOutput({"samples": samples})


@checked_inputs
class VideoCrafterTemporalVAEDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterTemporalVAEDecode",
            display_name="VideoCrafter Temporal VAE Decode (SVD decoder)",
            category=GROUP,
            description="VideoLDM §3.1.1: decode with a temporally aware decoder, the Stable Video Diffusion VAE "
                        "(SD latent space, loaded by 'Load VAE' in its SGM layout). Each clip is decoded as one clip; "
                        "a clip that does not fit is decoded in overlapping time chunks blended over the overlap — "
                        "never frame by frame. A VAE without temporal layers is refused.",
            inputs=[io.Latent.Input("samples", tooltip="Video latent, batch = frames."),
                    io.Vae.Input("vae", tooltip="The SVD temporal-decoder VAE (SGM layout)."),
                    io.Int.Input("frames_per_clip", default=0, min=0, max=4096,
                                 tooltip="0: the whole batch is one clip. Otherwise the batch holds clips of this "
                                         "many frames, decoded separately (never coupled)."),
                    io.Int.Input("chunk_frames", default=0, min=0, max=4096,
                                 tooltip="0: as many frames as fit in memory. Otherwise frames decoded together."),
                    io.Int.Input("chunk_overlap", default=4, min=0, max=64,
                                 tooltip="Frames shared by neighbouring chunks, blended linearly.")],
            outputs=[io.Image.Output()],
        )

    @classmethod
    def execute(cls, samples, vae, frames_per_clip, chunk_frames, chunk_overlap) -> io.NodeOutput:
        try:
            require_temporal(vae)
        except ValueError as error:
            raise InputError(str(error)) from None
        return io.NodeOutput(decode_clips(vae, samples["samples"], frames_per_clip, chunk_frames, chunk_overlap))


NODES = [VideoCrafterKeyframeInterpolation, VideoCrafterFrameRateScale, VideoCrafterRePaintSampler,
         VideoCrafterKeyframeSampler, VideoCrafterExtendByPrediction, VideoCrafterTiledRedenoise,
         VideoCrafterTemporalVAEDecode]
