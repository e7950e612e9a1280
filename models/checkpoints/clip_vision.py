"""The I2V image encoder stored in a VideoCrafter1 I2V checkpoint: OpenCLIP vision layout and config.

``LatentVisualDiffusion.embedder`` is ``FrozenOpenCLIPImageEmbedderV2`` (condition.py:297-309): an
open_clip ViT-H-14 whose text ``transformer`` was deleted, so the checkpoint holds
``embedder.model.visual.*`` (the vision tower) plus the text leftovers ``token_embedding``,
``positional_embedding``, ``ln_final``, ``text_projection``, ``logit_scale`` (reference README §2),
which the encoder never uses. The vision tower's keys (open_clip ``VisionTransformer``):

``class_embedding [W]``, ``positional_embedding [1+G², W]``, ``proj [W, D]``, ``conv1.weight [W, 3, P, P]``
(no bias), ``ln_pre``, ``transformer.resblocks.{i}.{ln_1, attn.in_proj_*, attn.out_proj, ln_2,
mlp.c_fc, mlp.c_proj}``, ``ln_post``.

Here: the key→shape layout for any size (for the tiny checkpoint factory and meta checks), and the
Hugging Face ``CLIPVisionConfig`` values ComfyUI's ``ClipVisionModel`` needs, read from shapes.
Pure Python/PyTorch: the ComfyUI object is built in ``bridge/clip_vision.py``.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping

from .layout import IMAGE_ENCODER_PREFIX, CheckpointLayoutError, shape_of
from .companions import openclip_resblocks_layout

VISUAL_PREFIX = IMAGE_ENCODER_PREFIX + "visual."
# open_clip head widths of the released OpenCLIP ViTs (model_configs/*.json: ViT-B 64, L 64, H 80,
# g 88, bigG 104); shapes cannot show the head split. ViT-H-14 (VideoCrafter's) = 1280 / 80 = 16 heads.
KNOWN_HEADS = {768: 12, 1024: 16, 1280: 16, 1408: 16, 1664: 16}
VIT_H_14 = {"width": 1280, "layers": 32, "patch_size": 14, "image_size": 224, "mlp_ratio": 4, "output_dim": 1024}


def openclip_visual_layout(width: int, layers: int, *, patch_size: int = 14, image_size: int = 224,
                           mlp_ratio: int = 4, output_dim: int = 1024, prefix: str = VISUAL_PREFIX) -> dict:
    """Every key and shape of an open_clip ``VisionTransformer`` (pool 'tok', ln_pre, no patch bias)."""
    grid = image_size // patch_size
    mlp = int(width * mlp_ratio)
    layout = {prefix + "class_embedding": (width,), prefix + "positional_embedding": (grid * grid + 1, width),
              prefix + "proj": (width, output_dim), prefix + "conv1.weight": (width, 3, patch_size, patch_size),
              prefix + "ln_pre.weight": (width,), prefix + "ln_pre.bias": (width,)}
    layout.update(openclip_resblocks_layout(prefix + "transformer.", width, layers, mlp))
    layout[prefix + "ln_post.weight"] = (width,)
    layout[prefix + "ln_post.bias"] = (width,)
    return layout


def has_openclip_visual(shapes: Mapping, prefix: str = VISUAL_PREFIX) -> bool:
    return prefix + "conv1.weight" in shapes and prefix + "transformer.resblocks.0.attn.in_proj_weight" in shapes


def openclip_visual_config(shapes: Mapping, prefix: str = VISUAL_PREFIX) -> dict:
    """ComfyUI/Hugging Face ``clip_vision_model`` config of an OpenCLIP vision tower, from its shapes.

    For the released ``embedder.model.visual.*`` this equals core's ``clip_vision_config_h.json``
    (1280 wide, 32 layers, 16 heads, MLP 5120, patch 14, 224 px, projection 1024, exact GELU).
    """
    if not has_openclip_visual(shapes, prefix):
        raise CheckpointLayoutError(f"no OpenCLIP vision tower under '{prefix}' (expected '{prefix}conv1.weight' "
                                    f"and '{prefix}transformer.resblocks.0.attn.in_proj_weight').")
    width, channels, patch, _ = shape_of(shapes[prefix + "conv1.weight"])
    positions = shape_of(shapes[prefix + "positional_embedding"])[0]
    grid = math.isqrt(positions - 1)
    if grid * grid != positions - 1:
        raise CheckpointLayoutError(f"'{prefix}positional_embedding' has {positions} rows; expected 1 + a square "
                                    "number of patches (a ViT with a class token).")
    layers = 1 + max(int(m.group(1)) for k in shapes
                     if (m := re.match(re.escape(prefix) + r"transformer\.resblocks\.(\d+)\.", k)))
    mlp = shape_of(shapes[prefix + "transformer.resblocks.0.mlp.c_fc.weight"])[0]
    config = {"attention_dropout": 0.0, "dropout": 0.0, "hidden_act": "gelu", "hidden_size": width,
              "image_size": grid * patch, "initializer_factor": 1.0, "initializer_range": 0.02,
              "intermediate_size": mlp, "layer_norm_eps": 1e-05, "model_type": "clip_vision_model",
              "num_attention_heads": KNOWN_HEADS.get(width, max(1, width // 64)), "num_channels": channels,
              "num_hidden_layers": layers, "patch_size": patch}
    if prefix + "proj" in shapes:
        config["projection_dim"] = shape_of(shapes[prefix + "proj"])[1]
    return config


def split_image_encoder(shapes: Mapping) -> tuple[dict, list[str]]:
    """``(vision tower under 'visual.', ignored text-leftover key names)`` of the ``embedder.model.*`` keys.

    The text leftovers are unused by ``FrozenOpenCLIPImageEmbedderV2`` (it only calls
    ``model.visual``), so they are reported, never loaded.
    """
    visual = {k[len(IMAGE_ENCODER_PREFIX):]: v for k, v in shapes.items() if k.startswith(VISUAL_PREFIX)}
    ignored = [k for k in shapes if k.startswith(IMAGE_ENCODER_PREFIX) and not k.startswith(VISUAL_PREFIX)]
    return visual, ignored
