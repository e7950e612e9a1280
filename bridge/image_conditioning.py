"""VideoCrafter1 I2V image tokens for both guidance branches (the model side is ``bridge/model.py``).

The original's image path (``LatentVisualDiffusion.get_image_embeds``, ddpm3d.py:686-691) is
``image_proj_model(embedder(image))``; the result is appended to the 77 text tokens and split off
again inside attn2 (attention.py:82-87). Here:

- :func:`encode_image_context` = original preprocessing → CLIP_VISION last-layer tokens (no
  ``ln_post``) → Resampler, carried in CONDITIONING under ``vocabulary.IMAGE_CONTEXT`` (mapped to
  the UNet's ``image_context`` by ``VideoCrafterModel.extra_conds``; identical numerics to the
  original's concatenated context).
- :func:`unconditional_image_context` = the same for the original's unconditional image
  ``zeros(B, 3, 224, 224)`` in [-1, 1] — mid-grey, NOT zero tokens (funcs.py:30-34).
"""
from __future__ import annotations

import comfy.model_management
import torch

from ..models.image.preprocess import grey_image, openclip_image_preprocess
from ..models.image.resampler import Resampler
from .clip_vision import check_clip_vision, clip_vision_tokens


class ImageConditioningError(ValueError):
    """A MODEL / CLIP_VISION / IMAGE combination that cannot give the original's image conditioning."""


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
