"""Spatial tiles (seamless blend) and long video by prediction (VideoLDM §3.2): pure math with a per-pixel
stand-in denoiser, then in ComfyUI with the tiny VC2 model."""
import pytest
import torch

from tests.videoldm_support import SeededNoise, guider_for, sampler_and_sigmas, tiny_vc2  # noqa: F401
from videocrafter_suite.models.videoldm.prediction import context_mask_values, join_segment, segment_input, \
    total_frames
from videocrafter_suite.models.videoldm.tiles import axis_weights, blend_weights, tile_grid, tiled_apply


@pytest.mark.parametrize("size,tile,overlap", [((40, 64), (16, 24), 4), ((37, 53), (20, 20), 6), ((8, 8), (8, 8), 2),
                                               ((30, 90), (30, 32), 0)])
def test_blend_weights_sum_to_one_and_cover_every_pixel(size, tile, overlap):
    height, width = size
    tiles = tile_grid(height, width, *tile, overlap)
    weights = blend_weights(height, width, tiles, overlap)
    total = torch.zeros(height, width, dtype=torch.float64)
    covered = torch.zeros(height, width, dtype=torch.int64)
    for (y0, y1, x0, x1), w in zip(tiles, weights):
        assert (w > 0).all()
        total[y0:y1, x0:x1] += w
        covered[y0:y1, x0:x1] += 1
    assert (covered >= 1).all()
    assert torch.allclose(total, torch.ones_like(total), atol=1e-12)
    if len(tiles) > 1 and overlap > 0:
        assert (covered > 1).any()


def test_per_pixel_denoiser_tiled_equals_untiled():
    """A stand-in denoiser acting per pixel (and per frame, mixing channels and frames) gives the same clip
    tiled and untiled: Σ w_i·v with Σ w_i = 1 in float64, rounded once to float32 — equal to 1e-7 relative."""
    generator = torch.Generator().manual_seed(0)
    clip = torch.randn(6, 4, 37, 53, generator=generator)
    noise = torch.randn(clip.shape, generator=generator)
    mix = torch.randn(4, 4, generator=generator)

    def denoiser(x, n):
        x = torch.einsum("tchw,dc->tdhw", x + 0.3 * n, mix)
        return torch.tanh(x) + x.mean(dim=0, keepdim=True)  # across frames, per pixel

    whole = denoiser(clip, noise)
    tiled = tiled_apply(lambda t: denoiser(clip[..., t[0]:t[1], t[2]:t[3]], noise[..., t[0]:t[1], t[2]:t[3]]),
                        clip, 16, 24, 6)
    assert torch.allclose(tiled, whole, rtol=2e-7, atol=1e-7)
    assert (tiled - whole).abs().max() <= 4 * torch.finfo(torch.float32).eps * whole.abs().max()


def test_time_chunk_weights():
    spans = [(0, 8), (5, 13), (10, 18)]
    total = sum(torch.zeros(18, dtype=torch.float64).index_add(0, torch.arange(a, b), w)
                for (a, b), w in zip(spans, axis_weights(18, spans, 3)))
    assert torch.allclose(total, torch.ones(18, dtype=torch.float64))


def test_prediction_layout():
    assert total_frames(16, 4, 16, 4) == 64
    assert total_frames(1, 2, 16, 1) == 31  # an encoded image as the first frame
    assert total_frames(16, 3, 16, 0) == 64
    assert context_mask_values(3, "hold") == [0.0, 0.0, 0.0]
    assert context_mask_values(3, "linear") == [0.25, 0.5, 0.75]
    cosine = context_mask_values(3, "cosine")
    assert cosine[0] < 0.25 and cosine[1] == pytest.approx(0.5) and cosine[2] > 0.75
    clip = torch.arange(10.0).view(10, 1, 1, 1).expand(10, 4, 2, 2)
    latent, mask, used = segment_input(clip, 8, 3, "hold")
    assert used == 3 and torch.equal(latent[:3], clip[7:]) and not latent[3:].any()
    assert mask[:, 0, 0, 0].tolist() == [0, 0, 0, 1, 1, 1, 1, 1]
    segment = torch.randn(8, 4, 2, 2)
    joined = join_segment(clip, segment, used, "hold")
    assert joined.shape[0] == 15 and torch.equal(joined[:10], clip) and torch.equal(joined[10:], segment[3:])
    blended = join_segment(clip, segment, used, "linear")
    assert torch.equal(blended[7:], segment)
    with pytest.raises(ValueError, match="context frames"):
        segment_input(clip, 4, 4, "hold")


