"""Video latent nodes: an empty batch-as-frames latent."""
from __future__ import annotations

import comfy.model_management
import torch

from ..bridge.api import io
from ..bridge.model_checks import RELEASED_PIXEL_MULTIPLE, nearest_multiples
from .common import CATEGORY, MAX_FRAMES, MAX_SIDE, InputError
from .validation import checked_inputs


def validate_video_size(frames: int, width: int, height: int) -> None:
    """Checks done before any compute, with what to do instead.

    The VAE needs multiples of 8; the UNet of the loaded model needs more (multiples of 64 for every
    released 4-level UNet), which is checked at sampling where the model is known
    (``bridge/model_checks.py``). The hint here therefore only suggests sizes every released model takes.
    """
    if frames < 1 or frames > MAX_FRAMES:
        raise InputError(f"frames must be between 1 and {MAX_FRAMES}, got {frames}. VideoCrafter was trained on 16.")
    for name, value in (("width", width), ("height", height)):
        if value < 8 or value > MAX_SIDE:
            raise InputError(f"{name} must be between 8 and {MAX_SIDE} pixels, got {value}.")
        if value % 8:
            suggestions = " or ".join(str(v) for v in nearest_multiples(value, RELEASED_PIXEL_MULTIPLE))
            raise InputError(f"{name} must be a multiple of 8 (the VAE downsamples by 8), got {value}; use "
                             f"{suggestions} (multiples of {RELEASED_PIXEL_MULTIPLE} work with every released "
                             "VideoCrafter model).")


@checked_inputs
class VideoCrafterEmptyVideoLatent(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterEmptyVideoLatent",
            display_name="Empty VideoCrafter Video Latent",
            category=f"{CATEGORY}/latent",
            description="An empty video latent laid out batch-as-frames [frames, 4, height/8, width/8] (one video), "
                        "so core VAE decode/encode, tiling, previews and video savers work unchanged.",
            inputs=[io.Int.Input("width", default=512, min=8, max=MAX_SIDE, step=8,
                                 tooltip="Video width in pixels (multiple of 8). VC2/VC1-512: 512; VC1-1024: 1024."),
                    io.Int.Input("height", default=320, min=8, max=MAX_SIDE, step=8,
                                 tooltip="Video height in pixels (multiple of 8). VC2/VC1-512: 320; VC1-1024: 576."),
                    io.Int.Input("frames", default=16, min=1, max=MAX_FRAMES,
                                 tooltip="Number of frames. The released models were trained on 16.")],
            outputs=[io.Latent.Output(tooltip="Zeros, [frames, 4, height/8, width/8].")],
        )

    @classmethod
    def execute(cls, width, height, frames) -> io.NodeOutput:
        validate_video_size(frames, width, height)
        latent = torch.zeros([frames, 4, height // 8, width // 8], device=comfy.model_management.intermediate_device())
        return io.NodeOutput({"samples": latent})


NODES = [VideoCrafterEmptyVideoLatent]
