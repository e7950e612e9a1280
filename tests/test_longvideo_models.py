"""Pure-torch unit tests of models/longvideo (no ComfyUI, no fixtures): FreeNoise's index bookkeeping and
window fusion, FIFO's queue bookkeeping and random-draw order, per-frame timesteps in the UNet."""
import pytest
import torch

from videocrafter_suite.models.longvideo import fifo as F
from videocrafter_suite.models.longvideo import freenoise as FN
from videocrafter_suite.models.unet.attention import CrossAttention


@pytest.mark.parametrize("frames,window,stride", [(64, 16, 4), (40, 8, 2), (30, 12, 3), (16, 16, 4), (10, 16, 4)])
def test_rescheduled_frames_copy_the_first_window(frames, window, stride):
    src, blocks = FN.rescheduled_source_index(frames, window, stride, seed=5)
    assert src[:window] == list(range(min(window, frames)))
    assert len(blocks) == len(range(window, frames, stride))
    for j in range(window, frames):
        assert src[j] < window
        if window % stride == 0:
            assert src[j] // stride == (j % window) // stride
    with pytest.raises(ValueError, match="divisible by stride"):
        FN.rescheduled_source_index(window + stride + 1, window, stride, seed=5)


def test_views_and_weights():
    assert FN.get_views(24, 16, 4) == [(0, 16), (4, 20), (8, 24)]
    assert FN.get_views(10, 16, 4) == [] and FN.get_views(10, 16, 4, cover_all=True) == [(0, 10)]
    assert FN.get_views(23, 16, 4, cover_all=True)[-1] == (7, 23)
    assert FN.generate_weight_sequence(16) == [1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1]
    assert FN.generate_weight_sequence(9) == [1, 2, 3, 4, 5, 4, 3, 2, 1]
    with pytest.raises(ValueError, match="stride"):
        FN.WindowFusedAttention(4, 8)


@pytest.mark.parametrize("relative", [False, True])
def test_fused_attention_is_the_weighted_average_of_window_attentions(relative):
    torch.manual_seed(0)
    layer = CrossAttention(16, None, heads=2, dim_head=8, relative_position=relative, temporal_length=2).eval()
    x = torch.randn(3, 10, 16, dtype=torch.float64)
    layer = layer.double()
    override = FN.WindowFusedAttention(6, 2)
    assert override(layer, x[:, :6]) is None, "one window over all frames = the plain layer"
    with torch.no_grad():
        fused = override(layer, x)
        value = torch.zeros(3, 10, 16, dtype=torch.float64)
        count = torch.zeros(1, 10, 1, dtype=torch.float64)
        for start, end in FN.get_views(10, 6, 2):
            inner = layer(x[:, start:end])  # plain attention on the window (to_out included)
            w = torch.tensor(FN.generate_weight_sequence(end - start), dtype=torch.float64).view(1, -1, 1)
            value[:, start:end] += inner * w
            count[:, start:end] += w
    # to_out is affine, so averaging its outputs with weights that sum to 1 per frame equals to_out(average)
    assert torch.allclose(fused, value / count, atol=1e-12)


def test_equal_per_frame_timesteps_are_the_per_video_result_exactly():
    from videocrafter_suite.devkit.tiny_checkpoint import tiny_spec, tiny_unet_config
    from videocrafter_suite.models.unet.unet3d import VideoCrafterUNet

    torch.manual_seed(0)
    unet = VideoCrafterUNet(tiny_unet_config(tiny_spec("vc2_t2v_512"))).eval()
    x = torch.randn(1, 4, 4, 8, 8)
    context = torch.randn(1, 77, unet.config.context_dim)
    with torch.no_grad():
        scalar = unet(x, torch.tensor([421]), context, fps=8)
        equal = unet(x, torch.full((4,), 421), context, fps=8)
        distinct = unet(x, torch.tensor([0, 143, 285, 428]), context, fps=8)
        frame0 = unet(x, torch.tensor([0]), context, fps=8)
    assert torch.equal(equal, scalar)
    assert not torch.allclose(distinct, scalar, atol=1e-3)
    assert not torch.allclose(distinct[:, :, 1:], frame0[:, :, 1:], atol=1e-3), "frame k uses its own timestep"


@pytest.mark.parametrize("lookahead", [True, False])
def test_fifo_bookkeeping_and_draw_order(lookahead):
    settings = F.FifoSettings(video_length=4, num_partitions=2, new_video_length=5, lookahead=lookahead, eta=1.0)
    from videocrafter_suite.models.sampling.schedule import VC2_512

    arrays = F.fifo_ddim_arrays(VC2_512, settings.num_steps, 1.0)
    assert arrays.timesteps.tolist() == [0, 143, 285, 428, 571, 714, 856, 999]
    timesteps, indices = F.queue_schedule(F.without_scale(arrays), settings)
    assert len(timesteps) == settings.queue_length == (10 if lookahead else 8)
    shapes = []

    def draw(shape, like):
        shapes.append(tuple(shape))
        return torch.zeros(shape, dtype=like.dtype)

    windows = []

    def eps(x, ts):
        windows.append(ts.tolist())
        assert x.shape == (1, 4, 4, 2, 2)
        return torch.zeros_like(x)

    clip = torch.randn(1, 4, 4, 2, 2)
    video = F.fifo_sample(eps, clip, arrays, settings, draw)
    assert video.shape == (1, 4, settings.new_video_length, 2, 2)
    assert len(windows) == settings.iterations * len(settings.ranks)
    assert windows[0] == timesteps[settings.window(settings.ranks[0])[0]:][:4].tolist(), "noisiest window first"
    per_iteration = len(settings.ranks) * 4 + 1
    assert len(shapes) == settings.queue_length + settings.iterations * per_iteration
    assert shapes[settings.queue_length + per_iteration - 1] == (1, 4, 2, 2), "shift draw ends each iteration"
    with pytest.raises(ValueError, match="even window"):
        F.FifoSettings(video_length=5, lookahead=True)
