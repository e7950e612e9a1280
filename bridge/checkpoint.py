"""Load a monolithic VideoCrafter checkpoint safely into native MODEL, CLIP and VAE objects.

Flow (mirrors core ``comfy.sd.load_state_dict_guess_config``, with our own detection):
1. ``models.checkpoints.safe_io.read_weights``: ``.safetensors``, or a ``.ckpt`` through
   ``torch.load(weights_only=True)`` — a pickle that tries to run code is refused, never executed.
2. Split by key prefix (``models.checkpoints.layout``) and detect the variant from keys and shapes.
3. UNet → :class:`~.model.VideoCrafterModel` (strict key check); ``first_stage_model.`` → core
   ``comfy.sd.VAE``; ``cond_stage_model.model.`` → core SD2 OpenCLIP-H text encoder (penultimate
   layer + final LayerNorm, exactly what VideoCrafter's ``FrozenOpenCLIPEmbedder`` returns).
4. I2V checkpoints also give the Resampler (``image_proj_model.``, kept on the MODEL) and core
   CLIP_VISION from ``embedder.model.visual.`` (:mod:`.clip_vision`, :mod:`.image_conditioning`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import comfy.model_management as model_management
import comfy.model_patcher
import comfy.sd
import comfy.supported_models_base
import comfy.text_encoders.sd2_clip
import comfy.utils
import torch

from ..models.checkpoints.layout import (SD_VAE_DDCONFIG, TEXT_ENCODER_PREFIX, UNET_PREFIX, VAE_PREFIX,
                                        CheckpointLayoutError, VariantInfo, detect_variant, kl_vae_ddconfig,
                                        openclip_text_config, take_prefix, unwrap_state_dict)
from ..models.sampling.schedule import VideoCrafterSchedule
from ..models.unet.detect import detect_unet_config
from ..models.checkpoints.safe_io import read_weights, require_exact_keys
from .clip_vision import build_clip_vision
from .model import load_image_projection, log_model, model_config_for
from .precision import keep_encoder_float32


@dataclass
class LoadedCheckpoint:
    model: comfy.model_patcher.ModelPatcher
    clip: comfy.sd.CLIP | None
    vae: comfy.sd.VAE | None
    variant: VariantInfo
    clip_vision: object | None = None  # core ClipVisionModel for I2V checkpoints, else None


def read_state_dict(path: str) -> dict:
    """The flat state dict of a checkpoint file, read by the pack's one safe reader (``models.checkpoints.safe_io``)."""
    return unwrap_state_dict(read_weights(path, "checkpoint"))


def schedule_from_checkpoint(state: dict, variant: VariantInfo) -> VideoCrafterSchedule:
    """The noise schedule: the variant's switches, cross-checked against stored buffers."""
    schedule = VideoCrafterSchedule(use_scale=variant.use_scale, scale_b=variant.scale_b,
                                    fix_scale_bug=variant.fix_scale_bug)
    stored = state.get("alphas_cumprod")
    if stored is not None and not torch.allclose(stored.float(), schedule.alphas_cumprod.float(), rtol=1e-4, atol=1e-6):
        raise CheckpointLayoutError(
            "this checkpoint's alphas_cumprod buffer is not VideoCrafter's linear schedule "
            "(linear_start 0.00085, linear_end 0.012, 1000 steps); it is not a supported VideoCrafter model.")
    stored_scale = state.get("scale_arr")
    if stored_scale is not None:
        # The stored table is the truth: re-derive the switches from it (length 1000 = fix_scale_bug).
        schedule = VideoCrafterSchedule(use_scale=True, scale_b=round(float(stored_scale[-1]), 6),
                                        fix_scale_bug=stored_scale.shape[0] == schedule.timesteps)
        if not torch.allclose(stored_scale.float(), schedule.scale_arr.float(), atol=1e-5):
            raise CheckpointLayoutError(
                "this checkpoint's scale_arr is not a VideoCrafter scale schedule (linspace(1, scale_b, 400) then "
                "constant); it is not a supported VideoCrafter model.")
    return schedule


def _clip_target():
    """Core's SD2 (OpenCLIP-H) text encoder, sized from the checkpoint (identical for released weights)."""
    return comfy.supported_models_base.ClipTarget(comfy.text_encoders.sd2_clip.SD2Tokenizer,
                                                  comfy.text_encoders.sd2_clip.SD2ClipModel)


