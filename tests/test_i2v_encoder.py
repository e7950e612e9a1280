"""I2V image encoder: core CLIP_VISION built from OpenCLIP ``embedder.model.visual.*`` weights gives the
original's tokens, and the full-size layout maps key for key.

* Parity: a small open_clip ViT with ViT-H-14's structure (pre-LN, class token, exact GELU, MLP 4x,
  patch 14 at 224 px; 128 wide, 3 layers, 2 heads of 64 to stay fast), seeded random weights, is
  stored under ``embedder.model.visual.`` and loaded by the pack into core's ``ClipVisionModel``. Its
  tokens must equal the original ``FrozenOpenCLIPImageEmbedderV2.encode_with_vision_transformer``
  (condition.py:339-376, reproduced below on the open_clip module) on the same real photo.
* Full size on the meta device: open_clip's ViT-H-14 vision tower == the manifest's
  ``embedder.model.visual.*``; its keys converted by core == core's ViT-H CLIP vision model.
"""
import json

import pytest
import torch

from tests.pack import REFERENCE_DIR
from videocrafter_suite.models.checkpoints.clip_vision import (VISUAL_PREFIX, VIT_H_14, openclip_visual_config,
                                                          openclip_visual_layout, split_image_encoder)

open_clip = pytest.importorskip("open_clip", reason="open_clip_torch is the reference (test-only dependency)")
from open_clip.model import CLIPVisionCfg, _build_vision_tower  # noqa: E402

MANIFEST = REFERENCE_DIR / "manifests" / "vc1_i2v_512.json"
TOLERANCE = 1e-5
SMALL = dict(width=128, layers=3, head_width=64, patch_size=14, image_size=224)


def original_tokens(visual, x: torch.Tensor) -> torch.Tensor:
    """``encode_with_vision_transformer`` after ``preprocess`` (condition.py:339-376): NO ln_post, NO proj.

    open_clip 2.22 (upstream's pin) ran the transformer sequence-first, hence the permutes there;
    open_clip 3.x is batch-first. Same math either way.
    """
    x = visual.conv1(x)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    cls = visual.class_embedding.to(x.dtype) + torch.zeros(x.shape[0], 1, x.shape[-1], dtype=x.dtype)
    x = torch.cat([cls, x], dim=1) + visual.positional_embedding.to(x.dtype)
    x = visual.ln_pre(visual.patch_dropout(x))
    if getattr(visual.transformer, "batch_first", False):
        return visual.transformer(x)
    return visual.transformer(x.permute(1, 0, 2)).permute(1, 0, 2)


def seeded_small_vit(seed: int = 0):
    """The open_clip factory's vision tower at a small width; reference-style randomisation (README §1)."""
    torch.manual_seed(seed)
    visual = _build_vision_tower(64, CLIPVisionCfg(**SMALL)).eval()
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for _, parameter in visual.named_parameters():
            noise = torch.randn(parameter.shape, generator=generator)
            parameter.add_(0.02 * noise if parameter.abs().sum() > 0 else 0.1 * noise)
    return visual


def test_core_clip_vision_gives_the_original_tokens(comfy):
    from skimage import data

    from videocrafter_suite.bridge.clip_vision import build_clip_vision, clip_vision_tokens
    from videocrafter_suite.models.image.preprocess import comfy_image_to_signed, openclip_image_preprocess

    visual = seeded_small_vit()
    state = {VISUAL_PREFIX + k: v.clone() for k, v in visual.state_dict().items()}
    state["embedder.model.logit_scale"] = torch.tensor(4.6)  # a text leftover: must be ignored
    clip_vision = build_clip_vision(state)
    assert type(clip_vision).__name__ == "ClipVisionModel"

    image = comfy_image_to_signed(torch.from_numpy(data.astronaut()).float().div(255)[None])
    pixels = openclip_image_preprocess(image)
    with torch.no_grad():
        reference = original_tokens(visual, pixels)
    ours = clip_vision_tokens(clip_vision, pixels)
    assert ours.shape == reference.shape == (1, 257, SMALL["width"])
    error = (ours - reference).abs().max().item()
    print(f"encoder parity (open_clip ViT {SMALL}): max abs {error:.3g}, token std {reference.std():.3g}")
    assert error <= TOLERANCE
    # the same transformer WITH ln_post (what open_clip's own forward / a pooled output uses) is different
    assert (visual.ln_post(reference) - ours).abs().max() > 0.1


