"""The (3,1,1) temporal convolutions of the UNet as a cheaper, equivalent 2-D convolution.

A ``Conv3d`` with kernel ``(k, 1, 1)`` on ``[b, c, t, h, w]`` mixes only frames: it is the ``Conv2d`` with
kernel ``(k, 1)`` on the same memory viewed as ``[b, c, t, h·w]`` (weight ``[o, i, k, 1, 1]`` viewed as
``[o, i, k, 1]``). Same products, same sums; only the kernel's accumulation order differs (float rounding,
~1e-6 relative in fp32). On the CPU PyTorch runs such a Conv3d through its generic ``slow_conv3d``
(im2col + GEMM) while the Conv2d takes oneDNN: 2.5-3.5× faster per conv at the UNet's sizes (measured in
docs/performance.md). The temporal-conv blocks (VideoCrafter2's ``temopral_conv.conv1-4``, Make-Your-Video's
spatial-aware block) call :func:`frame_conv` instead of the module.

The fast path reads the module's own ``weight``/``bias``, so it is taken only when those ARE the weights to
use: a plain ``torch.nn.Conv3d``, or a ComfyUI op with nothing to cast or patch (``comfy_cast_weights``
False, no ``weight_function``/``bias_function``: LoRA patches, low-VRAM offloading and manual casting all set
one of these). Anything else — and any other kernel, stride, dilation or group count — calls the module,
so ComfyUI's weight handling stays in charge.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _weights_ready(conv: nn.Module, x: torch.Tensor) -> bool:
    """True when ``conv.weight``/``conv.bias`` can be used as they are for input ``x``."""
    if getattr(conv, "comfy_cast_weights", False) or getattr(conv, "weight_function", None) \
            or getattr(conv, "bias_function", None):
        return False
    weight = conv.weight
    return (isinstance(weight, torch.Tensor) and type(weight) in (torch.Tensor, nn.Parameter)
            and weight.dtype == x.dtype and weight.device == x.device)


def _is_frame_kernel(conv: nn.Module) -> bool:
    """A Conv3d (k,1,1), stride 1, no dilation, one group, padding only in time."""
    return (isinstance(conv, nn.Conv3d) and conv.kernel_size[1:] == (1, 1) and conv.stride == (1, 1, 1)
            and conv.dilation == (1, 1, 1) and conv.groups == 1 and conv.padding[1:] == (0, 0)
            and not isinstance(conv.padding, str) and conv.padding_mode in ("zeros", "replicate"))


def frame_conv(conv: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``conv(x)`` for a (k,1,1) ``Conv3d`` on ``x`` ``[b, c, t, h, w]``, computed as a (k,1) ``Conv2d``.

    Returns ``[b, c', t, h, w]`` (contiguous). Falls back to ``conv(x)`` when the module's weights need
    ComfyUI's casting/patching or the kernel is not a pure frame kernel (see the module docstring).
    """
    if not (_is_frame_kernel(conv) and _weights_ready(conv, x)):
        return conv(x)
    b, c, t, h, w = x.shape
    pad_t = conv.padding[0]
    x4 = x.reshape(b, c, t, h * w)
    weight = conv.weight.reshape(*conv.weight.shape[:3], 1)
    if conv.padding_mode == "replicate" and pad_t:
        # Make-Your-Video's temporal convs repeat the edge frames (padding_mode="replicate").
        y = F.conv2d(F.pad(x4, (0, 0, pad_t, pad_t), mode="replicate"), weight, conv.bias)
    else:
        y = F.conv2d(x4, weight, conv.bias, padding=(pad_t, 0))
    return y.reshape(b, -1, y.shape[2], h, w)


class FrameConvStage(nn.Sequential):
    """``nn.Sequential`` of the temporal-conv blocks' stages (``norm → SiLU → [Dropout] → Conv3d``) whose
    last layer runs through :func:`frame_conv`. Same children and state-dict keys as the plain Sequential;
    forward hooks on the stage itself still see its output (the fixtures capture some, e.g. Make-Your-Video's
    ``temopral_conv.conv.1``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *pre, conv = self
        for layer in pre:
            x = layer(x)
        return frame_conv(conv, x)
