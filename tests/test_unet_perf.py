"""The UNet's performance rewrites compute the same function (issue 10, docs/performance.md).

* temporal (3,1,1) Conv3d as a (3,1) Conv2d (``models/unet/frame_conv.py``), with ComfyUI's weight handling
  kept in charge when a layer has weights to cast or patch;
* chunks under inference — feed-forward by tokens, attention by sequences, spatial transformers by frames,
  temporal transformers by pixel sequences — and one piece under autograd (training stays correct);
* the time/fps embedding without a data-dependent branch (no ``torch.compile`` graph break);
* text (and I2V image, StyleCrafter style) K/V projected once per video when every frame has the same tokens.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from videocrafter_suite.models.unet import attention
from videocrafter_suite.models.unet.frame_conv import FrameConvStage, frame_conv
from videocrafter_suite.models.unet.resblocks import TemporalConvBlock
from videocrafter_suite.models.unet.spatial_temporal_conv import SpatialAwareTemporalConvBlock
from tests.test_unet_unit import T, assert_same_function, inputs, make


def _conv3d(c_in, c_out, padding_mode="zeros", seed=0):
    torch.manual_seed(seed)
    return nn.Conv3d(c_in, c_out, (3, 1, 1), padding=(1, 0, 0), padding_mode=padding_mode).eval()


@pytest.mark.parametrize("padding_mode", ["zeros", "replicate"])
@torch.no_grad()
def test_frame_conv_equals_conv3d_without_calling_it(padding_mode):
    conv = _conv3d(8, 6, padding_mode)
    calls = []
    conv.register_forward_hook(lambda *a: calls.append(1))
    # A [b, c, t, h, w] view of (b t) c h w memory, as the UNet hands it over.
    x = torch.randn(2, 5, 8, 3, 4).transpose(1, 2)
    expected = nn.Conv3d.forward(conv, x)
    assert_same_function(frame_conv(conv, x), expected)
    assert not calls, "the fast path must not run the Conv3d module"


@torch.no_grad()
def test_frame_conv_leaves_comfy_weight_handling_in_charge():
    """A layer with weights to cast (manual_cast) or patch (LoRA weight_function) runs its own forward."""
    for attribute, value in (("comfy_cast_weights", True), ("weight_function", [lambda w: w])):
        conv = _conv3d(4, 4)
        setattr(conv, attribute, value)
        calls = []
        conv.register_forward_hook(lambda *a: calls.append(1))
        frame_conv(conv, torch.randn(1, 4, 3, 2, 2))
        assert calls == [1], attribute
    spatial = nn.Conv3d(4, 4, (1, 3, 3), padding=(0, 1, 1))  # not a frame kernel
    x = torch.randn(1, 4, 3, 5, 5)
    torch.testing.assert_close(frame_conv(spatial, x), spatial(x), rtol=0, atol=0)


@pytest.mark.parametrize("block_cls", [TemporalConvBlock, SpatialAwareTemporalConvBlock])
@torch.no_grad()
def test_temporal_conv_blocks_equal_plain_sequential(block_cls):
    torch.manual_seed(0)
    block = block_cls(32).eval()
    stages = [m for m in block.modules() if isinstance(m, FrameConvStage)]
    assert len(stages) == 4
    x = torch.randn(2, 5, 32, 4, 3).transpose(1, 2)  # b c t h w view of (b t) memory
    actual = block(x)
    for stage in stages:  # the reference: every stage as the plain Sequential of the original
        stage.forward = nn.Sequential.forward.__get__(stage)
    assert_same_function(actual, block(x))
    assert actual.transpose(1, 2).is_contiguous(), "the result keeps the (b t) layout of the input"


def test_feed_forward_chunks_tokens_under_inference_only(monkeypatch):
    torch.manual_seed(0)
    ff = attention.FeedForward(16).eval()
    x = torch.randn(3, 37, 16)
    reference = ff(x).detach()  # autograd on: one piece
    monkeypatch.setattr(attention, "FF_CHUNK_ELEMENTS", 10 * 2 * 64)  # 10 rows per chunk: 12 chunks, last short
    calls = []
    ff.net[0].register_forward_hook(lambda m, i, o: calls.append(i[0].shape[:-1].numel()))
    with torch.inference_mode():
        chunked = ff(x)
    assert calls == [10] * 11 + [1]
    assert_same_function(chunked, reference)
    calls.clear()
    x.requires_grad_(True)
    y = ff(x)
    y.square().sum().backward()  # training path: in one piece, in-place-free, differentiable
    assert calls == [111] and x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("kind", ["self", "cross", "relative_causal", "image"])
def test_attention_chunks_sequences_under_inference_only(monkeypatch, kind):
    torch.manual_seed(0)
    relative = kind == "relative_causal"
    layer = attention.CrossAttention(16, None if kind in ("self", "relative_causal") else 12, heads=2, dim_head=8,
                                     relative_position=relative, temporal_length=4 if relative else None,
                                     img_cross_attention=kind == "image").eval()
    x = torch.randn(7, 5, 16)
    kwargs = {}
    if kind in ("cross", "image"):
        kwargs["context"] = torch.randn(7, 6, 12)
    if kind == "image":
        kwargs["image_context"] = torch.randn(7, 3, 12)
    if relative:
        kwargs["mask"] = torch.ones(5, 5, dtype=torch.bool).tril()
    reference = layer(x, **kwargs).detach()  # autograd on: one piece
    monkeypatch.setattr(attention, "ATTENTION_CHUNK_ELEMENTS", 3 * 6 * 16)  # 3 sequences per chunk: 3, 3, 1
    calls = []
    layer.to_q.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    with torch.inference_mode():
        chunked = layer(x, **kwargs)
    assert calls == [3, 3, 1]
    assert_same_function(chunked, reference)


def _style_and_image_layer():
    """A spatial transformer with I2V image cross-attention and a StyleCrafter style processor (12-wide tokens)."""
    from videocrafter_suite.models.style.adapter import StyleKV

    torch.manual_seed(0)
    layer = attention.SpatialTransformer(32, 2, 16, context_dim=12, use_linear=True, img_cross_attention=True).eval()
    layer.transformer_blocks[0].attn2.processor = StyleKV(12, 32, 1)
    with torch.no_grad():
        for p in layer.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return layer


def test_spatial_transformer_chunks_frames_with_style_and_image_tokens(monkeypatch):
    layer = _style_and_image_layer()
    g = torch.Generator().manual_seed(1)
    frames = 5
    x = torch.randn(frames, 32, 3, 4, generator=g)
    ctx, img = torch.randn(frames, 6, 12, generator=g), torch.randn(frames, 2, 12, generator=g)
    style = attention.StyleInputs(torch.randn(frames, 3, 12, generator=g), torch.rand(frames, 2, generator=g), 0.7)
    reference = layer(x, ctx, image_context=img, image_scale=0.5, style=style).detach()
    monkeypatch.setattr(attention, "LAYER_CHUNK_ELEMENTS", 2 * 12 * 32)  # 2 frames of 12 tokens x 32: 2, 2, 1
    calls = []
    layer.norm.register_forward_hook(lambda m, i, o: calls.append(i[0].shape[0]))
    with torch.inference_mode():
        chunked = layer(x, ctx, image_context=img, image_scale=0.5, style=style)
    assert calls == [2, 2, 1]
    assert_same_function(chunked, reference)


def test_unet_chunked_equals_unchunked_and_trains(monkeypatch):
    model = make()
    d = inputs()
    args = (d["x"], d["t"], d["ctx"], d["fps"])
    with torch.inference_mode():
        whole = model(*args, image_context=d["img"])
        monkeypatch.setattr(attention, "FF_CHUNK_ELEMENTS", 512)
        monkeypatch.setattr(attention, "ATTENTION_CHUNK_ELEMENTS", 512)
        monkeypatch.setattr(attention, "LAYER_CHUNK_ELEMENTS", 2048)  # frames / pixel sequences in chunks
        chunked = model(*args, image_context=d["img"])
    assert_same_function(chunked, whole)
    model.train()  # autograd through every rewritten path (temporal convs, layouts, feed-forward)
    loss = model(*args, image_context=d["img"]).square().mean()
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.input_blocks[1][0].temopral_conv.conv1[-1].weight.grad.abs().sum() > 0


@torch.no_grad()
def test_per_frame_timesteps_pick_the_right_path_without_a_branch():
    model = make()
    b, t = 2, 3
    uniform = torch.tensor([999.0] * t + [421.0] * t)
    per_video = model._embed(torch.tensor([999.0, 421.0]), 28, b, t, torch.float32, "cpu")
    torch.testing.assert_close(model._embed(uniform, 28, b, t, torch.float32, "cpu"), per_video, rtol=0, atol=0)
    mixed = torch.tensor([999.0, 998.0, 997.0, 421.0, 421.0, 421.0])
    per_frame = model._embed(mixed, 28, b, t, torch.float32, "cpu")
    # Row by row the same as embedding each frame's timestep on its own (FIFO-Diffusion's diagonal windows).
    for row, value in enumerate(mixed.tolist()):
        one = model._embed(torch.tensor([value]), torch.tensor([28]), 1, 1, torch.float32, "cpu")
        assert_same_function(per_frame[row:row + 1], one)
    assert not torch.equal(per_frame[0], per_frame[1])


def test_embedding_has_no_graph_break():
    """The "equal per-frame timesteps" choice is a tensor select, so dynamo traces it in one graph."""
    import torch._dynamo

    model = make()
    torch._dynamo.reset()
    with torch.inference_mode():
        report = torch._dynamo.explain(model._embed)(torch.full((6,), 421.0), 28, 2, 3, torch.float32, "cpu")
    assert report.graph_break_count == 0, [r.reason for r in report.break_reasons]
    assert report.graph_count == 1
    torch._dynamo.reset()



def _no_sharing(rows, videos):
    return rows


# input_blocks[1]'s transformer: 8x8 tokens x 32 wide = 2048 elements per frame; 2 videos of T = 3 frames.
@pytest.mark.parametrize("layer_chunk, shared_rows, per_frame_rows", [
    (None, [2], [6]),  # unchunked: K/V of 2 videos instead of 6 frames
    (3 * 2048, [1, 1], [3, 3]),  # chunks of whole videos keep K/V once per video
    (2 * 2048, [2, 2, 2], [2, 2, 2]),  # one video exceeds a chunk: per-frame rows, chunks of frames as before
])
@torch.no_grad()
def test_text_keys_and_values_once_per_video(monkeypatch, layer_chunk, shared_rows, per_frame_rows):
    from videocrafter_suite.models.unet import unet3d

    assert T == 3
    model = make()
    d = inputs()
    args = (d["x"], d["t"], d["ctx"], d["fps"])
    if layer_chunk:
        monkeypatch.setattr(attention, "LAYER_CHUNK_ELEMENTS", layer_chunk)
    rows = []
    model.input_blocks[1][1].transformer_blocks[0].attn2.to_k.register_forward_hook(
        lambda m, i, o: rows.append(i[0].shape[0]))
    shared = model(*args, image_context=d["img"])
    assert rows == shared_rows
    rows.clear()
    monkeypatch.setattr(unet3d, "share_rows_per_video", _no_sharing)
    per_frame = model(*args, image_context=d["img"])
    assert rows == per_frame_rows
    assert_same_function(shared, per_frame)


@torch.no_grad()
def test_frames_with_different_text_keep_their_own_keys():
    """Prompt travel / per-window conditions: per-frame rows that differ are never merged."""
    model = make()
    d = inputs()
    per_frame_ctx = d["ctx"].repeat_interleave(T, 0).clone()
    per_frame_ctx[1] += 0.5  # frame 1 of video 0 reads other text
    rows = []
    model.input_blocks[1][1].transformer_blocks[0].attn2.to_k.register_forward_hook(
        lambda m, i, o: rows.append(i[0].shape[0]))
    out = model(d["x"], d["t"], per_frame_ctx, d["fps"], image_context=d["img"])
    assert set(rows) == {d["x"].shape[0] * T}
    same = model(d["x"], d["t"], d["ctx"], d["fps"], image_context=d["img"])
    assert not torch.allclose(out, same)


def test_shared_text_trains_like_per_frame_text(monkeypatch):
    from videocrafter_suite.models.unet import unet3d

    d = inputs()
    grads = []
    for share in (True, False):
        if not share:
            monkeypatch.setattr(unet3d, "share_rows_per_video", _no_sharing)
        model = make().train()
        ctx = d["ctx"].clone().requires_grad_(True)
        model(d["x"], d["t"], ctx, d["fps"], image_context=d["img"]).square().mean().backward()
        grads.append((ctx.grad, model.input_blocks[1][1].transformer_blocks[0].attn2.to_k.weight.grad))
    for shared_grad, per_frame_grad in zip(*grads):
        assert_same_function(shared_grad, per_frame_grad)


@pytest.mark.parametrize("layer_chunk", [None, 3 * 12 * 32, 2 * 12 * 32])  # unchunked; whole videos; frames
def test_shared_rows_with_style_and_image_tokens_equal_per_frame_rows(monkeypatch, layer_chunk):
    """StyleCrafter's style tokens and scales and I2V's image tokens shared per video like the text."""
    layer = _style_and_image_layer()
    g = torch.Generator().manual_seed(1)
    videos, frames = 2, 3
    x = torch.randn(videos * frames, 32, 3, 4, generator=g)
    ctx, img = torch.randn(videos, 6, 12, generator=g), torch.randn(videos, 2, 12, generator=g)
    style_ctx, scales = torch.randn(videos, 3, 12, generator=g), torch.rand(videos, 2, generator=g)
    per_frame = [r.repeat_interleave(frames, 0) for r in (ctx, img, style_ctx, scales)]
    shared = attention.share_rows_per_video(tuple(per_frame), videos)
    assert [r.shape[0] for r in shared] == [videos] * 4
    if layer_chunk:
        monkeypatch.setattr(attention, "LAYER_CHUNK_ELEMENTS", layer_chunk)
    with torch.inference_mode():
        expected = layer(x, per_frame[0], image_context=per_frame[1], image_scale=0.5,
                         style=attention.StyleInputs(per_frame[2], per_frame[3], 0.7))
        got = layer(x, shared[0], image_context=shared[1], image_scale=0.5,
                    style=attention.StyleInputs(shared[2], shared[3], 0.7))
    assert_same_function(got, expected)
    different = list(per_frame)
    different[3] = different[3].clone()
    different[3][4] += 1.0  # one frame with other style scales: nothing is shared
    assert all(a is b for a, b in zip(attention.share_rows_per_video(tuple(different), videos), different))
