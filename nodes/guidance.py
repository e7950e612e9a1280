"""Guider nodes (GUIDER for SamplerCustomAdvanced) and a one-node StyleCrafter sampler."""
from __future__ import annotations

import comfy.sample
import comfy.utils
import latent_preview

from ..bridge.api import io
from ..bridge.ddim import OriginalOrderVideoNoise, VideoCrafterDDIM, ddim_sigmas
from ..bridge.guiders import MultiConditionGuider, TemporalCFGGuider, has_condition
from ..models.sampling.guidance import DEFAULT_STYLE_SCALE, DEFAULT_TEXT_SCALE
from .common import CATEGORY, InputError
from .validation import checked_inputs

TEMPORAL_TOOLTIP = ("Temporal-consistency guidance ω_t (Gen-1): adds ω_t·(prediction − prediction with every temporal "
                    "layer switched off), one extra model pass per step. 0 = off (exactly the plain result). The "
                    "original exposed this as unconditional_guidance_scale_temporal but it never switched the layers "
                    "off, so there it did nothing; here it does.")


def _scales(text_scale=DEFAULT_TEXT_SCALE, condition_scale=DEFAULT_STYLE_SCALE):
    return [io.Float.Input("text_scale", default=text_scale, min=0.0, max=100.0, step=0.1, round=0.01,
                           tooltip="λ_t: pushes from (no text, no style) to (text, no style). StyleCrafter video: 15."),
            io.Float.Input("condition_scale", default=condition_scale, min=0.0, max=100.0, step=0.1, round=0.01,
                           tooltip="λ_s: pushes from (text, no style) to (text, style); for I2V the image plays the "
                                   "style's part. StyleCrafter video: 7.5."),
            io.Float.Input("temporal_scale", default=0.0, min=-10.0, max=10.0, step=0.05, round=0.01,
                           tooltip=TEMPORAL_TOOLTIP)]


def multi_condition_guider(model, positive, negative, text_scale, condition_scale, temporal_scale):
    if not has_condition(positive):
        raise InputError("the positive conditioning carries no style or image: connect 'StyleCrafter Style "
                         "Conditioning' (or the I2V image conditioning) before this guider, or use CFGGuider.")
    guider = MultiConditionGuider(model)
    guider.set_conds(positive, negative)
    guider.set_scales(text_scale, condition_scale, temporal_scale)
    return guider


@checked_inputs
class VideoCrafterMultiConditionGuider(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterMultiConditionGuider",
            display_name="VideoCrafter Multi-Condition Guider (StyleCrafter)",
            category=f"{CATEGORY}/sampling",
            description="StyleCrafter's guidance, exactly: e = e(text,style) + λ_s·(e(text,style) − e(text,∅)) + "
                        "λ_t·(e(text,∅) − e(∅,∅)) — three branches batched together. The second condition is the "
                        "style of 'StyleCrafter Style Conditioning' or the image of the I2V conditioning. Optional "
                        "temporal guidance.",
            inputs=[io.Model.Input("model", tooltip="The (StyleCrafter-patched) VideoCrafter MODEL."),
                    io.Conditioning.Input("positive", tooltip="Text + style (or text + image)."),
                    io.Conditioning.Input("negative", tooltip="The EMPTY prompt (CLIPTextEncode \"\"), without style: "
                                                               "the original's unconditional branch."),
                    *_scales()],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, positive, negative, text_scale, condition_scale, temporal_scale) -> io.NodeOutput:
        return io.NodeOutput(multi_condition_guider(model, positive, negative, text_scale, condition_scale,
                                                    temporal_scale))


@checked_inputs
class VideoCrafterTemporalGuider(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterTemporalGuider",
            display_name="VideoCrafter CFG + Temporal Guider",
            category=f"{CATEGORY}/sampling",
            description="Ordinary CFG (as CFGGuider) plus temporal-consistency guidance: "
                        "+ ω_t·(e_video(positive) − e_frames(positive)), where e_frames runs with every temporal layer "
                        "off. Works with every VideoCrafter model.",
            inputs=[io.Model.Input("model", tooltip="A VideoCrafter MODEL."),
                    io.Conditioning.Input("positive", tooltip="The prompt (and any image/style) conditioning."),
                    io.Conditioning.Input("negative", tooltip="The unconditional branch (VideoCrafter: the EMPTY "
                                                               "prompt, not zeros)."),
                    io.Float.Input("cfg", default=12.0, min=0.0, max=100.0, step=0.1, round=0.01,
                                   tooltip="Classifier-free guidance scale (VideoCrafter scripts: 12)."),
                    io.Float.Input("temporal_scale", default=0.0, min=-10.0, max=10.0, step=0.05, round=0.01,
                                   tooltip=TEMPORAL_TOOLTIP)],
            outputs=[io.Guider.Output()],
        )

    @classmethod
    def execute(cls, model, positive, negative, cfg, temporal_scale) -> io.NodeOutput:
        guider = TemporalCFGGuider(model)
        guider.set_conds(positive, negative)
        guider.set_scales(cfg, temporal_scale)
        return io.NodeOutput(guider)


@checked_inputs
class StyleCrafterSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterStyleCrafterSampler",
            display_name="StyleCrafter Sampler (original DDIM)",
            category=f"{CATEGORY}/sampling",
            description="One node for the original style_guided_synthesis: multi-condition guider + the original "
                        "DDIM (eta, ladder, seed order). Same result as the guider with SamplerCustomAdvanced, "
                        "VideoCrafter DDIM Sampler/Sigmas and VideoCrafter Noise.",
            inputs=[io.Model.Input("model", tooltip="The MODEL from 'Load StyleCrafter Adapter'."),
                    io.Conditioning.Input("positive", tooltip="Text + style (StyleCrafter Style Conditioning)."),
                    io.Conditioning.Input("negative", tooltip="The EMPTY prompt, without style."),
                    io.Latent.Input("latent_image", tooltip="Empty VideoCrafter Video Latent (16 frames 512x320 for "
                                                            "video, 1 frame 512x512 for image mode)."),
                    io.Int.Input("seed", default=123, min=0, max=0xffffffffffffffff, control_after_generate=True,
                                 tooltip="Seed, drawn in the original's order (the scripts use 123)."),
                    io.Int.Input("steps", default=50, min=1, max=1000, tooltip="DDIM steps (original: 50)."),
                    io.Float.Input("eta", default=1.0, min=0.0, max=1.0, step=0.01, tooltip="DDIM eta (original: 1.0)."),
                    *_scales()],
            outputs=[io.Latent.Output()],
        )

    @classmethod
    def execute(cls, model, positive, negative, latent_image, seed, steps, eta, text_scale, condition_scale,
                temporal_scale) -> io.NodeOutput:
        guider = multi_condition_guider(model, positive, negative, text_scale, condition_scale, temporal_scale)
        latent = latent_image["samples"]
        latent = comfy.sample.fix_empty_latent_channels(model, latent)
        sigmas = ddim_sigmas(model.get_model_object("model_sampling"), steps)
        noise = OriginalOrderVideoNoise(seed)
        callback = latent_preview.prepare_callback(model, sigmas.shape[-1] - 1, {})
        samples = guider.sample(noise.generate_noise({"samples": latent}), latent, VideoCrafterDDIM(eta=float(eta)),
                                sigmas, callback=callback, disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED, seed=seed)
        return io.NodeOutput({**latent_image, "samples": samples.to(latent.device)})


NODES = [VideoCrafterMultiConditionGuider, VideoCrafterTemporalGuider, StyleCrafterSampler]
