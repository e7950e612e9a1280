"""Depth-structure extraction nodes: load a depth estimator, turn video frames into a depth IMAGE."""
from __future__ import annotations

from ..bridge.api import io
from ..bridge.depth_estimation import (FOLDER, DepthModelError, estimate_depth_images, load_depth_model,
                                       model_choices, register_folder)
from ..models.depth.dpt import NET_SIZE
from .common import CATEGORY, InputError
from .validation import checked_inputs

register_folder()
DepthModel = io.Custom("DEPTH_MODEL")
SIZE_INPUT = "input size"
SIZE_NET = "model grid"


@checked_inputs
class DepthModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterDepthModelLoader",
            display_name="Load Depth Model",
            category=f"{CATEGORY}/loaders",
            description="Loads a depth estimator from models/depth: a MiDaS v3 DPT file (dpt_hybrid-midas-501f0c75.pt, "
                        "the estimator Make-Your-Video was trained with, or dpt_large-midas-2f21e586.pt, the one Gen-1 "
                        "used; read weights-only, the variant detected from its keys), or a transformers "
                        "depth-estimation folder (config.json + weights + preprocessor_config.json, e.g. Depth Anything "
                        "V2), listed with a trailing '/'.",
            inputs=[io.Combo.Input("model_name", options=model_choices(),
                                   tooltip="A MiDaS v3 .pt/.safetensors file, or a transformers folder ('name/') "
                                           f"inside ComfyUI/models/{FOLDER}.")],
            outputs=[DepthModel.Output(display_name="depth_model",
                                       tooltip="The depth estimator, for 'Estimate Video Depth'.")],
        )

    @classmethod
    def execute(cls, model_name) -> io.NodeOutput:
        try:
            return io.NodeOutput(load_depth_model(model_name))
        except DepthModelError as error:
            raise InputError(f"model_name: {error}") from error


@checked_inputs
class DepthEstimator(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterDepthEstimator",
            display_name="Estimate Video Depth",
            category=f"{CATEGORY}/depth",
            description="Turns video frames into a depth video (Gen-1's structure input). MiDaS models run exactly as "
                        "Make-Your-Video runs them: each frame bicubic-resized to 384x384 (aspect not kept), the DPT, "
                        "then resized back. Output: depth IMAGE, one frame per input frame, 0..1 per frame with "
                        "near = bright (the common depth-map convention, so depth from any other pack works downstream "
                        "too). Frames run in chunks with a progress bar.",
            inputs=[DepthModel.Input("depth_model", tooltip="From 'Load Depth Model'."),
                    io.Image.Input("images", tooltip="The video frames (an IMAGE batch, e.g. from Load Video / "
                                                     "Get Video Components); each frame gets its own depth map."),
                    io.Int.Input("batch_size", default=4, min=1, max=64,
                                 tooltip="Frames per forward pass: higher is faster, lower needs less memory."),
                    io.Int.Input("resolution", default=NET_SIZE, min=64, max=2048, step=32,
                                 tooltip=f"MiDaS input size (square, aspect not kept). {NET_SIZE} is what "
                                         "Make-Your-Video uses and what both MiDaS v3 models were trained at; larger "
                                         "gives finer maps at more cost. Transformers models use their own size."),
                    io.Combo.Input("output_size", options=[SIZE_INPUT, SIZE_NET], default=SIZE_INPUT,
                                   tooltip="'input size': the frames' own size (as Make-Your-Video saves its depth "
                                           "with --save_cond). 'model grid': the estimator's own output, no resize "
                                           "(resolution x resolution for MiDaS); resizing that to the latent size later follows "
                                           "Make-Your-Video's conditioning path step for step.")],
            outputs=[io.Image.Output(display_name="depth", tooltip="Depth frames [T, H, W, 3], 0..1, near = bright.")],
        )

    @classmethod
    def execute(cls, depth_model, images, batch_size, resolution=NET_SIZE, output_size=SIZE_INPUT) -> io.NodeOutput:
        if images is None or images.ndim != 4 or images.shape[0] == 0:
            raise InputError("images: expected an IMAGE batch of video frames [frames, height, width, channels], "
                             f"got {None if images is None else tuple(images.shape)}.")
        if not hasattr(depth_model, "inverse_depth"):
            raise InputError("depth_model: connect the output of 'Load Depth Model'.")
        if resolution % 32:
            raise InputError(f"resolution: {resolution} is not a multiple of 32; use 384 (Make-Your-Video) or "
                             "another multiple of 32.")
        depth = estimate_depth_images(depth_model, images, chunk_size=batch_size, model_grid=output_size == SIZE_NET,
                                      net_size=int(resolution))
        return io.NodeOutput(depth)


NODES = [DepthModelLoader, DepthEstimator]
