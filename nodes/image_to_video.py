"""Image-to-video conditioning (VideoCrafter1 I2V): image tokens + fps on both guidance branches."""
from __future__ import annotations

import node_helpers

from ..bridge.api import io
from ..bridge import vocabulary as V
from ..bridge.image_conditioning import (encode_image_context,
                                         unconditional_image_context)
from ..models.image.preprocess import comfy_image_to_signed
from .common import CATEGORY, InputError
from .validation import checked_inputs


@checked_inputs
class VideoCrafterImageConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterImageConditioning",
            display_name="VideoCrafter Image-to-Video Conditioning",
            category=f"{CATEGORY}/conditioning",
            description="VideoCrafter1 I2V: encodes the image as the original (224x224 antialiased bicubic resize "
                        "without crop, CLIP mean/std, all 257 last-layer OpenCLIP ViT-H tokens without ln_post, "
                        "then the model's Resampler) into the positive conditioning. The negative gets the tokens "
                        "of a mid-grey image (the original's unconditional image), so an empty-prompt negative "
                        "behaves exactly as the original. Also sets fps on both, like the fps node.",
            inputs=[io.Model.Input("model", tooltip="The VideoCrafter1 I2V MODEL (it holds the image Resampler)."),
                    io.ClipVision.Input("clip_vision",
                                        tooltip="OpenCLIP ViT-H/14 image encoder: the CLIP_VISION output of 'Load "
                                                "VideoCrafter Checkpoint' (I2V), or 'Load CLIP Vision' with "
                                                "CLIP-ViT-H-14-laion2B-s32B-b79K."),
                    io.Image.Input("image", tooltip="The conditioning image (one). The original first resized it to "
                                                    "the video size (512x320, bilinear): core 'Upscale Image' does that."),
                    io.Conditioning.Input("positive", tooltip="Text conditioning of the prompt (CLIPTextEncode)."),
                    io.Conditioning.Input("negative", tooltip="The EMPTY prompt encoded by CLIPTextEncode, as the "
                                                               "original; it receives the grey-image tokens."),
                    io.Int.Input("fps", default=8, min=1, max=240,
                                 tooltip="Frame-rate condition; the original I2V script uses 8."),
                    io.Float.Input("image_strength", default=1.0, min=0.0, max=10.0, step=0.01,
                                   tooltip="Weight of the image cross-attention (1.0 = the original). Lower follows "
                                           "the prompt more, higher the image more.")],
            outputs=[io.Conditioning.Output(display_name="positive"),
                     io.Conditioning.Output(display_name="negative")],
        )

    @classmethod
    def execute(cls, model, clip_vision, image, positive, negative, fps, image_strength) -> io.NodeOutput:
        if image is None or image.shape[0] == 0:
            raise InputError("no image: connect the conditioning image (e.g. 'Load Image') to 'image'.")
        if image.shape[0] != 1:
            raise InputError(f"expected one conditioning image, got a batch of {image.shape[0]}: one video is made "
                             "per image; pick one with core 'Image From Batch'.")
        context = encode_image_context(model, clip_vision, comfy_image_to_signed(image))
        uncond = unconditional_image_context(model, clip_vision, batch=context.shape[0])
        shared = {V.FPS: int(fps), V.IMAGE_SCALE: float(image_strength)}
        return io.NodeOutput(node_helpers.conditioning_set_values(positive, {**shared, V.IMAGE_CONTEXT: context}),
                             node_helpers.conditioning_set_values(negative, {**shared, V.IMAGE_CONTEXT: uncond}))


NODES = [VideoCrafterImageConditioning]
