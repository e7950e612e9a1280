"""Full-size key/shape parity: a UNet built (on meta) from the config detected from a released
checkpoint's keys has exactly that checkpoint's keys and shapes (../shared/reference/manifests)."""
from __future__ import annotations

import json

import pytest

from tests.pack import REFERENCE_DIR
from tests.parity import manifests
from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet
from videocrafter_suite.models.unet.detect import UNET_PREFIX, detect_unet_config

MANIFESTS = REFERENCE_DIR / "manifests"


@pytest.mark.parametrize("name", ["vc1_t2v_1024", "vc1_t2v_512", "vc2_t2v_512", "vc1_i2v_512",
                                  "stylecrafter_video_320_512"])
def test_manifest_keys_and_shapes(name):
    results = manifests.check(MANIFESTS / f"{name}.json")
    assert results and all(r.passed for r in results), "\n".join(r.line() for r in results)
    labels = {r.name for r in results}
    assert "unet keys/shapes (meta build)" in labels
    if name == "vc1_i2v_512":
        assert "image_proj_model keys/shapes (meta build)" in labels


@pytest.mark.parametrize("name,expected", [
    ("vc1_t2v_1024", dict(use_relative_position=True, temporal_conv=False, fps_cond=True, use_image_attention=False)),
    ("vc1_t2v_512", dict(use_relative_position=True, temporal_conv=False, fps_cond=False)),
    ("vc2_t2v_512", dict(use_relative_position=False, temporal_conv=True, fps_cond=True)),
    ("vc1_i2v_512", dict(use_relative_position=False, temporal_conv=True, use_image_attention=True)),
])
def test_detected_switches(name, expected):
    keys = json.loads((MANIFESTS / f"{name}.json").read_text())["keys"]
    config = detect_unet_config(keys)
    assert config.model_channels == 320 and config.channel_mult == (1, 2, 4, 4)
    assert config.attention_resolutions == (1, 2, 4) and config.num_head_channels == 64
    assert config.context_dim == 1024 and config.temporal_length == 16 and config.addition_attention
    for field, value in expected.items():
        assert getattr(config, field) == value, field


def test_missing_and_unexpected_keys_are_reported():
    keys = {k[len(UNET_PREFIX):]: tuple(v) for k, v in
            json.loads((MANIFESTS / "vc2_t2v_512.json").read_text())["keys"].items() if k.startswith(UNET_PREFIX)}
    built = {k: tuple(v.shape) for k, v in
             VideoCrafterUNet(UNet3DConfig(temporal_conv=False, use_relative_position=False, fps_cond=True,
                                           addition_attention=True), device="meta").state_dict().items()}
    problems = manifests.compare_keys(keys, built)
    assert any(p.startswith("missing ") and "temopral_conv" in p for p in problems)
