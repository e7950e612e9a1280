"""The I2V image projection: a Perceiver Resampler from CLIP tokens to context tokens.

Re-implementation of VideoCrafter ``lvdm/modules/encoders/ip_resampler.py:23-136`` (reference
README §4.5), the ``image_proj_model.*`` of VideoCrafter1 I2V: learned ``latents`` [1, Q, dim]
cross-attend (PerceiverAttention) to ``proj_in(tokens)`` plus themselves, ``depth`` times, each
followed by a feed-forward; then ``norm_out(proj_out(latents))``. Keys: ``latents``,
``proj_in``, ``proj_out``, ``norm_out``, ``layers.{i}.0.*`` (attention), ``layers.{i}.1.*`` (FF).
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import nn

RESAMPLER_PREFIX = "image_proj_model."


@dataclass(frozen=True)
class ResamplerConfig:
    """``Resampler`` kwargs (ip_resampler.py:94-104); defaults are the VC1 I2V 512 release."""

    dim: int = 1024
    depth: int = 4
    dim_head: int = 64
    heads: int = 12
    num_queries: int = 16
    embedding_dim: int = 1280
    output_dim: int = 1024
    ff_mult: int = 4


class PerceiverAttention(nn.Module):
    """Latents attend to ``cat([x, latents])`` (ip_resampler.py:45-90).

    Both inputs are LayerNorm'ed; ``q`` from latents, ``k, v`` from one ``to_kv``; q and k are
    each scaled by ``dim_head**-0.25`` before the product; the softmax runs in float32 and is
    cast back; ``to_out`` has no bias.
    """

    def __init__(self, dim: int, dim_head: int, heads: int, *, operations=nn, dtype=None, device=None):
        super().__init__()
        factory = {"dtype": dtype, "device": device}
        inner = dim_head * heads
        self.dim_head, self.heads = dim_head, heads
        self.norm1 = operations.LayerNorm(dim, **factory)
        self.norm2 = operations.LayerNorm(dim, **factory)
        self.to_q = operations.Linear(dim, inner, bias=False, **factory)
        self.to_kv = operations.Linear(dim, inner * 2, bias=False, **factory)
        self.to_out = operations.Linear(inner, dim, bias=False, **factory)

    def forward(self, x: torch.Tensor, latents: torch.Tensor) -> torch.Tensor:
        x = self.norm1(x)
        latents = self.norm2(latents)
        b, n, _ = latents.shape
        q = self.to_q(latents)
        k, v = self.to_kv(torch.cat([x, latents], dim=-2)).chunk(2, dim=-1)
        q, k, v = (t.view(b, t.shape[1], self.heads, -1).transpose(1, 2) for t in (q, k, v))
        scale = self.dim_head ** -0.25
        weight = (q * scale) @ (k * scale).transpose(-2, -1)
        weight = torch.softmax(weight.float(), dim=-1).to(weight.dtype)
        out = (weight @ v).transpose(1, 2).reshape(b, n, -1)
        return self.to_out(out)


def _feed_forward(dim: int, mult: int, operations, factory) -> nn.Sequential:
    """``LayerNorm → Linear(no bias) → GELU → Linear(no bias)`` (ip_resampler.py:24-31)."""
    inner = int(dim * mult)
    return nn.Sequential(operations.LayerNorm(dim, **factory),
                         operations.Linear(dim, inner, bias=False, **factory), nn.GELU(),
                         operations.Linear(inner, dim, bias=False, **factory))


class Resampler(nn.Module):
    """``tokens [B, N, embedding_dim] → image context [B, num_queries, output_dim]``."""

    def __init__(self, config: ResamplerConfig, *, operations=None, dtype=None, device=None):
        super().__init__()
        ops = nn if operations is None else operations
        factory = {"dtype": dtype, "device": device}
        c = config
        self.config = c
        self.latents = nn.Parameter(torch.empty(1, c.num_queries, c.dim, **factory))
        if self.latents.device.type != "meta":
            nn.init.normal_(self.latents, std=c.dim ** -0.5)
        self.proj_in = ops.Linear(c.embedding_dim, c.dim, **factory)
        self.proj_out = ops.Linear(c.dim, c.output_dim, **factory)
        self.norm_out = ops.LayerNorm(c.output_dim, **factory)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(c.dim, c.dim_head, c.heads, operations=ops, **factory),
                           _feed_forward(c.dim, c.ff_mult, ops, factory)])
            for _ in range(c.depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        latents = self.latents.to(dtype=x.dtype, device=x.device).repeat(x.shape[0], 1, 1)
        x = self.proj_in(x)
        for attn, ff in self.layers:
            latents = attn(x, latents) + latents
            latents = ff(latents) + latents
        return self.norm_out(self.proj_out(latents))


def detect_resampler_config(shapes: Mapping, prefix: str = RESAMPLER_PREFIX,
                            dim_head: int = 64) -> ResamplerConfig:
    """Infer a :class:`ResamplerConfig` from ``image_proj_model.*`` keys and shapes.

    The head split of the inner width (``heads * dim_head``) is not visible in the shapes, so
    ``dim_head`` is an argument (64 in the released I2V model, 12 heads × 64 = 768).
    """
    sd = {k[len(prefix):]: tuple(int(d) for d in (v.shape if hasattr(v, "shape") else v))
          for k, v in shapes.items() if k.startswith(prefix)}
    needed = ("latents", "proj_in.weight", "proj_out.weight", "layers.0.0.to_q.weight")
    missing = [k for k in needed if k not in sd]
    if missing:
        raise ValueError(f"not a Resampler: missing {[prefix + k for k in missing]} "
                         f"(found {len(sd)} keys under {prefix!r})")
    depth = len({int(m.group(1)) for k in sd if (m := re.match(r"layers\.(\d+)\.", k))})
    inner, dim = sd["layers.0.0.to_q.weight"]
    if inner % dim_head:
        raise ValueError(f"Resampler inner width {inner} is not a multiple of dim_head={dim_head}")
    return ResamplerConfig(
        dim=dim, depth=depth, dim_head=dim_head, heads=inner // dim_head,
        num_queries=sd["latents"][1], embedding_dim=sd["proj_in.weight"][1],
        output_dim=sd["proj_out.weight"][0], ff_mult=sd["layers.0.1.1.weight"][0] // dim)
