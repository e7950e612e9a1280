"""Pure PyTorch: the MiDaS DPT re-implementation (no ComfyUI) — TF-SAME padding, weight standardisation,
layout detection from shapes (hybrid vs large, widths, heads), strict loads, clear layout errors, and a fast
float32 slice of the ``myv_depth_tiny`` golden fixture (the parity runner checks all of it, f64 included)."""
import json

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from videocrafter_suite.devkit.tiny_dpt import TINY_HEADS, tiny_dpt_config, tiny_dpt_state_dict
from videocrafter_suite.models.depth.dpt import (HYBRID, LARGE, DPTConfig, DPTDepthModel, DPTLayoutError,
                                                 detect_backbone)
from videocrafter_suite.models.depth.dpt_backbone import StdConv2dSame, pad_same, tf_same_padding
from videocrafter_suite.models.depth.dpt_run import depth_to_unit_range, estimate_inverse_depth

MYV = "makeyourvideo"


def test_tf_same_padding_is_asymmetric_for_stride_two():
    # timm get_same_padding: total = (ceil(i/s) - 1)·s + (k - 1) + 1 - i, the odd pixel after.
    assert tf_same_padding(384, 7, 2) == (2, 3)      # stem conv
    assert tf_same_padding(192, 3, 2) == (0, 1)      # stem max-pool
    assert tf_same_padding(96, 3, 2) == (0, 1)       # stage conv2 with stride 2
    assert tf_same_padding(95, 3, 2) == (1, 1)
    assert tf_same_padding(96, 3, 1) == (1, 1)
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    padded = pad_same(x, (3, 3), (2, 2), value=-float("inf"))
    assert padded.shape == (1, 1, 5, 5) and torch.isinf(padded[..., -1, :]).all() and torch.isfinite(padded[..., 0, :4]).all()


def test_std_conv_standardises_each_filter_with_eps_inside_the_sqrt():
    conv = StdConv2dSame(3, 4, 3)
    with torch.no_grad():
        conv.weight.normal_(0.3, 2.0)
    w = conv.weight.reshape(4, -1)
    expected = ((w - w.mean(1, keepdim=True)) / torch.sqrt(w.var(1, unbiased=False, keepdim=True) + 1e-8))
    x = torch.randn(1, 3, 8, 8)
    ref = F.conv2d(x, expected.reshape_as(conv.weight), padding=1)
    assert torch.allclose(conv(x), ref, atol=1e-5)


@pytest.mark.parametrize("backbone", [HYBRID, LARGE])
def test_tiny_factory_has_the_released_key_set_and_detects_back(backbone, reference_dir):
    manifest = json.loads((reference_dir / MYV / "manifests" /
                           ("midas_dpt_hybrid.json" if backbone == HYBRID else "midas_dpt_large.json")).read_text())
    state = tiny_dpt_state_dict(backbone, seed=3)
    assert list(state) == list(manifest["keys"]), "same keys, same order as the released file"
    assert detect_backbone(state) == backbone
    config = DPTConfig.from_state_dict(state, num_heads=TINY_HEADS)
    assert config == tiny_dpt_config(backbone)
    model = DPTDepthModel.from_state_dict(state, num_heads=TINY_HEADS)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
    # Same seed, same tensors; another seed, other tensors.
    again = tiny_dpt_state_dict(backbone, seed=3)
    assert all(torch.equal(again[k], v) for k, v in state.items())
    assert not torch.equal(tiny_dpt_state_dict(backbone, seed=4)["scratch.layer1_rn.weight"], state["scratch.layer1_rn.weight"])


def test_released_presets_build_on_meta_with_the_manifest_parameter_counts(reference_dir):
    for name, config in (("midas_dpt_hybrid.json", DPTConfig.dpt_hybrid()), ("midas_dpt_large.json", DPTConfig.dpt_large())):
        manifest = json.loads((reference_dir / MYV / "manifests" / name).read_text())
        model = DPTDepthModel(config, device="meta")
        shapes = {k: list(v.shape) for k, v in model.state_dict().items()}
        assert shapes == manifest["keys"]
        assert sum(p.numel() for p in model.parameters()) == manifest["parameter_count"]
        assert config.num_heads * 64 == config.embed_dim


def test_layout_errors_name_the_problem():
    state = tiny_dpt_state_dict(HYBRID)
    with pytest.raises(DPTLayoutError, match="not a MiDaS v3 DPT"):
        detect_backbone({"model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)})
    broken = dict(state)
    broken.pop("scratch.refinenet2.out_conv.bias")
    with pytest.raises(DPTLayoutError, match="refinenet2.out_conv.bias"):
        DPTDepthModel.from_state_dict(broken, num_heads=TINY_HEADS)
    with pytest.raises(DPTLayoutError, match="divisible"):
        DPTDepthModel(DPTConfig.from_state_dict(state, num_heads=5))
    model = DPTDepthModel.from_state_dict(state, num_heads=TINY_HEADS)
    with pytest.raises(ValueError, match="multiple of 32"):
        model(torch.zeros(1, 3, 100, 100))


@pytest.fixture(scope="module")
def fixture(reference_dir):
    root = reference_dir / MYV / "fixtures"
    config = json.loads((root / "myv_depth_tiny.config.json").read_text())
    weights = load_file(root / "myv_depth_tiny.weights.safetensors")
    io = load_file(root / "myv_depth_tiny.io.safetensors")
    prefix = "depth_stage_model.model."
    state = {k[len(prefix):]: v.float() for k, v in weights.items()}
    heads = config["reduced_architecture"]["tiny"]["vit_num_heads"]
    return DPTDepthModel.from_state_dict(state, num_heads=heads).eval(), io


def test_golden_dpt_raw_and_save_cond_depth_float32(fixture):
    """DPT output ≤ 1e-5 abs (values up to 0.35; the reference's own f32-vs-f64 gap is 2.1e-6) and the
    full-resolution normalised depth (the original's --save_cond output), mapped from our 0..1 display form."""
    model, io = fixture
    video = io["in/video"]
    b, c, t, h, w = video.shape
    frames = video.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
    with torch.inference_mode():
        raw = estimate_inverse_depth(model, frames)
    assert (raw[:, 0] - io["out/dpt_raw_f32"]).abs().max() <= 1e-5
    unit = depth_to_unit_range(raw, (h, w))
    expected = io["out/depth_fullres_norm_f32"][:, 0]               # [B, T, H, W] in [-1, 1]
    got = (2.0 * unit - 1.0).reshape(b, t, h, w)
    # min-max divides by the frame's range (≥ 0.31 here): 1e-5 × 2/0.31 ≈ 6.5e-5.
    assert (got - expected).abs().max() <= 6.5e-5
    assert unit.amin(dim=(1, 2, 3)).abs().max() == 0 and (unit.amax(dim=(1, 2, 3)) - 1).abs().max() < 1e-6


def test_parity_checker_claims_exactly_the_depth_fixture_and_the_dpt_manifests(reference_dir):
    from tests.parity import dpt_fixtures

    claimed = sorted(p.name for p in (reference_dir / MYV).rglob("*.json")
                     if dpt_fixtures.matches(json.loads(p.read_text())))
    assert claimed == ["midas_dpt_hybrid.json", "midas_dpt_large.json", "myv_depth_tiny.config.json"]
    for other in (reference_dir / "manifests").glob("*.json"):
        assert not dpt_fixtures.matches(json.loads(other.read_text()))
