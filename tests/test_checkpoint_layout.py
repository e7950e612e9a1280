"""Checkpoint layout: variant detection from keys, companion layouts equal the full-size manifests."""
import json

import pytest
import torch

import tests.pack
from videocrafter_suite.models.checkpoints.layout import (SD_VAE_DDCONFIG, CheckpointLayoutError, detect_variant,
                                                         kl_vae_ddconfig, openclip_text_config, unwrap_state_dict)
from videocrafter_suite.models.checkpoints.companions import kl_vae_layout, openclip_text_layout

MANIFESTS = tests.pack.REFERENCE_DIR / "manifests"
T2V_AND_I2V = {"vc2_t2v_512": "vc2_t2v_512", "vc1_t2v_1024": "vc1_t2v_1024", "vc1_t2v_512": "vc1_t2v_512",
               "vc1_i2v_512": "vc1_i2v_512"}


def manifest_keys(name):
    return {k: tuple(v) for k, v in json.loads((MANIFESTS / f"{name}.json").read_text())["keys"].items()}


@pytest.mark.parametrize("manifest,expected", sorted(T2V_AND_I2V.items()))
def test_variant_detected_from_keys(manifest, expected):
    keys = manifest_keys(manifest)
    variant = detect_variant(keys)
    assert variant.name == expected
    attrs = json.loads((MANIFESTS / f"{manifest}.json").read_text())["model_attrs"]
    assert variant.use_scale == bool(attrs.get("use_scale", False))
    if variant.use_scale:
        assert variant.scale_b == pytest.approx(attrs["scale_b"])


@pytest.mark.parametrize("manifest", sorted(T2V_AND_I2V))
def test_companion_layouts_match_manifest_exactly(manifest):
    keys = manifest_keys(manifest)
    vae = {k: v for k, v in keys.items() if k.startswith("first_stage_model.")}
    text = {k: v for k, v in keys.items() if k.startswith("cond_stage_model.")}
    ddconfig, embed_dim = kl_vae_ddconfig(vae, "first_stage_model.")
    assert ddconfig == SD_VAE_DDCONFIG and embed_dim == 4
    assert kl_vae_layout(ddconfig, embed_dim) == vae
    config = openclip_text_config(keys)
    assert (config["hidden_size"], config["num_hidden_layers"], config["num_attention_heads"]) == (1024, 24, 16)
    assert openclip_text_layout(1024, 24) == text


def test_image_model_is_rejected_with_a_clear_message():
    sd15_like = {"model.diffusion_model.input_blocks.0.0.weight": (320, 4, 3, 3),
                 "model.diffusion_model.input_blocks.1.1.proj_in.weight": (320, 320, 1, 1),
                 "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3)}
    with pytest.raises(CheckpointLayoutError, match="no temporal layers.*image model"):
        detect_variant(sd15_like)


def test_file_without_unet_is_rejected():
    with pytest.raises(CheckpointLayoutError, match="no 'model.diffusion_model"):
        detect_variant({"encoder.conv_in.weight": (128, 3, 3, 3)})


def test_unwrap_lightning_and_deepspeed_payloads():
    tensor = torch.zeros(1)
    assert unwrap_state_dict({"state_dict": {"a": tensor}, "epoch": 3}) == {"a": tensor}
    assert unwrap_state_dict({"module": {"_forward_module.a": tensor}}) == {"a": tensor}
    assert unwrap_state_dict({"a": tensor}) == {"a": tensor}