def build_clip(state: dict, embedding_directory=None) -> comfy.sd.CLIP | None:
    text_state = {k: v for k, v in state.items() if k.startswith(TEXT_ENCODER_PREFIX)}
    if not text_state:
        return None
    config = openclip_text_config(state)
    clip_state = comfy.utils.state_dict_prefix_replace(text_state, {TEXT_ENCODER_PREFIX: "clip_h."}, filter_keys=True)
    clip_state = comfy.utils.clip_text_transformers_convert(clip_state, "clip_h.", "clip_h.transformer.")
    options = {"clip_h_model_config": config}
    if keep_encoder_float32():
        options["dtype"] = torch.float32  # the original's float32 encoder (see bridge/precision.py)
    clip = comfy.sd.CLIP(_clip_target(), embedding_directory=embedding_directory, tokenizer_data=clip_state,
                         parameters=comfy.utils.calculate_parameters(clip_state), model_options=options)
    missing, unexpected = clip.load_sd(clip_state, full_model=True)
    missing = [k for k in missing if ".logit_scale" not in k and "text_projection" not in k]
    if missing:
        raise CheckpointLayoutError(f"text encoder weights incomplete: missing {missing[:5]} ...")
    return clip


def build_vae(state: dict) -> comfy.sd.VAE | None:
    vae_state = take_prefix(state, VAE_PREFIX)
    if not vae_state:
        return None
    ddconfig, embed_dim = kl_vae_ddconfig(vae_state)
    if ddconfig == SD_VAE_DDCONFIG and embed_dim == 4:
        return comfy.sd.VAE(sd=vae_state)  # core's own path for the released SD VAE
    params = {"embed_dim": embed_dim, "ddconfig": ddconfig}
    return comfy.sd.VAE(sd=vae_state, config={"params": params})


def build_model(state: dict, variant: VariantInfo, schedule: VideoCrafterSchedule, model_options=None):
    model_options = model_options or {}
    unet_state = take_prefix(state, UNET_PREFIX)
    unet_config = detect_unet_config(unet_state, prefix="")
    config = model_config_for(unet_config, variant, schedule, state)
    parameters = comfy.utils.calculate_parameters(unet_state)
    weight_dtype = comfy.utils.weight_dtype(unet_state)
    load_device = model_management.get_torch_device()
    unet_dtype = model_options.get("dtype") or model_management.unet_dtype(
        model_params=parameters, supported_dtypes=config.supported_inference_dtypes, weight_dtype=weight_dtype)
    manual_cast_dtype = model_management.unet_manual_cast(unet_dtype, load_device, config.supported_inference_dtypes)
    config.set_inference_dtype(unet_dtype, manual_cast_dtype)
    initial_device = model_management.unet_inital_load_device(parameters, unet_dtype)
    model = config.get_model(unet_state, "", device=initial_device)
    missing, unexpected = model.diffusion_model.load_state_dict(unet_state, strict=False)
    require_exact_keys(missing, unexpected, f"UNet ({variant.description})")
    load_image_projection(model, state)
    log_model(config)
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device,
                                            offload_device=model_management.unet_offload_device())


DEMONSTRATION_MARK = "demonstration model"  # in the safetensors metadata of devkit/demo_model's checkpoint


def log_if_demonstration(path: str) -> bool:
    """Say so in the log when the file is the pack's demonstration model (scripts/train_demo_model.py)."""
    if not str(path).endswith(".safetensors"):
        return False
    try:
        from safetensors import safe_open

        with safe_open(path, framework="pt") as handle:
            notes = " ".join((handle.metadata() or {}).values())
    except Exception:  # unreadable files get their clear error from read_state_dict
        return False
    if DEMONSTRATION_MARK not in notes:
        return False
    logging.warning("VideoCrafter: '%s' is the pack's DEMONSTRATION model (a tiny VideoCrafter2 trained on "
                    "procedural moving shapes, 64x64; see docs/demo_model.md), not released VideoCrafter weights.",
                    path)
    return True


def load_videocrafter_checkpoint(path: str, *, output_clip=True, output_vae=True, output_clip_vision=True,
                                 embedding_directory=None, model_options=None) -> LoadedCheckpoint:
    state = read_state_dict(path)
    log_if_demonstration(path)
    variant = detect_variant(state)
    schedule = schedule_from_checkpoint(state, variant)
    model = build_model(state, variant, schedule, model_options)
    vae = build_vae(state) if output_vae else None
    clip = build_clip(state, embedding_directory) if output_clip else None
    clip_vision = build_clip_vision(state) if output_clip_vision and variant.is_image_to_video else None
    return LoadedCheckpoint(model, clip, vae, variant, clip_vision)
