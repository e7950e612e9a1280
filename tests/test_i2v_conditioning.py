"""In-process ComfyUI: the I2V loader's objects, the image conditioning node, and the CONDITIONING path.

* A tiny I2V checkpoint in the released layout loads as MODEL (with the Resampler), CLIP, VAE and a
  core CLIP_VISION; the full-size manifest's key groups are all accounted for.
* The node's tokens = Resampler(CLIP_VISION tokens of the original preprocessing); the negative gets
  the grey image's tokens (not zeros); fps 8 and the image strength ride on both branches.
* The ``i2v_tiny`` golden fixture through the bridged model, image tokens in their own key, equals
  the original's concatenated-context call (≤ 1e-5).
* Bad inputs give one clear error each.
"""
import json

import pytest
import torch
from safetensors.torch import load_file

from tests.pack import REFERENCE_DIR

MANIFEST = REFERENCE_DIR / "manifests" / "vc1_i2v_512.json"


@pytest.fixture(scope="module")
def tiny_i2v(comfy, tiny_checkpoint):
    from videocrafter_suite.bridge.checkpoint import load_videocrafter_checkpoint

    path = tiny_checkpoint("vc1_i2v_512", seed=3)
    return load_file(str(path)), load_videocrafter_checkpoint(str(path))


def test_loader_returns_model_clip_vae_and_core_clip_vision(tiny_i2v):
    import comfy.clip_vision

    from videocrafter_suite.bridge.model import VideoCrafterI2VModel
    from videocrafter_suite.models.image.resampler import Resampler

    state, loaded = tiny_i2v
    assert loaded.variant.name == "vc1_i2v_512" and loaded.variant.default_fps == 8
    assert loaded.clip is not None and loaded.vae is not None
    assert isinstance(loaded.clip_vision, comfy.clip_vision.ClipVisionModel)
    assert isinstance(loaded.model.model, VideoCrafterI2VModel)
    resampler = loaded.model.model.image_proj_model
    assert isinstance(resampler, Resampler)
    for key, value in resampler.state_dict().items():
        assert torch.equal(value, state["image_proj_model." + key]), key
    core = loaded.clip_vision.get_sd()
    assert torch.equal(core["vision_model.embeddings.class_embedding"], state["embedder.model.visual.class_embedding"])
    assert torch.equal(core["visual_projection.weight"], state["embedder.model.visual.proj"].t())


def test_t2v_checkpoints_have_no_clip_vision(comfy, tiny_checkpoint):
    from videocrafter_suite.bridge.checkpoint import load_videocrafter_checkpoint
    from videocrafter_suite.bridge.model import VideoCrafterI2VModel

    loaded = load_videocrafter_checkpoint(str(tiny_checkpoint("vc2_t2v_512")))
    assert loaded.clip_vision is None and not isinstance(loaded.model.model, VideoCrafterI2VModel)


def test_every_key_group_of_the_full_i2v_manifest_is_consumed():
    """Released I2V key set = UNet ∪ VAE ∪ text ∪ embedder.visual (CLIP_VISION) ∪ 6 ignored text leftovers
    ∪ image_proj_model (Resampler) ∪ schedule buffers; the per-part 0 missing/0 unexpected checks are in
    test_manifests.py (UNet, Resampler) and test_i2v_encoder.py (CLIP vision)."""
    from videocrafter_suite.models.checkpoints.layout import SCHEDULE_BUFFERS

    keys = json.loads(MANIFEST.read_text())["keys"]
    prefixes = ("model.diffusion_model.", "first_stage_model.", "cond_stage_model.model.", "embedder.model.visual.",
                "image_proj_model.")
    rest = sorted(k for k in keys if not k.startswith(prefixes) and k not in SCHEDULE_BUFFERS and k != "scale_arr")
    assert rest == ["embedder.model." + k for k in ("ln_final.bias", "ln_final.weight", "logit_scale",
                                                    "positional_embedding", "text_projection",
                                                    "token_embedding.weight")]


