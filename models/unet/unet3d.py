"""The VideoCrafter 3D UNet (VideoCrafter1 T2V/I2V, VideoCrafter2, StyleCrafter's base).

Re-implementation of VideoCrafter ``lvdm/modules/networks/openaimodel3d.py:279-576``
(reference README §4). Module names reproduce the original state-dict keys, so a checkpoint's
``model.diffusion_model.*`` tensors (prefix stripped) load with ``strict=True``.

Two calling conventions:

* 5-D, the original's: ``x`` ``[B, C, T, H, W]`` → ``[B, C', T, H, W]``.
* batch-as-frames, ComfyUI's: ``x`` ``[(B·T), C, H, W]`` with ``num_frames=T``, frames of one
  video contiguous (``b0f0, b0f1, ...``), the same ``(b t)`` order the original uses inside.

Internally everything runs in the ``(b t) c h w`` layout like the original, so forward hooks on
``input_blocks.i``, ``init_attn``, ``middle_block``, ``output_blocks.i`` and ``out`` see the same
tensors as hooks on the original model.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import torch
from torch import nn

from .attention import TEXT_CONTEXT_LEN, SpatialTransformer, StyleInputs, TemporalTransformer, share_rows_per_video
from .resblocks import (Downsample, ResBlock, TimestepBlock, Upsample, float32_group_norm,
                        timestep_embedding)

#: The original's default fps when none is given (openaimodel3d.py:534).
DEFAULT_FPS = 16

# Upstream UNetModel kwargs that do not change keys or numerics here (checkpointing, dtype flag).
_IGNORED_UPSTREAM = {"use_checkpoint", "use_fp16", "conv_resample", "dims"}
# Upstream kwargs whose non-default values this implementation does not support.
_UNSUPPORTED_UPSTREAM = {"use_scale_shift_norm": False, "resblock_updown": False,
                         "num_heads": -1, "dims": 2, "conv_resample": True, "real_3dconv": False}


@dataclass(frozen=True)
class UNet3DConfig:
    """Every switch of the original ``UNetModel`` that the released configs use.

    Field names and defaults follow ``openaimodel3d.py:307-337``; ``image_cross_attention_scale``
    is the I2V image-token weight (``CrossAttention.image_cross_attention_scale``, 1.0 upstream).
    """

    in_channels: int = 4
    out_channels: int = 4
    model_channels: int = 320
    attention_resolutions: tuple[int, ...] = (4, 2, 1)
    num_res_blocks: int = 2
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)
    num_head_channels: int = 64
    transformer_depth: int = 1
    temporal_transformer_depth: int = 1
    context_dim: int | None = 1024
    use_linear: bool = True
    temporal_conv: bool = False
    temporal_attention: bool = True
    temporal_selfatt_only: bool = True
    use_relative_position: bool = True
    use_causal_attention: bool = False
    temporal_length: int | None = 16
    addition_attention: bool = False
    fps_cond: bool = False
    use_image_attention: bool = False
    image_cross_attention_scale: float = 1.0
    dropout: float = 0.0
    # Make-Your-Video (makeyourvideo/README.md §3): its spatial-aware temporal conv layout
    # (``temopral_conv.conv.0-3`` + ``conv_last``) and its 16-frame sliding causal window
    # (``causal_block_size`` set; None = VideoCrafter's plain lower-triangular causal mask).
    tempspatial_aware: bool = False
    causal_block_size: int | None = None

    def __post_init__(self):
        # A set upstream (only ``ds in attention_resolutions`` is asked): keep it sorted.
        object.__setattr__(self, "attention_resolutions",
                           tuple(sorted({int(r) for r in self.attention_resolutions})))
        object.__setattr__(self, "channel_mult", tuple(int(m) for m in self.channel_mult))
        if self.num_head_channels <= 0:
            raise ValueError("num_head_channels must be positive (the released configs use 64)")
        if self.use_relative_position and not self.temporal_length:
            raise ValueError("use_relative_position needs temporal_length (size of the tables)")

    @classmethod
    def from_upstream_kwargs(cls, kwargs: Mapping[str, Any]) -> "UNet3DConfig":
        """Build from the original ``UNetModel`` kwargs (a YAML ``unet_config.params`` or a
        fixture's ``unet_kwargs``).

        Training-only switches (``use_checkpoint``, ``use_fp16``) are ignored; switches whose
        non-default value this implementation lacks (``use_scale_shift_norm``,
        ``resblock_updown``, ``real_3dconv``, ``num_heads``) raise ``ValueError``. Make-Your-Video's
        ``tempspatial_aware`` and ``causal_block_size`` are fields.
        Upstream defaults apply to absent keys (e.g. ``use_relative_position=True``).
        """
        known = {f.name for f in fields(cls)}
        values = {}
        for key, value in kwargs.items():
            if key in known:
                values[key] = value
            elif key in _UNSUPPORTED_UPSTREAM:
                if value != _UNSUPPORTED_UPSTREAM[key]:
                    raise ValueError(f"UNet option {key}={value!r} is not supported "
                                     f"(only {_UNSUPPORTED_UPSTREAM[key]!r}, as in every released config)")
            elif key not in _IGNORED_UPSTREAM:
                raise ValueError(f"unknown UNet option {key!r}")
        return cls(**values)


class TimestepEmbedSequential(nn.Sequential):
    """A sequence of layers called with what each kind needs (openaimodel3d.py:30-48).

    ResBlocks get the time embedding; SpatialTransformers get the (image) context;
    TemporalTransformers get the 5-D ``[b, c, t, h, w]`` view and are skipped when
    ``temporal_enabled`` is False; anything else gets ``x`` only.
    """

    def forward(self, x, emb, context=None, num_frames=None, image_context=None,
                image_scale=None, temporal_enabled=True, style=None, temporal_attention=None):
        for layer in self:
            if isinstance(layer, TimestepBlock):
                x = layer(x, emb, num_frames, temporal_enabled)
            elif isinstance(layer, SpatialTransformer):
                x = layer(x, context, image_context=image_context, image_scale=image_scale, style=style)
            elif isinstance(layer, TemporalTransformer):
                if temporal_enabled:
                    n, c, h, w = x.shape
                    x5 = x.reshape(n // num_frames, num_frames, c, h, w).transpose(1, 2)
                    x = layer(x5, context, attention_override=temporal_attention).transpose(1, 2).reshape(n, c, h, w)
            else:
                x = layer(x)
        return x


def _embedding_mlp(model_channels, dim, operations, factory):
    return nn.Sequential(operations.Linear(model_channels, dim, **factory), nn.SiLU(),
                         operations.Linear(dim, dim, **factory))


class VideoCrafterUNet(nn.Module):
    """The 3D UNet: ResBlocks, spatial + temporal transformers, time and fps embedding.

    Args:
        config: the architecture (:class:`UNet3DConfig`; see ``detect_unet_config`` to infer
            it from checkpoint keys).
        operations: namespace with ``Linear, Conv1d, Conv2d, Conv3d, GroupNorm, LayerNorm``
            (default ``torch.nn``; ComfyUI passes ``comfy.ops`` classes). Every layer is built
            through it.
        dtype, device: passed to every layer (``device='meta'`` builds without memory).

    Weights are not initialised like the original (no zero-init of output projections): the
    model is meant to be loaded from a checkpoint.
    """

    def __init__(self, config: UNet3DConfig, *, operations=None, dtype=None, device=None):
        super().__init__()
        ops = nn if operations is None else operations
        factory = {"dtype": dtype, "device": device}
        cfg = config
        self.config = cfg
        mc = cfg.model_channels
        emb_dim = mc * 4
        self.model_channels = mc
        self.time_embed = _embedding_mlp(mc, emb_dim, ops, factory)
        if cfg.fps_cond:
            self.fps_embedding = _embedding_mlp(mc, emb_dim, ops, factory)

        def res(ch_in, ch_out=None):
            return ResBlock(ch_in, emb_dim, cfg.dropout, ch_out, use_temporal_conv=cfg.temporal_conv,
                            tempspatial_aware=cfg.tempspatial_aware, operations=ops, **factory)

        def attention(ch):
            heads = ch // cfg.num_head_channels
            layers = [SpatialTransformer(ch, heads, cfg.num_head_channels, cfg.transformer_depth,
                                         cfg.dropout, cfg.context_dim, cfg.use_linear,
                                         img_cross_attention=cfg.use_image_attention,
                                         image_cross_attention_scale=cfg.image_cross_attention_scale,
                                         operations=ops, **factory)]
            if cfg.temporal_attention:
                layers.append(self._temporal(ch, heads, cfg.num_head_channels,
                                             cfg.temporal_transformer_depth, cfg.use_linear, ops, factory))
            return layers

        self.input_blocks = nn.ModuleList([TimestepEmbedSequential(
            ops.Conv2d(cfg.in_channels, mc, 3, padding=1, **factory))])
        if cfg.addition_attention:
            # openaimodel3d.py:379-389: 8 heads of num_head_channels, Conv1d projections.
            self.init_attn = TimestepEmbedSequential(self._temporal(
                mc, 8, cfg.num_head_channels, cfg.transformer_depth, False, ops, factory))

        skip_channels = [mc]
        ch, ds = mc, 1
        for level, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                layers = [res(ch, mult * mc)]
                ch = mult * mc
                if ds in cfg.attention_resolutions:
                    layers += attention(ch)
                self.input_blocks.append(TimestepEmbedSequential(*layers))
                skip_channels.append(ch)
            if level != len(cfg.channel_mult) - 1:
                self.input_blocks.append(TimestepEmbedSequential(
                    Downsample(ch, ch, operations=ops, **factory)))
                skip_channels.append(ch)
                ds *= 2

        self.middle_block = TimestepEmbedSequential(res(ch), *attention(ch), res(ch))

        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mult))):
            for i in range(cfg.num_res_blocks + 1):
                layers = [res(ch + skip_channels.pop(), mc * mult)]
                ch = mc * mult
                if ds in cfg.attention_resolutions:
                    layers += attention(ch)
                if level and i == cfg.num_res_blocks:
                    layers.append(Upsample(ch, ch, operations=ops, **factory))
                    ds //= 2
                self.output_blocks.append(TimestepEmbedSequential(*layers))

        self.out = nn.Sequential(
            float32_group_norm(ops.GroupNorm)(32, ch, **factory), nn.SiLU(),
            ops.Conv2d(mc, cfg.out_channels, 3, padding=1, **factory))

    def _temporal(self, ch, heads, d_head, depth, use_linear, ops, factory):
        cfg = self.config
        return TemporalTransformer(ch, heads, d_head, depth, cfg.dropout, cfg.context_dim,
                                   use_linear, only_self_att=cfg.temporal_selfatt_only,
                                   causal_attention=cfg.use_causal_attention,
                                   causal_block_size=cfg.causal_block_size,
                                   relative_position=cfg.use_relative_position,
                                   temporal_length=cfg.temporal_length, operations=ops, **factory)

    def forward(self, x: torch.Tensor, timesteps, context: torch.Tensor | None = None, fps=None, *,
                num_frames: int | None = None, image_context: torch.Tensor | None = None,
                image_scale: float | None = None, temporal_enabled: bool = True,
                style_context: torch.Tensor | None = None, style_scales: torch.Tensor | None = None,
                style_weight: float = 1.0, style_scaled_logits: bool = True,
                temporal_attention=None, residuals: Mapping[str, Any] | None = None,
                **unused) -> torch.Tensor:
        """Predict noise.

        Args:
            x: ``[B, C, T, H, W]``, or ``[(B·T), C, H, W]`` together with ``num_frames=T``.
                The computation runs in ``x.dtype`` (the caller casts, as ComfyUI does).
            timesteps: per video ``[B]``, per frame ``[B·T]``, a scalar or a number.
            context: text tokens ``[B or B·T, L, context_dim]``. For I2V models the original
                form ``cat([77 text tokens, image tokens], 1)`` is accepted too.
            fps: per video / per frame tensor, or a number; None means 16 (the original's
                default). Ignored unless the model has ``fps_embedding``.
            num_frames: frames per video in batch-as-frames mode (optional in 5-D mode).
                May be omitted in 4-D mode with ``temporal_enabled=False`` (every image alone).
            image_context: I2V image tokens ``[B or B·T, N, context_dim]`` (Resampler output).
            image_scale: weight of the image cross-attention, overrides the config's.
            temporal_enabled: False skips every temporal layer (temporal transformers,
                ``init_attn``, ResBlock temporal convs), making frames independent. With one frame
                this is StyleCrafter's image mode (``UNet2DModel``, SC openaimodel3d.py:592-641).
            style_context: StyleCrafter style tokens ``[B or B·T, n, context_dim]`` (the adapter's
                ``append_to_context``; the original concatenates them after the 77 text tokens and
                splits them off again in attn2, SC openaimodel3d.py:541-548). Only layers with a
                style ``processor`` (patched in) read them; None = no style (the style uncond).
            style_scales: per-layer factors ``[B or B·T, n_layers(, 1)]`` (``scale_scalar``); None
                means factor 1 in every layer.
            style_weight: global style weight (``--style_weight``; 1.0 upstream).
            style_scaled_logits: True (default) scales the style logits by ``d^-0.5`` like the
                original's xformers path; False omits it like its pure-PyTorch path (README §4.4).
            temporal_attention: optional override ``(layer, x, mask) -> out | None`` for every
                self-attention over frames (FreeNoise window fusion, models/longvideo/freenoise.py).
            residuals: optional ControlNet / T2I-Adapter residuals ``{'input': [...], 'middle': [...],
                'output': [...]}`` (lists of ``[(B·T), C, h, w]`` tensors or None), added where and in the
                order ComfyUI core's UNet adds its ``control`` argument (``apply_control`` in core
                ``openaimodel.py``): ``input`` after each input block, ``middle`` after the middle block,
                ``output`` to each skip connection as it is consumed; each list is consumed from its end.
                Per frame, since the batch is ``(b t)``. See :func:`add_residual`.

        Returns ``[B, C', T, H, W]`` in 5-D mode, else ``[(B·T), C', H, W]``.
        """
        five_d = x.ndim == 5
        if five_d:
            b, _, t, hh, ww = x.shape
            if num_frames is not None and int(num_frames) != t:
                raise ValueError(f"num_frames={num_frames} but x has {t} frames ([B,C,T,H,W])")
            h = x.transpose(1, 2).reshape(b * t, x.shape[1], hh, ww)
        elif x.ndim == 4:
            if num_frames is None:
                if temporal_enabled:
                    raise ValueError("x is [(B·T),C,H,W]: pass num_frames=T (or a 5-D x)")
                num_frames = 1
            t = int(num_frames)
            if t <= 0 or x.shape[0] % t:
                raise ValueError(f"batch {x.shape[0]} is not a multiple of num_frames={t}")
            b = x.shape[0] // t
            h = x
        else:
            raise ValueError(f"x must be [B,C,T,H,W] or [(B·T),C,H,W], got shape {tuple(x.shape)}")

        dtype, device = h.dtype, h.device
        emb = self._embed(timesteps, fps, b, t, dtype, device)
        if context is not None:
            context = context.to(dtype)
            if (self.config.use_image_attention and image_context is None
                    and context.shape[1] > TEXT_CONTEXT_LEN):
                # The original splits at the hard-coded 77 text tokens (attention.py:82-83).
                context, image_context = context[:, :TEXT_CONTEXT_LEN], context[:, TEXT_CONTEXT_LEN:]
            context = _per_frame(context, b, t, "context")
        if image_context is not None:
            image_context = _per_frame(image_context.to(dtype), b, t, "image_context")
        style = None
        if style_context is not None:
            scales = None if style_scales is None else _per_frame(style_scales.to(dtype), b, t, "style_scales")
            style = StyleInputs(_per_frame(style_context.to(dtype), b, t, "style_context"), scales,
                                float(style_weight), bool(style_scaled_logits))
        if self.config.temporal_selfatt_only and context is not None:  # no temporal cross-attention reads them
            rows = (context, image_context) + ((style.context, style.scales) if style is not None else ())
            rows = share_rows_per_video(rows, b)
            context, image_context = rows[:2]
            if style is not None:
                style = replace(style, context=rows[2], scales=rows[3])

        kwargs = dict(context=context, num_frames=t, image_context=image_context,
                      image_scale=image_scale, temporal_enabled=temporal_enabled, style=style,
                      temporal_attention=temporal_attention)
        pending = {site: list(residuals.get(site) or ()) for site in RESIDUAL_SITES} if residuals else None
        skips = []
        for index, block in enumerate(self.input_blocks):
            h = block(h, emb, **kwargs)
            if index == 0 and temporal_enabled and hasattr(self, "init_attn"):
                h = self.init_attn(h, emb, **kwargs)
            h = add_residual(h, pending, "input", index)
            skips.append(h)
        h = self.middle_block(h, emb, **kwargs)
        h = add_residual(h, pending, "middle", 0)
        for index, block in enumerate(self.output_blocks):
            # Rebind h before the block runs so the un-concatenated h and skip are freed (activation peak).
            h = torch.cat([h, add_residual(skips.pop(), pending, "output", index)], dim=1)
            h = block(h, emb, **kwargs)
        y = self.out(h)
        if five_d:
            y = y.reshape(b, t, *y.shape[1:]).transpose(1, 2)
        return y

    def _embed(self, timesteps, fps, b, t, dtype, device):
        """Time (+ fps) embedding, per frame ``[(b t), 4·mc]`` (openaimodel3d.py:535-547).

        Sinusoids are float32 then cast; each MLP runs on the leading dim it was given (per
        video or per frame) and is repeated over frames afterwards, like the original. Per-frame
        timesteps ``[B·T]`` (FIFO-Diffusion's diagonal windows, FIFO openaimodel3d.py:534-549) give
        one embedding row per frame; when they are equal within every video they take the
        per-video path, so they give the scalar result exactly (the MLP rounds by row count).

        That choice depends on tensor values, so it is made branch-free: both paths are computed
        (a few MLP rows) and ``torch.where`` on the 0-d "all equal" tensor picks one. No host sync and
        no data-dependent Python branch, so ``torch.compile`` traces the whole forward as one graph.
        """
        timesteps = _as_1d(timesteps, device)
        uniform = None
        if t > 1 and timesteps.shape[0] == b * t:
            per_video = timesteps.reshape(b, t)
            uniform = (per_video == per_video[:, :1]).all()  # 0-d bool tensor: torch.where picks, exactly
            emb = torch.where(uniform, self._mlp_rows(self.time_embed, per_video[:, 0], b, t, dtype, "timesteps"),
                              self._mlp_rows(self.time_embed, timesteps, b, t, dtype, "timesteps"))
        else:
            emb = self._mlp_rows(self.time_embed, timesteps, b, t, dtype, "timesteps")
        if not hasattr(self, "fps_embedding"):
            return emb
        if fps is None:
            fps = DEFAULT_FPS
        if not isinstance(fps, (int, float)):
            return emb + self._mlp_rows(self.fps_embedding, _as_1d(fps, device), b, t, dtype, "fps")
        # A number: one row per timestep row of the path taken (per video or per frame), like the original's
        # ``full_like(timesteps, fps)``.
        fps_frames = self._mlp_rows(self.fps_embedding, torch.full_like(timesteps, fps), b, t, dtype, "fps")
        if uniform is None:
            return emb + fps_frames
        fps_videos = self._mlp_rows(self.fps_embedding, torch.full_like(timesteps[:b], fps), b, t, dtype, "fps")
        return emb + torch.where(uniform, fps_videos, fps_frames)

    def _mlp_rows(self, mlp, values, b, t, dtype, name):
        """``mlp(sinusoid(values))`` on the rows given, then per frame ``[(b t), 4·mc]``."""
        return _per_frame(mlp(timestep_embedding(values, self.model_channels).to(dtype)), b, t, name)


#: Where ControlNet / T2I-Adapter residuals are added (the keys of core's ``control`` dict).
RESIDUAL_SITES = ("input", "middle", "output")


def add_residual(h: torch.Tensor, pending: dict | None, site: str, index: int) -> torch.Tensor:
    """``h + pending[site].pop()`` like core's ``apply_control`` (a None entry or an empty list adds nothing).

    Unlike core, which only logs a warning, a residual whose channels or size differ from ``h`` raises:
    it means the control model was built for another UNet, and silently dropping it would hide that.
    The residual's batch must be ``h``'s (one entry per frame of every video in the batch) or 1.
    """
    if not pending or not pending.get(site):
        return h
    residual = pending[site].pop()
    if residual is None:
        return h
    if residual.shape[1:] != h.shape[1:] or residual.shape[0] not in (1, h.shape[0]):
        raise ValueError(f"control residual for the UNet's {site} block {index} has shape {tuple(residual.shape)} but "
                         f"the feature there is {tuple(h.shape)}: the ControlNet/T2I-Adapter was made for a UNet with "
                         "other widths or another latent size.")
    return h + residual.to(device=h.device, dtype=h.dtype)


def _as_1d(value, device) -> torch.Tensor:
    """A number, 0-d or 1-d tensor → 1-d tensor on ``device``."""
    tensor = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    return tensor.reshape(-1).to(device) if tensor.ndim == 0 else tensor.to(device)


def _per_frame(value: torch.Tensor, b: int, t: int, name: str) -> torch.Tensor:
    """Per-video (leading dim B), per-frame (B·T) or shared (1) → per frame (B·T).

    Per-video values are ``repeat_interleave``'d over frames (openaimodel3d.py:544-547).
    """
    n = value.shape[0]
    if n == b * t:
        return value
    if n == b:
        return value.repeat_interleave(t, dim=0)
    if n == 1:
        return value.expand(b * t, *value.shape[1:])
    raise ValueError(f"{name} has leading dim {n}; expected {b} (per video), {b * t} (per frame) or 1")
