"""The I2V image encoder's input preprocessing, exactly as the original (pure PyTorch, no kornia).

VideoCrafter1 I2V feeds its conditioning image through ``FrozenOpenCLIPImageEmbedderV2.preprocess``
(``lvdm/modules/encoders/condition.py:324-332``)::

    x = kornia.geometry.resize(x, (224, 224), interpolation='bicubic', align_corners=True, antialias=True)
    x = (x + 1.) / 2.
    x = kornia.enhance.normalize(x, mean=CLIP_MEAN, std=CLIP_STD)

on an image in [-1, 1] (``load_image_batch``: ``(x / 255 - 0.5) * 2``, funcs.py:157-178). The resize
squashes to 224x224 (no crop, unlike ComfyUI's ``clip_preprocess``); kornia's antialiasing is a
Gaussian blur before the bicubic interpolation (``kornia/geometry/transform/affwarp.py: resize``):
per axis ``factor = in / out``, ``sigma = max((factor - 1) / 2, 0.001)``, kernel size
``int(max(4 * sigma, 3))`` made odd, reflect padding, separable (W pass, then H pass). This module
re-implements those steps so the pack does not depend on kornia; a test checks it against kornia.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)  # condition.py:320-321 (OpenAI CLIP statistics)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
CLIP_INPUT_SIZE = 224  # condition.py:325


def gaussian_kernel1d(size: int, sigma: float, *, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised odd-length Gaussian ``exp(-x² / 2σ²)`` centred on the middle tap (kornia ``gaussian``)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"kernel size must be a positive odd number, got {size}")
    sigma_t = torch.tensor(float(sigma), dtype=dtype, device=device)
    x = torch.arange(size, dtype=dtype, device=device) - float(size // 2)
    gauss = torch.exp(-x.pow(2.0) / (2 * sigma_t.pow(2.0)))
    return gauss / gauss.sum()


def _antialias_kernel_sizes(in_size: int, out_size: int) -> tuple[float, int]:
    """``(sigma, kernel size)`` of kornia's antialias blur for one axis (affwarp.py ``resize``)."""
    factor = in_size / out_size
    sigma = max((factor - 1.0) / 2.0, 0.001)
    size = int(max(2.0 * 2 * sigma, 3))
    size = size if size % 2 else size + 1
    return sigma, (1 if in_size == 1 else size)


def _blur_axis(x: torch.Tensor, kernel: torch.Tensor, axis: int) -> torch.Tensor:
    """Depthwise correlation with ``kernel`` along W (axis -1) or H (axis -2), reflect padding."""
    channels, pad = x.shape[1], kernel.numel() // 2
    if pad == 0:
        return x
    if axis == -1:
        weight = kernel.view(1, 1, 1, -1)
        x = F.pad(x, (pad, pad, 0, 0), mode="reflect")
    else:
        weight = kernel.view(1, 1, -1, 1)
        x = F.pad(x, (0, 0, pad, pad), mode="reflect")
    return F.conv2d(x, weight.expand(channels, 1, *weight.shape[2:]), groups=channels)


def antialiased_bicubic_resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``kornia.geometry.resize(x, size, 'bicubic', align_corners=True, antialias=True)`` for ``[B, C, H, W]``.

    Downscaling first blurs with kornia's Gaussian (a no-op-sized σ = 0.001 kernel on an axis
    that is not shrunk, exactly as kornia); upscaling interpolates directly.
    """
    if x.ndim != 4:
        raise ValueError(f"expected [B, C, H, W], got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    out_h, out_w = size
    if max(h / out_h, w / out_w) > 1:
        sigma_y, size_y = _antialias_kernel_sizes(h, out_h)
        sigma_x, size_x = _antialias_kernel_sizes(w, out_w)
        x = _blur_axis(x, gaussian_kernel1d(size_x, sigma_x, dtype=x.dtype, device=x.device), -1)
        x = _blur_axis(x, gaussian_kernel1d(size_y, sigma_y, dtype=x.dtype, device=x.device), -2)
    return F.interpolate(x, size=(out_h, out_w), mode="bicubic", align_corners=True)


def openclip_image_preprocess(images: torch.Tensor, size: int = CLIP_INPUT_SIZE) -> torch.Tensor:
    """``FrozenOpenCLIPImageEmbedderV2.preprocess``: ``[B, 3, H, W]`` in [-1, 1] → CLIP pixel values.

    Resize (above) to ``size``x``size`` without crop, map to [0, 1] and normalise with the CLIP
    mean/std — in that order, as condition.py:324-332. Runs in the input's dtype (float32 upstream).
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected RGB images [B, 3, H, W] in [-1, 1], got shape {tuple(images.shape)}")
    x = antialiased_bicubic_resize(images, (size, size))
    x = (x + 1.0) / 2.0
    mean = torch.tensor(CLIP_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def comfy_image_to_signed(image: torch.Tensor) -> torch.Tensor:
    """A ComfyUI IMAGE ``[B, H, W, C]`` in [0, 1] → ``[B, 3, H, W]`` in [-1, 1] (alpha dropped).

    The original's ``load_image_batch`` gives ``(x / 255 - 0.5) * 2`` (funcs.py:176); ComfyUI's
    LoadImage already gives ``x / 255``.
    """
    if image.ndim != 4 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"expected an IMAGE [B, H, W, C] with 1, 3 or 4 channels, got shape {tuple(image.shape)}")
    x = image[..., :3] if image.shape[-1] >= 3 else image.expand(*image.shape[:-1], 3)
    return (x.movedim(-1, 1).float() - 0.5) * 2.0


def grey_image(batch: int, *, size: int = CLIP_INPUT_SIZE, dtype=torch.float32, device=None) -> torch.Tensor:
    """The original's unconditional image: ``torch.zeros(B, 3, 224, 224)`` in [-1, 1] (funcs.py:30-34)."""
    return torch.zeros(batch, 3, size, size, dtype=dtype, device=device)
