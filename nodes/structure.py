"""Structure-guided video (Gen-1's structure input, Make-Your-Video weights): clip sampling and depth conditioning."""
from __future__ import annotations

import node_helpers

from ..bridge import vocabulary as V
from ..bridge.api import io
from ..bridge.structure import StructureError, depth_model_config, structure_from_depth_image
from ..models.image.clip_sampling import RESIZE_MODES, sample_clip
from .common import CATEGORY, MAX_FRAMES, MAX_SIDE, InputError
from .latent_video import validate_video_size
from .validation import checked_inputs

MAX_STRUCTURE_BLUR = 6


@checked_inputs
class VideoCrafterSampleClip(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterSampleClip",
            display_name="VideoCrafter Sample Clip (frame stride)",
            category=f"{CATEGORY}/structure",
            description="Takes the frames of your clip (core 'Load Video' → 'Get Video Components') the way "
                        "Make-Your-Video reads its inputs: every frame_stride-th frame from the start, 'frames' of them "
                        "(stride shrunk to length // frames when the clip is too short, as the original), each resized "
                        "to the model size. Feed the result to the depth estimator and, for closer edits, to VAE Encode.",
            inputs=[io.Image.Input("images", tooltip="All frames of the source clip (IMAGE batch)."),
                    io.Int.Input("frames", default=16, min=1, max=MAX_FRAMES,
                                 tooltip="Frames to sample; Make-Your-Video uses 16 (its causal attention handles up "
                                         "to 64)."),
                    io.Int.Input("frame_stride", default=2, min=-1, max=1000,
                                 tooltip="Take every n-th frame (the original's run.sh uses 2). -1 spreads the frames "
                                         "over the whole clip (length // frames)."),
                    io.Int.Input("width", default=256, min=8, max=MAX_SIDE, step=8,
                                 tooltip="Output width; Make-Your-Video is 256x256."),
                    io.Int.Input("height", default=256, min=8, max=MAX_SIDE, step=8,
                                 tooltip="Output height; Make-Your-Video is 256x256."),
                    io.Combo.Input("resize", options=list(RESIZE_MODES), default=RESIZE_MODES[0],
                                   tooltip="'squash (original)': resize straight to width x height, aspect not kept, "
                                           "as the original. 'center crop': crop to the aspect first.")],
            outputs=[io.Image.Output(display_name="frames", tooltip="[frames, height, width, 3] in 0..1.")],
        )

    @classmethod
    def execute(cls, images, frames, frame_stride, width, height, resize=RESIZE_MODES[0]) -> io.NodeOutput:
        if images is None or images.ndim != 4 or images.shape[0] == 0:
            raise InputError("images: expected the clip's frames as an IMAGE batch [frames, height, width, 3], got "
                             f"{None if images is None else tuple(images.shape)}.")
        validate_video_size(frames, width, height)
        try:
            return io.NodeOutput(sample_clip(images, frames, frame_stride, width, height, resize))
        except ValueError as error:
            raise InputError(f"images: {error}") from error


@checked_inputs
class VideoCrafterStructureConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterStructureConditioning",
            display_name="VideoCrafter Structure Conditioning (depth)",
            category=f"{CATEGORY}/structure",
            description="Gen-1's structure input for Make-Your-Video: a depth video (near = bright; from 'Estimate "
                        "Video Depth' or any other pack) becomes the model's depth channel exactly as the original "
                        "preprocesses it (bicubic resize to the latent size without antialias, per-frame min-max to "
                        "[-1, 1], near = +1) and is put on BOTH positive and negative, as the original (its "
                        "classifier-free guidance steers only the text). Optional clip-wide normalisation and Gen-1's "
                        "structure-fidelity blur t_s.",
            inputs=[io.Model.Input("model", tooltip="The Make-Your-Video MODEL (checked: it must take depth)."),
                    io.Conditioning.Input("positive", tooltip="Text conditioning of the prompt."),
                    io.Conditioning.Input("negative", tooltip="The empty prompt (the original's uncond), or a "
                                                               "negative prompt."),
                    io.Image.Input("depth", tooltip="Depth frames [T, H, W, C], near = bright, one per video frame."),
                    io.Latent.Input("latent", tooltip="The video latent you will sample (empty, or VAE-encoded from "
                                                      "the clip): gives the frame count and the latent size."),
                    io.Int.Input("structure_blur", default=0, min=0, max=MAX_STRUCTURE_BLUR,
                                 tooltip="Gen-1's structure fidelity t_s: 0 keeps the depth as is (the original); each "
                                         "step halves the depth's detail, so the output follows the coarse layout "
                                         "only and the prompt can change shapes more. Make-Your-Video was not trained "
                                         "with blurred depth: use small values."),
                    io.Boolean.Input("clip_normalise", default=False,
                                     tooltip="Off (the original): min-max per frame. On: one min-max over the whole "
                                             "clip, keeping how near/far the scene gets over time.")],
            outputs=[io.Conditioning.Output(display_name="positive"),
                     io.Conditioning.Output(display_name="negative")],
        )

    @classmethod
    def execute(cls, model, positive, negative, depth, latent, structure_blur=0,
                clip_normalise=False) -> io.NodeOutput:
        try:
            depth_model_config(model)
            structure = structure_from_depth_image(depth, latent["samples"], blur=structure_blur,
                                                   clip_normalise=clip_normalise)
        except StructureError as error:
            raise InputError(str(error)) from error
        values = {V.STRUCTURE_DEPTH: structure}
        return io.NodeOutput(node_helpers.conditioning_set_values(positive, values),
                             node_helpers.conditioning_set_values(negative, values))


NODES = [VideoCrafterSampleClip, VideoCrafterStructureConditioning]
