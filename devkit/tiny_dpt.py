"""Tiny seeded MiDaS DPT checkpoints with the released key layout (for tests, examples and benchmarks).

Same keys as ``dpt_hybrid-midas-501f0c75.pt`` / ``dpt_large-midas-2f21e586.pt`` (every block, stage
and hook of the released depth is kept); only widths are reduced, like the reference fixture
``myv_depth_tiny`` (reference README §4.2). Values follow the reference randomisation rule (one
generator over ``named_parameters`` in order: ``p += 0.02·n``, all-zero tensors drawn at
``fan_in^-½`` / 0.1, fp16-rounded) plus ``scratch.output_conv.4.bias = 0.125`` so the final ReLU
keeps most of the map non-zero. Files are written as a plain state dict (``.pt``, loadable with
``weights_only=True`` like the released ones) or ``.safetensors``, by suffix.
"""
from __future__ import annotations

import os

import torch

from ..models.depth.dpt import HOOKS, HYBRID, LARGE, DPTConfig, DPTDepthModel

#: ``tiny_heads`` is what a loader must be told (heads are not visible in shapes).
TINY_HEADS = 4


def tiny_dpt_config(backbone: str = HYBRID) -> DPTConfig:
    """The fixture's widths: ResNet (128, 256, 256)/stem 32, ViT 64 wide with 4 heads, 32 features."""
    if backbone == HYBRID:
        return DPTConfig(embed_dim=64, num_heads=TINY_HEADS, mlp_hidden=256, reassemble_channels=(128, 256, 64, 64),
                         features=32, stem_channels=32, resnet_channels=(128, 256, 256), resnet_mid_channels=(32, 64, 64))
    if backbone == LARGE:
        return DPTConfig(backbone=LARGE, embed_dim=64, depth=24, num_heads=TINY_HEADS, mlp_hidden=256, hooks=HOOKS[LARGE],
                         reassemble_channels=(32, 64, 64, 64), features=32)
    raise ValueError(f"backbone must be {HYBRID!r} or {LARGE!r}, got {backbone!r}")


def randomise_(model: torch.nn.Module, seed: int) -> None:
    """The reference fixtures' rule (README §1 "Randomisation"), in place."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in model.named_parameters():
            n = torch.randn(p.shape, generator=generator)
            if not p.any():
                p.copy_(n * (p[0].numel() ** -0.5 if p.ndim >= 2 else 0.1))
            else:
                p.add_(0.02 * n)
            p.copy_(p.half().float())


def tiny_dpt_state_dict(backbone: str = HYBRID, seed: int = 21) -> dict[str, torch.Tensor]:
    """A seeded tiny DPT state dict (prefix-free, the layout of the released MiDaS files)."""
    torch.manual_seed(0)
    model = DPTDepthModel(tiny_dpt_config(backbone))
    randomise_(model, seed)
    with torch.no_grad():
        model.scratch.output_conv[4].bias.fill_(0.125)
    return {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}


def save_tiny_dpt(path: str | os.PathLike, backbone: str = HYBRID, seed: int = 21) -> str:
    """Write a tiny DPT to ``path`` (``.safetensors`` or a plain ``torch.save`` state dict)."""
    path = os.fspath(path)
    state = tiny_dpt_state_dict(backbone, seed)
    if path.endswith(".safetensors"):
        from safetensors.torch import save_file
        save_file(state, path)
    else:
        torch.save(state, path)
    return path