def test_prediction_in_comfy_context_frames_order_and_memory(tiny_vc2):
    from videocrafter_suite.bridge.videoldm import extend_by_prediction

    model = tiny_vc2[0]
    sampler, sigmas = sampler_and_sigmas(model, "euler", 2, 1.0)
    torch.manual_seed(4)
    start = torch.randn(5, 4, 4, 4)
    segments = []
    batches = []
    model.set_model_unet_function_wrapper(lambda apply, args: batches.append(args["input"].shape[0]) or
                                          apply(args["input"], args["timestep"], **args["c"]))

    guider = guider_for(tiny_vc2)
    runs = []
    plain_sample = guider.sample

    def recording_sample(noise, latent, *args, **kwargs):
        out = plain_sample(noise, latent, *args, **kwargs)
        runs.append((latent.clone(), kwargs["denoise_mask"].clone(), out.clone()))
        return out

    guider.sample = recording_sample
    try:
        with torch.inference_mode():
            clip = extend_by_prediction(guider, sampler, sigmas, SeededNoise(1), start, 3, 6, 2, "hold",
                                        on_segment=lambda i, n: segments.append(n))
    finally:
        model.model_options.pop("model_function_wrapper", None)
    assert clip.shape[0] == 5 + 3 * 4 == total_frames(5, 3, 6, 2)
    assert torch.equal(clip[:5], start), "the input clip is kept, in order"
    assert segments == [6, 6, 6] and max(batches) == 2 * 6, "each model call holds one segment (cond + uncond)"
    new = clip[5:]
    assert (new.abs().amax(dim=(1, 2, 3)) > 0).all(), "every new frame is generated"
    for i, (latent, mask, out) in enumerate(runs):
        end = 5 + 4 * i  # frames existing before segment i
        assert torch.equal(latent[:2], clip[end - 2:end]), f"segment {i}: context = the last 2 frames so far"
        assert mask[:2].abs().max() == 0 and (mask[2:] == 1).all()
        assert (out[:2] - clip[end - 2:end]).abs().max() <= 1e-6, "held context frames come out unchanged"
        assert torch.equal(clip[end:end + 4], out[2:].to(clip)), "the new frames follow in order"


def test_prediction_with_the_i2v_model_starts_from_the_image(comfy_path, tmp_path_factory):
    """I2V: the image conditions every segment (through the guider), and its VAE latent is the held first frame."""
    import comfy.samplers
    from safetensors.torch import save_file

    from videocrafter_suite.bridge.checkpoint import load_videocrafter_checkpoint
    from videocrafter_suite.bridge.videoldm import extend_by_prediction
    from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict, tiny_spec
    from videocrafter_suite.nodes.image_to_video import VideoCrafterImageConditioning

    path = tmp_path_factory.mktemp("i2v") / "tiny_i2v.safetensors"
    save_file(make_tiny_state_dict(tiny_spec("vc1_i2v_512", seed=3)), str(path))
    loaded = load_videocrafter_checkpoint(str(path))
    image = torch.rand(1, 32, 32, 3, generator=torch.Generator().manual_seed(0))
    text = [[torch.zeros(1, 77, 64), {}]]
    positive, negative = VideoCrafterImageConditioning.execute(loaded.model, loaded.clip_vision, image, text, text,
                                                               8, 1.0).args
    guider = comfy.samplers.CFGGuider(loaded.model)
    guider.set_conds(positive, negative)
    guider.set_cfg(3.0)
    sampler, sigmas = sampler_and_sigmas(loaded.model, "euler", 1, 1.0)
    with torch.inference_mode():
        start = loaded.vae.encode(image)
        clip = extend_by_prediction(guider, sampler, sigmas, SeededNoise(2), start, 2, 3, 1, "hold")
    assert clip.shape == (5, 4, 4, 4) and torch.equal(clip[:1], start)
    assert (clip[1:].abs().amax(dim=(1, 2, 3)) > 0).all()


def test_tiled_redenoise_with_the_tiny_unet(tiny_vc2):
    """One tile covering the clip is exactly SamplerCustomAdvanced; several tiles run and keep the clip's shape."""
    from videocrafter_suite.bridge.videoldm import tiled_redenoise

    model = tiny_vc2[0]
    sampler, sigmas = sampler_and_sigmas(model, "euler", 1, 0.5)
    clip = torch.randn(3, 4, 6, 8, generator=torch.Generator().manual_seed(6))
    with torch.inference_mode():
        one_tile = tiled_redenoise(guider_for(tiny_vc2), sampler, sigmas, SeededNoise(8), {"samples": clip}, 6, 8, 2)
        direct = guider_for(tiny_vc2).sample(SeededNoise(8).generate_noise({"samples": clip}), clip, sampler, sigmas,
                                             disable_pbar=True, seed=8)
        tiled = tiled_redenoise(guider_for(tiny_vc2), sampler, sigmas, SeededNoise(8), {"samples": clip}, 4, 4, 2)
    assert torch.equal(one_tile, direct)
    assert tiled.shape == clip.shape and torch.isfinite(tiled).all() and not torch.equal(tiled, direct)
