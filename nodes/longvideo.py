"""Long-video nodes: FreeNoise (noise + attention patch), FIFO-Diffusion sampler, video context windows."""
from __future__ import annotations

import comfy.context_windows as cw
import comfy.model_management
import comfy.sample
import latent_preview
import torch

from ..bridge.api import io
from ..bridge.longvideo import FifoSampler, FreeNoiseVideoNoise, fifo_sigmas, patch_freenoise_attention
from ..bridge.video_context_windows import install_video_context_windows
from ..models.longvideo import fifo as F
from ..models.longvideo import freenoise as FN
from .common import CATEGORY, InputError
from .validation import checked_inputs

MAX_LONG_FRAMES = 4096


def _check_window(window: int, stride: int) -> None:
    """One message naming the wrong input (window or stride), before any work."""
    try:
        FN.check_window(window, stride)
    except ValueError as exc:
        name = "window" if int(window) < 1 else "stride"
        raise InputError(f"input '{name}': {exc}. The official setting is window 16, stride 4.") from None


@checked_inputs
class VideoCrafterFreeNoiseNoise(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterFreeNoiseNoise",
            display_name="VideoCrafter FreeNoise Noise",
            category=f"{CATEGORY}/long video",
            description="FreeNoise noise rescheduling (LongerCrafter inference_freenoise.py:98-102) as NOISE for "
                        "SamplerCustomAdvanced: one draw for all frames, then every block of 'stride' frames after "
                        "the first window repeats a shuffled block of the window before, so distant frames share "
                        "noise and the video stays coherent. Same permutations and (on CPU) the same values as the "
                        "official code for a seed. Needs (frames - window) divisible by stride.",
            inputs=[io.Int.Input("noise_seed", default=123, min=0, max=0xffffffffffffffff, control_after_generate=True,
                                 tooltip="Seed of the draw and of the shuffles; the official scripts use 123."),
                    io.Int.Input("window", default=FN.DEFAULT_WINDOW, min=1, max=256,
                                 tooltip="Window length in frames (official 16 = the training length)."),
                    io.Int.Input("stride", default=FN.DEFAULT_STRIDE, min=1, max=256,
                                 tooltip="Frames between window starts (official 4).")],
            outputs=[io.Noise.Output()],
        )

    @classmethod
    def execute(cls, noise_seed, window, stride) -> io.NodeOutput:
        _check_window(window, stride)
        return io.NodeOutput(FreeNoiseVideoNoise(noise_seed, window, stride))


@checked_inputs
class VideoCrafterFreeNoiseAttention(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterFreeNoiseAttention",
            display_name="VideoCrafter FreeNoise Attention",
            category=f"{CATEGORY}/long video",
            description="FreeNoise window-fused temporal attention (LongerCrafter attention_freenoise.py): every "
                        "temporal self-attention runs on overlapping windows and fuses them with weights 1..w/2..1, "
                        "so a model trained on 16 frames sees 16 at a time while the whole video is denoised at "
                        "once. Works with every sampler; up to 'window' frames the model is unchanged.",
            inputs=[io.Model.Input("model", tooltip="A VideoCrafter model (any variant of this pack)."),
                    io.Int.Input("window", default=FN.DEFAULT_WINDOW, min=1, max=256,
                                 tooltip="Attention window in frames (official 16)."),
                    io.Int.Input("stride", default=FN.DEFAULT_STRIDE, min=1, max=256,
                                 tooltip="Frames between windows (official 4). Smaller = more overlap, more cost.")],
            outputs=[io.Model.Output(tooltip="The model with window-fused temporal attention.")],
        )

    @classmethod
    def execute(cls, model, window, stride) -> io.NodeOutput:
        _check_window(window, stride)
        try:
            return io.NodeOutput(patch_freenoise_attention(model, window, stride))
        except ValueError as exc:
            raise InputError(str(exc)) from None


