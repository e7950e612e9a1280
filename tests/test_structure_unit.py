"""Pure-PyTorch pieces of Make-Your-Video: causal window, spatial-aware temporal conv, depth preprocessing,
clip sampling, and detection of the model from its keys (the golden fixtures are checked by the parity runner)."""
import pytest
import torch

from videocrafter_suite.models.depth.structure import (depth_image_to_map, depth_structure, normalise_depth,
                                                       resize_depth, structure_blur)
from videocrafter_suite.models.image.clip_sampling import original_frame_indices, resize_frames, sample_clip
from videocrafter_suite.models.unet.causal_window import sliding_causal_mask
from videocrafter_suite.models.unet.spatial_temporal_conv import SpatialAwareTemporalConvBlock


def test_causal_window_is_triangular_then_slides_16_wide():
    mask = sliding_causal_mask(40)
    assert torch.equal(mask[:16, :16], torch.ones(16, 16, dtype=torch.bool).tril())
    assert mask[19].nonzero().flatten().tolist() == list(range(4, 20))
    assert mask.sum(1).tolist() == [min(i + 1, 16) for i in range(40)]
    # causal_block_size > 1 leaves the rows past 64 // size empty, as the original's loop does
    assert not sliding_causal_mask(40, causal_block_size=2)[32:].any()
    with pytest.raises(ValueError, match="1..64 frames"):
        sliding_causal_mask(65)


def test_window_changes_long_clips_only():
    """The 16-frame window and a full lower-triangular mask agree up to 16 frames and differ beyond."""
    from videocrafter_suite.models.unet.attention import TemporalTransformer

    torch.manual_seed(0)
    common = dict(in_channels=32, n_heads=2, d_head=16, use_linear=True, causal_attention=True,
                  relative_position=True, temporal_length=16)
    window = TemporalTransformer(**common, causal_block_size=1).eval()
    tril = TemporalTransformer(**common).eval()
    tril.load_state_dict(window.state_dict())
    for p in window.proj_out.parameters():  # proj_out is zero-initialised upstream; make the attention visible
        torch.nn.init.normal_(p)
    tril.load_state_dict(window.state_dict())
    with torch.inference_mode():
        short, long = torch.randn(1, 32, 16, 2, 2), torch.randn(1, 32, 20, 2, 2)
        assert torch.allclose(window(short), tril(short), atol=1e-6)
        assert not torch.allclose(window(long), tril(long), atol=1e-3)
        assert torch.allclose(window(long)[:, :, :16], tril(long)[:, :, :16], atol=1e-6)


def test_spatial_aware_temporal_conv_padding_modes():
    block = SpatialAwareTemporalConvBlock(32)
    keys = set(block.state_dict())
    assert {"conv.0.2.weight", "conv.1.3.weight", "conv.2.3.weight", "conv.3.3.weight", "conv_last.3.weight"} <= keys
    assert block.conv[1][3].kernel_size == (1, 3, 3) and block.conv[1][3].padding_mode == "zeros"
    assert all(block.conv[i][-1].padding_mode == "replicate" for i in (0, 2, 3))
    assert block.conv_last[-1].padding_mode == "replicate"
    # replicate in time: a (3,1,1) conv that sums its taps sees the edge frame twice at the clip ends
    conv = block.conv[0][2]
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[range(32), range(32)] = 1.0
    x = torch.arange(4.0).view(1, 1, 4, 1, 1).expand(1, 32, 4, 1, 1)
    assert conv(x)[0, 0, :, 0, 0].tolist() == [0 + 0 + 1, 0 + 1 + 2, 1 + 2 + 3, 2 + 3 + 3]


def test_depth_normalisation_near_is_plus_one_and_affine_invariant():
    depth = torch.rand(3, 1, 40, 56, generator=torch.Generator().manual_seed(0)) + 0.1
    out = depth_structure(depth, (5, 7))
    assert out.shape == (3, 1, 5, 7)
    assert torch.allclose(out.amax(dim=(1, 2, 3)), torch.ones(3), atol=1e-6)
    assert torch.allclose(out.amin(dim=(1, 2, 3)), -torch.ones(3), atol=1e-6)
    # a depth IMAGE normalised to 0..1 per frame (what depth nodes output) gives the same channel
    low, high = depth.amin(dim=(1, 2, 3), keepdim=True), depth.amax(dim=(1, 2, 3), keepdim=True)
    assert torch.allclose(depth_structure((depth - low) / (high - low), (5, 7)), out, atol=1e-5)
    clip_wide = normalise_depth(torch.stack([torch.zeros(1, 2, 2), torch.ones(1, 2, 2)]), frames=2, temporal=True)
    assert clip_wide.flatten().tolist() == pytest.approx([-1.0] * 4 + [1.0] * 4, abs=1e-6)


