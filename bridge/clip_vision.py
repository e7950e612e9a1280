"""The I2V image encoder as core CLIP_VISION: built from ``embedder.model.visual.*``, run as the original.

- :func:`build_clip_vision` turns the checkpoint's OpenCLIP vision tower into a core
  ``comfy.clip_vision.ClipVisionModel`` (so core nodes such as CLIPVisionEncode accept it): keys are
  converted by core's own ``convert_to_transformers``; the released ViT-H-14 gets core's own
  ``clip_vision_config_h.json`` (what core's "Load CLIP Vision" picks for an OpenCLIP ViT-H file),
  other sizes (tiny test checkpoints) a config read from the shapes (``models.checkpoints.clip_vision``).
  The text leftovers under ``embedder.model.`` are ignored, as the original never uses them.
- :func:`clip_vision_tokens` runs the vision transformer the way ``FrozenOpenCLIPImageEmbedderV2.
  encode_with_vision_transformer`` does (condition.py:339-376): all 1 + 256 tokens of the LAST layer,
  WITHOUT ``ln_post`` and without the projection. Core's ``encode_image`` would crop and re-resize
  the image (``clip_preprocess``), so the pixels come from ``models.image.preprocess`` instead and
  the transformer is called directly. Core's ``last_hidden_state`` is the same tensor (no post
  LayerNorm for CLIP), which is what makes a CLIP_VISION from core's loader equally valid here.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile

import comfy.clip_vision
import comfy.model_management
import torch

from ..models.checkpoints.layout import CheckpointLayoutError
from ..models.checkpoints.clip_vision import has_openclip_visual, openclip_visual_config, split_image_encoder
from ..models.image.preprocess import CLIP_INPUT_SIZE
from .precision import keep_encoder_float32

CORE_VIT_H_CONFIG = os.path.join(os.path.dirname(os.path.realpath(comfy.clip_vision.__file__)),
                                 "clip_vision_config_h.json")


class ClipVisionMismatchError(ValueError):
    """A CLIP_VISION that cannot produce the tokens this model was trained on; the message says why."""


def _same_config(config: dict, json_path: str) -> bool:
    with open(json_path) as handle:
        core = json.load(handle)
    return all(core.get(k) == v for k, v in config.items())


def _clip_vision_from_config(config: dict) -> comfy.clip_vision.ClipVisionModel:
    """Core's ``ClipVisionModel`` for a config dict (its constructor only takes a JSON path)."""
    if _same_config(config, CORE_VIT_H_CONFIG):
        return comfy.clip_vision.ClipVisionModel(CORE_VIT_H_CONFIG)
    with tempfile.TemporaryDirectory(prefix="videocrafter-clip-vision-") as folder:
        path = os.path.join(folder, "config.json")
        with open(path, "w") as handle:
            json.dump(config, handle)
        return comfy.clip_vision.ClipVisionModel(path)


def _keep_float32_on_cpu(clip_vision) -> None:
    """Float32 image-encoder weights on the CPU, as the original (see :mod:`.precision`)."""
    if keep_encoder_float32(clip_vision.load_device):
        clip_vision.model.to(torch.float32)
        clip_vision.dtype = torch.float32


def build_clip_vision(state: dict) -> comfy.clip_vision.ClipVisionModel | None:
    """Core CLIP_VISION from a monolithic I2V checkpoint's ``embedder.model.visual.*``; None if absent.

    Every converted key must load (0 missing / 0 unexpected), otherwise a
    :class:`CheckpointLayoutError` names the offending keys.
    """
    visual, ignored = split_image_encoder(state)
    if not has_openclip_visual(visual, prefix="visual."):
        return None
    config = openclip_visual_config(visual, prefix="visual.")
    converted = comfy.clip_vision.convert_to_transformers(dict(visual), "visual.")
    clip_vision = _clip_vision_from_config(config)
    _keep_float32_on_cpu(clip_vision)
    missing, unexpected = clip_vision.load_sd(converted)
    if missing or unexpected:
        raise CheckpointLayoutError(
            f"the image encoder weights (embedder.model.visual.*) do not fit an OpenCLIP ViT of width "
            f"{config['hidden_size']} with {config['num_hidden_layers']} layers: {len(missing)} missing "
            f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}).")
    logging.info("VideoCrafter: image encoder OpenCLIP ViT width %d, %d layers (%d unused text keys ignored)",
                 config["hidden_size"], config["num_hidden_layers"], len(ignored))
    return clip_vision


