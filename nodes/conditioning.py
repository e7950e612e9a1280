"""Conditioning nodes: frame-rate (motion speed) conditioning for both guidance branches."""
from __future__ import annotations

import node_helpers

from ..bridge import vocabulary as V
from ..bridge.api import io
from .common import CATEGORY
from .validation import checked_inputs


@checked_inputs
class VideoCrafterVideoConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterVideoConditioning",
            display_name="VideoCrafter Video Conditioning (fps)",
            category=f"{CATEGORY}/conditioning",
            description="Sets the fps conditioning of VC2-512 / VC1-1024 (and I2V) on positive AND negative, as "
                        "the original passes the same fps to both guidance branches. Lower fps = larger motion "
                        "between frames. VC1-512 has no fps input and ignores it.",
            inputs=[io.Conditioning.Input("positive", tooltip="Text conditioning (e.g. CLIPTextEncode of the prompt)."),
                    io.Conditioning.Input("negative", tooltip="Unconditional branch: the original uses the EMPTY prompt "
                                                               "encoded by CLIPTextEncode, not zeros."),
                    io.Int.Input("fps", default=28, min=1, max=240,
                                 tooltip="Frame-rate condition. Original scripts: 28 for T2V (run_text2video.sh, "
                                         "VC1-1024 predict.py), 8 for I2V; the UNet's own default is 16.")],
            outputs=[io.Conditioning.Output(display_name="positive"),
                     io.Conditioning.Output(display_name="negative")],
        )

    @classmethod
    def execute(cls, positive, negative, fps) -> io.NodeOutput:
        values = {V.FPS: int(fps)}
        return io.NodeOutput(node_helpers.conditioning_set_values(positive, values),
                             node_helpers.conditioning_set_values(negative, values))


NODES = [VideoCrafterVideoConditioning]
