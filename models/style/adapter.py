"""StyleCrafter's style adapter: StyleTransformer, ScaleEncoder and the per-layer style K/V weights.

Re-implementation (not a copy) of GongyeLiu/StyleCrafter@c2a2e27 ``lvdm/modules/encoders/adapter.py``
and ``arch_transformer.py`` (reference README §4.4). Module names reproduce the keys of the released
``adapter_v1.pth`` (``image_context_model.*``, ``scale_predictor.*``, ``kv_attn_layers.*``), so it loads
with ``strict=True``.

* :class:`StyleTransformer` (adapter.py:17-44): ``cat([style_emb, clip_tokens]) → ln1 → pre-LN
  transformer → ln2(first num_tokens) @ proj`` — N style-reference images' CLIP tokens → 8 style
  tokens in the text-context width.
* :class:`ScaleEncoder` (adapter.py:47-79): ``cat([scale_emb, style_tokens, text_tokens]) → ln1 →
  transformer → ln2(first num_tokens) → Linear → GELU → Linear → Tanh``: one factor ``s_i ∈ (-1, 1)``
  per dual cross-attention layer ("context-aware scale", the text decides how much style each layer
  takes).
* :class:`StyleKV` (``DualCrossAttnProcessorAS``'s weights, SC attention.py:650-670): ``to_k_style``,
  ``to_v_style`` (no bias) and ``norm_style``; the attention itself lives in
  ``models.unet.attention.CrossAttention``.

The transformer blocks use ``torch.nn.MultiheadAttention`` with ``batch_first=False`` like the
original (arch_transformer.py:160-252), so its ``in_proj_weight``/``out_proj`` keys and numerics are
the original's. Pure PyTorch, no ComfyUI import.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn

import torch.nn.functional as F

from .layout import (RELEASED_SCALE_HEADS, RELEASED_STYLE_HEADS, adapter_dimensions,
                                  dual_attention_paths, kv_module_name)


#: StyleCrafter loads each style reference with torchvision ``Resize(512)`` + ``CenterCrop(512)``
#: (style_inference.py:70-75) before the CLIP embedder's own 224 px resize.
STYLE_IMAGE_SIZE = 512


def style_reference_crop(images: torch.Tensor, size: int = STYLE_IMAGE_SIZE) -> torch.Tensor:
    """``[B, 3, H, W]`` in [0, 1] → ``[B, 3, size, size]`` in [-1, 1], as the original's style loader.

    torchvision ``Resize(size)`` on a PIL image: the shorter side becomes ``size``, the longer
    ``int(size · long / short)``, bilinear with PIL's antialiasing (``antialias=True`` is torch's
    equivalent), rounded back to 8 bit as PIL stores it; ``CenterCrop(size)`` with
    ``round((H − size) / 2)`` offsets; ``ToTensor`` then ``x·2 − 1`` (style_inference.py:70-75).
    """
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"expected RGB images [B, 3, H, W], got shape {tuple(images.shape)}")
    h, w = images.shape[-2:]
    if h <= w:
        new_h, new_w = size, int(size * w / h)
    else:
        new_h, new_w = int(size * h / w), size
    x = images.float()
    if (new_h, new_w) != (h, w):
        x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
        x = (x.clamp(0, 1) * 255).round() / 255
    top, left = int(round((new_h - size) / 2.0)), int(round((new_w - size) / 2.0))
    return x[..., top:top + size, left:left + size] * 2.0 - 1.0


class ResidualAttentionBlock(nn.Module):
    """open_clip-style pre-LN block: ``x += attn(ln_1(x)); x += mlp(ln_2(x))`` on ``[L, N, E]``
    (arch_transformer.py:160-209; no LayerScale, GELU MLP of ratio 4)."""

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0, *, dtype=None, device=None):
        super().__init__()
        factory = {"dtype": dtype, "device": device}
        hidden = int(width * mlp_ratio)
        self.ln_1 = nn.LayerNorm(width, **factory)
        self.attn = nn.MultiheadAttention(width, heads, **factory)
        self.ln_2 = nn.LayerNorm(width, **factory)
        self.mlp = nn.Sequential(OrderedDict([("c_fc", nn.Linear(width, hidden, **factory)), ("gelu", nn.GELU()),
                                              ("c_proj", nn.Linear(hidden, width, **factory))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    """``resblocks``: a stack of :class:`ResidualAttentionBlock` on ``[L, N, E]`` (arch_transformer.py:212-252)."""

    def __init__(self, width: int, layers: int, heads: int, *, dtype=None, device=None):
        super().__init__()
        self.resblocks = nn.ModuleList([ResidualAttentionBlock(width, heads, dtype=dtype, device=device)
                                        for _ in range(layers)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.resblocks:
            x = block(x)
        return x


class _QueryTransformer(nn.Module):
    """Shared body of StyleTransformer and ScaleEncoder: learned query tokens prepended to the input,
    ``ln1``, the transformer (sequence-first, as the original permutes), ``ln2`` on the queries."""

    def _queries(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        # torch.cat promotes the original's fp16 CLIP tokens to the float32 embedding (README §4.4).
        x = torch.cat([embedding.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.transformer_blocks(self.ln1(x).permute(1, 0, 2)).permute(1, 0, 2)
        return self.ln2(x[:, :embedding.shape[1]])


class StyleTransformer(_QueryTransformer):
    """CLIP image tokens ``[B, N·257, in_dim]`` → style tokens ``[B, num_tokens, out_dim]`` (adapter.py:17-44)."""

    def __init__(self, in_dim: int = 1280, out_dim: int = 1024, num_heads: int = 8, num_tokens: int = 8,
                 n_layers: int = 3, *, dtype=None, device=None):
        super().__init__()
        factory = {"dtype": dtype, "device": device}
        self.num_tokens = num_tokens
        self.style_emb = nn.Parameter(torch.randn(1, num_tokens, in_dim, **factory) * in_dim ** -0.5)
        self.transformer_blocks = Transformer(in_dim, n_layers, num_heads, **factory)
        self.ln1 = nn.LayerNorm(in_dim, **factory)
        self.ln2 = nn.LayerNorm(in_dim, **factory)
        self.proj = nn.Parameter(torch.randn(in_dim, out_dim, **factory) * in_dim ** -0.5)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self._queries(tokens, self.style_emb) @ self.proj


class ScaleEncoder(_QueryTransformer):
    """``cat([style_tokens, text_context], 1)`` → per-layer factors ``[B, num_tokens, 1]`` in (-1, 1)
    (adapter.py:47-79; used as ``scale_predictor(concat([append_to_context, cond], 1))``,
    style_inference.py:167-169)."""

    def __init__(self, in_dim: int = 1024, out_dim: int = 1, num_heads: int = 8, num_tokens: int = 16,
                 n_layers: int = 2, hidden: int = 32, *, dtype=None, device=None):
        super().__init__()
        factory = {"dtype": dtype, "device": device}
        self.num_tokens = num_tokens
        self.scale_emb = nn.Parameter(torch.randn(1, num_tokens, in_dim, **factory) * in_dim ** -0.5)
        self.transformer_blocks = Transformer(in_dim, n_layers, num_heads, **factory)
        self.ln1 = nn.LayerNorm(in_dim, **factory)
        self.ln2 = nn.LayerNorm(in_dim, **factory)
        self.out = nn.Sequential(nn.Linear(in_dim, hidden, **factory), nn.GELU(),
                                 nn.Linear(hidden, out_dim, **factory), nn.Tanh())

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        return self.out(self._queries(context, self.scale_emb))


class StyleKV(nn.Module):
    """The style key/value projections and output norm of one dual cross-attention layer.

    Keys ``to_k_style.weight``, ``to_v_style.weight``, ``norm_style.{weight,bias}`` (SC attention.py:650-665,
    ``use_norm: true``). ``layer_idx`` is the layer's position in registration order: the column of
    the scale factors it reads. Built through ``operations`` so ComfyUI can pass ``comfy.ops`` classes.
    """

    def __init__(self, context_dim: int, inner_dim: int, layer_idx: int, *, operations=nn, dtype=None, device=None):
        super().__init__()
        factory = {"dtype": dtype, "device": device}
        self.layer_idx = layer_idx
        self.to_k_style = operations.Linear(context_dim, inner_dim, bias=False, **factory)
        self.to_v_style = operations.Linear(context_dim, inner_dim, bias=False, **factory)
        self.norm_style = operations.LayerNorm(inner_dim, **factory)


@dataclass(frozen=True)
class StyleAdapterConfig:
    """Sizes of a style adapter (released values as defaults; ``from_state`` reads them from shapes)."""

    style_in_dim: int = 1280
    context_dim: int = 1024
    style_tokens: int = 8
    style_layers: int = 3
    style_heads: int = RELEASED_STYLE_HEADS
    scale_tokens: int = 16
    scale_layers: int = 2
    scale_heads: int = RELEASED_SCALE_HEADS
    scale_hidden: int = 32

    @classmethod
    def from_state(cls, state, *, style_heads: int = RELEASED_STYLE_HEADS,
                   scale_heads: int = RELEASED_SCALE_HEADS) -> "StyleAdapterConfig":
        """Sizes from the adapter checkpoint's shapes; head counts are not stored (the release uses 8)."""
        return cls(style_heads=style_heads, scale_heads=scale_heads, **adapter_dimensions(state))


