"""Animated clip previews in-process (bridge/preview.py): which previewer core gets, what one step
sends to whom, the frames' layout, and what it costs per step. The browser and the real server
round trip are in tests/test_browser_frontend.py.
"""
from __future__ import annotations

import base64
import io
import statistics
import time

import numpy
import pytest
import torch


class RecordingServer:
    """What :class:`AnimatedPreviewer` reads from ComfyUI's PromptServer, recording ``send_sync``."""

    def __init__(self, client_id="tab-1", node="10", prompt_id="p-1"):
        self.client_id, self.last_node_id, self.last_prompt_id = client_id, node, prompt_id
        self.sent = []

    def send_sync(self, event, data, sid=None):
        self.sent.append((event, data, sid))


@pytest.fixture(scope="module")
def preview(comfy_path):
    import latent_preview

    from videocrafter_suite.bridge import preview

    preview.install()
    assert hasattr(latent_preview.get_previewer, "wrapped_by_videocrafter_suite")
    return preview


@pytest.fixture
def latent2rgb(monkeypatch, preview):
    """Core's previews on (latent2rgb), as ``--preview-method latent2rgb`` would set them."""
    from comfy.cli_args import LatentPreviewMethod, args

    monkeypatch.setattr(args, "preview_method", LatentPreviewMethod.Latent2RGB)


@pytest.fixture
def server(monkeypatch, preview):
    recording = RecordingServer()
    monkeypatch.setattr(preview, "_server", lambda: recording)
    monkeypatch.setattr(preview, "CLIENTS", preview.PreviewClients())
    return recording


