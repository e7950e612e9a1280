"""In-process ComfyUI: StyleCrafter as a patch on a native VC1-512 MODEL, guided by our multi-condition
GUIDER and sampled by our DDIM, against the recorded ``style_guided_synthesis`` runs (reference README
§5.4); the base model stays untouched; the temporal checkpoint patches and unpatches; clear errors."""
import json

import pytest
import torch
from einops import rearrange
from safetensors.torch import load_file

from videocrafter_suite.bridge.vocabulary import TEMPORAL_OFF

FIXTURE = "fixtures/stylecrafter_tiny"


@pytest.fixture(scope="module")
def recorded(reference_dir):
    config = json.loads((reference_dir / f"{FIXTURE}.config.json").read_text())
    weights = {k: v.float() for k, v in load_file(reference_dir / f"{FIXTURE}.weights.safetensors").items()}
    return config, weights, load_file(reference_dir / f"{FIXTURE}.io.safetensors")


@pytest.fixture(scope="module")
def base_model(comfy, recorded):
    from videocrafter_suite.bridge.checkpoint import build_model
    from videocrafter_suite.models.checkpoints.layout import VARIANTS
    from videocrafter_suite.models.sampling.schedule import VC1_512

    _config, weights, _io = recorded
    state = {k: v for k, v in weights.items() if k.startswith("model.diffusion_model.")}
    state.update(VC1_512.buffers())
    return build_model(state, VARIANTS["vc1_t2v_512"], VC1_512)


def adapter_state(weights):
    return {k: v for k, v in weights.items() if k.startswith("adapter.")}


@pytest.fixture(scope="module")
def style_model(base_model, recorded):
    from videocrafter_suite.bridge.style import apply_stylecrafter

    _config, weights, _io = recorded
    return apply_stylecrafter(base_model, adapter_state(weights), style_heads=4, scale_heads=4)


def capture_sampler(comfy):
    """A SAMPLER that returns the guided denoised prediction of one call at the first sigma."""
    def one_call(model, x, sigmas, extra_args=None, callback=None, disable=None):
        return model(x, sigmas[0] * x.new_ones([x.shape[0]]), **(extra_args or {}))
    return comfy.samplers.KSAMPLER(one_call)


def positive_for(model, io, video, scaled):
    from videocrafter_suite.bridge.style import style_adapter_of
    from videocrafter_suite.bridge.vocabulary import STYLE_CONTEXT as STYLE_CONTEXT_KEY, \
        STYLE_SCALED_LOGITS as STYLE_SCALED_KEY, STYLE_SCALES as STYLE_SCALES_KEY, STYLE_WEIGHT as STYLE_WEIGHT_KEY

    adapter = style_adapter_of(model)
    text = io["in/context_text"][video:video + 1]
    with torch.no_grad():
        style = adapter(io["in/style_tokens_fp16"][video:video + 1])
        scales = adapter.scale_factors(style, text)
    return [[text, {STYLE_CONTEXT_KEY: style, STYLE_SCALES_KEY: scales, STYLE_WEIGHT_KEY: 1.0, STYLE_SCALED_KEY: scaled}]]


@pytest.mark.parametrize("run", ["sampler_eta0", "sampler_eta1", "sampler_eta0_xformers_emulated"])
def test_guider_and_ddim_reproduce_the_original_style_run(comfy, style_model, recorded, run):
    from videocrafter_suite.bridge.ddim import VideoCrafterDDIM, ddim_sigmas
    from videocrafter_suite.bridge.guiders import MultiConditionGuider

    _config, _weights, io = recorded
    eta = 1.0 if "eta1" in run else 0.0
    x_T, noise_per_step = io[f"{run}/x_T"], io[f"{run}/noise_per_step"]
    expected = io[f"{run}/style_guided_synthesis_return"][:, 0]  # final / 0.18215 = ComfyUI's latent convention
    for video in range(x_T.shape[0]):
        frames = lambda t: rearrange(t[video:video + 1], "b c t h w -> (b t) c h w")  # noqa: E731
        guider = MultiConditionGuider(style_model)
        guider.set_conds(positive_for(style_model, io, video, "xformers" in run),
                         [[io["in/context_uncond"][video:video + 1], {}]])
        guider.set_scales(15.0, 7.5)
        sampler = VideoCrafterDDIM(eta=eta, noise_sampler=lambda i: frames(noise_per_step[i]))
        sigmas = ddim_sigmas(style_model.get_model_object("model_sampling"), noise_per_step.shape[0])
        noise = frames(x_T)
        out = guider.sample(noise, torch.zeros_like(noise), sampler, sigmas, disable_pbar=True, seed=123)
        want = frames(expected)
        relative = float((out - want).abs().max() / want.abs().max())
        print(f"{run} video {video}: max rel error {relative:.3e}")
        assert relative <= 1e-4


