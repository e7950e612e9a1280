"""The temporal VAE decode sizes its frame chunks from a memory budget (issue 10, item 4): each chunk's
per-frame estimate × frames stays within the budget — by default the free memory ComfyUI reports."""
import pytest
import torch

from tests.videoldm_support import random_temporal_vae


@pytest.fixture(scope="module")
def temporal_vae(comfy_path):
    return random_temporal_vae(seed=0)


def _latent(frames, seed=0):
    return torch.randn(frames, 4, 2, 2, generator=torch.Generator().manual_seed(seed))


@pytest.fixture
def decoded_chunk_sizes(monkeypatch):
    """Frame counts of every decode the temporal decoder runs."""
    from videocrafter_suite.bridge import temporal_vae as tv

    sizes = []
    real = tv._decode_clip

    def spy(vae, latent):
        sizes.append(latent.shape[0])
        return real(vae, latent)

    monkeypatch.setattr(tv, "_decode_clip", spy)
    return sizes


def test_frames_for_budget_is_the_floor_and_at_least_one(comfy_path):
    from videocrafter_suite.bridge.temporal_vae import frames_for_budget

    assert frames_for_budget(10.0, 3.0) == 3
    assert frames_for_budget(9.0, 3.0) == 3
    assert frames_for_budget(2.0, 3.0) == 1  # one frame is the smallest decode there is


@pytest.mark.parametrize("budget_frames", [7, 3, 1])
def test_explicit_budget_bounds_every_chunk(temporal_vae, decoded_chunk_sizes, budget_frames):
    from videocrafter_suite.bridge.temporal_vae import decode_bytes_per_frame, decode_clips

    latent = _latent(7)
    per_frame = decode_bytes_per_frame(temporal_vae, latent)
    with torch.inference_mode():
        out = decode_clips(temporal_vae, latent, budget_bytes=(budget_frames + 0.5) * per_frame)
    assert out.shape == (7, 16, 16, 3) and torch.isfinite(out).all()
    assert max(decoded_chunk_sizes) == budget_frames
    assert sum(decoded_chunk_sizes) >= 7
    assert max(decoded_chunk_sizes) * per_frame <= (budget_frames + 0.5) * per_frame


def test_default_budget_is_comfyuis_free_memory(temporal_vae, decoded_chunk_sizes, monkeypatch):
    import comfy.model_management

    from videocrafter_suite.bridge.temporal_vae import TEMPORAL_DECODE_FACTOR, decode_clips

    latent = _latent(6, seed=1)
    core_per_frame = temporal_vae.memory_used_decode(latent.shape, temporal_vae.vae_dtype)
    free = 2.5 * TEMPORAL_DECODE_FACTOR * core_per_frame  # room for 2 frames by the estimate
    monkeypatch.setattr(comfy.model_management, "get_free_memory", lambda *a, **k: free)
    with torch.inference_mode():
        out = decode_clips(temporal_vae, latent)  # default overlap 4 shrinks to 1 inside 2-frame chunks
    assert out.shape[0] == 6
    assert set(decoded_chunk_sizes) == {2}
    assert len(decoded_chunk_sizes) == 5, "2-frame chunks overlapping by 1 frame: starts 0..4"


def test_an_explicit_chunk_size_still_wins(temporal_vae, decoded_chunk_sizes):
    from videocrafter_suite.bridge.temporal_vae import decode_clips

    with torch.inference_mode():
        decode_clips(temporal_vae, _latent(6, seed=2), chunk_frames=4, chunk_overlap=2, budget_bytes=1.0)
    assert decoded_chunk_sizes == [4, 4]
