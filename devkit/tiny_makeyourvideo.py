"""Tiny, seeded Make-Your-Video checkpoints in both layouts of the released ``model.ckpt``.

The UNet, VAE, text tower and schedule buffers come from :func:`devkit.tiny_checkpoint.make_tiny_state_dict`
(variant ``myv_depth_256``: 5 input channels, the spatial-aware temporal conv, the causal window, no fps, no
``init_attn``, no ``scale_arr``). The released file may also hold the MiDaS DPT under ``depth_stage_model.model.*``
(makeyourvideo/README.md §5 caveat 1: unknown whether it does); ``with_depth_stage`` adds a few tensors under
those exact names so the loader's "ignore ``depth_stage_model.*``" path is exercised (a complete tiny DPT is
``devkit``'s DPT factory's job; the checkpoint loader never reads it).

Layouts (``inference_videorerendering.py:24-43``):

* ``"lightning"``: ``{"state_dict": {key: tensor}}``;
* ``"deepspeed"``: ``{"module": {"_forward_module." + key: tensor}}`` (the original strips 16 characters);
* ``"safetensors"``: the flat state dict as ``.safetensors``.
"""
from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from ..models.checkpoints.layout import DEEPSPEED_PREFIX

from .tiny_checkpoint import make_tiny_state_dict, tiny_spec

VARIANT = "myv_depth_256"
DEPTH_STAGE_PREFIX = "depth_stage_model.model."
LAYOUTS = ("lightning", "deepspeed", "safetensors")


def make_tiny_makeyourvideo(seed: int = 0, with_depth_stage: bool = True, **overrides) -> dict[str, torch.Tensor]:
    """The flat state dict of a tiny Make-Your-Video checkpoint (keys as in ``manifests/myv_256.json``)."""
    state = make_tiny_state_dict(tiny_spec(VARIANT, seed=seed, **overrides))
    if with_depth_stage:
        generator = torch.Generator().manual_seed(seed + 7)
        for key, shape in {"pretrained.model.cls_token": (1, 1, 64), "pretrained.model.pos_embed": (1, 577, 64),
                           "scratch.output_conv.4.weight": (1, 32, 1, 1), "scratch.output_conv.4.bias": (1,)}.items():
            state[DEPTH_STAGE_PREFIX + key] = torch.randn(shape, generator=generator)
    return state


def save_tiny_makeyourvideo(path: str | Path, layout: str = "lightning", **kwargs) -> Path:
    """Write a tiny Make-Your-Video checkpoint in ``layout`` (see module docstring); returns the path."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {LAYOUTS}")
    path = Path(path)
    state = make_tiny_makeyourvideo(**kwargs)
    if layout == "safetensors":
        save_file(state, str(path))
    elif layout == "lightning":
        torch.save({"state_dict": state, "global_step": 0, "epoch": 0}, path)
    else:
        torch.save({"module": {DEEPSPEED_PREFIX + k: v for k, v in state.items()}}, path)
    return path
