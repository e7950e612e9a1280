"""Tiny, seeded StyleCrafter checkpoints in the released layouts, for tests and the demo.

For a tiny VideoCrafter1 T2V 512 base made by ``devkit.tiny_checkpoint`` (``tiny_spec("vc1_t2v_512")``):

* :func:`make_tiny_adapter_state` — an ``adapter_v1.pth``-layout dict (``image_context_model.*``,
  ``scale_predictor.*``, ``kv_attn_layers.<processor path>.*``) whose StyleTransformer reads tokens
  of the tiny CLIP vision width (the tiny I2V checkpoint's image encoder, ``TinySpec.vision_width``),
  writes the tiny text width, and whose ScaleEncoder has one factor per dual cross-attention layer;
  8 heads like the release (detection assumes the released head count).
* :func:`make_tiny_temporal_state` — a ``temporal_v1_1.pth``-layout **nested** dict
  ``{TemporalTransformer path: state_dict}`` with new random weights, so applying it changes the video.

Randomisation as the reference fixtures (README §1): default init under ``torch.manual_seed``, then
``p += 0.02·n`` (or ``n·fan_in^-0.5`` / ``n·0.1`` for zero-initialised tensors). Pure PyTorch.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from ..models.style.adapter import StyleAdapter, StyleAdapterConfig
from ..models.style.layout import dual_attention_paths, temporal_transformer_paths
from .tiny_checkpoint import TinySpec, tiny_unet_config
from ..models.unet.unet3d import VideoCrafterUNet


def _randomise(module: nn.Module, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in module.parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if torch.count_nonzero(parameter) == 0:
                parameter.copy_(noise * math.prod(parameter.shape[1:]) ** -0.5 if parameter.dim() >= 2 else noise * 0.1)
            else:
                parameter.add_(0.02 * noise)


def _base_shapes(spec: TinySpec) -> dict:
    return {k: tuple(v.shape) for k, v in VideoCrafterUNet(tiny_unet_config(spec), device="meta").state_dict().items()}


def make_tiny_adapter_state(spec: TinySpec = TinySpec(variant="vc1_t2v_512"), *, seed: int = 7,
                            style_in_dim: int | None = None, style_tokens: int = 4, layers: int = 2) -> dict:
    """``adapter_v1.pth`` layout for the tiny base of ``spec``; ``style_in_dim`` defaults to the tiny CLIP width."""
    shapes = _base_shapes(spec)
    config = StyleAdapterConfig(style_in_dim=style_in_dim or spec.vision_width, context_dim=spec.text_width,
                                style_tokens=style_tokens, style_layers=layers,
                                scale_tokens=len(dual_attention_paths(shapes)), scale_layers=layers)
    torch.manual_seed(seed)
    adapter = StyleAdapter(config, shapes)
    _randomise(adapter, seed)
    return {k: v.detach().clone().contiguous() for k, v in adapter.state_dict().items()}


def make_tiny_temporal_state(spec: TinySpec = TinySpec(variant="vc1_t2v_512"), *, seed: int = 11) -> dict:
    """``temporal_v1_1.pth`` layout: ``{path: TemporalTransformer.state_dict()}`` for the tiny base."""
    torch.manual_seed(seed)
    unet = VideoCrafterUNet(tiny_unet_config(spec))
    _randomise(unet, seed)
    state = unet.state_dict()
    nested = {}
    for path in temporal_transformer_paths({k: v.shape for k, v in state.items()}):
        nested[path] = {k[len(path) + 1:]: v.detach().clone().contiguous() for k, v in state.items()
                        if k.startswith(path + ".")}
    return nested