def test_resize_has_no_antialias_like_the_original():
    stripes = torch.zeros(1, 1, 64, 64)
    stripes[..., ::2] = 1.0
    plain = resize_depth(stripes, (8, 8))
    smooth = torch.nn.functional.interpolate(stripes, size=(8, 8), mode="bicubic", antialias=True)
    assert torch.equal(plain, torch.nn.functional.interpolate(stripes, size=(8, 8), mode="bicubic"))
    assert not torch.allclose(plain, smooth, atol=1e-3)


def test_structure_blur_levels():
    depth = torch.rand(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    assert structure_blur(depth, 0) is depth
    detail = [float((structure_blur(depth, level) - depth.mean()).std()) for level in range(4)]
    assert detail == sorted(detail, reverse=True) and detail[3] < 0.5 * detail[0]
    assert torch.allclose(structure_blur(depth, 10), depth.mean(dim=(2, 3), keepdim=True).expand_as(depth))
    with pytest.raises(ValueError):
        structure_blur(depth, -1)


def test_depth_image_to_map():
    grey = torch.rand(2, 4, 5, 1).expand(2, 4, 5, 3)
    assert torch.equal(depth_image_to_map(grey), grey[..., 0].unsqueeze(1))
    coloured = torch.rand(2, 4, 5, 3)
    assert torch.allclose(depth_image_to_map(coloured), coloured.mean(-1).unsqueeze(1))
    with pytest.raises(ValueError, match="depth IMAGE"):
        depth_image_to_map(torch.rand(4, 5))


def test_clip_sampling_follows_the_original_indices():
    assert original_frame_indices(100, 16, 2) == list(range(0, 32, 2))
    assert original_frame_indices(20, 16, 2) == list(range(16))  # too short for stride 2: length // frames = 1
    assert original_frame_indices(64, 16, -1) == list(range(0, 64, 4))
    with pytest.raises(ValueError, match="fewer than the 16"):
        original_frame_indices(10, 16, 2)
    clip = torch.rand(40, 30, 50, 3)
    out = sample_clip(clip, 8, 3, 32, 16)
    assert out.shape == (8, 16, 32, 3) and 0 <= float(out.min()) and float(out.max()) <= 1
    assert resize_frames(clip[:2], 30, 30, "center crop").shape == (2, 30, 30, 3)


def test_makeyourvideo_detected_from_keys_not_names():
    from videocrafter_suite.devkit.tiny_makeyourvideo import make_tiny_makeyourvideo
    from videocrafter_suite.models.checkpoints.layout import detect_variant
    from videocrafter_suite.models.unet.detect import detect_unet_config

    state = make_tiny_makeyourvideo(seed=3)
    assert detect_variant(state).name == "myv_depth_256" and not detect_variant(state).use_scale
    assert "scale_arr" not in state
    config = detect_unet_config(state)
    assert (config.in_channels, config.tempspatial_aware, config.use_causal_attention, config.causal_block_size,
            config.fps_cond, config.addition_attention) == (5, True, True, 1, False, False)
    broken = {k: (torch.zeros(*v.shape[:2], 3, 1, 1) if k.endswith("temopral_conv.conv.1.3.weight") else v)
              for k, v in state.items()}  # the unreleased non-spatial layout
    with pytest.raises(ValueError, match=r"expected conv.0-3 with a \(1,3,3\)"):
        detect_unet_config(broken)


def test_depth_node_model_grid_then_structure_is_the_original_chain(reference_dir):
    """MiDaS DPT (the depth helper's ``models/depth/dpt*``) → depth IMAGE on the model grid → this structure path
    equals the original ``get_batch_depth`` (``myv_depth_tiny``). Tolerance: twice the reference's own float32
    error on this output (its config records max |f64 − f32|), since both sides round independently."""
    import json

    from safetensors.torch import load_file

    dpt = pytest.importorskip("videocrafter_suite.models.depth.dpt")
    run = pytest.importorskip("videocrafter_suite.models.depth.dpt_run")
    folder = reference_dir / "makeyourvideo" / "fixtures"
    config = json.loads((folder / "myv_depth_tiny.config.json").read_text())
    prefix = "depth_stage_model.model."
    weights = {k[len(prefix):]: v.float() for k, v in load_file(folder / "myv_depth_tiny.weights.safetensors").items()}
    model = dpt.DPTDepthModel(dpt.DPTConfig.from_state_dict(
        weights, num_heads=config["reduced_architecture"]["tiny"]["vit_num_heads"]))
    model.load_state_dict(weights, strict=True)
    io = load_file(folder / "myv_depth_tiny.io.safetensors")
    expected = io["out/depth_latent_norm_f32"][0, 0][:, None]
    with torch.inference_mode():
        inverse = run.estimate_inverse_depth(model.eval(), io["in/video"][0].transpose(0, 1))
    image = run.depth_to_unit_range(inverse).movedim(1, -1).expand(-1, -1, -1, 3)  # the node's "model grid" IMAGE
    ours = depth_structure(depth_image_to_map(image), tuple(expected.shape[-2:]))
    tolerance = 2 * config["stats"]["max_abs_depth_latent_norm_f64_minus_f32"]
    assert float((ours - expected).abs().max()) <= tolerance