def test_patch_leaves_the_base_model_untouched(comfy, base_model, style_model, recorded):
    """The clone carries the style layers; whenever the base MODEL runs, it runs without them."""
    from videocrafter_suite.bridge.style import ADAPTER_ATTACHMENT

    _config, _weights, io = recorded
    assert base_model.get_attachment(ADAPTER_ATTACHMENT) is None and not base_model.object_patches
    assert len(style_model.object_patches) == 7 and style_model.get_attachment(ADAPTER_ATTACHMENT) is not None
    x = rearrange(io["in/x"][:1], "b c t h w -> (b t) c h w")
    sigma = float(base_model.get_model_object("model_sampling").sigmas[500])
    positive = positive_for(style_model, io, 0, True)

    def run(model):
        guider = comfy.samplers.CFGGuider(model)
        guider.set_conds(positive, positive)
        guider.set_cfg(1.0)
        return one_call(comfy, guider, x, sigma)

    base_before = run(base_model)
    styled = run(style_model)
    attn2 = base_model.model.diffusion_model.input_blocks[1][1].transformer_blocks[0].attn2
    assert attn2.processor is not None, "while the clone is loaded, its layers are in place"
    key = "input_blocks.1.1.transformer_blocks.0.attn2.processor.to_k_style.weight"
    assert key in base_model.model.diffusion_model.state_dict()
    base_after = run(base_model)
    assert attn2.processor is None and key not in base_model.model.diffusion_model.state_dict()
    assert torch.equal(base_before, base_after)
    assert (styled - base_before).abs().max() > 1e-3, "the style tokens change the prediction"


def test_temporal_checkpoint_is_a_set_patch_and_unpatches(comfy, base_model, recorded):
    from videocrafter_suite.bridge.style import apply_stylecrafter
    from videocrafter_suite.models.style.layout import temporal_transformer_paths

    _config, weights, _io = recorded
    unet = base_model.model.diffusion_model
    paths = temporal_transformer_paths(unet.state_dict())
    nested = {p: {k[len(p) + 1:]: v + 1.0 for k, v in unet.state_dict().items() if k.startswith(p + ".")} for p in paths}
    patched = apply_stylecrafter(base_model, adapter_state(weights), nested, style_heads=4, scale_heads=4)
    key = "input_blocks.1.2.proj_in.weight"
    before = unet.state_dict()[key].clone()
    assert len(patched.patches) == sum(len(sd) for sd in nested.values())
    import comfy.model_management

    comfy.model_management.load_models_gpu([patched])
    assert torch.equal(unet.state_dict()[key], before + 1.0)
    comfy.model_management.load_models_gpu([base_model])
    assert torch.equal(unet.state_dict()[key], before)
    image = apply_stylecrafter(base_model, adapter_state(weights), nested, image_mode=True, style_heads=4, scale_heads=4)
    assert not image.patches and image.model_options["transformer_options"][TEMPORAL_OFF]


def one_call(comfy, guider, x, sigma):
    with torch.inference_mode():  # as ComfyUI runs every node (execution.py)
        return guider.sample(x, torch.zeros_like(x), capture_sampler(comfy), torch.tensor([sigma, 0.0]),
                             disable_pbar=True, seed=0)


#: Relative reproducibility of one float32 UNet output when the same input is evaluated inside another batch
#: (cond/uncond batched by the guider vs alone here): GEMM/conv blocking differs per batch size and per CPU.
#: The fixtures show float32 outputs 1e-5 relative from float64 (README §4.6); 2e-5 leaves a factor 2.
MODEL_REL = 2e-5


def combination_tolerance(*terms) -> float:
    """Bound on |got − want| for a guided sum Σ wᵢ·eᵢ: each term carries MODEL_REL·max|eᵢ|, amplified by |wᵢ|.

    ``terms`` are (weight, output) pairs. An elementwise rtol on the *sum* cannot hold everywhere: the sum can
    cancel to ~0 where its terms are large (scales 15 + 7.5 amplify each term's rounding)."""
    return sum(abs(w) * MODEL_REL * float(e.abs().max()) for w, e in terms)


