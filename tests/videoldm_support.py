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
    from videocrafter_suite.models.checkpoints.layout import VARIANTS
    from videocrafter_suite.models.sampling.schedule import VC2_512

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


def random_temporal_vae(seed=0):
    """A core ``comfy.sd.VAE`` with the SGM temporal decoder (Stable Video Diffusion's), random weights.

    Core detects the layout by ``decoder.mid.block_1.mix_factor`` and builds its own
    ``temporal_ae.VideoDecoder``; its layers skip weight init, so the weights are drawn here
    (N(0, 1/fan_in) for matrices and kernels, small biases, norms near 1, mix factors 0 → α = 0.5).
    """
    import comfy.sd

    vae = comfy.sd.VAE(sd={"decoder.mid.block_1.mix_factor": torch.zeros(1)})
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in vae.first_stage_model.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            if name.endswith("mix_factor"):
                parameter.zero_()
            elif parameter.ndim > 1:
                parameter.copy_(noise * parameter[0].numel() ** -0.5)
            elif "norm" in name and name.endswith("weight"):
                parameter.copy_(1.0 + 0.05 * noise)
            else:
                parameter.copy_(0.02 * noise)
    return vae


def temporal_vae_decoder_state(vae):
    """The decoder's weights in the SGM layout a VAE file has (what core VAELoader reads)."""
    return {k: v.detach().clone().contiguous() for k, v in vae.first_stage_model.state_dict().items()
            if k.startswith("decoder.")}
