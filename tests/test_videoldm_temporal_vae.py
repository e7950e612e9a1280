"""Temporal VAE decoding (VideoLDM §3.1.1) on a random-weight SGM temporal decoder built by core itself
(``comfy.sd.VAE`` detects ``decoder.mid.block_1.mix_factor`` and builds ``temporal_ae.VideoDecoder``)."""
import pytest
import torch

from tests.videoldm_support import random_temporal_vae


@pytest.fixture(scope="module")
def temporal_vae(comfy_path):
    return random_temporal_vae(seed=0)


def _latent(frames, seed=0):
    return torch.randn(frames, 4, 2, 2, generator=torch.Generator().manual_seed(seed))


def test_core_builds_the_temporal_decoder(temporal_vae):
    from videocrafter_suite.bridge.temporal_vae import is_temporal

    assert is_temporal(temporal_vae)


def test_one_clip_is_coupled_across_frames_two_clips_are_not(temporal_vae):
    from videocrafter_suite.bridge.temporal_vae import decode_clips

    latent = _latent(6)
    changed = latent.clone()
    changed[0] += 1.0
    with torch.inference_mode():
        one = decode_clips(temporal_vae, latent)
        one_changed = decode_clips(temporal_vae, changed)
        two = decode_clips(temporal_vae, latent, frames_per_clip=3)
        two_changed = decode_clips(temporal_vae, changed, frames_per_clip=3)
    assert one.shape == (6, 16, 16, 3)
    assert (one_changed[1] - one[1]).abs().max() > 1e-4, "frame 0 reaches frame 1 through the temporal layers"
    assert (two_changed[1] - two[1]).abs().max() > 1e-4
    assert torch.equal(two_changed[3:], two[3:]), "the second clip does not see the first"


def test_chunks_on_clip_boundaries_equal_one_shot_and_overlaps_blend(temporal_vae):
    from videocrafter_suite.bridge.temporal_vae import _decode_clip, decode_clips

    latent = _latent(6, seed=1)
    with torch.inference_mode():
        first, second = _decode_clip(temporal_vae, latent[:4]), _decode_clip(temporal_vae, latent[2:])
        chunked = decode_clips(temporal_vae, torch.cat([latent[:4], latent[2:]]), frames_per_clip=4, chunk_frames=4)
        blended = decode_clips(temporal_vae, latent, chunk_frames=4, chunk_overlap=2)  # chunks [0, 4) and [2, 6)
    first, second = first.movedim(1, -1), second.movedim(1, -1)
    assert torch.equal(chunked, torch.cat([first, second])), "chunks on clip boundaries = each clip in one shot"
    assert torch.equal(blended[:2], first[:2]) and torch.equal(blended[4:], second[2:])
    low = torch.minimum(first[2:], second[:2]) - 1e-6
    high = torch.maximum(first[2:], second[:2]) + 1e-6
    assert ((blended[2:4] >= low) & (blended[2:4] <= high)).all(), "the overlap is a convex blend of both chunks"
    assert not torch.equal(blended[2:4], first[2:]) and not torch.equal(blended[2:4], second[:2])


def test_a_non_temporal_vae_is_refused(comfy_path):
    import comfy.sd

    from videocrafter_suite.bridge.temporal_vae import NotTemporalVAE, decode_clips

    ddconfig = {"double_z": True, "z_channels": 4, "resolution": 32, "in_channels": 3, "out_ch": 3, "ch": 32,
                "ch_mult": [1, 1], "num_res_blocks": 1, "attn_resolutions": [], "dropout": 0.0}
    image_vae = comfy.sd.VAE(sd={}, config={"params": {"embed_dim": 4, "ddconfig": ddconfig}})
    with pytest.raises(NotTemporalVAE, match="no temporal layers"):
        decode_clips(image_vae, _latent(2))
