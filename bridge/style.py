"""StyleCrafter inside ComfyUI: adapter + temporal weights as a patch on a cloned MODEL, style encoding.

The original (GongyeLiu/StyleCrafter, ``scripts/evaluation/style_inference.py:196-213``) builds the
VideoCrafter1 T2V 512 model, loads ``adapter_v1.pth`` into ``model.adapter`` and, for video,
``temporal_v1_1.pth`` into the 17 TemporalTransformers. Here the base MODEL is never changed:

- :func:`apply_stylecrafter` clones the ModelPatcher and adds (a) one **object patch** per dual
  cross-attention layer, ``diffusion_model.<attn2>.processor`` = a ``StyleKV`` with the adapter's
  ``kv_attn_layers`` weights (so the patched model's keys are the original's, aliases included),
  (b) ``"set"`` **weight patches** for every temporal tensor (applied on load, undone on unload, like a
  LoRA), and (c) the StyleTransformer + ScaleEncoder as a ModelPatcher **attachment**, where the
  style node finds them. Both files are read safely (``.safetensors``, or ``torch.load(weights_only
  =True)``; a nested dict of tensors loads fine that way).
- :func:`encode_style` = the original's style path: each reference → ``Resize(512)`` +
  ``CenterCrop(512)`` → the CLIP embedder's 224 px antialiased bicubic + CLIP mean/std
  (``models.image.preprocess``, shared with I2V) → OpenCLIP ViT-H tokens as
  ``FrozenOpenCLIPImageEmbedder(only_cls=False, use_proj=False)`` returns them: ``ln_post`` on the
  class token, the 256 patch tokens without it, rounded to fp16 like its ``.half()`` (SC
  condition.py:288-340) → N references concatenated along the sequence → StyleTransformer (style
  tokens) → ScaleEncoder on ``[style tokens, prompt tokens]`` (per-layer factors). The result rides
  in CONDITIONING keys that ``VideoCrafterModel.extra_conds`` maps to the UNet's style inputs.
"""
from __future__ import annotations

import logging
import os

import comfy.model_management
import comfy.ops
import folder_paths
import torch

from ..models.checkpoints.layout import CheckpointLayoutError
from ..models.checkpoints.safe_io import read_weights, require_exact_keys
from ..models.image.preprocess import openclip_image_preprocess
from ..models.style.adapter import StyleAdapter, StyleAdapterConfig, StyleKV, style_reference_crop
from ..models.style.layout import (KV_LAYERS, check_temporal_state, describe_keys, dual_attention_paths,
                                          expected_kv_layout, flatten_temporal_state, is_adapter_state,
                                          kv_module_name, split_adapter_state)
from . import vocabulary as V
from .clip_vision import run_vision_tower, vision_width

FOLDER = "stylecrafter"  # ComfyUI/models/stylecrafter: adapter_v1.pth, temporal_v1_1.pth
ADAPTER_ATTACHMENT = V.STYLE_ADAPTER_ATTACHMENT
BASE_VARIANT = "vc1_t2v_512"
#: Bases whose spatial cross-attention layers equal VC1-512's, so the adapter attaches, but which no released
#: adapter was trained with (Gen-1's "content from an example image" on Make-Your-Video; docs/structure.md).
EXPERIMENTAL_BASES = {"myv_depth_256": "Make-Your-Video's spatial layers descend from VideoCrafter1 512"}
UNET_OBJECT = "diffusion_model."


def register_folder() -> None:
    """``models/stylecrafter`` for the adapter and temporal files (also accepted from extra_model_paths)."""
    if FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.add_model_folder_path(FOLDER, os.path.join(folder_paths.models_dir, FOLDER))


class StyleCrafterError(ValueError):
    """An input combination that cannot give StyleCrafter's result; the message says what to change."""


def _base_variant(model) -> str | None:
    variant = getattr(getattr(getattr(model, "model", None), "model_config", None), "variant", None)
    return getattr(variant, "name", None)


def _unet_shapes(model) -> dict:
    return {k: tuple(v.shape) for k, v in model.model.diffusion_model.state_dict().items()}


def _check_base(model) -> None:
    name = _base_variant(model)
    if name == BASE_VARIANT:
        return
    if name in EXPERIMENTAL_BASES:
        logging.warning("StyleCrafter on %s is experimental: %s, but the adapter was trained with VideoCrafter1 T2V "
                        "512 only.", name, EXPERIMENTAL_BASES[name])
        return
    what = "not a VideoCrafter MODEL" if name is None else f"a {model.model.model_config.variant.description} model"
    raise StyleCrafterError(
        f"StyleCrafter's adapter was trained on VideoCrafter1 text-to-video 512 (t2v_512_v1.0/model.ckpt), but "
        f"this MODEL is {what}. Load the VideoCrafter1 T2V 512 checkpoint with 'Load VideoCrafter Checkpoint' "
        "and connect its MODEL here.")


