"""Factory of tiny, seeded, random VideoCrafter checkpoints in the exact released layout.

Real weights cannot be downloaded here, so the demo and the tests run on checkpoints this
factory writes: every key the released monolithic ``model.ckpt`` has (UNet under
``model.diffusion_model.``, SD KL-VAE under ``first_stage_model.``, OpenCLIP text tower under
``cond_stage_model.model.``, the schedule buffers incl. ``scale_arr``; for I2V also the OpenCLIP
vision tower + text leftovers under ``embedder.model.`` and the Resampler ``image_proj_model.``),
only with small widths.
The loaders therefore take exactly the code path they take for released files.

Weights follow the reference fixtures' randomisation (reference README §1): default init under
``torch.manual_seed(seed)``, then ``p += 0.02·n`` — or ``n·fan_in^-0.5`` (``n·0.1`` for 1-D) for
parameters initialised to zero, so zero-initialised output layers still contribute — with
``n ~ N(0, 1)`` from a generator seeded with ``seed``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from ..models.checkpoints.layout import IMAGE_ENCODER_PREFIX, IMAGE_PROJECTION_PREFIX, TEXT_ENCODER_PREFIX, UNET_PREFIX, \
    VAE_PREFIX, VARIANTS
from ..models.checkpoints.clip_vision import VISUAL_PREFIX, openclip_visual_layout
from ..models.checkpoints.companions import kl_vae_layout, openclip_text_layout
from ..models.image.resampler import Resampler, ResamplerConfig
from ..models.sampling.schedule import VideoCrafterSchedule
from ..models.unet.unet3d import UNet3DConfig, VideoCrafterUNet


@dataclass(frozen=True)
class TinySpec:
    """Widths of a tiny checkpoint; the variant switches come from the released configs."""

    variant: str = "vc2_t2v_512"
    model_channels: int = 32
    channel_mult: tuple = (1, 2)
    num_head_channels: int = 8
    text_width: int = 64
    text_layers: int = 3  # ComfyUI takes the penultimate layer; it asserts more than 2
    vae_ch: int = 32
    vae_ch_mult: tuple = (1, 1, 2, 2)
    temporal_length: int = 16
    vision_width: int = 128  # I2V image encoder (released: ViT-H-14, 1280 wide, 32 layers); 2 heads of 64
    vision_layers: int = 2
    resampler_depth: int = 2  # released: 4 layers, 16 queries, 12 heads x 64
    resampler_queries: int = 4
    resampler_heads: int = 2
    seed: int = 0


def tiny_unet_config(spec: TinySpec) -> UNet3DConfig:
    """The released config of ``spec.variant`` (reference README §4) at tiny widths."""
    switches = {
        "vc2_t2v_512": dict(temporal_conv=True, use_relative_position=False, fps_cond=True),
        "vc1_t2v_1024": dict(temporal_conv=False, use_relative_position=True, fps_cond=True),
        "vc1_t2v_512": dict(temporal_conv=False, use_relative_position=True, fps_cond=False),
        "vc1_i2v_512": dict(temporal_conv=True, use_relative_position=False, fps_cond=True, use_image_attention=True),
        # Make-Your-Video configs/inference_256_v1.0.yaml: depth as a 5th input channel, no init_attn, no fps.
        "myv_depth_256": dict(in_channels=5, temporal_conv=True, tempspatial_aware=True, use_relative_position=True,
                              use_causal_attention=True, causal_block_size=1, fps_cond=False,
                              addition_attention=False),
    }[spec.variant]
    common = dict(in_channels=4, out_channels=4, model_channels=spec.model_channels,
                  attention_resolutions=tuple(2 ** i for i in range(len(spec.channel_mult))),
                  num_res_blocks=1, channel_mult=tuple(spec.channel_mult),
                  num_head_channels=spec.num_head_channels, transformer_depth=1,
                  context_dim=spec.text_width, use_linear=True, temporal_attention=True,
                  temporal_selfatt_only=True, use_causal_attention=False,
                  temporal_length=spec.temporal_length, addition_attention=True)
    return UNet3DConfig(**{**common, **switches})


def _randomise_module(module: torch.nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for _, parameter in module.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if torch.count_nonzero(parameter) == 0:
                fan_in = math.prod(parameter.shape[1:]) if parameter.dim() >= 2 else 0
                parameter.copy_(noise * fan_in ** -0.5 if parameter.dim() >= 2 else noise * 0.1)
            else:
                parameter.add_(0.02 * noise)


def _random_from_layout(layout: dict, generator: torch.Generator) -> dict:
    """Plausible random weights for a key→shape layout (norm scales ≈ 1, fan-in scaled matrices)."""
    out = {}
    for key, shape in layout.items():
        noise = torch.randn(shape, generator=generator) if shape else torch.randn((), generator=generator)
        leaf = key.rsplit(".", 1)[-1]
        is_norm = any(part.startswith(("norm", "ln_")) for part in key.split(".")[-2:-1])
        if key.endswith("logit_scale"):
            out[key] = torch.tensor(math.log(1 / 0.07))
        elif is_norm and leaf == "weight":
            out[key] = 1.0 + 0.02 * noise
        elif leaf in ("bias", "in_proj_bias") or is_norm:
            out[key] = 0.02 * noise
        elif key.endswith(("token_embedding.weight", "positional_embedding")):
            out[key] = 0.02 * noise
        else:
            fan_in = math.prod(shape[1:]) if len(shape) >= 2 else shape[0]
            out[key] = noise * fan_in ** -0.5
    return out


def make_tiny_state_dict(spec: TinySpec = TinySpec()) -> dict[str, torch.Tensor]:
    """The full monolithic state dict of a tiny checkpoint of ``spec.variant``."""
    if spec.variant not in VARIANTS:
        raise ValueError(f"unknown variant {spec.variant!r}; choose one of {sorted(VARIANTS)}")
    variant = VARIANTS[spec.variant]
    torch.manual_seed(spec.seed)
    unet = VideoCrafterUNet(tiny_unet_config(spec))
    generator = torch.Generator().manual_seed(spec.seed)
    _randomise_module(unet, generator)
    state = {UNET_PREFIX + k: v.detach().clone() for k, v in unet.state_dict().items()}
    vae_config = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3,
                  "ch": spec.vae_ch, "ch_mult": list(spec.vae_ch_mult), "num_res_blocks": 1,
                  "attn_resolutions": [], "dropout": 0.0}
    state.update(_random_from_layout(kl_vae_layout(vae_config, 4, prefix=VAE_PREFIX), generator))
    state.update(_random_from_layout(openclip_text_layout(spec.text_width, spec.text_layers, prefix=TEXT_ENCODER_PREFIX),
                                     generator))
    schedule = VideoCrafterSchedule(use_scale=variant.use_scale, scale_b=variant.scale_b,
                                    fix_scale_bug=variant.fix_scale_bug)
    state.update(schedule.buffers())
    if variant.is_image_to_video:
        state.update(_tiny_image_branch(spec, generator))
    return {k: v.float().contiguous() for k, v in state.items()}


def _tiny_image_branch(spec: TinySpec, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """I2V extras: ``embedder.model.*`` (vision tower + unused text leftovers) and ``image_proj_model.*``.

    As the release (ddpm3d.py:660-693): the vision projection ``proj`` maps to the text width, the
    Resampler reads the vision width (``embedding_dim``) and writes the UNet's context width.
    """
    state = _random_from_layout(openclip_visual_layout(spec.vision_width, spec.vision_layers,
                                                       output_dim=spec.text_width, prefix=VISUAL_PREFIX), generator)
    state.update(_random_from_layout(openclip_text_layout(spec.text_width, 0, prefix=IMAGE_ENCODER_PREFIX), generator))
    torch.manual_seed(spec.seed + 1)
    resampler = Resampler(ResamplerConfig(dim=spec.text_width, depth=spec.resampler_depth, dim_head=64,
                                          heads=spec.resampler_heads, num_queries=spec.resampler_queries,
                                          embedding_dim=spec.vision_width, output_dim=spec.text_width))
    _randomise_module(resampler, generator)
    state.update({IMAGE_PROJECTION_PREFIX + k: v.detach().clone() for k, v in resampler.state_dict().items()})
    return state


def tiny_spec(variant: str = "vc2_t2v_512", **overrides) -> TinySpec:
    return replace(TinySpec(variant=variant), **overrides)


def write_tiny_checkpoint(path, spec: TinySpec = TinySpec(), *, as_ckpt: bool = False):
    """Write ``make_tiny_state_dict(spec)`` to ``path`` atomically (temporary file + rename); returns ``path``.

    ``as_ckpt`` writes a ``torch.save({"state_dict": ...})`` file as the released ``model.ckpt``; otherwise
    safetensors. State dicts are cached per spec (building one takes seconds), so many tests can ask for the
    same checkpoint cheaply.
    """
    import os
    import tempfile
    from pathlib import Path

    from safetensors.torch import save_file

    path = Path(path)
    state = _cached_state(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".partial-", dir=path.parent)
    os.close(handle)
    try:
        if as_ckpt:
            torch.save({"state_dict": state}, temporary)
        else:
            save_file(state, temporary, metadata={"videocrafter_suite": f"tiny {spec.variant} seed {spec.seed}"})
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


_STATE_CACHE: dict = {}


def _cached_state(spec: TinySpec) -> dict[str, torch.Tensor]:
    if spec not in _STATE_CACHE:
        _STATE_CACHE[spec] = make_tiny_state_dict(spec)
    return _STATE_CACHE[spec]
