"""The monolithic VideoCrafter checkpoint: its key prefixes and what they tell us.

A released ``model.ckpt`` is the ``state_dict`` of one ``LatentDiffusion`` (VideoCrafter
``lvdm/models/ddpm3d.py``), so its keys are grouped by attribute name (reference README §2):

==============================  ==========================================================
prefix                          content
==============================  ==========================================================
``model.diffusion_model.``      the 3D UNet (ddpm3d.py:83, 696-700)
``first_stage_model.``          the SD KL-VAE (ddpm3d.py:427-432)
``cond_stage_model.model.``     OpenCLIP ViT-H-14 text tower, ``visual`` deleted (condition.py:184-190)
``embedder.model.``             I2V: OpenCLIP ViT-H-14 vision tower (+ text leftovers)
``image_proj_model.``           I2V: the Resampler
top-level names                 schedule buffers (``betas``, ``alphas_cumprod``, ..., ``scale_arr``)
==============================  ==========================================================

Everything here works on key→shape mappings (tensors or plain shapes), so it also runs on
the full-size manifests without allocating weights. Variants are detected from keys and
shapes only, never from file names.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

UNET_PREFIX = "model.diffusion_model."
VAE_PREFIX = "first_stage_model."
TEXT_ENCODER_PREFIX = "cond_stage_model.model."
IMAGE_ENCODER_PREFIX = "embedder.model."
IMAGE_PROJECTION_PREFIX = "image_proj_model."
DEEPSPEED_PREFIX = "_forward_module."
SCHEDULE_BUFFERS = (
    "betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
    "posterior_mean_coef1", "posterior_mean_coef2",
)


class CheckpointLayoutError(ValueError):
    """The file is not a checkpoint this pack can load; the message says what was found."""


def shape_of(value) -> tuple[int, ...]:
    """Shape of a tensor, a ``torch.Size`` or a plain list (manifests store lists)."""
    return tuple(int(d) for d in (value.shape if hasattr(value, "shape") else value))


def unwrap_state_dict(checkpoint: Mapping) -> dict:
    """Return the flat state dict of a loaded ``.ckpt`` payload.

    Mirrors the original loader (VideoCrafter ``scripts/evaluation/funcs.py:88-104``): a
    deepspeed checkpoint stores it under ``module`` with every key prefixed by
    ``_forward_module.``; a Lightning checkpoint under ``state_dict``; a ``.safetensors`` file is
    already flat.
    """
    if "module" in checkpoint and isinstance(checkpoint["module"], Mapping):
        state = dict(checkpoint["module"])
    elif "state_dict" in checkpoint and isinstance(checkpoint["state_dict"], Mapping):
        state = dict(checkpoint["state_dict"])
    else:
        state = dict(checkpoint)
    if state and all(k.startswith(DEEPSPEED_PREFIX) for k in state):
        state = {k[len(DEEPSPEED_PREFIX):]: v for k, v in state.items()}
    return state


def take_prefix(state: Mapping, prefix: str) -> dict:
    """Sub-dict of keys under ``prefix``, with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


@dataclass(frozen=True)
class VariantInfo:
    """What the keys say about a checkpoint: its family member and its noise-schedule switches.

    ``use_scale`` / ``scale_b`` / ``fix_scale_bug`` are the ``LatentDiffusion`` params of the
    released configs (ddpm3d.py:362-376): VC2-512 and I2V-512 use 0.7 without the fix (a 1400
    long table), VC1-1024 0.3 with the fix (1000 long), VC1-512 none.
    """

    name: str
    description: str
    use_scale: bool
    scale_b: float
    fix_scale_bug: bool
    default_width: int
    default_height: int
    default_fps: int

    @property
    def is_image_to_video(self) -> bool:
        return self.name == "vc1_i2v_512"

    @property
    def is_depth_to_video(self) -> bool:
        """Make-Your-Video: the UNet takes the depth structure as extra input channels (``hybrid``)."""
        return self.name == "myv_depth_256"


VARIANTS = {
    "vc2_t2v_512": VariantInfo("vc2_t2v_512", "VideoCrafter2 text-to-video 512", True, 0.7, False, 512, 320, 28),
    "vc1_t2v_1024": VariantInfo("vc1_t2v_1024", "VideoCrafter1 text-to-video 1024", True, 0.3, True, 1024, 576, 28),
    "vc1_t2v_512": VariantInfo("vc1_t2v_512", "VideoCrafter1 text-to-video 512", False, 1.0, False, 512, 320, 28),
    "vc1_i2v_512": VariantInfo("vc1_i2v_512", "VideoCrafter1 image-to-video 512", True, 0.7, False, 512, 320, 8),
    # Make-Your-Video (makeyourvideo/README.md §3): no use_scale, 256x256, no fps input (8 = its clips' rate).
    "myv_depth_256": VariantInfo("myv_depth_256", "Make-Your-Video depth-guided video 256", False, 1.0, False,
                                 256, 256, 8),
}


def _describe(keys) -> str:
    prefixes = sorted({k.split(".", 1)[0] for k in keys})
    shown = ", ".join(prefixes[:8]) + (", ..." if len(prefixes) > 8 else "")
    return f"{len(keys)} keys with top-level names [{shown}]"