def test_shape_config_names_the_small_vit_and_vit_h():
    visual = seeded_small_vit()
    config = openclip_visual_config({VISUAL_PREFIX + k: v for k, v in visual.state_dict().items()})
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (128, 3, 2)
    assert (config["patch_size"], config["image_size"], config["intermediate_size"]) == (14, 224, 512)
    manifest = json.loads(MANIFEST.read_text())["keys"]
    h = openclip_visual_config(manifest)
    assert (h["hidden_size"], h["num_hidden_layers"], h["num_attention_heads"], h["projection_dim"]) == (1280, 32, 16, 1024)


def test_full_vit_h_layout_matches_open_clip_and_the_manifest():
    manifest = {k: tuple(v) for k, v in json.loads(MANIFEST.read_text())["keys"].items()}
    cfg = open_clip.get_model_config("ViT-H-14")
    with torch.device("meta"):
        visual = _build_vision_tower(cfg["embed_dim"], CLIPVisionCfg(**cfg["vision_cfg"]))
    built = {VISUAL_PREFIX + k: tuple(v.shape) for k, v in visual.state_dict().items()}
    expected = {k: v for k, v in manifest.items() if k.startswith(VISUAL_PREFIX)}
    assert built == expected
    assert openclip_visual_layout(**VIT_H_14) == expected
    _visual, ignored = split_image_encoder(manifest)
    assert sorted(k.rsplit("embedder.model.", 1)[1] for k in ignored) == [
        "ln_final.bias", "ln_final.weight", "logit_scale", "positional_embedding", "text_projection",
        "token_embedding.weight"]


def test_full_vit_h_maps_onto_core_clip_vision_key_for_key(comfy):
    """embedder.model.visual.* → core's converter → exactly core's ViT-H CLIP vision keys (0 missing/0 unexpected)."""
    import comfy.clip_model
    import comfy.clip_vision
    import comfy.ops

    from videocrafter_suite.bridge.clip_vision import CORE_VIT_H_CONFIG

    manifest = json.loads(MANIFEST.read_text())["keys"]
    visual = {k[len("embedder.model."):]: torch.empty(v, device="meta") for k, v in manifest.items()
              if k.startswith(VISUAL_PREFIX)}
    config = openclip_visual_config(visual, prefix="visual.")
    core_config = json.loads(open(CORE_VIT_H_CONFIG).read())
    assert all(core_config[k] == v for k, v in config.items()), "the detected config is core's ViT-H config"
    converted = comfy.clip_vision.convert_to_transformers(dict(visual), "visual.")
    with torch.device("meta"):
        model = comfy.clip_model.CLIPVisionModelProjection(core_config, torch.float32, "meta", comfy.ops.manual_cast)
    core = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ours = {k: tuple(v.shape) for k, v in converted.items()}
    assert set(ours) == set(core), (sorted(set(core) - set(ours))[:5], sorted(set(ours) - set(core))[:5])
    assert ours == core
    assert len(core) == 1 + 3 + 2 + 32 * 16 + 2  # projection; embeddings; pre-LN; 32 layers; post-LN


def test_core_loaded_vit_h_is_accepted_and_other_widths_are_not(comfy):
    """What core's 'Load CLIP Vision' builds for an OpenCLIP ViT-H file passes the pack's checks."""
    import comfy.clip_vision

    from videocrafter_suite.bridge.clip_vision import CORE_VIT_H_CONFIG, ClipVisionMismatchError, check_clip_vision

    manifest = json.loads(MANIFEST.read_text())["keys"]
    names = {k[len("embedder.model."):]: torch.empty(v, device="meta") for k, v in manifest.items()
             if k.startswith(VISUAL_PREFIX)}
    converted = comfy.clip_vision.convert_to_transformers(dict(names), "visual.")
    assert "vision_model.encoder.layers.30.layer_norm1.weight" in converted  # core's rule for the ViT-H json
    assert "vision_model.encoder.layers.47.layer_norm1.weight" not in converted
    vit_h = comfy.clip_vision.ClipVisionModel(CORE_VIT_H_CONFIG)  # weights allocated, not initialised
    check_clip_vision(vit_h, 1280)
    with pytest.raises(ClipVisionMismatchError, match="1280-wide tokens.*expects 1024"):
        check_clip_vision(vit_h, 1024)
