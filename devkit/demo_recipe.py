"""The demonstration model's recipe: widths, file names, text-tower key conversion, export.

The demonstration model is a tiny VideoCrafter2 trained on :mod:`.shapes_dataset` by
``scripts/train_demo_model.py``; it exists so that the demo shows a prompt-following clip and the
quality tests can measure motion. It is stored like a released ``model.ckpt`` (UNet under
``model.diffusion_model.``, KL-VAE under ``first_stage_model.``, OpenCLIP text tower under
``cond_stage_model.model.``, the VC2 schedule buffers incl. ``scale_arr``) in fp16 safetensors.

This module never imports ComfyUI; the training script and the tests hand it core's modules.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..models.checkpoints.layout import TEXT_ENCODER_PREFIX, UNET_PREFIX, VAE_PREFIX
from ..models.sampling.schedule import VC1_512, VC2_512, VideoCrafterSchedule
from .tiny_checkpoint import TinySpec, tiny_unet_config

DEMO_DIR = Path(__file__).resolve().parent / "demo_model"
DEMO_FILE_NAME = "videocrafter_demo_vc2_shapes.safetensors"
DEMO_CHECKPOINT = DEMO_DIR / DEMO_FILE_NAME
DEMO_LABEL = "DEMONSTRATION model (tiny VC2 trained on procedural shapes; not a real VideoCrafter)"

#: Widths of the demonstration model (same switches as the released VC2-512 config).
#: The KL-VAE is 64 channels wide at every level, never 32: core's VAE normalises with GroupNorm(32), so at
#: 32 channels every group is ONE channel, whose spatial mean and scale the norm erases — right before the
#: encoder's and the decoder's output convolutions. A 32-channel VAE therefore reconstructs shapes but not
#: their colour (measured: objects came back as background grey after 1500 steps); at 64 channels (two per
#: group) the ratio inside each group survives and colours come back (docs/demo_model.md).
DEMO_SPEC = TinySpec(variant="vc2_t2v_512", model_channels=32, channel_mult=(1, 2), num_head_channels=8,
                     text_width=32, text_layers=3, vae_ch=64, vae_ch_mult=(1, 1, 1, 1), temporal_length=16, seed=0)
VAE_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
                "ch": DEMO_SPEC.vae_ch, "ch_mult": list(DEMO_SPEC.vae_ch_mult), "num_res_blocks": 1,
                "attn_resolutions": [], "dropout": 0.0}
LATENT_SCALE = 0.18215  # core's SD15 latent format, which the pack's loader gives every VideoCrafter model
FPS = 28  # the example workflow's fps condition; the model was trained with it only

#: How the translating objects of the committed model's training clips travel (``shapes_dataset.PATHS``): the
#: quality tests take their ground-truth clips (keyframes, context frames) from the same distribution.
DEMO_PATHS = "anywhere"

#: Sampling settings the demo and the quality tests use (measured to give clean motion).
SAMPLING = {"steps": 20, "cfg": 7.5, "eta": 1.0, "width": 64, "height": 64, "frames": 16}


#: The released schedule of each layout the demonstration model may be trained in (VC2-512: scale schedule,
#: ``scale_arr`` stored; VC1-512: plain DDPM, no ``scale_arr``; reference README §4).
SCHEDULES = {"vc2_t2v_512": VC2_512, "vc1_t2v_512": VC1_512}


def unet_config(spec: TinySpec = DEMO_SPEC):
    return tiny_unet_config(spec)


def schedule_of(spec: TinySpec = DEMO_SPEC) -> VideoCrafterSchedule:
    return SCHEDULES[spec.variant]


def comfy_text_to_openclip(state: dict, layers: int, prefix: str = TEXT_ENCODER_PREFIX) -> dict:
    """Core's HF-style CLIP text keys (``text_model.*``) back to OpenCLIP's (inverse of
    ``comfy.utils.clip_text_transformers_convert``), so a tower trained inside core's module
    is stored as the released checkpoints store it."""
    src = "text_model."
    out = {prefix + "positional_embedding": state[src + "embeddings.position_embedding.weight"],
           prefix + "token_embedding.weight": state[src + "embeddings.token_embedding.weight"],
           prefix + "ln_final.weight": state[src + "final_layer_norm.weight"],
           prefix + "ln_final.bias": state[src + "final_layer_norm.bias"],
           prefix + "text_projection": state["text_projection.weight"].transpose(0, 1).contiguous(),
           prefix + "logit_scale": torch.tensor(4.6052)}
    names = {"ln_1": "layer_norm1", "ln_2": "layer_norm2", "mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2",
             "attn.out_proj": "self_attn.out_proj"}
    for i in range(layers):
        ours, theirs = f"{prefix}transformer.resblocks.{i}.", f"{src}encoder.layers.{i}."
        for open_name, hf_name in names.items():
            for leaf in ("weight", "bias"):
                out[f"{ours}{open_name}.{leaf}"] = state[f"{theirs}{hf_name}.{leaf}"]
        for leaf in ("weight", "bias"):
            out[f"{ours}attn.in_proj_{leaf}"] = torch.cat(
                [state[f"{theirs}self_attn.{p}_proj.{leaf}"] for p in ("q", "k", "v")])
    return out


def fold_latent_normalisation(vae_state: dict, mean: torch.Tensor, std: float) -> dict:
    """Make the VAE's latent ``z'`` = ``(z − mean) · k`` with ``k = 1 / (std · 0.18215)``, exactly.

    Core scales every VideoCrafter latent by 0.18215 before the UNet (SD15 latent format); after
    this fold the UNet sees per-channel zero-mean, unit-std latents, as SD's VAE gives the released
    UNets. Encoder side: the mean rows of ``quant_conv`` become ``(W·h + b − mean)·k`` and the
    log-variance rows gain ``2·ln k``; decoder side: ``post_quant_conv`` reads ``z'/k + mean``.
    """
    k = 1.0 / (std * LATENT_SCALE)
    out = {key: value.clone() for key, value in vae_state.items()}
    channels = mean.numel()
    weight, bias = out["quant_conv.weight"], out["quant_conv.bias"]
    weight[:channels] *= k
    bias[:channels] = (bias[:channels] - mean) * k
    bias[channels:] += 2.0 * torch.log(torch.tensor(k))
    post_weight, post_bias = out["post_quant_conv.weight"], out["post_quant_conv.bias"]
    out["post_quant_conv.bias"] = post_bias + (post_weight[:, :, 0, 0] @ mean)
    out["post_quant_conv.weight"] = post_weight / k
    return out


def checkpoint_state(unet_state: dict, vae_state: dict, text_state_openclip: dict,
                     schedule: VideoCrafterSchedule = None) -> dict:
    """The full monolithic state dict in the released layout (fp16, schedule buffers fp32)."""
    state = {UNET_PREFIX + k: v for k, v in unet_state.items()}
    state.update({VAE_PREFIX + k: v for k, v in vae_state.items()})
    state.update(text_state_openclip)
    state = {k: v.detach().to(torch.float16).contiguous() for k, v in state.items()}
    state.update({k: v.float().contiguous() for k, v in (schedule or schedule_of()).buffers().items()})
    return state