def reference_tokens(loaded, image_signed):
    """The original's get_image_embeds, composed from the pure pieces (no node, no conditioning)."""
    from videocrafter_suite.bridge.clip_vision import clip_vision_tokens
    from videocrafter_suite.models.image.preprocess import openclip_image_preprocess

    tokens = clip_vision_tokens(loaded.clip_vision, openclip_image_preprocess(image_signed))
    with torch.no_grad():
        return loaded.model.model.image_proj_model(tokens)


def test_node_sets_image_tokens_grey_uncond_fps_and_strength(tiny_i2v):
    from videocrafter_suite.models.image.preprocess import comfy_image_to_signed, grey_image
    from videocrafter_suite.nodes.image_to_video import VideoCrafterImageConditioning

    _state, loaded = tiny_i2v
    image = torch.rand(1, 96, 160, 3, generator=torch.Generator().manual_seed(0))
    positive = [[torch.zeros(1, 77, 64), {"pooled_output": None}]]
    negative = [[torch.ones(1, 77, 64), {}]]
    out = VideoCrafterImageConditioning.execute(loaded.model, loaded.clip_vision, image, positive, negative, 8, 0.5)
    pos, neg = out.args
    expected = reference_tokens(loaded, comfy_image_to_signed(image))
    grey = reference_tokens(loaded, grey_image(1))
    assert torch.equal(pos[0][1]["videocrafter_image_context"], expected)
    assert torch.equal(neg[0][1]["videocrafter_image_context"], grey)
    assert grey.abs().mean() > 0.1, "the unconditional image tokens are the grey image's, not zeros"
    for cond in (pos, neg):
        assert cond[0][1]["fps"] == 8 and cond[0][1]["videocrafter_image_scale"] == 0.5
    assert "videocrafter_image_context" not in positive[0][1], "inputs are not mutated"


def test_image_strength_reaches_the_unet(tiny_i2v):
    from videocrafter_suite.bridge.vocabulary import IMAGE_CONTEXT, IMAGE_SCALE as IMAGE_SCALE_KEY

    _state, loaded = tiny_i2v
    base = loaded.model.model
    x = torch.randn(4, 4, 6, 8, generator=torch.Generator().manual_seed(1))
    image = {IMAGE_CONTEXT: torch.zeros(1, 4, base.model_config.unet_config_object.context_dim)}  # I2V needs an image
    conds = base.extra_conds(noise=x, **image, **{IMAGE_SCALE_KEY: 0.25, "fps": 8})
    assert conds["image_scale"].cond == 0.25 and conds["fps"].cond == 8
    assert "image_scale" not in base.extra_conds(noise=x, **image)