def detect_variant(shapes: Mapping) -> VariantInfo:
    """Name the VideoCrafter checkpoint from its keys and shapes.

    Rules (reference README §4): image cross-attention (``to_k_ip``) ⇒ I2V-512; a ResBlock
    temporal conv (``temopral_conv``) ⇒ VC2-512; relative-position temporal attention with fps
    conditioning ⇒ VC1-1024, without fps ⇒ VC1-512; Make-Your-Video's temporal conv layout
    (``temopral_conv.conv_last``, makeyourvideo/README.md §3) ⇒ its depth-guided model. A ``scale_arr`` buffer, where present,
    overrides the schedule switches (its length tells the fix: 1400 = no fix, 1000 = fixed).
    Raises :class:`CheckpointLayoutError` for anything that is not a VideoCrafter LatentDiffusion.
    """
    keys = list(shapes.keys())
    unet_keys = [k for k in keys if k.startswith(UNET_PREFIX)]
    if not unet_keys:
        raise CheckpointLayoutError(
            f"not a VideoCrafter checkpoint: found {_describe(keys)} but no '{UNET_PREFIX}*' UNet weights. "
            "Expected the original VideoCrafter1/2 'model.ckpt' (or a .safetensors of it).")
    temporal_pattern = re.compile(re.escape(UNET_PREFIX) +
                                  r"(init_attn\.|.*\.temopral_conv\.|(input|output)_blocks\.\d+\.2\.transformer_blocks\.)")
    if not any(temporal_pattern.match(k) for k in unet_keys):
        raise CheckpointLayoutError(
            f"the UNet in this file has no temporal layers ({_describe(keys)}); it looks like an image model "
            "(e.g. Stable Diffusion 1.x/2.x). Load it with ComfyUI's own checkpoint loader; this loader expects a "
            "VideoCrafter1/2 video checkpoint (VC1-1024, VC1-512, VC2-512, VC1-I2V-512 or Make-Your-Video).")
    if any(".to_k_ip." in k for k in unet_keys):
        name = "vc1_i2v_512"
    elif any(".temopral_conv.conv_last." in k for k in unet_keys):
        name = "myv_depth_256"
    elif any(".temopral_conv." in k for k in unet_keys):
        name = "vc2_t2v_512"
    elif any(k.startswith(UNET_PREFIX + "fps_embedding.") for k in unet_keys):
        name = "vc1_t2v_1024"
    else:
        name = "vc1_t2v_512"
    variant = VARIANTS[name]
    if "scale_arr" in shapes:
        length = shape_of(shapes["scale_arr"])[0]
        variant = VariantInfo(variant.name, variant.description, True, variant.scale_b, length == 1000,
                              variant.default_width, variant.default_height, variant.default_fps)
    elif "betas" in shapes:
        # Full checkpoints always carry the schedule buffers; no scale_arr there means use_scale off.
        variant = VariantInfo(variant.name, variant.description, False, 1.0, False,
                              variant.default_width, variant.default_height, variant.default_fps)
    return variant


def openclip_text_config(shapes: Mapping, prefix: str = TEXT_ENCODER_PREFIX) -> dict:
    """Hugging Face CLIPTextConfig values for an OpenCLIP text tower, read from its shapes.

    The released checkpoints hold ViT-H-14's tower (width 1024, 24 layers, 16 heads, MLP 4096);
    smaller towers (the tiny test checkpoints) are described the same way. OpenCLIP's heads are
    ``width // 64`` for every released text config, and that is the one thing shapes cannot say.
    """
    width = shape_of(shapes[prefix + "token_embedding.weight"])[1]
    vocab = shape_of(shapes[prefix + "token_embedding.weight"])[0]
    layers = 1 + max(int(m.group(1)) for k in shapes
                     if (m := re.match(re.escape(prefix) + r"transformer\.resblocks\.(\d+)\.", k)))
    mlp = shape_of(shapes[prefix + "transformer.resblocks.0.mlp.c_fc.weight"])[0]
    projection = shape_of(shapes[prefix + "text_projection"])[1] if prefix + "text_projection" in shapes else width
    positions = shape_of(shapes[prefix + "positional_embedding"])[0]
    return {"hidden_size": width, "intermediate_size": mlp, "num_attention_heads": max(1, width // 64),
            "num_hidden_layers": layers, "projection_dim": projection, "vocab_size": vocab,
            "max_position_embeddings": positions}


SD_VAE_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
                   "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}


def kl_vae_ddconfig(shapes: Mapping, prefix: str = "") -> tuple[dict, int]:
    """``(ddconfig, embed_dim)`` of an SD-style KL autoencoder, read from its shapes.

    The released checkpoints all hold the standard SD VAE (``SD_VAE_DDCONFIG``); reading the
    config from the shapes lets the same code build smaller ones for tests.
    """
    ch = shape_of(shapes[prefix + "encoder.conv_in.weight"])[0]
    levels = 1 + max(int(m.group(1)) for k in shapes if (m := re.match(re.escape(prefix) + r"encoder\.down\.(\d+)\.", k)))
    ch_mult = [shape_of(shapes[f"{prefix}encoder.down.{i}.block.0.conv2.weight"])[0] // ch for i in range(levels)]
    blocks = 1 + max(int(m.group(1)) for k in shapes if (m := re.match(re.escape(prefix) + r"encoder\.down\.0\.block\.(\d+)\.", k)))
    z_channels = shape_of(shapes[prefix + "decoder.conv_in.weight"])[1]
    embed_dim = shape_of(shapes[prefix + "post_quant_conv.weight"])[1]
    config = dict(SD_VAE_DDCONFIG, ch=ch, ch_mult=ch_mult, num_res_blocks=blocks, z_channels=z_channels)
    return config, embed_dim
