"""In-process: the StyleCrafter nodes on tiny checkpoints from the factories — what travels in CONDITIONING,
the style encoder's tokens (ln_post on the class token only, fp16-rounded), multi-reference concatenation,
the original's 512 crop, and the clear errors (no style image, wrong CLIP vision, unpatched MODEL)."""
import pytest
import torch


@pytest.fixture(scope="module")
def loaded(comfy_path):
    from videocrafter_suite.bridge.checkpoint import load_videocrafter_checkpoint  # noqa: F401
    from videocrafter_suite.bridge.checkpoint import build_clip, build_model, schedule_from_checkpoint
    from videocrafter_suite.bridge.clip_vision import build_clip_vision
    from videocrafter_suite.bridge.style import apply_stylecrafter
    from videocrafter_suite.models.checkpoints.layout import detect_variant
    from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict, tiny_spec
    from videocrafter_suite.devkit.tiny_stylecrafter import make_tiny_adapter_state, make_tiny_temporal_state

    spec = tiny_spec("vc1_t2v_512", seed=5)
    state = make_tiny_state_dict(spec)
    variant = detect_variant(state)
    base = build_model(state, variant, schedule_from_checkpoint(state, variant))
    model = apply_stylecrafter(base, make_tiny_adapter_state(spec), make_tiny_temporal_state(spec))
    clip_vision = build_clip_vision(make_tiny_state_dict(tiny_spec("vc1_i2v_512", seed=6)))
    return {"base": base, "model": model, "clip": build_clip(state), "clip_vision": clip_vision, "spec": spec}


def images(n, h=40, w=72, seed=0):
    return torch.rand(n, h, w, 3, generator=torch.Generator().manual_seed(seed))


def test_style_conditioning_node_puts_tokens_scales_weight_and_variant_in_positive(loaded):
    from videocrafter_suite.bridge.vocabulary import STYLE_CONTEXT as STYLE_CONTEXT_KEY, STYLE_SCALED_LOGITS as STYLE_SCALED_KEY, \
        STYLE_SCALES as STYLE_SCALES_KEY, STYLE_WEIGHT as STYLE_WEIGHT_KEY
    from videocrafter_suite.nodes.style import ATTENTION, StyleCrafterStyleConditioning

    text = loaded["clip"].encode_from_tokens_scheduled(loaded["clip"].tokenize("a bear"))
    out = StyleCrafterStyleConditioning.execute(loaded["model"], loaded["clip_vision"], images(1), text, 0.5,
                                                ATTENTION[1]).result[0]
    options = out[0][1]
    assert options[STYLE_CONTEXT_KEY].shape == (1, 4, loaded["spec"].text_width)
    assert options[STYLE_SCALES_KEY].shape == (1, 7, 1) and options[STYLE_SCALES_KEY].abs().max() < 1
    assert options[STYLE_WEIGHT_KEY] == 0.5 and options[STYLE_SCALED_KEY] is False
    assert STYLE_CONTEXT_KEY not in text[0][1], "the input conditioning is not modified"


def test_tokens_are_ln_post_class_token_plus_raw_patch_tokens_in_fp16(loaded):
    from videocrafter_suite.bridge.clip_vision import clip_vision_tokens
    from videocrafter_suite.bridge.style import reference_pixels, style_clip_tokens

    clip_vision = loaded["clip_vision"]
    pixels = reference_pixels([images(2)])
    tokens = style_clip_tokens(clip_vision, pixels)
    raw = clip_vision_tokens(clip_vision, pixels)  # last layer without ln_post (the I2V embedder's tokens)
    post = clip_vision.model.vision_model.post_layernorm
    with torch.no_grad():
        cls = post(raw[:, 0].to(post.weight.dtype)).float()
    assert torch.equal(tokens[:, 1:], raw[:, 1:].half().float())
    assert torch.allclose(tokens[:, 0], cls.half().float(), atol=1e-3)
    assert tokens.dtype == torch.float32 and torch.equal(tokens, tokens.half().float())


def test_multi_reference_concatenates_tokens_along_the_sequence(loaded):
    from videocrafter_suite.bridge import style as S

    adapter = S.style_adapter_of(loaded["model"])
    seen = []
    original = adapter.forward
    adapter.forward = lambda tokens: (seen.append(tokens.shape), original(tokens))[1]
    try:
        S.encode_style_tokens(loaded["model"], loaded["clip_vision"], [images(2), images(1, 90, 50, seed=1)])
    finally:
        del adapter.forward
    grid = loaded["clip_vision"].model.vision_model.embeddings.position_embedding.weight.shape[0]
    assert seen == [torch.Size([1, 3 * grid, 128])]


def test_style_reference_crop_is_resize_512_and_center_crop():
    from videocrafter_suite.models.style.adapter import style_reference_crop

    wide = torch.rand(1, 3, 300, 600)
    out = style_reference_crop(wide)
    assert out.shape == (1, 3, 512, 512) and out.min() >= -1 and out.max() <= 1
    square = torch.rand(1, 3, 512, 512)
    assert torch.equal(style_reference_crop(square), square * 2 - 1)


def test_clear_errors(loaded):
    from videocrafter_suite.bridge.style import StyleCrafterError, encode_style_tokens, style_adapter_of
    from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict, tiny_spec

    with pytest.raises(StyleCrafterError, match="no style image"):
        encode_style_tokens(loaded["model"], loaded["clip_vision"], [images(0), None])
    with pytest.raises(StyleCrafterError, match="gives nothing"):
        encode_style_tokens(loaded["model"], None, [images(1)])
    from videocrafter_suite.bridge.clip_vision import build_clip_vision

    wide = build_clip_vision(make_tiny_state_dict(tiny_spec("vc1_i2v_512", seed=6, vision_width=192)))
    with pytest.raises(StyleCrafterError, match="192-wide tokens"):
        encode_style_tokens(loaded["model"], wide, [images(1)])
    with pytest.raises(StyleCrafterError, match="Load StyleCrafter Adapter"):
        style_adapter_of(loaded["base"])


def test_temporal_and_adapter_files_are_told_apart(loaded):
    from videocrafter_suite.bridge.style import StyleCrafterError, apply_stylecrafter
    from videocrafter_suite.devkit.tiny_stylecrafter import make_tiny_adapter_state, make_tiny_temporal_state

    spec = loaded["spec"]
    with pytest.raises(StyleCrafterError, match="not a StyleCrafter style adapter"):
        apply_stylecrafter(loaded["base"], make_tiny_temporal_state(spec))
    broken = make_tiny_temporal_state(spec)
    broken["init_attn.0"].pop("norm.weight")
    with pytest.raises(StyleCrafterError, match="missing init_attn.0.norm.weight"):
        apply_stylecrafter(loaded["base"], make_tiny_adapter_state(spec), broken)