def test_i2v_tiny_fixture_through_the_conditioning_keys(comfy):
    """Golden i2v_tiny: text in c_crossattn, image tokens in their own key == original's cat([text, img])."""
    import comfy.model_patcher

    from videocrafter_suite.bridge.model import VideoCrafterI2VConfig
    from videocrafter_suite.bridge.vocabulary import IMAGE_CONTEXT as IMAGE_CONTEXT_KEY
    from videocrafter_suite.models.checkpoints.layout import UNET_PREFIX, VARIANTS, take_prefix
    from videocrafter_suite.models.image.resampler import ResamplerConfig
    from videocrafter_suite.models.sampling.schedule import VideoCrafterSchedule
    from videocrafter_suite.models.unet.detect import detect_unet_config

    fixtures = REFERENCE_DIR / "fixtures"
    config = json.loads((fixtures / "i2v_tiny.config.json").read_text())
    weights = {k: v.float() for k, v in load_file(fixtures / "i2v_tiny.weights.safetensors").items()}
    io = load_file(fixtures / "i2v_tiny.io.safetensors")
    unet_state = take_prefix(weights, UNET_PREFIX)
    model_config = VideoCrafterI2VConfig(detect_unet_config(unet_state, prefix=""), VARIANTS["vc1_i2v_512"],
                                         VideoCrafterSchedule(use_scale=True, scale_b=0.7),
                                         ResamplerConfig(**config["resampler_kwargs"]))
    model_config.set_inference_dtype(torch.float32, None)
    model = model_config.get_model({}, "")
    model.diffusion_model.load_state_dict(unet_state, strict=True)
    model.image_proj_model.load_state_dict(take_prefix(weights, "image_proj_model."), strict=True)
    comfy.model_patcher.ModelPatcher(model, load_device=torch.device("cpu"), offload_device=torch.device("cpu"))
    with torch.no_grad():
        image_emb = model.image_proj_model(io["in/image_tokens"].float())
        assert (image_emb - io["out/image_emb_f32"].float()).abs().max() <= 1e-5
        x, t, fps = io["in/x"].float(), io["in/timesteps"], io["in/fps"]
        for b in range(x.shape[0]):
            frames = x[b].transpose(0, 1)  # [T, C, H, W]: batch-as-frames, one video
            conds = model.extra_conds(noise=frames, fps=int(fps[b]), **{IMAGE_CONTEXT_KEY: image_emb[b:b + 1]})
            kwargs = {k: v.process_cond(batch_size=frames.shape[0], device="cpu").cond for k, v in conds.items()
                      if k not in ("c_crossattn",)}
            y = model.diffusion_model(frames, t[b].repeat(frames.shape[0]), context=io["in/context_text"][b:b + 1]
                                      .float().repeat(frames.shape[0], 1, 1), **kwargs)
            error = (y - io["out/y_f32"][b].float().transpose(0, 1)).abs().max().item()
            assert error <= 1e-5, f"video {b}: {error}"


# ------------------------------------------------------------------------------------------ bad input
def test_t2v_model_is_refused_with_a_clear_error(tiny_i2v, comfy, tiny_checkpoint):
    from videocrafter_suite.bridge.checkpoint import load_videocrafter_checkpoint
    from videocrafter_suite.bridge.image_conditioning import ImageConditioningError, encode_image_context

    t2v = load_videocrafter_checkpoint(str(tiny_checkpoint("vc2_t2v_512")))
    with pytest.raises(ImageConditioningError, match="VideoCrafter2 text-to-video 512 model.*I2V"):
        encode_image_context(t2v.model, tiny_i2v[1].clip_vision, torch.zeros(1, 3, 64, 64))


def test_missing_or_wrong_width_clip_vision_is_refused(tiny_i2v, comfy, tiny_checkpoint):
    from videocrafter_suite.bridge.checkpoint import load_videocrafter_checkpoint
    from videocrafter_suite.bridge.clip_vision import ClipVisionMismatchError
    from videocrafter_suite.bridge.image_conditioning import encode_image_context

    model = tiny_i2v[1].model
    with pytest.raises(ClipVisionMismatchError, match="no CLIP_VISION"):
        encode_image_context(model, None, torch.zeros(1, 3, 64, 64))
    wide = load_videocrafter_checkpoint(str(tiny_checkpoint("vc1_i2v_512", vision_width=192))).clip_vision
    with pytest.raises(ClipVisionMismatchError, match="192-wide tokens.*expects 128.*ViT-H/14"):
        encode_image_context(model, wide, torch.zeros(1, 3, 64, 64))


def test_node_rejects_image_batches(tiny_i2v):
    from videocrafter_suite.nodes.common import InputError
    from videocrafter_suite.nodes.image_to_video import VideoCrafterImageConditioning

    loaded = tiny_i2v[1]
    with pytest.raises(InputError, match="one conditioning image"):
        VideoCrafterImageConditioning.execute(loaded.model, loaded.clip_vision, torch.zeros(2, 8, 8, 3), [], [], 8, 1.0)