def vision_width(clip_vision) -> int | None:
    """Token width of a core CLIP_VISION with CLIP's layout (class token); None for anything else
    (SigLIP, DINOv2, nothing connected). The one width probe of the pack (I2V and StyleCrafter)."""
    vision = getattr(getattr(clip_vision, "model", None), "vision_model", None)
    embeddings = getattr(vision, "embeddings", None)
    if embeddings is None or getattr(embeddings, "class_embedding", None) is None:
        return None
    return int(embeddings.patch_embedding.weight.shape[0])


def clip_vision_width(clip_vision) -> int:
    """Token width of a core CLIP_VISION; a clear error for encoders without CLIP's layout."""
    width = vision_width(clip_vision)
    if width is None:
        raise ClipVisionMismatchError(
            "this CLIP_VISION is not a CLIP/OpenCLIP ViT with a class token (e.g. SigLIP or DINOv2); "
            "VideoCrafter I2V needs the OpenCLIP ViT-H/14 image encoder (laion2b_s32b_b79k), e.g. "
            "'CLIP-ViT-H-14-laion2B-s32B-b79K.safetensors' through 'Load CLIP Vision', or the CLIP_VISION "
            "output of 'Load VideoCrafter Checkpoint' for the I2V checkpoint.")
    return width


def check_clip_vision(clip_vision, expected_width: int) -> None:
    """The encoder must give ``expected_width``-wide tokens at 224 px, as the Resampler was trained on."""
    if clip_vision is None:
        raise ClipVisionMismatchError(
            "no CLIP_VISION connected (a text-to-video checkpoint has none): load the OpenCLIP ViT-H/14 image "
            "encoder with 'Load CLIP Vision', or use the CLIP_VISION output of 'Load VideoCrafter Checkpoint' "
            "for the VideoCrafter1 I2V checkpoint.")
    width = clip_vision_width(clip_vision)
    if width != expected_width:
        raise ClipVisionMismatchError(
            f"this CLIP_VISION gives {width}-wide tokens but the model's image projection (image_proj_model) "
            f"expects {expected_width}: VideoCrafter1 I2V was trained on OpenCLIP ViT-H/14 (1280 wide). Use "
            "the CLIP_VISION of 'Load VideoCrafter Checkpoint' (I2V checkpoint) or load "
            "'CLIP-ViT-H-14-laion2B-s32B-b79K' with 'Load CLIP Vision' (not ViT-L, ViT-bigG or SigLIP).")
    size = int(getattr(clip_vision, "image_size", CLIP_INPUT_SIZE))
    if size != CLIP_INPUT_SIZE:
        raise ClipVisionMismatchError(f"this CLIP_VISION expects {size} px images; VideoCrafter I2V uses a "
                                      f"{CLIP_INPUT_SIZE} px ViT-H/14 (257 tokens).")


@torch.no_grad()
def run_vision_tower(clip_vision, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(last hidden state [B, 1 + patches, width], pooled = post_layernorm(class token) [B, width])``, float32.

    The one token runner of the pack. Core's ``encode_image`` would crop and re-resize the image
    (``clip_preprocess``), so callers pass pixels preprocessed the original's way and the transformer is called
    directly. Runs in the CLIP_VISION's own dtype (float32 on CPU; ComfyUI may choose float16 on a GPU, which
    the original did not use: start ComfyUI with ``--fp32-text-enc`` for the original's numerics).
    """
    comfy.model_management.load_model_gpu(clip_vision.patcher)
    pixels = pixel_values.to(clip_vision.load_device, dtype=torch.float32)
    hidden, _intermediate, pooled = clip_vision.model.vision_model(pixels, intermediate_output=None)
    return hidden.float(), pooled.float()


def clip_vision_tokens(clip_vision, pixel_values: torch.Tensor) -> torch.Tensor:
    """I2V tokens: all last-layer tokens ``[B, 1 + patches, width]`` without ``ln_post`` (condition.py:339-376)."""
    hidden, _pooled = run_vision_tower(clip_vision, pixel_values)
    return hidden.to(comfy.model_management.intermediate_device())
