"""Real server round trips of the VideoLDM example workflows (API twins) on tiny models — keyframe ×4
interpolation, long video by prediction, temporal upscale (fps ×4, spatial ×2 in tiles), temporal VAE
decode — and one clear error for each bad input, with the server still serving afterwards."""
import pytest
import torch
from safetensors.torch import save_file

from tests.server import ExecutionFailed, PromptRejected, probe_media
from tests.server.workflows import TINY_SIZE, load_api_workflow, node_of, shrink_for_tiny
from tests.videoldm_support import random_temporal_vae, temporal_vae_decoder_state

SVD_VAE = "svd_temporal_decoder_vae.safetensors"


@pytest.fixture(scope="module")
def tiny_files(comfy_server, comfy_path):
    """The tiny VC2 checkpoint and a random-weight SGM temporal-decoder VAE (fp16, decoder only) on the server."""
    from videocrafter_suite.devkit.tiny_checkpoint import make_tiny_state_dict, tiny_spec

    checkpoints = comfy_server.models_dir / "checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    name = "tiny_videoldm_vc2.safetensors"
    save_file(make_tiny_state_dict(tiny_spec("vc2_t2v_512", seed=3)), str(checkpoints / name))
    vae_folder = comfy_server.models_dir / "vae"
    vae_folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() for k, v in temporal_vae_decoder_state(random_temporal_vae(seed=1)).items()}
    save_file(state, str(vae_folder / SVD_VAE))
    return name


def tiny(name, ckpt, frames, steps=2):
    return shrink_for_tiny(load_api_workflow(name), ckpt_name=ckpt, steps=steps, frames=frames, seed=7,
                           prefix=f"e2e/{name}")


def video_of(server, result):
    videos = [r for r in result.files() if r["filename"].endswith(".mp4")]
    assert len(videos) == 1, result.files()
    return probe_media(server.output_path(videos[0]))


def test_keyframe_interpolation_x4(comfy_server, tiny_files):
    graph = tiny("videoldm_keyframe_interpolation", tiny_files, frames=2)  # 2 keyframes → 8 frames
    info = video_of(comfy_server, comfy_server.run(graph))
    assert (info.frame_count, info.width, info.height) == (8, TINY_SIZE["width"], TINY_SIZE["height"])
    assert info.fps == pytest.approx(28, abs=0.01)


def test_long_video_by_prediction(comfy_server, tiny_files):
    graph = tiny("videoldm_long_video_prediction", tiny_files, frames=4)
    graph[node_of(graph, "VideoCrafterExtendByPrediction")]["inputs"].update(
        segments=2, segment_frames=4, context_frames=1)
    info = video_of(comfy_server, comfy_server.run(graph))
    assert info.frame_count == 4 + 2 * 3


def test_temporal_upscale_fps_x4_and_spatial_x2_in_tiles(comfy_server, tiny_files):
    graph = tiny("videoldm_temporal_upscale", tiny_files, frames=1)  # 1 keyframe → 4 frames, then 2×2 tiles
    graph[node_of(graph, "VideoCrafterTiledRedenoise")]["inputs"].update(tile_width=96, tile_height=64, overlap=16)
    info = video_of(comfy_server, comfy_server.run(graph))
    assert (info.frame_count, info.width, info.height) == (4, 2 * TINY_SIZE["width"], 2 * TINY_SIZE["height"])


def test_temporal_vae_decode(comfy_server, tiny_files):
    graph = tiny("videoldm_temporal_vae_decode", tiny_files, frames=4)
    info = video_of(comfy_server, comfy_server.run(graph))
    assert (info.frame_count, info.width, info.height) == (4, TINY_SIZE["width"], TINY_SIZE["height"])


def still_serving(server, ckpt):
    assert server.run(tiny("videoldm_long_video_prediction", ckpt, frames=2, steps=1)
                      | {"11": {"class_type": "VideoCrafterExtendByPrediction",
                                "inputs": {**load_api_workflow("videoldm_long_video_prediction")["11"]["inputs"],
                                           "segments": 1, "segment_frames": 3, "context_frames": 1}}}).succeeded


def test_bad_inputs_get_one_clear_error_each(comfy_server, tiny_files):
    graph = tiny("videoldm_keyframe_interpolation", tiny_files, frames=2)
    graph[node_of(graph, "VideoCrafterKeyframeInterpolation")]["inputs"]["factor"] = 3
    with pytest.raises(PromptRejected) as rejected:
        comfy_server.queue(graph)
    assert "factor must be one of 2, 4, 8, 16" in str(rejected.value.node_errors)

    graph = tiny("videoldm_keyframe_interpolation", tiny_files, frames=2)
    graph["90"] = {"class_type": "EmptyImage", "inputs": {"width": 32, "height": 32, "batch_size": 1, "color": 0}}
    graph[node_of(graph, "VideoCrafterKeyframeInterpolation")]["inputs"].update(keyframe_images=["90", 0],
                                                                               vae=["1", 2])
    with pytest.raises(ExecutionFailed) as failed:
        comfy_server.run(graph)
    message = failed.value.result.error["exception_message"]
    assert "keyframes of another size" in message and "64×48" in message and "32×32" in message

    graph = tiny("videoldm_temporal_vae_decode", tiny_files, frames=2)
    graph[node_of(graph, "VideoCrafterTemporalVAEDecode")]["inputs"]["vae"] = ["1", 2]  # the checkpoint's SD VAE
    with pytest.raises(ExecutionFailed) as failed:
        comfy_server.run(graph)
    message = failed.value.result.error["exception_message"]
    assert "no temporal layers" in message and "Load VAE" in message
    still_serving(comfy_server, tiny_files)
