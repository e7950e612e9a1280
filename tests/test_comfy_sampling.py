"""In-process ComfyUI: our MODEL, ModelSampling and DDIM SAMPLER against the recorded original DDIM runs.

The recorded runs (``sampler_ddim_vc2_tiny``, reference README §5.5) are the original
``batch_ddim_sampling`` with the tiny VC2 UNet, cfg 12, 10 steps, eta 0 and 1. Here the same
UNet runs as a native ComfyUI model, guided by core ``CFGGuider``, sampled by our DDIM SAMPLER
over our DDIM SIGMAS — the exact path of the example workflow — and must land on the original's
final latent (≤ 1e-4 relative, as the reference README prescribes for end-to-end runs).
"""
import json

import pytest
import torch
from einops import rearrange
from safetensors.torch import load_file

FIXTURES = "fixtures"


@pytest.fixture(scope="module")
def recorded(reference_dir):
    config = json.loads((reference_dir / FIXTURES / "sampler_ddim_vc2_tiny.config.json").read_text())
    tensors = load_file(reference_dir / FIXTURES / "sampler_ddim_vc2_tiny.safetensors")
    weights = load_file(reference_dir / FIXTURES / "t2v_tiny_vc2style.weights.safetensors")
    return config, tensors, {k: v.float() for k, v in weights.items()}


@pytest.fixture(scope="module")
def vc2_model(comfy, recorded):
    from videocrafter_suite.bridge.checkpoint import build_model
    from videocrafter_suite.models.checkpoints.layout import VARIANTS
    from videocrafter_suite.models.sampling.schedule import VC2_512

    _config, _tensors, weights = recorded
    state = dict(weights)
    state.update(VC2_512.buffers())
    return build_model(state, VARIANTS["vc2_t2v_512"], VC2_512)


def test_model_sampling_is_the_scale_reparametrisation(vc2_model, recorded):
    _config, tensors, _weights = recorded
    sampling = vc2_model.get_model_object("model_sampling")
    acp = tensors["schedule/alphas_cumprod"].double()
    scale = tensors["schedule/scale_arr"][:1000].double()
    expected = ((1 - acp) / acp).sqrt() / scale
    assert torch.allclose(sampling.sigmas.double(), expected, rtol=1e-6)
    t = torch.tensor([981, 421, 1])
    sigma = sampling.sigmas[t]
    assert torch.equal(sampling.timestep(sigma), t)
    y = torch.randn(3, 4, 2, 2)
    x = sampling.calculate_input(sigma, y)
    factor = (acp[t].sqrt() * scale[t]).float().view(-1, 1, 1, 1)
    assert torch.allclose(x, y * factor, rtol=1e-6)
    # pure-noise start: y_T = x_T / (sqrt(acp_T) s_T), i.e. x_T ~ N(0, I) in the model's space
    noise = torch.randn(3, 4, 2, 2)
    start = sampling.noise_scaling(sigma[:1], noise, torch.zeros_like(noise), max_denoise=True)
    assert torch.allclose(sampling.calculate_input(sigma[:1], start), noise, rtol=1e-5, atol=1e-6)


def test_ddim_sigmas_are_the_original_ladder(vc2_model, recorded):
    from videocrafter_suite.bridge.ddim import ddim_sigmas

    _config, tensors, _weights = recorded
    sampling = vc2_model.get_model_object("model_sampling")
    for steps in (50, 25, 10):
        sigmas = ddim_sigmas(sampling, steps)
        ladder = tensors[f"ddim_vc2_512/S{steps}/timesteps"].flip(0).tolist() + [0]
        assert sampling.timestep(sigmas).tolist() == ladder
    truncated = ddim_sigmas(sampling, 10, denoise=0.5)
    assert len(truncated) == 11 and sampling.timestep(truncated[:1]).item() == 451  # last 10 of the 20-step ladder


@pytest.mark.parametrize("eta", [0, 1])
def test_comfy_ddim_reproduces_the_original_run(comfy, vc2_model, recorded, eta):
    import comfy.samplers

    from videocrafter_suite.bridge.ddim import VideoCrafterDDIM, ddim_sigmas

    config, tensors, _weights = recorded
    run = f"run_eta{eta}"
    text, uncond = tensors["cond/text_emb"], tensors["cond/uncond_emb"]
    fps = int(tensors["cond/fps"][0])
    cfg = 12.0
    x_T, noise_per_step = tensors[f"{run}/x_T"], tensors[f"{run}/noise_per_step"]
    expected = tensors[f"{run}/batch_ddim_sampling_return"]  # final latent / 0.18215 = ComfyUI's latent convention
    steps = noise_per_step.shape[0]
    for video in range(x_T.shape[0]):
        guider = comfy.samplers.CFGGuider(vc2_model)
        guider.set_conds([[text[video:video + 1], {"fps": fps}]], [[uncond[video:video + 1], {"fps": fps}]])
        guider.set_cfg(cfg)
        frames = lambda t: rearrange(t[video:video + 1], "b c t h w -> (b t) c h w")  # noqa: E731
        sampler = VideoCrafterDDIM(eta=float(eta), noise_sampler=lambda i: frames(noise_per_step[i]))
        sigmas = ddim_sigmas(vc2_model.get_model_object("model_sampling"), steps)
        noise = frames(x_T)
        out = guider.sample(noise, torch.zeros_like(noise), sampler, sigmas, disable_pbar=True, seed=123)
        want = frames(expected[:, 0])
        relative = (out - want).abs().max() / want.abs().max()
        print(f"eta {eta} video {video}: max rel error {relative:.3e}")
        assert relative <= 1e-4, f"video {video}: max rel error {relative:.3e}"


