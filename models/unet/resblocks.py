"""Convolutional blocks of the VideoCrafter 3D UNet and its time embedding.

Re-implementation of VideoCrafter ``lvdm/modules/networks/openaimodel3d.py:51-276``,
``lvdm/basics.py:76-87`` and ``lvdm/models/utils_diffusion.py:8-28`` (reference README §4.1-4.2).
Attribute names reproduce the original state-dict keys, including the typo ``temopral_conv``.
All layers are built through an ``operations`` namespace (default ``torch.nn``) with
``dtype``/``device``.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from .frame_conv import FrameConvStage
from .spatial_temporal_conv import SpatialAwareTemporalConvBlock

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: int = 10000) -> torch.Tensor:
    """Sinusoidal embedding ``cat([cos, sin])`` (cos first, no shift), always float32.

    utils_diffusion.py:8-28: ``freqs = exp(-ln(max_period) * arange(half) / half)``,
    ``args = t.float()[:, None] * freqs``. The original computes this in float32 whatever the
    model dtype (its float64 reference runs keep the float32 sinusoid too, README §4.6), so
    callers cast the result afterwards. Also used for the fps embedding (openaimodel3d.py:541).
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period)
                      * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half)
    args = timesteps[:, None].float() * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


@lru_cache(maxsize=None)
def float32_group_norm(group_norm_cls: type) -> type:
    """Subclass of ``group_norm_cls`` that normalises fp16/bf16 input in float32.

    The original ``GroupNormSpecific`` runs ``GroupNorm(x.float()).type(x.dtype)``
    (basics.py:76-87) for the ResBlock and output-head norms. Float32 and float64 input is
    normalised in its own dtype (the reference float64 runs patch it that way, README §4.6).
    Low-precision weights are upcast too (PyTorch refuses float32 input with fp16 weights),
    unless the operation casts its weights itself (``comfy_cast_weights``).
    """

    class Float32GroupNorm(group_norm_cls):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if x.dtype not in _LOW_PRECISION:
                return super().forward(x)
            weight, bias = self.weight, self.bias
            if getattr(self, "comfy_cast_weights", False) or weight is None or weight.dtype == torch.float32:
                return super().forward(x.float()).to(x.dtype)
            return F.group_norm(x.float(), self.num_groups, weight.float(),
                                None if bias is None else bias.float(), self.eps).to(x.dtype)

    Float32GroupNorm.__name__ = Float32GroupNorm.__qualname__ = f"Float32{group_norm_cls.__name__}"
    return Float32GroupNorm


class TimestepBlock(nn.Module):
    """Marker: ``forward(x, emb, num_frames, temporal_enabled)`` takes the time embedding."""


class Downsample(nn.Module):
    """Conv2d 3x3, stride 2, padding 1 (openaimodel3d.py:51-77; key ``op``)."""

    def __init__(self, channels: int, out_channels: int | None = None, *, operations=nn,
                 dtype=None, device=None):
        super().__init__()
        self.channels = channels
        self.op = operations.Conv2d(channels, out_channels or channels, 3, stride=2, padding=1,
                                    dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class Upsample(nn.Module):
    """Nearest ×2 then Conv2d 3x3 (openaimodel3d.py:80-106; key ``conv``)."""

    def __init__(self, channels: int, out_channels: int | None = None, *, operations=nn,
                 dtype=None, device=None):
        super().__init__()
        self.channels = channels
        self.conv = operations.Conv2d(channels, out_channels or channels, 3, padding=1,
                                      dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class TemporalConvBlock(nn.Module):
    """Four ``GroupNorm(32) → SiLU → [Dropout] → Conv3d (3,1,1)`` stages + identity.

    openaimodel3d.py:237-276 (``tempspatial_aware`` false). The GroupNorm (plain, eps 1e-5)
    sees ``[b, c, t, h, w]``, so its statistics span all frames. Each (3,1,1) conv runs as the equivalent
    (3,1) Conv2d (:class:`.frame_conv.FrameConvStage`); the identity is added as ``x + h`` so that the sum
    keeps ``x``'s memory layout (the UNet's ``(b t)`` one: turning it back is then free).
    """

    def __init__(self, channels: int, dropout: float = 0.1, *, operations=nn, dtype=None,
                 device=None):
        super().__init__()
        factory = {"dtype": dtype, "device": device}

        def conv():
            return operations.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0), **factory)

        def norm():
            return operations.GroupNorm(32, channels, **factory)

        self.conv1 = FrameConvStage(norm(), nn.SiLU(), conv())
        self.conv2 = FrameConvStage(norm(), nn.SiLU(), nn.Dropout(dropout), conv())
        self.conv3 = FrameConvStage(norm(), nn.SiLU(), nn.Dropout(dropout), conv())
        self.conv4 = FrameConvStage(norm(), nn.SiLU(), nn.Dropout(dropout), conv())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv4(self.conv3(self.conv2(self.conv1(x))))


