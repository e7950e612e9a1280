"""Make-Your-Video's depth structure inside ComfyUI: a per-frame CONDITIONING key that becomes ``c_concat``.

The original concatenates the normalised depth to the noisy latent as extra input channels
(``conditioning_key: hybrid``, ddpm3d.py:700-704) and gives the **same** depth to the conditional and the
unconditional branch (inference_videorerendering.py:147-166): its CFG guides only the text. Here:

* :func:`structure_from_depth_image` turns any depth IMAGE (near = bright; the pack's depth node or another
  pack's) into the model's channel exactly as ``get_batch_depth`` steps 3-4 (``models/depth/structure.py``);
  the node puts it on positive *and* negative under ``vocabulary.STRUCTURE_DEPTH``;
* :meth:`bridge.model.VideoCrafterModel.extra_conds` calls :func:`structure_concat`, which checks it against the
  model and the latent and hands it to core as ``c_concat`` (``CONDNoiseShape``: batched with cond/uncond,
  sliced with area conditioning). Core concatenates it *after* ``calculate_input``, i.e. to ``x_t`` in the
  model's own space, as the original does.
"""
from __future__ import annotations

import comfy.conds
import torch

from ..models.depth.structure import depth_image_to_map, depth_structure


class StructureError(ValueError):
    """A depth / model / latent combination that cannot give Make-Your-Video's structure conditioning."""


def structure_channels(unet_config) -> int:
    """Extra input channels of the UNet (1 for Make-Your-Video's depth, 0 for text-to-video models)."""
    return int(unet_config.in_channels) - int(unet_config.out_channels)


def _describe(model_config) -> str:
    variant = getattr(model_config, "variant", None)
    return variant.description if variant is not None else type(model_config).__name__


def depth_model_config(model_patcher):
    """The ``VideoCrafterConfig`` of a MODEL that takes depth structure, or a clear error naming 'model'."""
    model_config = getattr(getattr(model_patcher, "model", None), "model_config", None)
    unet = getattr(model_config, "unet_config_object", None)
    if unet is None:
        raise StructureError("model: this is not a VideoCrafter-suite MODEL; depth structure conditioning needs the "
                             "Make-Your-Video checkpoint loaded with 'Load VideoCrafter Checkpoint'.")
    if structure_channels(unet) < 1:
        raise StructureError(
            f"model: the {_describe(model_config)} model has no depth input channel (its UNet takes "
            f"{unet.in_channels} channels), so depth structure cannot condition it. Load the Make-Your-Video "
            "checkpoint (model.ckpt of AILab-CVC/Make-Your-Video) for depth-guided video, or remove this node.")
    return model_config


def structure_from_depth_image(depth: torch.Tensor, latent: torch.Tensor, *, blur: int = 0,
                               clip_normalise: bool = False) -> torch.Tensor:
    """Depth IMAGE ``[T, H, W, C]`` → the depth channel ``[T, 1, h, w]`` at the size of ``latent`` ``[T, 4, h, w]``."""
    if latent.ndim != 4:
        raise StructureError(f"latent: expected a video latent [frames, 4, h, w], got shape {tuple(latent.shape)}")
    try:
        maps = depth_image_to_map(depth)
    except ValueError as error:
        raise StructureError(f"depth: {error}") from error
    frames = latent.shape[0]
    if maps.shape[0] != frames:
        raise StructureError(
            f"depth has {maps.shape[0]} frames but the latent has {frames}: give one depth frame per video frame "
            "(extract the depth from the same sampled clip that made the latent, with the same frames / frame_stride).")
    if not torch.isfinite(maps).all():
        raise StructureError("depth contains NaN or infinite values; it is not a depth map.")
    return depth_structure(maps.float(), tuple(latent.shape[-2:]), frames=frames, temporal=clip_normalise,
                           blur=blur).contiguous()


def structure_concat(unet_config, depth: torch.Tensor | None, noise: torch.Tensor):
    """The ``c_concat`` model condition for ``depth`` (or None), checked against the model and the latent."""
    needed = structure_channels(unet_config)
    if depth is None:
        if needed:
            raise StructureError(
                f"this model takes {needed} depth-structure channel(s) (Make-Your-Video) but the conditioning has no "
                "depth: connect 'VideoCrafter Structure Conditioning' (depth of your clip) to both positive and "
                "negative before sampling.")
        return None
    if not needed:
        raise StructureError(
            "the conditioning carries Make-Your-Video depth structure but this model has no depth input channel (a "
            "text-to-video checkpoint): sample it with the Make-Your-Video MODEL, or drop the structure conditioning.")
    if depth.shape[1] != needed:
        raise StructureError(f"depth structure has {depth.shape[1]} channels; this model takes {needed}.")
    if depth.shape[0] != noise.shape[0]:
        raise StructureError(
            f"depth structure has {depth.shape[0]} frames but the latent being sampled has {noise.shape[0]}: "
            "condition on the depth of the same clip (one depth frame per latent frame).")
    if tuple(depth.shape[-2:]) != tuple(noise.shape[-2:]):
        raise StructureError(
            f"depth structure is {tuple(depth.shape[-2:])} (latent pixels) but the latent being sampled is "
            f"{tuple(noise.shape[-2:])}: connect the same latent to 'VideoCrafter Structure Conditioning' and the sampler.")
    return comfy.conds.CONDNoiseShape(depth)