def test_temporal_guidance_is_the_formula_and_zero_is_exactly_plain(comfy, style_model, recorded):
    """ω_t: plain CFG + ω·(e(c) − e_frames(c)), checked against three direct model outputs; ω=0 = CFGGuider."""
    from videocrafter_suite.bridge.guiders import MultiConditionGuider, TemporalCFGGuider

    _config, _weights, io = recorded
    positive = positive_for(style_model, io, 0, True)
    negative = [[io["in/context_uncond"][:1], {}]]
    x = rearrange(io["in/x"][:1], "b c t h w -> (b t) c h w")
    sigma = float(style_model.get_model_object("model_sampling").sigmas[600])

    def direct(conds, temporal_off=False):
        model = style_model.clone()
        if temporal_off:
            model.model_options.setdefault("transformer_options", {})[TEMPORAL_OFF] = True
        guider = comfy.samplers.CFGGuider(model)
        guider.set_conds(conds, conds)
        guider.set_cfg(1.0)
        return one_call(comfy, guider, x, sigma)

    e_c, e_u, e_frames = direct(positive), direct(negative), direct(positive, temporal_off=True)
    assert (e_c - e_frames).abs().max() > 1e-3, "switching the temporal layers off changes the prediction"
    plain = comfy.samplers.CFGGuider(style_model)
    plain.set_conds(positive, negative)
    plain.set_cfg(7.0)
    for omega in (0.0, 2.5):
        guider = TemporalCFGGuider(style_model)
        guider.set_conds(positive, negative)
        guider.set_scales(7.0, omega)
        got = one_call(comfy, guider, x, sigma)
        if omega == 0:
            assert torch.equal(got, one_call(comfy, plain, x, sigma))
        else:
            want = e_u + 7.0 * (e_c - e_u) + omega * (e_c - e_frames)
            tolerance = combination_tolerance((6.0, e_u), (7.0 + omega, e_c), (omega, e_frames))
            assert float((got - want).abs().max()) <= tolerance, (float((got - want).abs().max()), tolerance)

    e_t0 = direct([[positive[0][0], {}]])
    for omega in (0.0, -1.5):
        guider = MultiConditionGuider(style_model)
        guider.set_conds(positive, negative)
        guider.set_scales(15.0, 7.5, omega)
        got = one_call(comfy, guider, x, sigma)
        want = e_c + 7.5 * (e_c - e_t0) + 15.0 * (e_t0 - e_u) + omega * (e_c - e_frames)
        tolerance = combination_tolerance((8.5 + omega, e_c), (7.5 + 15.0, e_t0), (15.0, e_u), (omega, e_frames))
        assert float((got - want).abs().max()) <= tolerance, (float((got - want).abs().max()), tolerance)


def test_without_condition_strips_style_and_takes_the_negatives_image_tokens(comfy):
    from videocrafter_suite.bridge.guiders import without_condition

    text, grey, image = torch.zeros(1, 77, 8), torch.full((1, 4, 8), 0.5), torch.ones(1, 4, 8)
    from videocrafter_suite.bridge.vocabulary import FPS, IMAGE_CONTEXT, STYLE_CONTEXT, STYLE_WEIGHT

    positive = [[text, {STYLE_CONTEXT: image, STYLE_WEIGHT: 1.0, FPS: 8}]]
    assert without_condition(positive, [[text, {}]]) == [[text, {FPS: 8}]]
    i2v = without_condition([[text, {IMAGE_CONTEXT: image, FPS: 8}]], [[text, {IMAGE_CONTEXT: grey, FPS: 8}]])
    assert i2v[0][1][IMAGE_CONTEXT] is grey and i2v[0][1][FPS] == 8


def test_wrong_base_family_and_bad_files_give_clear_errors(comfy, recorded):
    from videocrafter_suite.bridge.checkpoint import build_model
    from videocrafter_suite.bridge.style import StyleCrafterError, apply_stylecrafter, style_adapter_of
    from videocrafter_suite.models.checkpoints.layout import VARIANTS
    from videocrafter_suite.models.sampling.schedule import VC2_512

    _config, weights, _io = recorded
    t2v = {k: v.float() for k, v in load_file(recorded_dir(recorded) / "t2v_tiny_vc2style.weights.safetensors").items()}
    t2v.update(VC2_512.buffers())
    vc2 = build_model(t2v, VARIANTS["vc2_t2v_512"], VC2_512)
    with pytest.raises(StyleCrafterError, match="this MODEL is a VideoCrafter2 text-to-video 512 model"):
        apply_stylecrafter(vc2, adapter_state(weights))
    with pytest.raises(StyleCrafterError, match="has no StyleCrafter adapter"):
        style_adapter_of(vc2)


def recorded_dir(recorded):
    from tests.pack import REFERENCE_DIR

    return REFERENCE_DIR / "fixtures"
