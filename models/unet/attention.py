"""Attention layers of the VideoCrafter 3D UNet: spatial and temporal transformers.

Re-implementation (not a copy) of VideoCrafter ``lvdm/modules/attention.py`` at
AILab-CVC/VideoCrafter@11bcd76 (reference README §4.2-4.3). Module and attribute names
reproduce the original state-dict keys (``to_q``, ``to_out.0``, ``to_k_ip``,
``relative_position_k.embeddings_table``, ``ff.net.0.proj``, ...).

Attention itself runs through ``torch.nn.functional.scaled_dot_product_attention`` (SDPA).
The one case SDPA cannot express is relative position (attention.py:93-113): its value term
``softmax(sim) · relv`` needs the probabilities, so that path computes softmax explicitly.

For benchmarks and debugging a naive path (explicit ``softmax(q k^T) v`` everywhere, like the
original's pure-PyTorch path) can be selected with :func:`attention_backend`.

Every layer is built through an ``operations`` namespace (``Linear``, ``Conv1d``, ``Conv2d``,
``GroupNorm``, ``LayerNorm``; default ``torch.nn``) with ``dtype``/``device`` so that ComfyUI
can pass its ``comfy.ops`` classes and the model can be built on the meta device.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .causal_window import sliding_causal_mask
from .row_chunks import map_row_chunks, rows_per_chunk

#: The original hard-codes the text length at which I2V context is split (attention.py:60).
TEXT_CONTEXT_LEN = 77

_BACKENDS = ("sdpa", "naive")
_backend = "sdpa"


def get_attention_backend() -> str:
    """The attention path in use: ``"sdpa"`` (default) or ``"naive"``."""
    return _backend


def set_attention_backend(name: str) -> None:
    """Select the attention path for every :class:`CrossAttention` (process-wide)."""
    global _backend
    if name not in _BACKENDS:
        raise ValueError(f"unknown attention backend {name!r}; expected one of {_BACKENDS}")
    _backend = name


@contextlib.contextmanager
def attention_backend(name: str) -> Iterator[None]:
    """Context manager: run the enclosed forward passes with backend ``name``.

    ``"naive"`` materialises ``softmax(q k^T * scale) v`` explicitly (the original's
    pure-PyTorch path, attention.py:92-114); ``"sdpa"`` uses PyTorch's fused kernel. Both
    give the same result to float rounding; the switch exists so a benchmark can compare
    the two on the same weights.
    """
    previous = _backend
    set_attention_backend(name)
    try:
        yield
    finally:
        set_attention_backend(previous)


def _split_heads(t: torch.Tensor, heads: int) -> torch.Tensor:
    """``b n (h d) -> b h n d``."""
    b, n, _ = t.shape
    return t.view(b, n, heads, -1).transpose(1, 2)


def _merge_heads(t: torch.Tensor) -> torch.Tensor:
    """``b h n d -> b n (h d)``."""
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


def scaled_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                     mask: torch.Tensor | None = None) -> torch.Tensor:
    """``softmax(q k^T * scale [masked]) v`` on ``[b, h, n, d]`` tensors.

    ``mask`` is boolean ``[n_q, n_k]``, True where attention is allowed. The original fills
    disallowed logits with ``-finfo.max`` (attention.py:101-105); with at least one allowed key
    per row (true for the causal mask) that equals SDPA's boolean mask.
    """
    if _backend == "sdpa":
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
    sim = torch.matmul(q, k.transpose(-1, -2)) * scale
    if mask is not None:
        sim = sim.masked_fill(~mask, -torch.finfo(sim.dtype).max)
    return torch.matmul(sim.softmax(dim=-1), v)


@dataclass(frozen=True)
class StyleInputs:
    """What StyleCrafter's dual cross-attention layers read (reference README §4.4).

    * ``context``: style tokens per frame ``[(b t), n, context_dim]`` (the adapter's ``append_to_context``).
    * ``scales``: per-layer factors per frame ``[(b t), n_layers]`` or ``[(b t), n_layers, 1]`` (the
      ScaleEncoder's ``scale_scalar``); None means factor 1 everywhere (``scale_scalar=None``).
    * ``weight``: the global style weight (``--style_weight``, the processor's ``self.scale``).
    * ``scaled_logits``: True = ``softmax(q k_style^T · d^-0.5)`` as the original's xformers path
      (what the released results used); False = ``softmax(q k_style^T)`` as its pure-PyTorch path
      (SC attention.py:772 omits the scale). Only style outputs differ.
    """

    context: torch.Tensor
    scales: torch.Tensor | None = None
    weight: float = 1.0
    scaled_logits: bool = True


class RelativePosition(nn.Module):
    """Clamped relative-position table ``[2L+1, dim_head]``, shared across heads.

    attention.py:21-40: entry ``[i, j]`` is ``table[clamp(j - i, -L, L) + L]`` (key index
    minus query index). Only ``embeddings_table`` is a parameter (checkpoint key
    ``relative_position_k.embeddings_table``).
    """

    def __init__(self, num_units: int, max_relative_position: int, *, dtype=None, device=None):
        super().__init__()
        self.num_units = num_units
        self.max_relative_position = max_relative_position
        self.embeddings_table = nn.Parameter(
            torch.empty(2 * max_relative_position + 1, num_units, dtype=dtype, device=device))
        if self.embeddings_table.device.type != "meta":
            nn.init.xavier_uniform_(self.embeddings_table)

    def forward(self, length_q: int, length_k: int, like: torch.Tensor) -> torch.Tensor:
        """Return ``[length_q, length_k, num_units]`` in ``like``'s dtype and device."""
        table = self.embeddings_table.to(device=like.device, dtype=like.dtype)
        distance = (torch.arange(length_k, device=like.device)[None, :]
                    - torch.arange(length_q, device=like.device)[:, None])
        index = distance.clamp(-self.max_relative_position, self.max_relative_position)
        return table[index + self.max_relative_position]


#: Inference bound on a transformer layer's token stream per chunk, in elements (2^21 = 8 MiB in fp32): a
#: SpatialTransformer runs its frames, a TemporalTransformer its pixel sequences, in chunks that fit.
#: 2^21 rather than more: each layer holds ~5 such tensors at once (measured, docs/performance.md).
LAYER_CHUNK_ELEMENTS = 2 ** 21

#: Inference bound on one attention call's per-head tensors (q, k, v, output ``[sequences, tokens, heads·d]``), in
#: elements (2^21 = 8 MiB in fp32): the batch of sequences (frames for spatial, pixels for temporal attention)
#: runs in chunks that fit (``models/unet/row_chunks.py``).
ATTENTION_CHUNK_ELEMENTS = 2 ** 21


class CrossAttention(nn.Module):
    """Multi-head (cross-)attention with optional relative position and image tokens.

    attention.py:43-127. ``to_q/to_k/to_v`` have no bias, ``to_out = [Linear, Dropout]``, scale
    ``dim_head**-0.5``.

    * ``relative_position``: temporal attention adds ``q·relk * scale`` to the logits and
      ``softmax·relv`` to the output (attention.py:93-98, 108-113).
    * ``img_cross_attention`` (I2V, SpatialTransformer attn2 only): image tokens go through
      ``to_k_ip/to_v_ip`` with the same ``q`` and their own softmax; the result is added as
      ``out_text + image_scale * out_img`` before ``to_out`` (attention.py:59-64, 82-87, 116-124).
    * ``processor`` (StyleCrafter, set by a model patch on the SpatialTransformer attn2 layers: a
      ``models.style.adapter.StyleKV``; None otherwise, so the base keys are unchanged): style tokens
      go through ``to_k_style/to_v_style`` with the same ``q``; the result is
      ``out + (1 + s[layer_idx]) · weight · norm_style(attn(q, k_style, v_style))`` before ``to_out``
      (``DualCrossAttnProcessorAS``, SC attention.py:731-788). The attribute name gives the
      original's alias keys ``...attn2.processor.to_k_style.weight``.
    """

    def __init__(self, query_dim: int, context_dim: int | None = None, heads: int = 8,
                 dim_head: int = 64, dropout: float = 0.0, *, relative_position: bool = False,
                 temporal_length: int | None = None, img_cross_attention: bool = False,
                 image_cross_attention_scale: float = 1.0, operations=nn, dtype=None, device=None):
        super().__init__()
        inner_dim = dim_head * heads
        context_dim = query_dim if context_dim is None else context_dim
        factory = {"dtype": dtype, "device": device}
        self.scale = dim_head ** -0.5
        self.heads = heads
        self.dim_head = dim_head
        self.to_q = operations.Linear(query_dim, inner_dim, bias=False, **factory)
        self.to_k = operations.Linear(context_dim, inner_dim, bias=False, **factory)
        self.to_v = operations.Linear(context_dim, inner_dim, bias=False, **factory)
        self.to_out = nn.Sequential(operations.Linear(inner_dim, query_dim, **factory),
                                    nn.Dropout(dropout))
        self.img_cross_attention = img_cross_attention
        self.image_cross_attention_scale = image_cross_attention_scale
        if img_cross_attention:
            self.to_k_ip = operations.Linear(context_dim, inner_dim, bias=False, **factory)
            self.to_v_ip = operations.Linear(context_dim, inner_dim, bias=False, **factory)
        self.processor = None  # StyleCrafter StyleKV, attached by a model patch
        self.relative_position = relative_position
        if relative_position:
            if temporal_length is None:
                raise ValueError("relative_position needs temporal_length (size of the tables)")
            self.relative_position_k = RelativePosition(dim_head, temporal_length, **factory)
            self.relative_position_v = RelativePosition(dim_head, temporal_length, **factory)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                mask: torch.Tensor | None = None, image_context: torch.Tensor | None = None,
                image_scale: float | None = None, style: StyleInputs | None = None,
                attention_override=None) -> torch.Tensor:
        """``x`` [b, n, query_dim]; ``context`` [b, m, context_dim] or None (self-attention);
        ``mask`` boolean [n, m] (True = attend); ``image_context`` [b, k, context_dim] (only
        used when the layer has ``to_k_ip``); ``style`` (only used when the layer has a style
        ``processor``); ``attention_override(layer, x, mask)`` replaces self-attention when it
        returns a tensor (e.g. FreeNoise's window fusion, models/longvideo/freenoise.py)."""
        if attention_override is not None and context is None:
            out = attention_override(self, x, mask)
            if out is not None:
                return out
        if (not torch.is_grad_enabled() and style is None
                and (context is None or context.shape[0] == x.shape[0])
                and (image_context is None or image_context.shape[0] == x.shape[0])):
            # Inference: sequences of the batch are independent; bound q/k/v/output per chunk of them.
            tokens = max(x.shape[1], 0 if context is None else context.shape[1])
            rows = rows_per_chunk(ATTENTION_CHUNK_ELEMENTS, tokens * self.heads * self.dim_head)
            if rows < x.shape[0]:
                return map_row_chunks(lambda xs, cs, ics: self._attend(xs, cs, mask, ics, image_scale, None),
                                      rows, x, context, image_context)
        return self._attend(x, context, mask, image_context, image_scale, style)

    def _attend(self, x, context, mask, image_context, image_scale, style):
        """The attention itself (see :meth:`forward`).

        A ``context`` with fewer rows than ``x`` is shared by consecutive sequences: ``x`` row ``i`` reads
        context row ``i // (len(x) / len(context))`` (one text per video, frames as sequences; see
        :func:`share_rows_per_video`). Those sequences are attended as one long query sequence per context
        row, so K and V are projected once per video instead of once per frame; every query row's softmax is
        the same as before (the keys are the same), only the batching differs.
        """
        sequences, tokens = x.shape[:2]
        shared = context is not None and context.shape[0] < sequences
        if shared:
            rows = [image_context] + ([style.context, style.scales] if style is not None else [])
            if any(r is not None and r.shape[0] != context.shape[0] for r in rows):
                raise ValueError("image and style tokens must be shared like context (one row per video)")
            x = x.reshape(context.shape[0], -1, x.shape[2])
        out = self._attend_rows(x, context, mask, image_context, image_scale, style)
        return out.reshape(sequences, tokens, out.shape[2]) if shared else out

    def _attend_rows(self, x, context, mask, image_context, image_scale, style):
        h = self.heads
        q = _split_heads(self.to_q(x), h)
        source = x if context is None else context
        k = _split_heads(self.to_k(source), h)
        v = _split_heads(self.to_v(source), h)
        if self.relative_position:
            out = self._relative_attention(q, k, v, mask)
        else:
            out = scaled_attention(q, k, v, self.scale, mask)
        out = _merge_heads(out)
        if self.img_cross_attention and image_context is not None and image_context.shape[1] > 0:
            k_ip = _split_heads(self.to_k_ip(image_context), h)
            v_ip = _split_heads(self.to_v_ip(image_context), h)
            out_ip = _merge_heads(scaled_attention(q, k_ip, v_ip, self.scale))
            weight = self.image_cross_attention_scale if image_scale is None else image_scale
            out = out + weight * out_ip
        if style is not None and self.processor is not None:
            out = out + self._style_attention(q, style, out.dtype)
        return self.to_out(out)

    def _style_attention(self, q: torch.Tensor, style: StyleInputs, dtype) -> torch.Tensor:
        """``(1 + s[layer_idx]) · norm_style(attn(q, k_style, v_style)) · weight`` (SC attention.py:770-788)."""
        processor, h = self.processor, self.heads
        context = style.context.to(dtype)
        k_style = _split_heads(processor.to_k_style(context), h)
        v_style = _split_heads(processor.to_v_style(context), h)
        out_style = _merge_heads(scaled_attention(q, k_style, v_style, self.scale if style.scaled_logits else 1.0))
        out_style = processor.norm_style(out_style)
        if style.scales is None:
            return 1.0 * out_style * style.weight
        factor = 1 + style.scales[:, processor.layer_idx].reshape(-1, 1, 1).to(dtype)
        return factor * out_style * style.weight

    def _relative_attention(self, q, k, v, mask):
        """Explicit softmax path: the ``softmax · relv`` term needs the probabilities."""
        n_q, n_k = q.shape[2], k.shape[2]
        rel_k = self.relative_position_k(n_q, n_k, q)
        rel_v = self.relative_position_v(n_q, v.shape[2], v)
        sim = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        sim = sim + torch.einsum("bhtd,tsd->bhts", q, rel_k) * self.scale
        if mask is not None:
            sim = sim.masked_fill(~mask, -torch.finfo(sim.dtype).max)
        attn = sim.softmax(dim=-1)
        return torch.matmul(attn, v) + torch.einsum("bhts,tsd->bhtd", attn, rel_v)


class GEGLU(nn.Module):
    """``x * gelu(gate)`` from one projection to ``2*dim_out`` (attention.py:376-383)."""

    def __init__(self, dim_in: int, dim_out: int, *, operations=nn, dtype=None, device=None):
        super().__init__()
        self.proj = operations.Linear(dim_in, dim_out * 2, dtype=dtype, device=device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gate = self.proj(x).chunk(2, dim=-1)
        if torch.is_grad_enabled():
            return x * F.gelu(gate)
        return F.gelu(gate).mul_(x)  # inference: multiply into gelu's fresh buffer (same products)


#: Inference bound on the feed-forward's widest intermediate (GEGLU's ``[rows, 8·dim]`` projection), in elements
#: (2^21 = 8 MiB in fp32): tokens are fed through in chunks of at most ``FF_CHUNK_ELEMENTS // (8·dim)`` rows.
FF_CHUNK_ELEMENTS = 2 ** 21


class FeedForward(nn.Module):
    """``GEGLU(dim, 4*dim) → Dropout → Linear`` (attention.py:386-403; keys ``net.0.proj``, ``net.2``).

    Every token is independent here, so under inference (no autograd) the tokens run in chunks of rows
    (:data:`FF_CHUNK_ELEMENTS`) written into one output: the ``[tokens, 8·dim]`` intermediate — the largest
    tensor of the UNet at full resolution, 8× the residual stream — no longer grows with frames × pixels.
    Each row's products are the same as unchunked. With autograd on (training) it runs in one piece.
    """

    def __init__(self, dim: int, mult: int = 4, dropout: float = 0.0, *, operations=nn,
                 dtype=None, device=None):
        super().__init__()
        inner = int(dim * mult)
        self.net = nn.Sequential(
            GEGLU(dim, inner, operations=operations, dtype=dtype, device=device),
            nn.Dropout(dropout),
            operations.Linear(inner, dim, dtype=dtype, device=device))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.shape[:-1].numel()
        chunk = rows_per_chunk(FF_CHUNK_ELEMENTS, self.net[0].proj.out_features)
        if torch.is_grad_enabled() or rows <= chunk:
            return self.net(x)
        out = map_row_chunks(self.net, chunk, x.reshape(rows, x.shape[-1]))
        return out.reshape(*x.shape[:-1], out.shape[-1])


class BasicTransformerBlock(nn.Module):
    """Pre-LN block: self-attn, cross-attn, GEGLU feed-forward (attention.py:187-220).

    ``attn1`` is always self-attention (``disable_self_attn`` is False in every UNet). ``attn2``
    attends to ``context`` (or to ``x`` when context is None: the temporal blocks). The mask
    is applied to both, as in the original.
    """

    def __init__(self, dim: int, n_heads: int, d_head: int, dropout: float = 0.0,
                 context_dim: int | None = None, *, relative_position: bool = False,
                 temporal_length: int | None = None, img_cross_attention: bool = False,
                 image_cross_attention_scale: float = 1.0, operations=nn, dtype=None, device=None):
        super().__init__()
        common = dict(heads=n_heads, dim_head=d_head, dropout=dropout,
                      relative_position=relative_position, temporal_length=temporal_length,
                      operations=operations, dtype=dtype, device=device)
        self.attn1 = CrossAttention(dim, None, **common)
        self.ff = FeedForward(dim, dropout=dropout, operations=operations, dtype=dtype, device=device)
        self.attn2 = CrossAttention(dim, context_dim, img_cross_attention=img_cross_attention,
                                    image_cross_attention_scale=image_cross_attention_scale, **common)
        self.norm1 = operations.LayerNorm(dim, dtype=dtype, device=device)
        self.norm2 = operations.LayerNorm(dim, dtype=dtype, device=device)
        self.norm3 = operations.LayerNorm(dim, dtype=dtype, device=device)

    def forward(self, x, context=None, mask=None, image_context=None, image_scale=None, style=None,
                attention_override=None):
        x = self.attn1(self.norm1(x), mask=mask, attention_override=attention_override) + x
        x = self.attn2(self.norm2(x), context, mask=mask, image_context=image_context,
                       image_scale=image_scale, style=style, attention_override=attention_override) + x
        return self.ff(self.norm3(x)) + x


def _projection(operations, use_linear: bool, conv, c_in: int, c_out: int, factory: dict) -> nn.Module:
    """``proj_in``/``proj_out`` of the transformers: Linear when ``use_linear`` (VC2 configs), else a 1x1
    conv (``conv`` is Conv2d for spatial, Conv1d for temporal layouts, e.g. ``init_attn``)."""
    if use_linear:
        return operations.Linear(c_in, c_out, **factory)
    return conv(c_in, c_out, kernel_size=1, **factory)


class SpatialTransformer(nn.Module):
    """Per-frame spatial transformer on ``[(b t), c, h, w]`` (attention.py:223-278).

    ``GroupNorm(32, eps=1e-6)`` per frame → ``proj_in`` (Linear if ``use_linear`` else 1x1
    Conv2d) → blocks (text cross-attention, optional I2V image cross-attention) → ``proj_out``
    → + residual.
    """

    def __init__(self, in_channels: int, n_heads: int, d_head: int, depth: int = 1,
                 dropout: float = 0.0, context_dim: int | None = None, use_linear: bool = False,
                 img_cross_attention: bool = False, image_cross_attention_scale: float = 1.0, *,
                 operations=nn, dtype=None, device=None):
        super().__init__()
        factory = {"dtype": dtype, "device": device}
        inner = n_heads * d_head
        self.in_channels = in_channels
        self.use_linear = use_linear
        self.norm = operations.GroupNorm(32, in_channels, eps=1e-6, affine=True, **factory)
        self.proj_in = _projection(operations, use_linear, operations.Conv2d, in_channels, inner, factory)
        self.transformer_blocks = nn.ModuleList([
            BasicTransformerBlock(inner, n_heads, d_head, dropout, context_dim,
                                  img_cross_attention=img_cross_attention,
                                  image_cross_attention_scale=image_cross_attention_scale,
                                  operations=operations, **factory)
            for _ in range(depth)])
        self.proj_out = _projection(operations, use_linear, operations.Conv2d, inner, in_channels, factory)

    def forward(self, x, context=None, image_context=None, image_scale=None, style=None):
        """``x`` ``[(b t), c, h, w]``; ``context``/``image_context``/``style`` per frame (or None); ``context`` and
        ``image_context`` (and ``style``'s rows) may instead hold one row per video (:func:`share_rows_per_video`).

        Frames are independent here (the GroupNorm's statistics are per frame), so under inference the
        frames run in chunks of :data:`LAYER_CHUNK_ELEMENTS` (the token stream of a chunk, not of the clip,
        is what is alive at once).
        """
        n = x.shape[0]
        per_frame = [t for t in (context, image_context) if t is not None]
        if style is not None:
            per_frame += [t for t in (style.context, style.scales) if t is not None]
        if not torch.is_grad_enabled() and all(t.shape[0] <= n for t in per_frame):
            width = _stream_width(self.in_channels, self.transformer_blocks)
            rows = rows_per_chunk(LAYER_CHUNK_ELEMENTS, x[0].numel() // self.in_channels * width)
            if rows < n:
                def frames_of(xs, cs, ics, scs, sss):
                    return self._frames(xs, cs, ics, image_scale, _style_rows(style, scs, sss))

                style_rows = (None, None) if style is None else (style.context, style.scales)
                if context is not None and context.shape[0] < n:  # rows shared per video
                    frames = n // context.shape[0]
                    if rows >= frames:  # chunks of whole videos: K/V stay once per video
                        return map_row_chunks(
                            lambda xs, *conditions: frames_of(xs.flatten(0, 1), *conditions).unflatten(0, (-1, frames)),
                            rows // frames, x.unflatten(0, (-1, frames)), context, image_context, *style_rows,
                        ).flatten(0, 1)
                    # one video's frames exceed a chunk: chunks of frames with per-frame rows, as unshared
                    context, image_context, *style_rows = (expand_shared_rows(r, n) for r in
                                                           (context, image_context, *style_rows))
                return map_row_chunks(frames_of, rows, x, context, image_context, *style_rows)
        return self._frames(x, context, image_context, image_scale, style)

    def _frames(self, x, context, image_context, image_scale, style):
        b, c, h, w = x.shape
        x_in = x
        x = self.norm(x)
        if not self.use_linear:
            x = self.proj_in(x)
        x = x.flatten(2).transpose(1, 2).contiguous()  # b c h w -> b (h w) c
        if self.use_linear:
            x = self.proj_in(x)
        for block in self.transformer_blocks:
            x = block(x, context, image_context=image_context, image_scale=image_scale, style=style)
        if self.use_linear:
            x = self.proj_out(x)
        x = x.transpose(1, 2).reshape(b, -1, h, w)  # a view: the residual sum below does the layout change
        if not self.use_linear:
            x = self.proj_out(x)
        return x_in + x


def expand_shared_rows(value: torch.Tensor | None, rows: int) -> torch.Tensor | None:
    """A context shared by consecutive rows (one per video) back to one row per frame."""
    if value is None or value.shape[0] == rows:
        return value
    return value.repeat_interleave(rows // value.shape[0], dim=0)


def share_rows_per_video(rows: tuple, videos: int) -> tuple:
    """Per-frame conditioning ``rows`` (text, I2V image and StyleCrafter style tokens, style scales; None where
    absent) reduced to one row per video when every frame of each video has the same rows — else unchanged.

    Text (and image, style) tokens are per video in VideoCrafter (openaimodel3d.py:544-547 repeats them over
    frames), and ComfyUI hands them repeated to the batch of frames; projecting them to K/V once per video
    instead of once per frame saves ``(T−1)/T`` of the cross-attention's K/V work — at 16×16×16 latents about
    11 % of a full-width VC2 forward (docs/performance.md). Per-frame rows that differ (prompt travel, window
    conditions) are kept as they are; all rows are shared or none. Skipped while ``torch.compile`` traces (the
    check is data-dependent): compiled graphs take the per-frame path, which gives the same numbers.
    """
    first_rows = next((r for r in rows if r is not None), None)
    if first_rows is None or torch.compiler.is_compiling():
        return rows
    frames = first_rows.shape[0] // videos
    if frames <= 1:
        return rows
    shared = []
    for value in rows:
        if value is None:
            shared.append(None)
            continue
        if value.shape[0] != videos * frames:
            return rows
        grouped = value.unflatten(0, (videos, frames))
        first = grouped[:, :1]
        if not torch.equal(grouped, first.expand_as(grouped)):
            return rows
        shared.append(first.squeeze(1))
    return tuple(shared)


def _stream_width(channels: int, blocks: nn.ModuleList) -> int:
    """Widest per-token width of a transformer layer's stream: its channels or the blocks' ``heads · d``."""
    attn = blocks[0].attn1
    return max(channels, attn.heads * attn.dim_head)


def _style_rows(style: StyleInputs | None, context: torch.Tensor | None, scales: torch.Tensor | None):
    """``style`` with its per-frame tensors replaced by the rows of one chunk."""
    if style is None:
        return None
    return StyleInputs(context, scales, style.weight, style.scaled_logits)


class TemporalTransformer(nn.Module):
    """Attention across frames at every pixel, on ``[b, c, t, h, w]`` (attention.py:281-373).

    * ``GroupNorm(32, eps=1e-6)`` on the 5-D tensor: statistics span all frames.
    * Layout ``(b h w) t c``; ``proj_in``/``proj_out`` are Linear if ``use_linear`` else 1x1
      Conv1d (``init_attn`` uses Conv1d).
    * ``only_self_att`` (every released config): ``context_dim`` is dropped, so attn1 *and*
      attn2 are self-attention over frames.
    * ``relative_position``: clamped tables of size ``2*temporal_length+1`` in both attentions.
    * ``causal_attention``: lower-triangular frame mask (attention.py:309-311, 342-346); with
      ``causal_block_size`` set, Make-Your-Video's 16-frame sliding causal window
      (:func:`sliding_causal_mask`).
    """

    def __init__(self, in_channels: int, n_heads: int, d_head: int, depth: int = 1,
                 dropout: float = 0.0, context_dim: int | None = None, use_linear: bool = False,
                 only_self_att: bool = True, causal_attention: bool = False,
                 relative_position: bool = False, temporal_length: int | None = None, *,
                 causal_block_size: int | None = None, operations=nn, dtype=None, device=None):
        super().__init__()
        factory = {"dtype": dtype, "device": device}
        inner = n_heads * d_head
        self.in_channels = in_channels
        self.use_linear = use_linear
        self.only_self_att = only_self_att
        self.causal_attention = causal_attention
        self.causal_block_size = causal_block_size
        self.norm = operations.GroupNorm(32, in_channels, eps=1e-6, affine=True, **factory)
        self.proj_in = _projection(operations, use_linear, operations.Conv1d, in_channels, inner, factory)
        self.transformer_blocks = nn.ModuleList([
            BasicTransformerBlock(inner, n_heads, d_head, dropout,
                                  None if only_self_att else context_dim,
                                  relative_position=relative_position,
                                  temporal_length=temporal_length, operations=operations, **factory)
            for _ in range(depth)])
        self.proj_out = _projection(operations, use_linear, operations.Conv1d, inner, in_channels, factory)

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None,
                attention_override=None) -> torch.Tensor:
        """``x`` [b, c, t, h, w]; ``context`` per frame [(b t), l, c'] (only used when not
        ``only_self_att``); ``attention_override`` is handed to every self-attention over frames."""
        b, c, t, h, w = x.shape
        x_in = x
        x = self.norm(x)
        if self.use_linear:
            x = x.permute(0, 3, 4, 2, 1).reshape(b * h * w, t, c)  # (b h w) t c: one copy
        else:
            x = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t)  # (b h w) c t for the Conv1d projections
        mask = None
        if self.causal_attention and self.causal_block_size is not None:
            mask = sliding_causal_mask(t, self.causal_block_size, device=x.device)
        elif self.causal_attention:
            mask = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        if self.only_self_att:
            # After the norm every pixel's sequence is independent: under inference run them in chunks so the
            # (often wider: init_attn has 8 heads) token stream of the whole clip is never alive at once.
            rows = x.shape[0]
            if not torch.is_grad_enabled():
                rows = rows_per_chunk(LAYER_CHUNK_ELEMENTS, t * _stream_width(c, self.transformer_blocks))
            if rows < x.shape[0]:
                x = map_row_chunks(lambda xs: self._pixels(xs, mask, attention_override), rows, x)
            else:
                x = self._pixels(x, mask, attention_override)
        else:
            x = self._project_out(self._cross_frames(self._project_in(x), context, b, t, h * w))
        if self.use_linear:
            x = x.reshape(b, h, w, t, c).permute(0, 4, 3, 1, 2)
        else:
            x = x.reshape(b, h, w, c, t).permute(0, 3, 4, 1, 2)
        # The residual sum does the layout change back (no separate copy) and takes x_in's layout: called from
        # the UNet, x_in is a [b, c, t, h, w] view of its (b t) c h w memory, so returning to it is free.
        return x_in + x

    def _project_in(self, x):
        """``(b h w) t c`` (Linear) or ``(b h w) c t`` (Conv1d) → ``(b h w) t inner``."""
        return self.proj_in(x) if self.use_linear else self.proj_in(x).transpose(1, 2).contiguous()

    def _project_out(self, x):
        """``(b h w) t inner`` → ``(b h w) t c`` (Linear) or ``(b h w) c t`` (Conv1d)."""
        return self.proj_out(x) if self.use_linear else self.proj_out(x.transpose(1, 2).contiguous())

    def _pixels(self, x, mask, attention_override):
        """Projections and self-attention blocks over frames for a batch of pixel sequences."""
        x = self._project_in(x)
        for block in self.transformer_blocks:
            x = block(x, mask=mask, attention_override=attention_override)
        return self._project_out(x)

    def _cross_frames(self, x, context, b, t, hw):
        """The original's (unreleased) temporal cross-attention (attention.py:353-363).

        Pixel row ``i`` of video ``j`` attends to the context of frame ``i // (hw // t)``: the
        per-frame context is repeated ``hw // t`` times along the pixel axis. The causal mask is
        not applied on this path, as in the original.
        """
        if context is None:
            raise ValueError("TemporalTransformer with only_self_att=False needs a context")
        if hw % t:
            raise ValueError(f"temporal cross-attention needs h*w ({hw}) divisible by frames ({t})")
        ctx = context.reshape(b, t, *context.shape[1:]).repeat_interleave(hw // t, dim=1)
        ctx = ctx.reshape(b * hw, *context.shape[1:])
        for block in self.transformer_blocks:
            x = block(x, ctx)
        return x