def smooth_clip(frames=16, size=64, seed=0) -> torch.Tensor:
    """A latent clip ``[T, 4, size, size]`` whose frames differ and vary slowly across pixels (JPEG keeps it)."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.randn([frames, 4, 4, 4], generator=generator) * 2
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False)


def pixels(image) -> torch.Tensor:
    return torch.from_numpy(numpy.asarray(image.convert("RGB"), dtype=numpy.float32))


def test_video_models_get_the_animated_previewer_image_models_core_s(preview, latent2rgb):
    import comfy.latent_formats
    import latent_preview

    video = latent_preview.get_previewer("cpu", preview.VideoLatentFormat())
    image = latent_preview.get_previewer("cpu", comfy.latent_formats.SD15())
    assert isinstance(video, preview.AnimatedPreviewer) and isinstance(video.inner, latent_preview.Latent2RGBPreviewer)
    assert isinstance(image, latent_preview.Latent2RGBPreviewer)
    # the pack's models use it: SD15's factors, marked batch-as-frames
    from videocrafter_suite.bridge.model import VideoCrafterConfig

    assert VideoCrafterConfig.latent_format is preview.VideoLatentFormat
    assert preview.VideoLatentFormat().latent_rgb_factors == comfy.latent_formats.SD15().latent_rgb_factors


def test_no_preview_method_means_no_preview(preview):
    import latent_preview
    from comfy.cli_args import LatentPreviewMethod, args

    assert args.preview_method == LatentPreviewMethod.NoPreviews  # ComfyUI's default
    assert latent_preview.get_previewer("cpu", preview.VideoLatentFormat()) is None


def test_client_that_did_not_ask_gets_core_s_still_unchanged(preview, latent2rgb, server):
    import latent_preview

    clip = smooth_clip()
    animated = latent_preview.get_previewer("cpu", preview.VideoLatentFormat())
    core = animated.inner
    for wants in (None, False):  # never said anything / switched the setting off
        if wants is not None:
            preview.CLIENTS.set(server.client_id, wants)
        got = animated.decode_latent_to_preview_image("JPEG", clip)
        want = core.decode_latent_to_preview_image("JPEG", clip)
        assert got[0] == want[0] and got[2] == want[2] and got[1].tobytes() == want[1].tobytes()
    assert server.sent == []


def test_client_that_asked_gets_every_frame_and_no_still(preview, latent2rgb, server):
    import latent_preview
    from PIL import Image

    clip = smooth_clip(frames=16, size=64)
    preview.CLIENTS.set(server.client_id, True)
    animated = latent_preview.get_previewer("cpu", preview.VideoLatentFormat())
    assert animated.decode_latent_to_preview_image("JPEG", clip) is None  # no still of frame 0 as well
    [(event, payload, sid)] = server.sent
    assert (event, sid, payload["node"], payload["prompt_id"]) == (preview.EVENT, "tab-1", "10", "p-1")
    assert (payload["frames"], payload["columns"], payload["frame_width"], payload["frame_height"]) == (16, 4, 64, 64)
    sheet = Image.open(io.BytesIO(base64.b64decode(payload["image"])))
    assert (sheet.format, payload["mime"], sheet.size) == ("JPEG", "image/jpeg", (256, 256))
    sheet = sheet.convert("RGB")
    # tile i is core's preview of frame i; JPEG at quality 85 on this smooth content moves a channel
    # by a few levels (a wrong frame order or layout moves it by tens: the frames are independent)
    core = animated.inner
    for index in range(16):
        want = pixels(core.decode_latent_to_preview(clip[index:index + 1]))
        x, y = (index % 4) * 64, (index // 4) * 64
        got = pixels(sheet.crop((x, y, x + 64, y + 64)))
        assert (got - want).abs().mean() < 4.0, (index, (got - want).abs().mean())
    # another client's opt-in does not leak to this one
    server.client_id = "tab-2"
    assert animated.decode_latent_to_preview_image("JPEG", clip) is not None


def test_a_single_frame_keeps_core_s_preview(preview, latent2rgb, server):
    import latent_preview

    preview.CLIENTS.set(server.client_id, True)
    animated = latent_preview.get_previewer("cpu", preview.VideoLatentFormat())
    assert animated.decode_latent_to_preview_image("JPEG", smooth_clip(frames=1)) is not None
    assert server.sent == []


def test_contact_sheet_is_row_major_and_exact(preview):
    from PIL import Image

    frames = [Image.new("RGB", (5, 3), (index * 20, 255 - index * 20, index)) for index in range(7)]
    sheet, columns = preview.contact_sheet(frames)
    assert (columns, sheet.size) == (3, (15, 9))  # ceil(sqrt(7)) = 3 columns, 3 rows
    for index in range(7):
        x, y = (index % 3) * 5, (index // 3) * 3
        assert sheet.crop((x, y, x + 5, y + 3)).tobytes() == frames[index].tobytes()


def test_large_frames_are_shrunk_small_ones_are_not_enlarged(preview):
    from PIL import Image

    small = preview.clip_payload(Image.new("RGB", (128, 40)), 2, 2, (64, 40), max_size=512)
    large = preview.clip_payload(Image.new("RGB", (2048, 576)), 2, 2, (1024, 576), max_size=512)
    assert (small["frame_width"], small["frame_height"]) == (64, 40)
    assert (large["frame_width"], large["frame_height"]) == (512, 288)
    assert Image.open(io.BytesIO(base64.b64decode(large["image"]))).size == (1024, 288)


def test_latent_grid_tiles_frames_like_the_contact_sheet(preview):
    clip = torch.arange(7 * 2 * 3 * 5, dtype=torch.float32).reshape(7, 2, 3, 5)
    grid = preview.latent_grid(clip)
    assert grid.shape == (1, 2, 9, 15)  # 3 x 3 tiles of 3 x 5
    for index in range(9):
        y, x = (index // 3) * 3, (index % 3) * 5
        want = clip[index] if index < 7 else torch.zeros(2, 3, 5)
        assert torch.equal(grid[0, :, y:y + 3, x:x + 5], want), index


def test_one_call_sheet_equals_frame_by_frame_previews(preview, latent2rgb):
    """latent2rgb is per pixel: decoding the tiled latent once gives exactly each frame's preview."""
    import latent_preview

    core = latent_preview.get_previewer("cpu", preview.VideoLatentFormat()).inner
    clip = smooth_clip(frames=5, size=16, seed=3)
    sheet, columns, size = preview.decode_sheet(core, clip)
    assert (columns, size, sheet.size) == (3, (16, 16), (48, 32))
    for index in range(5):
        x, y = (index % 3) * 16, (index // 3) * 16
        assert sheet.crop((x, y, x + 16, y + 16)).tobytes() == core.decode_latent_to_preview(clip[index:index + 1]).tobytes()


def test_clients_are_remembered_up_to_capacity(preview):
    clients = preview.PreviewClients(capacity=2)
    clients.set("a", True)
    clients.set("b", True)
    clients.set("a", True)  # refreshed: now the newest
    clients.set("c", True)
    assert (clients.wants_animation("a"), clients.wants_animation("b"), clients.wants_animation("c")) == (True, False, True)
    assert clients.wants_animation(None) is False


def test_animated_preview_cost_per_step(preview, latent2rgb, server):
    """16 frames of a 64x64 latent (a 512x512 video): what the clip costs per sampling step.

    The clip is one latent2rgb call on the tiled latent plus one JPEG of 256x256; core's still is one
    call on a frame plus a JPEG of that frame enlarged to 512x512 (what its server does). Bound: the
    clip within 3x core's still + 10 ms — the same order as what ComfyUI already spends per step on
    a preview (both are a few ms on an idle CPU; a step of the released models at this size takes
    seconds on CPU, ~0.1 s on a GPU). Medians of 15, measured interleaved so load hits both alike,
    on one torch thread: on a loaded 2-core machine waking the thread pool for these tiny ops costs
    ~60 ms per op (measured for core's own still) and would measure the machine, not the work.
    """
    import latent_preview
    from PIL import ImageOps

    clip = smooth_clip(frames=16, size=64)
    preview.CLIENTS.set(server.client_id, True)
    animated = latent_preview.get_previewer("cpu", preview.VideoLatentFormat())

    def clip_step():
        animated.decode_latent_to_preview_image("JPEG", clip)

    def core_still():  # core per step: decode frame 0; its server enlarges to 512 and encodes
        _, image, size = animated.inner.decode_latent_to_preview_image("JPEG", clip)
        ImageOps.contain(image, (size, size)).save(io.BytesIO(), format="JPEG", quality=95)

    times = {clip_step: [], core_still: []}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for fn in times:
            fn()  # warm-up
        for _ in range(15):
            for fn, samples in times.items():
                began = time.perf_counter()
                fn()
                samples.append((time.perf_counter() - began) * 1000)
    finally:
        torch.set_num_threads(threads)
    clip_ms, still_ms = (statistics.median(samples) for samples in times.values())
    print(f"\npreview per step, 16 frames of a 64x64 latent: clip {clip_ms:.2f} ms, core still {still_ms:.2f} ms "
          "(one torch thread)")
    assert clip_ms < 3 * still_ms + 10.0, (clip_ms, still_ms)