class ResBlock(TimestepBlock):
    """ResBlock with additive time embedding and optional temporal convolution.

    openaimodel3d.py:109-234: ``in_layers = GN → SiLU → conv3x3``; ``emb_layers = SiLU →
    Linear`` added to ``h`` (no scale-shift); ``out_layers = GN → SiLU → Dropout → conv3x3``;
    skip is Identity or a 1x1 conv. GroupNorms run in float32 (``GroupNormSpecific``).
    With ``use_temporal_conv`` a :class:`TemporalConvBlock` named ``temopral_conv`` (sic, the
    checkpoint key) is applied *after* the residual sum on the ``[b, c, t, h, w]`` view;
    ``tempspatial_aware`` selects Make-Your-Video's layout (:class:`SpatialAwareTemporalConvBlock`).
    """

    def __init__(self, channels: int, emb_channels: int, dropout: float = 0.0,
                 out_channels: int | None = None, use_temporal_conv: bool = False,
                 tempspatial_aware: bool = False, *, operations=nn, dtype=None, device=None):
        super().__init__()
        factory = {"dtype": dtype, "device": device}
        out_channels = out_channels or channels
        norm_cls = float32_group_norm(operations.GroupNorm)
        self.channels = channels
        self.out_channels = out_channels
        self.use_temporal_conv = use_temporal_conv
        self.in_layers = nn.Sequential(
            norm_cls(32, channels, **factory), nn.SiLU(),
            operations.Conv2d(channels, out_channels, 3, padding=1, **factory))
        self.emb_layers = nn.Sequential(nn.SiLU(), operations.Linear(emb_channels, out_channels, **factory))
        self.out_layers = nn.Sequential(
            norm_cls(32, out_channels, **factory), nn.SiLU(), nn.Dropout(dropout),
            operations.Conv2d(out_channels, out_channels, 3, padding=1, **factory))
        if out_channels == channels:
            self.skip_connection = nn.Identity()
        else:
            self.skip_connection = operations.Conv2d(channels, out_channels, 1, **factory)
        if use_temporal_conv:
            block = SpatialAwareTemporalConvBlock if tempspatial_aware else TemporalConvBlock
            self.temopral_conv = block(out_channels, dropout=0.1, operations=operations, **factory)

    def forward(self, x: torch.Tensor, emb: torch.Tensor, num_frames: int | None = None,
                temporal_enabled: bool = True) -> torch.Tensor:
        """``x`` [(b t), c, h, w], ``emb`` [(b t), emb_channels]."""
        h = self.in_layers(x)
        h = h + self.emb_layers(emb).to(h.dtype)[..., None, None]
        h = self.skip_connection(x) + self.out_layers(h)
        if self.use_temporal_conv and temporal_enabled and num_frames:
            n, c, hh, ww = h.shape
            h5 = h.reshape(n // num_frames, num_frames, c, hh, ww).transpose(1, 2)
            h = self.temopral_conv(h5).transpose(1, 2).reshape(n, c, hh, ww)
        return h
