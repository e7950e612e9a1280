"""Checks at the model, just before sampling: what the loaded VideoCrafter UNet can actually take.

Why here and not only in the pack's nodes: the latent can come from anywhere (core
``EmptyLatentImage``, ``VAEEncode``, a latent upscale), the conditioning from any text encoder,
and the graph from any sampler (KSampler, SamplerCustomAdvanced, the pack's own). Every one of
them reaches :meth:`VideoCrafterModel.extra_conds` (``comfy.samplers.process_conds``) once per
branch before the first model call, so a failure here costs nothing and names the problem instead
of a shape error deep inside the UNet.

Rules (each from the architecture, not from taste):

* **size**: the UNet halves the latent ``levels − 1`` times (``len(channel_mult)`` levels,
  ``Downsample`` with stride 2, ``openaimodel3d.py``) and concatenates skips on the way up, so
  latent height and width must be multiples of ``2^(levels−1)``; pixels (VAE /8) multiples of
  ``8·2^(levels−1)``: 64 for every released 4-level UNet.
* **frames**: temporal attention is quadratic in frames and the released models were trained on
  16; the pack caps a video at :data:`MAX_FRAMES` wherever the latent comes from.
* **context width**: cross-attention keys/values are ``Linear(context_dim, …)``: a prompt encoded
  by another CLIP (other width) cannot be used.
* **image conditioning**: the original never runs the I2V UNet without an image
  (``image_proj_model`` output on both guidance branches).
* **memory**: a lower bound of the activations one forward must hold (the level-0 skip
  connections plus the working map; attention buffers come on top) against the device's TOTAL
  memory: what cannot fit even in an empty device is refused (never a false refusal because
  other models happen to be cached).
"""
from __future__ import annotations

import math

import torch

import comfy.model_management

from ..models.unet.unet3d import UNet3DConfig
from . import vocabulary as V

MAX_FRAMES = 256
RELEASED_PIXEL_MULTIPLE = 64  # 8 · 2^(4−1): every released VideoCrafter UNet has 4 levels
VAE_FACTOR = 8
TEXT_TOKENS = 77  # the UNet splits a longer I2V context at 77 text tokens (attention.py:82-83)
GIB = 1024 ** 3


class ModelInputError(ValueError):
    """The latent or conditioning cannot be sampled by this model (message says what to change)."""


def latent_multiple(config: UNet3DConfig) -> int:
    """Latent height/width must be multiples of this: the UNet halves them ``levels − 1`` times."""
    return 2 ** (len(config.channel_mult) - 1)


def pixel_multiple(config: UNet3DConfig) -> int:
    """Pixel width/height must be multiples of this (64 for the released 4-level UNets)."""
    return VAE_FACTOR * latent_multiple(config)


def nearest_multiples(value: int, multiple: int) -> list[int]:
    """The valid values around ``value`` (never below ``multiple``), nearest first."""
    if value % multiple == 0 and value >= multiple:
        return [value]
    below = value // multiple * multiple
    candidates = [v for v in (below, below + multiple) if v >= multiple]
    return sorted(candidates, key=lambda v: (abs(v - value), v))


def check_latent_size(config: UNet3DConfig, height: int, width: int) -> None:
    multiple = latent_multiple(config)
    if height % multiple == 0 and width % multiple == 0:
        return
    pixels = pixel_multiple(config)
    levels = len(config.channel_mult)
    sizes = [f"{w}×{h}" for w in nearest_multiples(width * VAE_FACTOR, pixels)
             for h in nearest_multiples(height * VAE_FACTOR, pixels)]
    raise ModelInputError(
        f"latent size {width * VAE_FACTOR}×{height * VAE_FACTOR} pixels (latent {width}×{height}) does not fit this "
        f"model: its UNet has {levels} levels and halves the latent {levels - 1} times, so width and height must be "
        f"multiples of {pixels} pixels (latent {multiple}). Nearest valid sizes: {', '.join(sizes)}. "
        "Set them on the empty latent node (or resize the image before VAE Encode).")


def max_frames(config: UNet3DConfig) -> int:
    return MAX_FRAMES


def check_frames(config: UNet3DConfig, frames: int) -> None:
    limit = max_frames(config)
    if frames > limit:
        raise ModelInputError(
            f"{frames} frames: this model takes at most {limit} frames per video (the released VideoCrafter models "
            f"were trained on 16; temporal attention grows with frames squared). A latent batch is one video here: "
            f"use a batch (or 'frames') of at most {limit}.")


