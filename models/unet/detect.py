"""Infer a :class:`UNet3DConfig` from checkpoint keys and shapes (never from file names).

Works on any ``key → shape`` mapping (tensors, ``torch.Size``, tuples or manifest lists), so it
runs on full-size manifests without allocating weights. The block structure it reads is the one
``openaimodel3d.py:374-532`` builds (reference README §4.2):

* ``input_blocks.0.0`` is conv_in → ``in_channels``, ``model_channels``;
* ``input_blocks.i.0.op`` are Downsamples separating levels; the other input blocks start with a
  ResBlock whose ``out_layers.3`` gives the level's channels → ``channel_mult``,
  ``num_res_blocks``; a ``.1.`` SpatialTransformer marks an attention resolution;
* ``init_attn.0`` (8 heads) → ``addition_attention`` and ``num_head_channels``;
* ``relative_position_k.embeddings_table`` ``[2L+1, d]`` → ``temporal_length`` and ``d``.

* ``temopral_conv.conv_last`` → Make-Your-Video's spatial-aware temporal conv (``tempspatial_aware``).

Not recoverable from keys (not in the checkpoint): ``use_causal_attention`` (its mask is not a
buffer; False in every VideoCrafter release; Make-Your-Video's one release — the only code base
with the ``conv_last`` layout — uses its sliding window with ``causal_block_size`` 1, so that layout
implies it), ``temporal_length`` without relative position (16 in every release), ``dropout``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields

from .unet3d import UNet3DConfig

UNET_PREFIX = "model.diffusion_model."
_RELEASED_TEMPORAL_LENGTH = 16
_MYV_CAUSAL_BLOCK_SIZE = 1  # Make-Your-Video configs/inference_256_v1.0.yaml


def _shape(value) -> tuple[int, ...]:
    return tuple(int(d) for d in (value.shape if hasattr(value, "shape") else value))


def _strip(shapes: Mapping, prefix: str) -> dict[str, tuple[int, ...]]:
    if prefix and any(k.startswith(prefix) for k in shapes):
        return {k[len(prefix):]: _shape(v) for k, v in shapes.items() if k.startswith(prefix)}
    if any(k.startswith("input_blocks.") for k in shapes):  # already stripped
        return {k: _shape(v) for k, v in shapes.items()}
    return {}


def _found(keys) -> str:
    tops = sorted({k.split(".")[0] for k in keys})
    return f"{len(keys)} keys with top-level names {tops[:12]}{' ...' if len(tops) > 12 else ''}"


def detect_unet_config(shapes: Mapping, prefix: str = UNET_PREFIX) -> UNet3DConfig:
    """Return the :class:`UNet3DConfig` of the VideoCrafter 3D UNet whose weights are ``shapes``.

    ``shapes`` maps keys (with ``prefix``, or already stripped) to tensors or shapes.
    Raises ``ValueError`` saying what was found when the keys are not a VideoCrafter 3D UNet
    (for instance an SD1.5/SD2 UNet, which has no temporal layers).
    """
    sd = _strip(shapes, prefix)
    if "input_blocks.0.0.weight" not in sd or "out.2.weight" not in sd:
        raise ValueError(
            f"not a UNet checkpoint: expected keys '{prefix}input_blocks.0.0.weight' and "
            f"'{prefix}out.2.weight' (VideoCrafter's model.diffusion_model.*); found {_found(shapes)}")
    has_temporal = ("init_attn.0.norm.weight" in sd
                    or any(".temopral_conv." in k for k in sd)
                    or any(re.match(r"(input_blocks\.\d+|middle_block)\.2\.transformer_blocks\.", k) for k in sd))
    if not has_temporal:
        raise ValueError(
            "this UNet has no temporal layers, so it is not a VideoCrafter 3D UNet (it looks like an "
            "image UNet such as SD1.5/SD2). Expected at least one of 'init_attn.0.*', "
            "'input_blocks.N.2.transformer_blocks.*' (TemporalTransformer) or '*.temopral_conv.*' "
            f"under '{prefix}'; found {_found(sd)}. Load a VideoCrafter1/2 or StyleCrafter checkpoint.")

    conv_in = sd["input_blocks.0.0.weight"]
    mc = conv_in[0]
    blocks = sorted({int(m.group(1)) for k in sd if (m := re.match(r"input_blocks\.(\d+)\.", k))})
    channel_mult, res_per_level, attention_resolutions = [], [], []
    ds, count, mult = 1, 0, None
    spatial, temporal = None, None  # a spatial / temporal transformer prefix, for inner details
    for i in blocks[1:]:
        if f"input_blocks.{i}.0.op.weight" in sd:
            channel_mult.append(mult)
            res_per_level.append(count)
            ds, count = ds * 2, 0
            continue
        count += 1
        mult = sd[f"input_blocks.{i}.0.out_layers.3.weight"][0] // mc
        if f"input_blocks.{i}.1.norm.weight" in sd:
            if ds not in attention_resolutions:
                attention_resolutions.append(ds)
            spatial = spatial or f"input_blocks.{i}.1."
            if f"input_blocks.{i}.2.norm.weight" in sd:
                temporal = temporal or f"input_blocks.{i}.2."
    channel_mult.append(mult)
    res_per_level.append(count)
    if len(set(res_per_level)) != 1:
        raise ValueError(f"inconsistent ResBlocks per level {res_per_level} in input_blocks")
    if spatial is None and "middle_block.1.norm.weight" in sd:
        spatial = "middle_block.1."
    if temporal is None and "middle_block.2.norm.weight" in sd:
        temporal = "middle_block.2."

    context_dim = None
    transformer_depth = 1
    use_linear = True
    use_image_attention = False
    if spatial is not None:
        context_dim = sd[f"{spatial}transformer_blocks.0.attn2.to_k.weight"][1]
        transformer_depth = _depth(sd, spatial)
        use_linear = len(sd[f"{spatial}proj_in.weight"]) == 2
        use_image_attention = f"{spatial}transformer_blocks.0.attn2.to_k_ip.weight" in sd

    rel = sorted(k for k in sd if k.endswith("relative_position_k.embeddings_table"))
    use_relative_position = bool(rel)
    temporal_length = (sd[rel[0]][0] - 1) // 2 if rel else _RELEASED_TEMPORAL_LENGTH

    if "init_attn.0.transformer_blocks.0.attn1.to_q.weight" in sd:
        num_head_channels = sd["init_attn.0.transformer_blocks.0.attn1.to_q.weight"][0] // 8
    elif rel:
        num_head_channels = sd[rel[0]][1]
    else:
        num_head_channels = 64

    tempspatial_aware = _spatial_aware_temporal_conv(sd)

    temporal_selfatt_only = True
    temporal_depth = 1
    if temporal is not None:
        temporal_depth = _depth(sd, temporal)
        to_k = sd[f"{temporal}transformer_blocks.0.attn2.to_k.weight"]
        to_q = sd[f"{temporal}transformer_blocks.0.attn2.to_q.weight"]
        temporal_selfatt_only = to_k[1] == to_q[1]

    return UNet3DConfig(
        in_channels=conv_in[1],
        out_channels=sd["out.2.weight"][0],
        model_channels=mc,
        attention_resolutions=tuple(attention_resolutions),
        num_res_blocks=res_per_level[0],
        channel_mult=tuple(channel_mult),
        num_head_channels=num_head_channels,
        transformer_depth=transformer_depth,
        temporal_transformer_depth=temporal_depth,
        context_dim=context_dim,
        use_linear=use_linear,
        temporal_conv=any(".temopral_conv." in k for k in sd),
        temporal_attention=temporal is not None,
        temporal_selfatt_only=temporal_selfatt_only,
        use_relative_position=use_relative_position,
        use_causal_attention=tempspatial_aware,
        temporal_length=temporal_length,
        addition_attention="init_attn.0.norm.weight" in sd,
        fps_cond="fps_embedding.0.weight" in sd,
        use_image_attention=use_image_attention,
        tempspatial_aware=tempspatial_aware,
        causal_block_size=_MYV_CAUSAL_BLOCK_SIZE if tempspatial_aware else None,
    )


def _spatial_aware_temporal_conv(sd: Mapping) -> bool:
    """True for Make-Your-Video's ``temopral_conv.conv.{0..3}`` + ``conv_last`` layout with the (1,3,3) conv.1.

    Its other layouts (3 stages without the spatial conv, or ``real_3dconv``) were never released and are
    refused with the keys that show them.
    """
    firsts = sorted(k for k in sd if k.endswith(".temopral_conv.conv_last.3.weight"))
    if not firsts:
        return False
    block = firsts[0][: -len("conv_last.3.weight")]
    spatial = sd.get(block + "conv.1.3.weight")
    if spatial is None or tuple(spatial[2:]) != (1, 3, 3) or block + "conv.3.3.weight" not in sd:
        raise ValueError(
            f"unsupported Make-Your-Video temporal conv layout at '{block}': expected conv.0-3 with a (1,3,3) "
            f"spatial conv.1 (the released tempspatial_aware block); found conv.1 kernel "
            f"{None if spatial is None else tuple(spatial[2:])}")
    return True


def _depth(sd: Mapping, prefix: str) -> int:
    return len({int(m.group(1)) for k in sd
                if (m := re.match(re.escape(prefix) + r"transformer_blocks\.(\d+)\.", k))})


def config_differences(expected: UNet3DConfig, actual: UNet3DConfig) -> list[str]:
    """Fields that differ in a way that matters, as ``"name: expected != actual"`` lines.

    ``temporal_length`` only sizes the relative-position tables and the causal mask, so it is
    compared only when one of those is on (it cannot be read from keys otherwise).
    """
    out = []
    for f in fields(UNet3DConfig):
        a, b = getattr(expected, f.name), getattr(actual, f.name)
        if f.name == "temporal_length" and not (expected.use_relative_position or expected.use_causal_attention):
            continue
        if a != b:
            out.append(f"{f.name}: {a!r} != {b!r}")
    return out