@checked_inputs
class VideoCrafterFIFOSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterFIFOSampler",
            display_name="VideoCrafter FIFO-Diffusion Sampler",
            category=f"{CATEGORY}/long video",
            description="FIFO-Diffusion (jjihwan/FIFO-Diffusion_public): a queue of frames at increasing noise "
                        "levels is denoised diagonally, window by window, one clean frame popping out per "
                        "iteration, so the video can be as long as you like at the memory of one window. Starts "
                        "from a normally generated clip (its frame count is the window); the official setting is "
                        "16 frames, 4 partitions (64 steps), cfg 12, eta 1, lookahead on.",
            inputs=[io.Model.Input("model", tooltip="A VideoCrafter model (the official code uses VideoCrafter2)."),
                    io.Conditioning.Input("positive", tooltip="Text conditioning."),
                    io.Conditioning.Input("negative", tooltip="Unconditional (empty prompt) conditioning."),
                    io.Latent.Input("base_clip", tooltip="The first frames, sampled normally (window length f = its "
                                    "frame count; even when lookahead is on). Official: 16 frames from DDIM with "
                                    "f x partitions steps."),
                    io.Int.Input("seed", default=F.DEFAULT_SEED, min=0, max=0xffffffffffffffff,
                                 control_after_generate=True,
                                 tooltip="Seed of the queue noise and the per-step noise (official 321)."),
                    io.Int.Input("frames", default=F.DEFAULT_NEW_LENGTH, min=1, max=MAX_LONG_FRAMES,
                                 tooltip="Frames of the output video (official 100)."),
                    io.Int.Input("num_partitions", default=F.DEFAULT_PARTITIONS, min=1, max=64,
                                 tooltip="n: the queue holds f x n noise levels (steps). Official 4."),
                    io.Boolean.Input("lookahead", default=True,
                                     tooltip="Lookahead denoising: overlapping half windows, only the later half kept "
                                             "(official on; about twice the cost)."),
                    io.Float.Input("cfg", default=F.DEFAULT_CFG, min=0.0, max=100.0, step=0.1,
                                   tooltip="Classifier-free guidance scale (official 12)."),
                    io.Float.Input("eta", default=F.DEFAULT_ETA, min=0.0, max=1.0, step=0.01,
                                   tooltip="DDIM eta of the diagonal steps (official 1.0).")],
            outputs=[io.Latent.Output(tooltip="The video latent, [frames, 4, h, w].")],
        )

    @classmethod
    def execute(cls, model, positive, negative, base_clip, seed, frames, num_partitions, lookahead, cfg,
                eta) -> io.NodeOutput:
        clip = base_clip["samples"]
        if clip.ndim != 4:
            raise InputError(f"base_clip must be a video latent [frames, 4, h, w], got shape {tuple(clip.shape)}")
        try:
            settings = F.FifoSettings(int(clip.shape[0]), int(num_partitions), int(frames), bool(lookahead), float(eta))
        except ValueError as exc:
            raise InputError(f"base_clip has {clip.shape[0]} frames: {exc}") from None
        if settings.num_steps >= len(model.get_model_object("model_sampling").sigmas):
            raise InputError(f"frames of base_clip x num_partitions = {settings.num_steps} steps exceeds the "
                             f"model's 1000 timesteps; lower num_partitions")
        preview = latent_preview.prepare_callback(model, settings.iterations)
        sampler = FifoSampler(settings, seed, on_frame=lambda i, total, frame: preview(i, frame, frame, total))
        sigmas = fifo_sigmas(model.get_model_object("model_sampling"), settings)
        noise = torch.zeros_like(clip)
        video = comfy.sample.sample_custom(model, noise, float(cfg), sampler, sigmas, positive, negative, clip,
                                           disable_pbar=True, seed=int(seed))
        return io.NodeOutput({"samples": video.to(comfy.model_management.intermediate_device())})


@checked_inputs
class VideoCrafterContextWindows(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterContextWindows",
            display_name="VideoCrafter Context Windows",
            category=f"{CATEGORY}/long video",
            description="Core context windows made to work on video latents: overlapping windows of frames are "
                        "denoised separately and fused, with any core sampler (multi-step ones too), per-frame "
                        "conditions (depth, image) and ControlNet hints sliced per window. Core's schedules and "
                        "fuse methods; up to 'context_length' frames the model is unchanged.",
            inputs=[io.Model.Input("model", tooltip="The model to sample in windows."),
                    io.Int.Input("context_length", default=16, min=1, max=256,
                                 tooltip="Frames per window (16 = the VideoCrafter training length)."),
                    io.Int.Input("context_overlap", default=4, min=0, max=255,
                                 tooltip="Frames shared by neighbouring windows."),
                    io.Combo.Input("context_schedule", options=[cw.ContextSchedules.STATIC_STANDARD,
                                                                cw.ContextSchedules.UNIFORM_STANDARD,
                                                                cw.ContextSchedules.UNIFORM_LOOPED,
                                                                cw.ContextSchedules.BATCHED],
                                   default=cw.ContextSchedules.STATIC_STANDARD,
                                   tooltip="How windows are laid out (core's schedules)."),
                    io.Int.Input("context_stride", default=1, min=1, max=16,
                                 tooltip="Frame stride inside a window; uniform schedules only."),
                    io.Boolean.Input("closed_loop", default=False, tooltip="Looped schedule: wrap around the end."),
                    io.Combo.Input("fuse_method", options=cw.ContextFuseMethods.LIST_STATIC,
                                   default=cw.ContextFuseMethods.PYRAMID,
                                   tooltip="How overlapping results are weighted (pyramid = FreeNoise's weights).")],
            outputs=[io.Model.Output(tooltip="The model, sampling in context windows.")],
        )

    @classmethod
    def execute(cls, model, context_length, context_overlap, context_schedule, context_stride, closed_loop,
                fuse_method) -> io.NodeOutput:
        if context_overlap >= context_length:
            raise InputError(f"input 'context_overlap': {context_overlap} must be smaller than context_length "
                             f"({context_length}); windows must advance")
        try:
            return io.NodeOutput(install_video_context_windows(model, context_length, context_overlap, context_schedule,
                                                               context_stride, closed_loop, fuse_method))
        except ValueError as exc:
            raise InputError(str(exc)) from None


NODES = [VideoCrafterFreeNoiseNoise, VideoCrafterFreeNoiseAttention, VideoCrafterFIFOSampler,
         VideoCrafterContextWindows]
