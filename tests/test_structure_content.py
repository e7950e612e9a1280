"""Gen-1's content input on the depth model: which example-image conditionings compose with Make-Your-Video.

* StyleCrafter's style adapter attaches to Make-Your-Video (its spatial cross-attention layers are VC1-512's):
  experimental (no adapter was trained with it); style tokens and the depth structure act together.
* StyleCrafter's temporal file is refused on it (it would replace Make-Your-Video's own causal temporal layers).
* VideoCrafter1 I2V image conditioning is refused (Make-Your-Video has no image cross-attention to feed).
"""
import pytest
import torch


@pytest.fixture(scope="module")
def myv_model(comfy_path):
    from videocrafter_suite.bridge.checkpoint import build_model, schedule_from_checkpoint
    from videocrafter_suite.devkit.tiny_makeyourvideo import make_tiny_makeyourvideo
    from videocrafter_suite.models.checkpoints.layout import detect_variant

    state = make_tiny_makeyourvideo(seed=4)
    variant = detect_variant(state)
    return build_model(state, variant, schedule_from_checkpoint(state, variant), {"dtype": torch.float32})


def one_call(model, conds_pos, conds_neg, latent):
    """The CFG-guided denoised prediction of one model call at the first sigma (cfg 7.5)."""
    import comfy.samplers

    def sampler_fn(m, x, sigmas, extra_args=None, callback=None, disable=None):
        return m(x, sigmas[0] * x.new_ones([x.shape[0]]), **(extra_args or {}))

    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(conds_pos, conds_neg)
    guider.set_cfg(7.5)
    sigmas = model.get_model_object("model_sampling").sigmas[[500, 0]].flip(0)
    noise = torch.randn(latent.shape, generator=torch.Generator().manual_seed(0))
    return guider.sample(noise, latent, comfy.samplers.KSAMPLER(sampler_fn), sigmas, disable_pbar=True, seed=0)


def test_style_adapter_composes_with_depth_structure(myv_model):
    from videocrafter_suite.bridge import vocabulary as V
    from videocrafter_suite.bridge.style import apply_stylecrafter
    from videocrafter_suite.devkit.tiny_checkpoint import TinySpec
    from videocrafter_suite.devkit.tiny_stylecrafter import make_tiny_adapter_state

    adapter = make_tiny_adapter_state(TinySpec(variant="vc1_t2v_512"))
    styled = apply_stylecrafter(myv_model, adapter)
    frames, text_width = 3, 64
    latent = torch.zeros(frames, 4, 4, 4)
    gen = torch.Generator().manual_seed(1)
    depth = torch.rand(frames, 1, 4, 4, generator=gen) * 2 - 1
    text, empty = torch.randn(1, 77, text_width, generator=gen), torch.randn(1, 77, text_width, generator=gen)
    style = {V.STYLE_CONTEXT: torch.randn(1, 4, text_width, generator=gen), V.STYLE_WEIGHT: 1.0}

    def run(model, positive_extra, depth_map):
        return one_call(model, [[text, {V.STRUCTURE_DEPTH: depth_map, **positive_extra}]],
                        [[empty, {V.STRUCTURE_DEPTH: depth_map}]], latent)

    plain = run(myv_model, {}, depth)
    with_style = run(styled, style, depth)
    other_depth = run(styled, style, -depth)
    assert torch.isfinite(with_style).all()
    assert not torch.allclose(plain, with_style, atol=1e-4), "style tokens must change the prediction"
    assert not torch.allclose(with_style, other_depth, atol=1e-4), "the depth must still matter with style"
    assert torch.equal(run(myv_model, {}, depth), plain), "the base MODEL is untouched by the style patch"


def test_style_temporal_file_and_i2v_image_are_refused_on_the_depth_model(myv_model):
    from videocrafter_suite.bridge.image_conditioning import image_projection
    from videocrafter_suite.bridge.style import StyleCrafterError, apply_stylecrafter
    from videocrafter_suite.devkit.tiny_checkpoint import TinySpec
    from videocrafter_suite.devkit.tiny_stylecrafter import make_tiny_adapter_state, make_tiny_temporal_state

    spec = TinySpec(variant="vc1_t2v_512")
    with pytest.raises(StyleCrafterError, match="temporal_name: .* only the style adapter"):
        apply_stylecrafter(myv_model, make_tiny_adapter_state(spec), make_tiny_temporal_state(spec))
    with pytest.raises(ValueError, match="Make-Your-Video .* no image cross-attention"):
        image_projection(myv_model)