def check_context_width(config: UNet3DConfig, context) -> None:
    if context is None or config.context_dim is None:
        return
    width = int(context.shape[-1])
    if width != config.context_dim:
        raise ModelInputError(
            f"the prompt's conditioning is {width} wide but this model's cross-attention expects {config.context_dim}: "
            "the prompt was encoded by another text encoder. Encode it with the CLIP output of the same "
            "'Load VideoCrafter Checkpoint' node as the MODEL (VideoCrafter uses OpenCLIP ViT-H, 1024 wide).")


def check_image_conditioning(config: UNet3DConfig, has_image: bool) -> None:
    if config.use_image_attention and not has_image:
        raise ModelInputError(
            "this is a VideoCrafter1 image-to-video (I2V) model and the conditioning carries no image: add "
            "'VideoCrafter Image-to-Video Conditioning' (model, clip_vision, image) between the prompt's "
            "CLIPTextEncode and the guider/sampler, on both positive and negative, as the original always does.")


def activation_bytes_lower_bound(config: UNet3DConfig, frames: int, height: int, width: int,
                                 dtype_bytes: int) -> int:
    """Bytes one forward must hold at least: the level-0 skips (input conv + each res block) and one working map."""
    maps = config.num_res_blocks + 2
    return maps * config.model_channels * height * width * frames * dtype_bytes


def check_memory(config: UNet3DConfig, frames: int, height: int, width: int, dtype_bytes: int,
                 free_bytes: float, device_name: str = "the device") -> None:
    """``free_bytes``: the most the device can give (its total memory when called from sampling)."""
    need = activation_bytes_lower_bound(config, frames, height, width, dtype_bytes)
    if need <= free_bytes:
        return
    per_frame = need / frames
    fit_frames = int(free_bytes // per_frame)
    scale = math.sqrt(free_bytes / need)
    multiple = pixel_multiple(config)
    fit_w = int(width * VAE_FACTOR * scale) // multiple * multiple
    fit_h = int(height * VAE_FACTOR * scale) // multiple * multiple
    options = []
    if fit_frames >= 1:
        options.append(f"at {width * VAE_FACTOR}×{height * VAE_FACTOR} up to {fit_frames} frames")
    if fit_w >= multiple and fit_h >= multiple:
        options.append(f"at {frames} frames up to about {fit_w}×{fit_h}")
    fits = "; ".join(options) if options else "a smaller size and fewer frames"
    raise ModelInputError(
        f"{frames} frames at {width * VAE_FACTOR}×{height * VAE_FACTOR} need at least {need / GIB:.1f} GiB for the "
        f"UNet's activations (a lower bound: {config.num_res_blocks + 2} maps of {config.model_channels} channels × "
        f"{width}×{height} latent × {frames} frames × {dtype_bytes} bytes) but {device_name} has "
        f"{free_bytes / GIB:.1f} GiB. What fits: {fits}.")


def check_before_sampling(config: UNet3DConfig, latent_shape, *, context=None, has_image: bool = False,
                          dtype_bytes: int = 4, free_bytes: float | None = None, device_name: str = "the device") -> None:
    """Every rule above for a batch-as-frames latent ``[T, C, h, w]`` (one video)."""
    frames, _, height, width = (int(s) for s in latent_shape)
    check_frames(config, frames)
    check_latent_size(config, height, width)
    check_context_width(config, context)
    has_image = has_image or (context is not None and config.use_image_attention and context.shape[1] > TEXT_TOKENS)
    check_image_conditioning(config, has_image)
    if free_bytes is not None:
        check_memory(config, frames, height, width, dtype_bytes, free_bytes, device_name)


def check_sampling_call(model, kwargs: dict) -> None:
    """:func:`check_before_sampling` for ``VideoCrafterModel.extra_conds(**kwargs)`` (once per branch)."""
    noise = kwargs.get("noise")
    if noise is None or noise.ndim != 4:
        return
    device = kwargs.get("device") or comfy.model_management.get_torch_device()
    dtype = getattr(model, "manual_cast_dtype", None) or model.get_dtype()
    check_before_sampling(model.model_config.unet_config_object, noise.shape, context=kwargs.get("cross_attn"),
                          has_image=kwargs.get(V.IMAGE_CONTEXT) is not None,
                          dtype_bytes=torch.empty((), dtype=dtype).element_size(),
                          free_bytes=comfy.model_management.get_total_memory(device), device_name=str(device))
