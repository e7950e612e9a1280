"""StyleCrafter nodes: the adapter/temporal loader (a patch on the VC1-512 MODEL) and style conditioning."""
from __future__ import annotations

import folder_paths
import node_helpers

from ..bridge.api import io
from ..bridge import vocabulary as V
from ..bridge.style import (FOLDER,
                            apply_stylecrafter, encode_style_tokens, read_weights, register_folder,
                            style_scale_factors)
from .common import CATEGORY, InputError
from .validation import checked_inputs

register_folder()
NO_TEMPORAL = "none"
MODES = ["video", "image"]
ATTENTION = ["scaled (xformers path, released results)", "unscaled (original pure-PyTorch path)"]


@checked_inputs
class StyleCrafterLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        files = folder_paths.get_filename_list(FOLDER)
        return io.Schema(
            node_id="VideoCrafterStyleCrafterLoader",
            display_name="Load StyleCrafter Adapter",
            category=f"{CATEGORY}/loaders",
            description="Patches a VideoCrafter1 T2V 512 MODEL with StyleCrafter: the style adapter (adapter_v1.pth: "
                        "style transformer, scale predictor and the 16 style cross-attention layers) and, for video, "
                        "its fine-tuned temporal layers (temporal_v1_1.pth). Returns a patched copy; the input MODEL is "
                        "unchanged. Files go in models/stylecrafter and are read safely (weights only).",
            inputs=[io.Model.Input("model", tooltip="The VideoCrafter1 T2V 512 MODEL (t2v_512_v1.0/model.ckpt through "
                                                    "'Load VideoCrafter Checkpoint'): StyleCrafter's base."),
                    io.Combo.Input("adapter_name", options=files,
                                   tooltip="StyleCrafter's adapter_v1.pth (or a .safetensors of it) in models/stylecrafter."),
                    io.Combo.Input("temporal_name", options=[NO_TEMPORAL, *files], default=NO_TEMPORAL,
                                   tooltip="StyleCrafter's temporal_v1_1.pth for video (the original's video script "
                                           "loads it); 'none' keeps the base model's temporal layers."),
                    io.Combo.Input("mode", options=MODES, default="video",
                                   tooltip="video: 16-frame 512x320 videos. image: StyleCrafter's image config — "
                                           "single 512x512 images with every temporal layer skipped (the temporal "
                                           "file is then not applied, as in the original).")],
            outputs=[io.Model.Output(tooltip="The StyleCrafter-patched MODEL (feed it to the style conditioning node "
                                             "and the guider).")],
        )

    @classmethod
    def execute(cls, model, adapter_name, temporal_name, mode) -> io.NodeOutput:
        adapter = read_weights(folder_paths.get_full_path_or_raise(FOLDER, adapter_name), "style adapter")
        temporal = None
        if temporal_name != NO_TEMPORAL:
            temporal = read_weights(folder_paths.get_full_path_or_raise(FOLDER, temporal_name), "temporal checkpoint")
        return io.NodeOutput(apply_stylecrafter(model, adapter, temporal, image_mode=mode == "image"))


@checked_inputs
class StyleCrafterStyleConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterStyleConditioning",
            display_name="StyleCrafter Style Conditioning",
            category=f"{CATEGORY}/conditioning",
            description="Encodes 1..N style reference images as StyleCrafter does (512 center crop, OpenCLIP ViT-H "
                        "tokens with ln_post on the class token, N references concatenated, style transformer -> 8 "
                        "style tokens) and predicts the 16 per-layer style scales from the style tokens and the "
                        "prompt. Adds them to the positive conditioning; keep the negative (empty prompt) as it is: "
                        "it is the original's 'no text, no style' branch.",
            inputs=[io.Model.Input("model", tooltip="The MODEL from 'Load StyleCrafter Adapter'."),
                    io.ClipVision.Input("clip_vision", tooltip="OpenCLIP ViT-H/14 ('Load CLIP Vision' with "
                                                               "CLIP-ViT-H-14-laion2B-s32B-b79K), as StyleCrafter uses."),
                    io.Image.Input("style_images", tooltip="Style reference image(s); a batch of several is a "
                                                           "multi-reference style (their tokens are concatenated)."),
                    io.Conditioning.Input("positive", tooltip="The prompt (CLIPTextEncode); the scale predictor reads it."),
                    io.Float.Input("style_weight", default=1.0, min=0.0, max=5.0, step=0.01,
                                   tooltip="Global style strength (the original's --style_weight, default 1.0)."),
                    io.Combo.Input("style_attention", options=ATTENTION, default=ATTENTION[0],
                                   tooltip="The original's xformers path (used for the released results) scales the "
                                           "style attention logits by 1/sqrt(d); its pure-PyTorch fallback does not. "
                                           "Only the style branch differs."),
                    io.Image.Input("more_style_images", optional=True,
                                   tooltip="More references of another size (each image is cropped on its own).")],
            outputs=[io.Conditioning.Output(display_name="positive")],
        )

    @classmethod
    def execute(cls, model, clip_vision, style_images, positive, style_weight, style_attention,
                more_style_images=None) -> io.NodeOutput:
        if not positive:
            raise InputError("empty positive conditioning: connect the prompt's CLIPTextEncode to 'positive'.")
        style = encode_style_tokens(model, clip_vision, [style_images, more_style_images])
        out = []
        for text, options in positive:
            values = {V.STYLE_CONTEXT: style, V.STYLE_SCALES: style_scale_factors(model, style, text),
                      V.STYLE_WEIGHT: float(style_weight), V.STYLE_SCALED_LOGITS: style_attention == ATTENTION[0]}
            out += node_helpers.conditioning_set_values([[text, options]], values)
        return io.NodeOutput(out)


NODES = [StyleCrafterLoader, StyleCrafterStyleConditioning]
