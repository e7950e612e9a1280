"""A tiny SD-style ControlNet built with ComfyUI core's own class, to the widths of a tiny VideoCrafter UNet.

Used by the ControlNet tests (in-process and real server). Core's ControlNet loader assumes SD2-style 64-wide
attention heads (``BASE.unet_extra_config``), so the UNet it is built for must be at least 64 channels wide
(``tiny_spec(..., model_channels=64)``). Every weight is drawn from a seeded generator — a trained ControlNet's
zero convolutions would start at zero and hide where residuals land.
"""
from __future__ import annotations

import torch

TINY_CONTROLNET_SPEC = {"variant": "vc2_t2v_512", "seed": 11, "model_channels": 64}


def make_tiny_controlnet_state(unet_config, seed: int = 3) -> dict[str, torch.Tensor]:
    """State dict of ``comfy.cldm.cldm.ControlNet`` matching ``unet_config`` (a pack ``UNet3DConfig``)."""
    import comfy.cldm.cldm
    import comfy.ops

    torch.manual_seed(0)
    net = comfy.cldm.cldm.ControlNet(
        image_size=32, in_channels=4, hint_channels=3, model_channels=unet_config.model_channels,
        num_res_blocks=unet_config.num_res_blocks, channel_mult=unet_config.channel_mult, num_head_channels=64,
        # one entry per input ResBlock: every level of the tiny UNet has attention (attention_resolutions 1, 2)
        transformer_depth=[1] * (unet_config.num_res_blocks * len(unet_config.channel_mult)),
        transformer_depth_middle=1, context_dim=unet_config.context_dim, use_linear_in_transformer=True,
        use_spatial_transformer=True, legacy=False, operations=comfy.ops.manual_cast, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.2 if p.ndim > 1 else 0.05))
    return {k: v.contiguous() for k, v in net.state_dict().items()}
