"""Make-Your-Video's temporal convolution block (``tempspatial_aware``), pure PyTorch.

Re-implementation of ``TemporalConvBlock(spatial_aware=True, real_3dconv=False)`` in
AILab-CVC/Make-Your-Video@9817461 ``lvdm/modules/networks/openaimodel3d.py:241-311`` (reference
``makeyourvideo/README.md`` §3 "UNet"). It differs from VideoCrafter2's block (``conv1..conv4``,
:class:`..resblocks.TemporalConvBlock`) in layout and numerics:

* keys ``conv.{0..3}`` (a Sequential of Sequentials) plus ``conv_last``; ``out = x + conv_last(conv(x))``;
* ``conv.0``, ``conv.2``, ``conv.3`` and ``conv_last`` are Conv3d (3,1,1) with **replicate** padding in time
  (the edge frames are repeated, not zero-padded);
* ``conv.1`` is a spatial Conv3d (1,3,3) with padding (0,1,1) in the **default zero** mode (line 276 sets no
  ``padding_mode``);
* the GroupNorms are plain ``GroupNorm(32, C)`` (eps 1e-5) on the 5-D ``[b, c, t, h, w]`` tensor (statistics
  over all frames), not the float32 ``GroupNormSpecific`` of the ResBlocks.
"""
from __future__ import annotations

import torch
from torch import nn

from .frame_conv import FrameConvStage


class SpatialAwareTemporalConvBlock(nn.Module):
    """``x + conv_last(conv.3(conv.2(conv.1(conv.0(x)))))`` on ``[b, c, t, h, w]`` (see module docstring)."""

    def __init__(self, channels: int, dropout: float = 0.1, *, operations=nn, dtype=None, device=None):
        super().__init__()
        factory = {"dtype": dtype, "device": device}

        def temporal():
            return operations.Conv3d(channels, channels, (3, 1, 1), padding=(1, 0, 0), padding_mode="replicate",
                                     **factory)

        def norm():
            return operations.GroupNorm(32, channels, **factory)

        spatial = operations.Conv3d(channels, channels, (1, 3, 3), padding=(0, 1, 1), **factory)
        # Temporal (3,1,1) convs run as the equivalent (3,1) Conv2d (FrameConvStage); the spatial one as given.
        self.conv = nn.Sequential(
            FrameConvStage(norm(), nn.SiLU(), temporal()),
            nn.Sequential(norm(), nn.SiLU(), nn.Dropout(dropout), spatial),
            FrameConvStage(norm(), nn.SiLU(), nn.Dropout(dropout), temporal()),
            FrameConvStage(norm(), nn.SiLU(), nn.Dropout(dropout), temporal()))
        self.conv_last = FrameConvStage(norm(), nn.SiLU(), nn.Dropout(dropout), temporal())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x first: the sum keeps x's memory layout (the UNet's (b t) one), so turning it back is free.
        return x + self.conv_last(self.conv(x))