class StyleAdapter(nn.Module):
    """``StyleAdapterDualAttnAS`` (adapter.py:141-188): the two encoders plus ``kv_attn_layers``.

    ``unet_shapes`` (UNet key → shape, no prefix) gives the dual-attention layers, so the
    ``kv_attn_layers`` keys and shapes are those the original creates for that UNet.
    """

    def __init__(self, config: StyleAdapterConfig, unet_shapes, *, dtype=None, device=None):
        super().__init__()
        factory = {"dtype": dtype, "device": device}
        c = config
        self.config = config
        self.image_context_model = StyleTransformer(c.style_in_dim, c.context_dim, c.style_heads, c.style_tokens,
                                                    c.style_layers, **factory)
        self.scale_predictor = ScaleEncoder(c.context_dim, 1, c.scale_heads, c.scale_tokens, c.scale_layers,
                                            c.scale_hidden, **factory)
        paths = dual_attention_paths(unet_shapes)
        self.attn2_paths = paths
        self.kv_attn_layers = nn.ModuleDict({
            kv_module_name(p): StyleKV(c.context_dim, tuple(unet_shapes[p + ".to_k.weight"])[0], i, **factory)
            for i, p in enumerate(paths)})

    def forward(self, clip_tokens: torch.Tensor) -> torch.Tensor:
        """Style tokens ``append_to_context`` (adapter.py:186-188)."""
        return self.image_context_model(clip_tokens)

    def scale_factors(self, style_tokens: torch.Tensor, text_context: torch.Tensor) -> torch.Tensor:
        """Per-layer factors ``[B, num_layers, 1]`` from style tokens and the prompt's text tokens."""
        return self.scale_predictor(torch.cat([style_tokens, text_context.to(style_tokens.dtype)], dim=1))


def attach_style_layers(unet: nn.Module, adapter: StyleAdapter) -> None:
    """Give each dual cross-attention ``attn2`` of ``unet`` its :class:`StyleKV` as ``processor``.

    In place, for pure-PyTorch use (tests, scripts); inside ComfyUI the same attachment is a
    ModelPatcher object patch on a clone (``bridge/style.py``), so the base model is never changed.
    The modules are shared, like the original's (the processor is both an ``attn2`` attribute and an
    adapter entry, which is why full StyleCrafter state dicts hold both key spellings).
    """
    for path in adapter.attn2_paths:
        unet.get_submodule(path).processor = adapter.kv_attn_layers[kv_module_name(path)]
