"""VideoCrafter1 I2V inside ComfyUI: the Resampler as part of the MODEL, and image tokens for both branches.

The original's image path (``LatentVisualDiffusion.get_image_embeds``, ddpm3d.py:686-691) is
``image_proj_model(embedder(image))``; the result is appended to the 77 text tokens and split off
again inside attn2 (attention.py:82-87). Here:

- :class:`VideoCrafterI2VModel` is the ``BaseModel`` of an I2V checkpoint. It owns the Resampler as
  ``image_proj_model`` (the original's attribute name; loaded from ``image_proj_model.*``), so the
  conditioning node finds it on the MODEL, and ComfyUI moves/offloads it with the UNet. It also
  turns the ``videocrafter_image_scale`` CONDITIONING key into the UNet's ``image_scale`` (the image
  cross-attention weight, ``image_cross_attention_scale`` = 1.0 upstream).
- :func:`encode_image_context` = original preprocessing → CLIP_VISION last-layer tokens (no
  ``ln_post``) → Resampler, carried in CONDITIONING under ``videocrafter_image_context`` (mapped to
  the UNet's ``image_context`` by ``VideoCrafterModel.extra_conds``; identical numerics to the
  original's concatenated context).
- :func:`unconditional_image_context` = the same for the original's unconditional image
  ``zeros(B, 3, 224, 224)`` in [-1, 1] — mid-grey, NOT zero tokens (funcs.py:30-34).
"""
from __future__ import annotations

import comfy.conds
import comfy.model_base
import comfy.model_management
import comfy.ops
import torch

from ..models.checkpoint_layout import IMAGE_PROJECTION_PREFIX, CheckpointLayoutError, take_prefix
from ..models.image_preprocess import grey_image, openclip_image_preprocess
from ..models.resampler import Resampler, ResamplerConfig, detect_resampler_config
from .clip_vision import check_clip_vision, clip_vision_tokens
from .model import VideoCrafterConfig, VideoCrafterModel

IMAGE_CONTEXT_KEY = "videocrafter_image_context"  # mapped to ``image_context`` by VideoCrafterModel.extra_conds
IMAGE_SCALE_KEY = "videocrafter_image_scale"      # mapped to ``image_scale`` by VideoCrafterI2VModel.extra_conds


class ImageConditioningError(ValueError):
    """A MODEL / CLIP_VISION / IMAGE combination that cannot give the original's image conditioning."""


class VideoCrafterI2VModel(VideoCrafterModel):
    """``VideoCrafterModel`` + the Resampler (``image_proj_model``) + the image-strength condition.

    The Resampler is stored in float32 and run in float32 (as the original, whose softmax is float32
    anyway) through ``comfy.ops.manual_cast``, so it follows the UNet between devices.
    """

    def __init__(self, model_config, model_type=comfy.model_base.ModelType.EPS, device=None):
        super().__init__(model_config, model_type, device=device)
        self.image_proj_model = Resampler(model_config.resampler_config, operations=comfy.ops.manual_cast,
                                          dtype=torch.float32, device=device)

    def extra_conds(self, **kwargs):
        out = super().extra_conds(**kwargs)
        scale = kwargs.get(IMAGE_SCALE_KEY, None)
        if scale is not None:
            out["image_scale"] = comfy.conds.CONDConstant(float(scale))
        return out


class VideoCrafterI2VConfig(VideoCrafterConfig):
    """``VideoCrafterConfig`` of an I2V checkpoint: also knows the Resampler's shape."""

    def __init__(self, unet, variant, schedule, resampler: ResamplerConfig):
        super().__init__(unet, variant, schedule)
        self.resampler_config = resampler

    def get_model(self, state_dict, prefix="", device=None):
        return VideoCrafterI2VModel(self, device=device)


def model_config_for(unet_config, variant, schedule, state: dict) -> VideoCrafterConfig:
    """The right ``BASE`` config: I2V (with the Resampler read from ``image_proj_model.*``) or plain."""
    if not variant.is_image_to_video:
        return VideoCrafterConfig(unet_config, variant, schedule)
    projection = take_prefix(state, IMAGE_PROJECTION_PREFIX)
    if not projection:
        raise CheckpointLayoutError(
            "this checkpoint's UNet has image cross-attention (to_k_ip/to_v_ip, VideoCrafter1 I2V) but no "
            f"'{IMAGE_PROJECTION_PREFIX}*' Resampler weights; the released I2V model.ckpt has both. Re-export it "
            "from the complete original checkpoint.")
    try:
        resampler = detect_resampler_config(projection, prefix="")
    except ValueError as error:
        raise CheckpointLayoutError(f"the image projection weights are not the original Resampler: {error}") from error
    return VideoCrafterI2VConfig(unet_config, variant, schedule, resampler)


def load_image_projection(model: VideoCrafterModel, state: dict) -> None:
    """Load ``image_proj_model.*`` into an I2V model strictly (0 missing / 0 unexpected)."""
    if not isinstance(model, VideoCrafterI2VModel):
        return
    projection = take_prefix(state, IMAGE_PROJECTION_PREFIX)
    missing, unexpected = model.image_proj_model.load_state_dict(projection, strict=False)
    if missing or unexpected:
        raise CheckpointLayoutError(
            f"the image projection weights ({IMAGE_PROJECTION_PREFIX}*) do not fit the detected Resampler "
            f"{model.model_config.resampler_config}: {len(missing)} missing (e.g. {missing[:3]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:3]}).")


def image_projection(model_patcher) -> Resampler:
    """The Resampler of an I2V MODEL, or a clear error for any other MODEL."""
    base = getattr(model_patcher, "model", None)
    resampler = getattr(base, "image_proj_model", None)
    if isinstance(resampler, Resampler):
        return resampler
    variant = getattr(getattr(base, "model_config", None), "variant", None)
    what = f"a {variant.description} model" if variant is not None else "not a VideoCrafter model"
    raise ImageConditioningError(
        f"this MODEL is {what}: it has no image cross-attention / image projection, so it cannot be "
        "conditioned on an image. Load the VideoCrafter1 I2V 512 checkpoint (i2v_512_v1/model.ckpt) with "
        "'Load VideoCrafter Checkpoint', or use text-to-video without this node.")


@torch.no_grad()
def _project(model_patcher, resampler: Resampler, tokens: torch.Tensor) -> torch.Tensor:
    device = model_patcher.load_device
    context = resampler(tokens.to(device=device, dtype=torch.float32))
    return context.float().to(comfy.model_management.intermediate_device())


def encode_image_context(model_patcher, clip_vision, images: torch.Tensor) -> torch.Tensor:
    """Image tokens ``[B, num_queries, context_dim]`` for images ``[B, 3, H, W]`` in [-1, 1]."""
    resampler = image_projection(model_patcher)
    check_clip_vision(clip_vision, resampler.config.embedding_dim)
    tokens = clip_vision_tokens(clip_vision, openclip_image_preprocess(images.float()))
    return _project(model_patcher, resampler, tokens)


def unconditional_image_context(model_patcher, clip_vision, batch: int = 1) -> torch.Tensor:
    """Tokens of the original's unconditional image: all-zero in [-1, 1], i.e. mid-grey (funcs.py:30-34)."""
    return encode_image_context(model_patcher, clip_vision, grey_image(1)).expand(batch, -1, -1).contiguous()
