"""Shared pieces of the VideoLDM tests: the tiny VC2 model of the golden fixture as a ComfyUI MODEL,
its recorded text embeddings, and a guider for it."""
import pytest
import torch
from safetensors.torch import load_file

SAMPLERS = ("euler", "euler_ancestral", "dpmpp_2m", "ddim", "videocrafter_ddim")


@pytest.fixture(scope="module")
def tiny_vc2(comfy_path, reference_dir):
    """(MODEL, text embedding, empty-prompt embedding) of the tiny VC2 fixture."""
    from videocrafter_suite.bridge.checkpoint import build_model
    from videocrafter_suite.models.checkpoint_layout import VARIANTS
    from videocrafter_suite.models.schedule import VC2_512

    weights = load_file(reference_dir / "fixtures" / "t2v_tiny_vc2style.weights.safetensors")
    state = {k: v.float() for k, v in weights.items()}
    state.update(VC2_512.buffers())
    tensors = load_file(reference_dir / "fixtures" / "sampler_ddim_vc2_tiny.safetensors")
    return build_model(state, VARIANTS["vc2_t2v_512"], VC2_512), tensors["cond/text_emb"][:1], \
        tensors["cond/uncond_emb"][:1]


def guider_for(tiny, cfg=4.0, fps=28):
    import comfy.samplers

    model, text, uncond = tiny
    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds([[text, {"fps": fps}]], [[uncond, {"fps": fps}]])
    guider.set_cfg(cfg)
    return guider


def sampler_and_sigmas(model, name, steps, denoise):
    """A SAMPLER and its SIGMAS as the graph would make them (KSamplerSelect + BasicScheduler, or the
    pack's VideoCrafter DDIM Sampler + Sigmas)."""
    import comfy.samplers

    from videocrafter_suite.bridge.ddim import VideoCrafterDDIM, ddim_sigmas

    sampling = model.get_model_object("model_sampling")
    if name == "videocrafter_ddim":
        return VideoCrafterDDIM(eta=1.0), ddim_sigmas(sampling, steps, denoise)
    total = steps if denoise >= 1.0 else int(steps / denoise)
    sigmas = comfy.samplers.calculate_sigmas(sampling, "normal", total).cpu()
    return comfy.samplers.sampler_object(name), sigmas[-(steps + 1):]


class SeededNoise:
    """NOISE like core RandomNoise (seed attribute, generate_noise)."""

    def __init__(self, seed):
        self.seed = seed

    def generate_noise(self, latent):
        import comfy.sample

        return comfy.sample.prepare_noise(latent["samples"], self.seed)