class OracleUNet(torch.nn.Module):
    """Stands in for the UNet: returns the exact ε of the model's own forward process for a known x0.

    The UNet sees ``x_t = sqrt(ᾱ_t)·s_t·x0 + sqrt(1 − ᾱ_t)·ε`` (ddpm3d.py:412-417, scale schedule included);
    the oracle inverts that at the integer timestep it is given. If the σ' = σ/s_t reparametrisation of
    ``VideoCrafterModelSampling`` is right, core's ``calculate_denoised`` then returns x0 at every step, and
    every sampler must end exactly at x0; a wrong mapping (s_t forgotten, σ instead of σ') leaves it off by
    a factor of s_t or of the noise level.
    """

    def __init__(self, schedule, x0):
        super().__init__()
        self.alphas_cumprod = schedule.alphas_cumprod.double()
        self.scale = schedule.scale_arr.double() if schedule.use_scale else torch.ones(schedule.timesteps, dtype=torch.float64)
        self.x0 = x0.double()
        self.dtype = torch.float32  # what BaseModel asks of its diffusion_model

    def forward(self, x, timesteps, **unused):
        t = timesteps.round().long()
        assert torch.allclose(timesteps.double(), t.double(), atol=1e-3), "the oracle needs ladder sigmas"
        a = self.alphas_cumprod[t].view(-1, 1, 1, 1)
        signal = a.sqrt() * self.scale[t].view(-1, 1, 1, 1) * self.x0
        return ((x.double() - signal) / (1 - a).sqrt()).to(x.dtype)


@pytest.mark.parametrize("sampler_name", ["euler", "dpmpp_2m", "ddim", "videocrafter_ddim"])
def test_every_sampler_lands_on_x0_with_an_exact_eps_oracle(comfy, vc2_model, recorded, sampler_name):
    import comfy.model_management
    import comfy.sample
    import comfy.samplers

    from videocrafter_suite.bridge.ddim import VideoCrafterDDIM, ddim_sigmas

    _config, tensors, _weights = recorded
    schedule = vc2_model.model.model_config.schedule
    assert schedule.use_scale, "the property is about the scale schedule: use the VC2 model"
    x0 = torch.randn(4, 4, 8, 8, generator=torch.Generator().manual_seed(3))
    model = vc2_model.clone()
    model.add_object_patch("diffusion_model", OracleUNet(schedule, x0))
    model_sampling = model.get_model_object("model_sampling")
    if sampler_name == "videocrafter_ddim":
        sampler, sigmas = VideoCrafterDDIM(eta=0.0), ddim_sigmas(model_sampling, 10)
        sigmas[-1] = 0.0  # end at x0 itself (the original's ladder ends at ᾱ_0, i.e. t = 0, not at x0)
    else:
        sampler = comfy.samplers.sampler_object(sampler_name)
        sigmas = comfy.samplers.calculate_sigmas(model_sampling, "simple", 10)  # ladder sigmas: integer t
    guider = comfy.samplers.CFGGuider(model)
    text = tensors["cond/text_emb"][:1]
    guider.set_conds([[text, {"fps": 28}]], [[text, {"fps": 28}]])
    guider.set_cfg(1.0)
    noise = comfy.sample.prepare_noise(torch.zeros_like(x0), 0)
    try:
        with torch.inference_mode():
            out = guider.sample(noise, torch.zeros_like(x0), sampler, sigmas, disable_pbar=True, seed=0)
    finally:  # the object patch replaced the shared base model's UNet while loaded: put the real one back
        comfy.model_management.unload_all_models()
    assert not isinstance(vc2_model.model.diffusion_model, OracleUNet)
    out = model.model.process_latent_in(out)  # the guider hands back the latent format's output (÷ 0.18215)
    # Every denoised prediction is x0 up to float32 rounding of y and σ'·ε (|y| ≤ ~σ'_max·4 ≈ 60): 1e-4 rel.
    error = float((out - x0).abs().max() / x0.abs().max())
    assert error <= 1e-4, f"{sampler_name}: lands {error:.2e} (relative) away from x0"


def test_lora_patches_apply_and_unpatch(comfy, vc2_model, recorded):
    """A LoRA in ComfyUI's generic key format patches our UNet through core's loader, and the base is untouched."""
    import comfy.sample
    import comfy.sd

    _config, tensors, _weights = recorded
    target = "diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k"
    weight = vc2_model.model.state_dict()[target + ".weight"]
    generator = torch.Generator().manual_seed(0)
    lora = {f"{target}.lora_up.weight": torch.randn(weight.shape[0], 4, generator=generator),
            f"{target}.lora_down.weight": torch.randn(4, weight.shape[1], generator=generator)}
    patched, _clip = comfy.sd.load_lora_for_models(vc2_model, None, lora, 1.0, 0.0)
    assert len(patched.patches) == 1 and target + ".weight" in patched.patches
    text, uncond = tensors["cond/text_emb"][:1], tensors["cond/uncond_emb"][:1]
    latent = torch.zeros(4, 4, 8, 8)

    def run(model):
        noise = comfy.sample.prepare_noise(latent, 0)
        return comfy.sample.sample(model, noise, 3, 6.0, "euler", "normal", [[text, {"fps": 28}]],
                                   [[uncond, {"fps": 28}]], latent, disable_pbar=True, seed=0)

    base_before = run(vc2_model)
    with_lora = run(patched)
    base_after = run(vc2_model)
    assert not torch.allclose(with_lora, base_before)
    assert torch.equal(base_before, base_after)
    assert torch.equal(vc2_model.model.state_dict()[target + ".weight"], weight)