def load_adapter(model, state: dict, *, style_heads: int | None = None, scale_heads: int | None = None) -> StyleAdapter:
    """The adapter for ``model``'s UNet, loaded strictly from an ``adapter_v1.pth`` state dict."""
    state = split_adapter_state(state)
    if not is_adapter_state(state):
        raise StyleCrafterError(
            f"this file is not a StyleCrafter style adapter: found {describe_keys(state)}. Expected adapter_v1.pth "
            "(image_context_model.*, scale_predictor.*, kv_attn_layers.*); the temporal file goes into "
            "'temporal_name', the VideoCrafter checkpoint into 'Load VideoCrafter Checkpoint'.")
    shapes = _unet_shapes(model)
    config = StyleAdapterConfig.from_state(state, **{k: v for k, v in (("style_heads", style_heads),
                                                                         ("scale_heads", scale_heads)) if v})
    expected_kv = expected_kv_layout(shapes, config.context_dim)
    got_kv = {k: tuple(v.shape) for k, v in state.items() if k.startswith(KV_LAYERS)}
    if got_kv != expected_kv or config.scale_tokens != len(dual_attention_paths(shapes)):
        missing = sorted(set(expected_kv) - set(got_kv))[:2]
        raise StyleCrafterError(
            f"this style adapter does not fit the connected UNet: it has {len(got_kv) // 4} style layers and "
            f"{config.scale_tokens} scale factors, the UNet {len(expected_kv) // 4} dual cross-attention layers "
            f"(e.g. missing {missing}). Use the adapter made for VideoCrafter1 T2V 512.")
    adapter = StyleAdapter(config, shapes, dtype=torch.float32)
    missing, unexpected = adapter.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    require_exact_keys(missing, unexpected, "StyleCrafter style adapter")
    return adapter.eval()


def temporal_patches(model, state: dict) -> dict:
    """``"set"`` patches for every temporal tensor of ``temporal_v1_1.pth``, after a strict check."""
    flat = flatten_temporal_state(state)
    problems = check_temporal_state(flat, _unet_shapes(model))
    if problems:
        raise StyleCrafterError(
            "this temporal checkpoint does not fit the connected UNet's 17 TemporalTransformers "
            f"({'; '.join(problems[:3])}). Use StyleCrafter's temporal_v1_1.pth with the VideoCrafter1 T2V 512 base.")
    return {UNET_OBJECT + k: ("set", (v,)) for k, v in flat.items()}


def apply_stylecrafter(model, adapter_state: dict, temporal_state: dict | None = None, *,
                       image_mode: bool = False, style_heads: int | None = None, scale_heads: int | None = None):
    """A patched clone of ``model`` (VideoCrafter1 T2V 512) carrying StyleCrafter; the base is unchanged.

    ``image_mode`` switches every temporal layer off (the original's image config, ``UNet2DModel``):
    512x512 single images; the temporal checkpoint is then not applied (the original does not load it).
    ``style_heads`` / ``scale_heads``: attention heads of the two adapter transformers when they are
    not the released 8 (the checkpoint cannot tell; only test fixtures differ).
    """
    _check_base(model)
    if temporal_state is not None and _base_variant(model) in EXPERIMENTAL_BASES:
        raise StyleCrafterError(
            "temporal_name: StyleCrafter's temporal file replaces VideoCrafter1 512's temporal layers; this base "
            f"({model.model.model_config.variant.description}) has its own temporal layers (causal, trained with "
            "its conditioning), so only the style adapter can be applied here. Set temporal_name to none.")
    adapter = load_adapter(model, adapter_state, style_heads=style_heads, scale_heads=scale_heads)
    patched = model.clone()
    operations = comfy.ops.manual_cast  # float32 weights, cast to the UNet's compute dtype at use
    for index, path in enumerate(adapter.attn2_paths):
        source = adapter.kv_attn_layers[kv_module_name(path)]
        layer = StyleKV(source.to_k_style.in_features, source.to_k_style.out_features, index, operations=operations)
        layer.load_state_dict(source.state_dict())
        patched.add_object_patch(f"{UNET_OBJECT}{path}.processor", layer)
    if temporal_state is not None and not image_mode:
        patches = temporal_patches(model, temporal_state)
        applied = patched.add_patches(patches, 1.0, 1.0)
        if len(applied) != len(patches):
            raise CheckpointLayoutError(f"only {len(applied)} of {len(patches)} temporal tensors found in the model")
    if image_mode:
        patched.model_options.setdefault("transformer_options", {})[V.TEMPORAL_OFF] = True
    patched.set_attachments(ADAPTER_ATTACHMENT, adapter)
    logging.info("StyleCrafter: %d dual cross-attention layers, temporal %s, %s mode", len(adapter.attn2_paths),
                 "patched" if temporal_state is not None and not image_mode else "base", "image" if image_mode else "video")
    return patched


