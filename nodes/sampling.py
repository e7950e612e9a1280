"""Sampling nodes: the original's exact DDIM as SAMPLER + SIGMAS, and original-order NOISE."""
from __future__ import annotations

from ..bridge.api import io
from ..bridge.ddim import OriginalOrderVideoNoise, VideoCrafterDDIM, ddim_sigmas
from .common import CATEGORY
from .validation import checked_inputs


@checked_inputs
class VideoCrafterDDIMSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterDDIMSampler",
            display_name="VideoCrafter DDIM Sampler",
            category=f"{CATEGORY}/sampling",
            description="The original VideoCrafter DDIM (lvdm/models/samplers/ddim.py) as a SAMPLER for "
                        "SamplerCustomAdvanced: its eta, its scale-schedule arithmetic, the original per-step noise "
                        "stream. With 'VideoCrafter DDIM Sigmas' and 'VideoCrafter Noise' it reproduces the "
                        "original's video for the same seed.",
            inputs=[io.Float.Input("eta", default=1.0, min=0.0, max=1.0, step=0.01,
                                   tooltip="DDIM eta: 1.0 (the original scripts' default) adds fresh noise each step; "
                                           "0.0 is deterministic DDIM.")],
            outputs=[io.Sampler.Output()],
        )

    @classmethod
    def execute(cls, eta) -> io.NodeOutput:
        return io.NodeOutput(VideoCrafterDDIM(eta=float(eta)))


@checked_inputs
class VideoCrafterDDIMSigmas(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterDDIMSigmas",
            display_name="VideoCrafter DDIM Sigmas",
            category=f"{CATEGORY}/sampling",
            description="The original DDIM timestep ladder (arange(0, 1000, 1000 // steps) + 1, last step to "
                        "alphas_cumprod[0]) as SIGMAS of the model's own schedule (scale schedule included).",
            inputs=[io.Model.Input("model", tooltip="The model whose noise schedule is used."),
                    io.Int.Input("steps", default=50, min=1, max=1000,
                                 tooltip="DDIM steps; the original scripts use 50."),
                    io.Float.Input("denoise", default=1.0, min=0.0, max=1.0, step=0.01,
                                   tooltip="1.0 = start from pure noise (text-to-video). Lower values keep the end "
                                           "of a longer ladder, for video-to-video refinement.")],
            outputs=[io.Sigmas.Output()],
        )

    @classmethod
    def execute(cls, model, steps, denoise) -> io.NodeOutput:
        if denoise <= 0.0:
            return io.NodeOutput(model.get_model_object("model_sampling").sigmas.new_zeros([0]))
        return io.NodeOutput(ddim_sigmas(model.get_model_object("model_sampling"), steps, denoise))


@checked_inputs
class VideoCrafterNoise(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="VideoCrafterNoise",
            display_name="VideoCrafter Noise (original seed order)",
            category=f"{CATEGORY}/sampling",
            description="Initial noise drawn exactly as the original: torch.manual_seed(seed); randn([1, 4, frames, "
                        "h, w]), laid out batch-as-frames. Core RandomNoise draws the same numbers in another order, "
                        "so only this node reproduces the original's video for a seed.",
            inputs=[io.Int.Input("noise_seed", default=123, min=0, max=0xffffffffffffffff, control_after_generate=True,
                                 tooltip="Seed; the original scripts use 123.")],
            outputs=[io.Noise.Output()],
        )

    @classmethod
    def execute(cls, noise_seed) -> io.NodeOutput:
        return io.NodeOutput(OriginalOrderVideoNoise(noise_seed))


NODES = [VideoCrafterDDIMSampler, VideoCrafterDDIMSigmas, VideoCrafterNoise]
