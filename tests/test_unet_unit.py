"""Unit tests of the 3D UNet on a tiny random model (pure torch, CPU, no fixtures)."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from videocrafter_suite.models.unet.attention import attention_backend
from videocrafter_suite.models.unet.unet3d import UNet3DConfig, VideoCrafterUNet
from videocrafter_suite.models.unet.detect import detect_unet_config

TINY = UNet3DConfig(model_channels=32, attention_resolutions=(1, 2), num_res_blocks=1, channel_mult=(1, 2),
                    num_head_channels=8, context_dim=16, temporal_conv=True, use_relative_position=True,
                    temporal_length=2, addition_attention=True, fps_cond=True, use_image_attention=True)
B, T, H, W = 2, 3, 8, 8
#: Two float32 evaluations of one function that differ only in batching, layout or kernel choice: GEMM and conv
#: reassociation gives ~1e-7 relative per layer; the fixtures show float32 UNet outputs 1e-5 relative from
#: float64 (reference README §4.6), which bounds any two float32 paths through this depth. Scaled by max|y|.
FLOAT32_REL = 1e-5


def assert_same_function(actual, expected):
    torch.testing.assert_close(actual, expected, rtol=0, atol=FLOAT32_REL * max(1.0, float(expected.abs().max())))


def make(config=TINY, seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    model = VideoCrafterUNet(config, dtype=dtype).eval()
    with torch.no_grad():  # non-degenerate weights everywhere (GroupNorm affine too)
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model


def inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    return dict(x=torch.randn(B, 4, T, H, W, generator=g), t=torch.tensor([999, 421]),
                ctx=torch.randn(B, 77, 16, generator=g), img=torch.randn(B, 4, 16, generator=g),
                fps=torch.tensor([8, 28]))


def to_frames(x5):
    return x5.transpose(1, 2).flatten(0, 1)


@pytest.fixture(scope="module")
def model():
    return make()


@torch.no_grad()
def test_batch_as_frames_equals_5d(model):
    i = inputs()
    y5 = model(i["x"], i["t"], i["ctx"], i["fps"], image_context=i["img"])
    y4 = model(to_frames(i["x"]), i["t"], i["ctx"], i["fps"], num_frames=T, image_context=i["img"])
    assert y5.shape == (B, 4, T, H, W) and y4.shape == (B * T, 4, H, W)
    assert_same_function(to_frames(y5), y4)


@torch.no_grad()
def test_per_video_equals_per_frame_inputs(model):
    i = inputs()
    per_video = model(to_frames(i["x"]), i["t"], i["ctx"], i["fps"], num_frames=T, image_context=i["img"])
    rep = lambda v: v.repeat_interleave(T, 0)  # noqa: E731
    per_frame = model(to_frames(i["x"]), rep(i["t"]), rep(i["ctx"]), rep(i["fps"]), num_frames=T,
                      image_context=rep(i["img"]))
    assert_same_function(per_video, per_frame)


@torch.no_grad()
def test_fps_int_and_default(model):
    i = inputs()
    by_tensor = model(i["x"], i["t"], i["ctx"], torch.tensor([16, 16]))
    torch.testing.assert_close(model(i["x"], i["t"], i["ctx"], 16), by_tensor, rtol=0, atol=0)
    torch.testing.assert_close(model(i["x"], i["t"], i["ctx"]), by_tensor, rtol=0, atol=0)
    assert not torch.allclose(model(i["x"], i["t"], i["ctx"], 8), by_tensor)


@torch.no_grad()
def test_image_context_forms(model):
    i = inputs()
    split = model(i["x"], i["t"], i["ctx"], i["fps"], image_context=i["img"])
    concatenated = model(i["x"], i["t"], torch.cat([i["ctx"], i["img"]], 1), i["fps"])
    torch.testing.assert_close(split, concatenated, rtol=0, atol=0)
    text_only = model(i["x"], i["t"], i["ctx"], i["fps"])
    assert_same_function(model(i["x"], i["t"], i["ctx"], i["fps"], image_context=i["img"], image_scale=0.0),
                               text_only)
    assert not torch.allclose(split, text_only, atol=1e-3)


@torch.no_grad()
def test_temporal_disabled_makes_frames_independent(model):
    i = inputs()
    x4 = to_frames(i["x"])
    on = model(x4, i["t"], i["ctx"], i["fps"], num_frames=T)
    off = model(x4, i["t"], i["ctx"], i["fps"], num_frames=T, temporal_enabled=False)
    assert (on - off).abs().max() > 1e-2
    perm = torch.tensor([2, 0, 1])
    x_perm = i["x"][:, :, perm]
    off_perm = model(to_frames(x_perm), i["t"], i["ctx"], i["fps"], num_frames=T, temporal_enabled=False)
    assert_same_function(off_perm, to_frames(off.view(B, T, 4, H, W).transpose(1, 2)[:, :, perm]))
    on_perm = model(to_frames(x_perm), i["t"], i["ctx"], i["fps"], num_frames=T)
    assert not torch.allclose(on_perm, to_frames(on.view(B, T, 4, H, W).transpose(1, 2)[:, :, perm]), atol=1e-4)
    # image mode: no num_frames needed when temporal layers are off
    assert_same_function(model(x4, i["t"].repeat_interleave(T), i["ctx"].repeat_interleave(T, 0),
                                     i["fps"].repeat_interleave(T), temporal_enabled=False), off)


@torch.no_grad()
def test_naive_attention_backend_matches_sdpa(model):
    i = inputs()
    sdpa = model(i["x"], i["t"], i["ctx"], i["fps"], image_context=i["img"])
    with attention_backend("naive"):
        naive = model(i["x"], i["t"], i["ctx"], i["fps"], image_context=i["img"])
    assert_same_function(sdpa, naive)


@torch.no_grad()
def test_causal_temporal_attention_never_looks_ahead():
    """With ``use_causal_attention`` each temporal block sees a mask that lets frame i attend to frames ≤ i only:
    the block's output at frame i must not change when a later frame changes, and must change for an earlier one.

    (Checked on the transformer block the TemporalTransformer calls, with the mask it passes: the GroupNorm in
    front of it spans all frames, so the whole layer is not causal by construction, in the original too.)"""
    config = dataclasses.replace(TINY, use_causal_attention=True, use_linear=False, use_relative_position=False)
    temporal = make(config).input_blocks[1][2]
    captured = {}
    block = temporal.transformer_blocks[0]
    handle = block.register_forward_pre_hook(lambda module, args, kwargs: captured.update(kwargs), with_kwargs=True)
    temporal(torch.randn(1, temporal.in_channels, T, 4, 4))
    handle.remove()
    mask = captured["mask"]
    assert mask is not None and mask.shape[-2:] == (T, T)
    assert torch.equal(mask.reshape(T, T), torch.ones(T, T, dtype=torch.bool).tril()), mask
    tokens = torch.randn(5, T, block.norm1.normalized_shape[0])
    base = block(tokens, mask=mask)
    later, earlier = tokens.clone(), tokens.clone()
    later[:, -1] += torch.randn_like(later[:, -1])  # not a constant shift: LayerNorm would remove it
    earlier[:, 0] += torch.randn_like(earlier[:, 0])
    assert torch.equal(block(later, mask=mask)[:, :-1], base[:, :-1]), "a frame attended to a later frame"
    assert not torch.allclose(block(earlier, mask=mask)[:, 1:], base[:, 1:]), "later frames ignore earlier ones"


@torch.no_grad()
def test_conv_projections_equal_linear_projections():
    """``use_linear=False`` (1x1 Conv2d/Conv1d projections, VC1 configs) computes the same function as Linear
    projections with the same weights: the layout plumbing around the convolutions is right."""
    linear = make(dataclasses.replace(TINY, use_linear=True))
    conv_config = dataclasses.replace(TINY, use_linear=False)
    conv = VideoCrafterUNet(conv_config).eval()
    shapes = {k: v.shape for k, v in conv.state_dict().items()}
    state = {k: v.reshape(shapes[k]) for k, v in linear.state_dict().items()}  # 1x1 kernels: same numbers
    conv.load_state_dict(state)
    i = inputs()
    assert_same_function(conv(i["x"], i["t"], i["ctx"], i["fps"], image_context=i["img"]),
                               linear(i["x"], i["t"], i["ctx"], i["fps"], image_context=i["img"]))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@torch.no_grad()
def test_low_precision_forward(dtype):
    reference_model = make()
    model = VideoCrafterUNet(TINY, dtype=dtype).eval()
    assert {p.dtype for p in model.parameters()} == {dtype}
    model.load_state_dict(reference_model.state_dict())
    i = inputs()
    try:
        y = model(i["x"].to(dtype), i["t"], i["ctx"].to(dtype), i["fps"], image_context=i["img"].to(dtype))
    except RuntimeError as exc:  # some CPU builds lack fp16 kernels (e.g. conv); bf16 must work
        if dtype is torch.float16 and "not implemented for 'Half'" in str(exc):
            pytest.skip(f"CPU float16 kernel missing: {exc}")
        raise
    assert y.dtype == dtype and torch.isfinite(y.float()).all()
    reference = reference_model(i["x"], i["t"], i["ctx"], i["fps"], image_context=i["img"])
    assert (y.float() - reference).abs().max() < 0.1 * reference.abs().max()


def test_detect_round_trip_on_meta():
    model = VideoCrafterUNet(TINY, device="meta")
    detected = detect_unet_config({k: v.shape for k, v in model.state_dict().items()}, prefix="")
    assert detected == TINY


def _sd15_like_keys():
    image_unet = dataclasses.replace(TINY, temporal_conv=False, temporal_attention=False, addition_attention=False,
                                     fps_cond=False, use_image_attention=False, use_relative_position=False)
    state = VideoCrafterUNet(image_unet, device="meta").state_dict()
    return {"model.diffusion_model." + k: v.shape for k, v in state.items()}


def test_detect_rejects_image_unet_with_clear_message():
    with pytest.raises(ValueError) as info:
        detect_unet_config(_sd15_like_keys())
    message = str(info.value)
    assert "no temporal layers" in message and "SD1.5" in message and "temopral_conv" in message


def test_detect_rejects_non_unet():
    with pytest.raises(ValueError, match="not a UNet checkpoint"):
        detect_unet_config({"first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3)})


def test_config_from_upstream_kwargs_rejects_unsupported():
    with pytest.raises(ValueError, match="use_scale_shift_norm"):
        UNet3DConfig.from_upstream_kwargs({"use_scale_shift_norm": True})
    assert UNet3DConfig.from_upstream_kwargs({"use_checkpoint": True, "use_fp16": False}) == UNet3DConfig()