def style_adapter_of(model) -> StyleAdapter:
    adapter = model.get_attachment(ADAPTER_ATTACHMENT) if hasattr(model, "get_attachment") else None
    if adapter is None:
        raise StyleCrafterError(
            "this MODEL has no StyleCrafter adapter: connect the MODEL output of 'Load StyleCrafter Adapter' "
            "(which patches a VideoCrafter1 T2V 512 model with adapter_v1.pth).")
    return adapter


def check_style_clip_vision(clip_vision, adapter: StyleAdapter) -> None:
    expected = adapter.config.style_in_dim
    width = vision_width(clip_vision) if clip_vision is not None else None
    if width != expected:
        found = "nothing" if clip_vision is None else ("a CLIP vision model without a class token (e.g. SigLIP)"
                                                        if width is None else f"{width}-wide tokens")
        raise StyleCrafterError(
            f"StyleCrafter's style adapter reads {expected}-wide OpenCLIP ViT-H/14 tokens, but the connected "
            f"CLIP_VISION gives {found}. Load 'CLIP-ViT-H-14-laion2B-s32B-b79K' (open_clip_pytorch_model.bin or its "
            ".safetensors) with 'Load CLIP Vision' — not ViT-L, ViT-bigG or SigLIP.")


@torch.no_grad()
def style_clip_tokens(clip_vision, pixel_values: torch.Tensor) -> torch.Tensor:
    """``cat([ln_post(class token), patch tokens])`` of the last layer, rounded to fp16 (SC condition.py:323-340).

    Core's CLIP vision returns the last hidden state (no post-norm) and ``pooled`` =
    ``post_layernorm(x[:, 0])`` = open_clip's ``ln_post(cls)``, so both halves come from one call.
    """
    hidden, pooled = run_vision_tower(clip_vision, pixel_values)
    tokens = torch.cat([pooled[:, None], hidden[:, 1:]], dim=1)
    return tokens.half().float().cpu()  # the original embedder returns .half(); the adapter promotes to float32


def reference_pixels(images: list[torch.Tensor]) -> torch.Tensor:
    """ComfyUI IMAGE batches ``[B, H, W, C]`` (any sizes) → CLIP pixel values ``[N, 3, 224, 224]``."""
    crops = [style_reference_crop(batch[..., :3].movedim(-1, 1).float()) for batch in images if batch is not None]
    return openclip_image_preprocess(torch.cat(crops))


@torch.no_grad()
def encode_style_tokens(model, clip_vision, images: list[torch.Tensor]) -> torch.Tensor:
    """Style tokens ``[1, 8, 1024]`` (``append_to_context``) of N reference images (IMAGE batches, any sizes).

    Multi-reference = the N images' CLIP tokens concatenated along the sequence, one video
    (SC style_inference.py:161-165). The adapter runs in float32 on the CPU, where it is kept.
    """
    adapter = style_adapter_of(model)
    check_style_clip_vision(clip_vision, adapter)
    images = [batch for batch in images if batch is not None and batch.shape[0] > 0]
    if not images:
        raise StyleCrafterError("no style image: connect at least one style reference image (e.g. 'Load Image') "
                                "to 'style_images'.")
    tokens = style_clip_tokens(clip_vision, reference_pixels(images)).reshape(1, -1, adapter.config.style_in_dim)
    return adapter(tokens)


@torch.no_grad()
def style_scale_factors(model, style: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    """Per-layer factors ``[1, 16, 1]`` from the style tokens and one prompt's text tokens ``[1, L, 1024]``
    (``scale_predictor(concat([append_to_context, cond], 1))``, style_inference.py:167-169)."""
    adapter = style_adapter_of(model)
    if text.shape[-1] != adapter.config.context_dim:
        raise StyleCrafterError(f"the prompt conditioning is {text.shape[-1]} wide but the style adapter expects "
                                f"{adapter.config.context_dim}: encode the prompt with the CLIP of the VideoCrafter1 "
                                "T2V 512 checkpoint.")
    return adapter.scale_factors(style, text.float().cpu()[:1])
