"""Real server: the I2V example workflow (API twin) on a tiny I2V checkpoint in the released layout, and
bad inputs (no image, a T2V checkpoint, a CLIP vision of the wrong width) with one clear error each
while the server keeps serving."""
import json
import time

import pytest
import torch

from tests.server import ExecutionFailed, PromptRejected, probe_media, read_frames
from tests.server.workflows import TINY_SIZE, load_api_workflow, node_of, shrink_for_tiny



@pytest.fixture(scope="module")
def i2v_files(comfy_server, tiny_checkpoint):
    """Tiny checkpoints (I2V, I2V with a 192-wide image encoder, VC2 T2V) and two input images."""
    from PIL import Image

    folder = comfy_server.models_dir / "checkpoints"
    names = {"i2v": tiny_checkpoint("vc1_i2v_512", seed=1, folder=folder).name,
             "i2v_wide": tiny_checkpoint("vc1_i2v_512", seed=2, folder=folder, vision_width=192).name,
             "t2v": tiny_checkpoint("vc2_t2v_512", seed=1, folder=folder).name}
    comfy_server.input_dir.mkdir(parents=True, exist_ok=True)
    gradient = torch.linspace(0, 255, 96).round().to(torch.uint8)
    left = torch.stack([gradient.view(1, -1).expand(80, -1)] * 3, -1)
    Image.fromarray(left.numpy()).save(comfy_server.input_dir / "i2v_gradient.png")
    Image.fromarray(left.flip(1).numpy()).save(comfy_server.input_dir / "i2v_gradient_flipped.png")
    return names


def i2v_workflow(ckpt_name, *, image="i2v_gradient.png", steps=3, frames=8, seed=123):
    graph = shrink_for_tiny(load_api_workflow("videocrafter1_i2v_512"), ckpt_name=ckpt_name, steps=steps,
                            frames=frames, seed=seed, prefix="e2e/i2v")
    graph[node_of(graph, "LoadImage")]["inputs"]["image"] = image
    return graph


def video_of(server, result, frames):
    videos = [r for r in result.files() if r["filename"].endswith(".mp4")]
    assert len(videos) == 1, result.files()
    info = probe_media(server.output_path(videos[0]))
    assert (info.frame_count, info.width, info.height) == (frames, TINY_SIZE["width"], TINY_SIZE["height"])
    return torch.from_numpy(read_frames(server.output_path(videos[0]))).float()


def test_i2v_example_workflow_runs_and_the_image_matters(comfy_server, i2v_files):
    graph = i2v_workflow(i2v_files["i2v"], steps=3, frames=8)
    assert graph[node_of(graph, "VideoCrafterImageConditioning")]["inputs"]["fps"] == 8
    start = time.perf_counter()
    result = comfy_server.run(graph, timeout=600)
    print(f"I2V tiny workflow (3 steps, 8 frames, 64x48): {time.perf_counter() - start:.2f} s")
    progress = result.events("progress")
    assert progress and max(p["max"] for p in progress) == 3
    video = video_of(comfy_server, result, frames=8)
    flipped = video_of(comfy_server, comfy_server.run(i2v_workflow(i2v_files["i2v"], image="i2v_gradient_flipped.png",
                                                                   steps=3, frames=8)), frames=8)
    assert (video - flipped).abs().mean() > 0.5, "the conditioning image changes the video"


def still_serving(server, names):
    assert server.run(i2v_workflow(names["i2v"], steps=1, frames=2)).succeeded


def test_missing_image_is_rejected_before_compute(comfy_server, i2v_files):
    graph = i2v_workflow(i2v_files["i2v"])
    del graph[node_of(graph, "VideoCrafterImageConditioning")]["inputs"]["image"]
    with pytest.raises(PromptRejected) as rejected:
        comfy_server.queue(graph)
    assert "image" in json.dumps(rejected.value.node_errors)
    still_serving(comfy_server, i2v_files)


def test_t2v_checkpoint_wired_to_image_conditioning_gives_one_clear_error(comfy_server, i2v_files):
    with pytest.raises(ExecutionFailed) as failed:
        comfy_server.run(i2v_workflow(i2v_files["t2v"]))
    error = failed.value.result.error
    assert error["node_type"] == "VideoCrafterImageConditioning"
    assert "text-to-video" in error["exception_message"] and "I2V" in error["exception_message"]
    still_serving(comfy_server, i2v_files)


def test_clip_vision_of_the_wrong_width_gives_one_clear_error(comfy_server, i2v_files):
    graph = i2v_workflow(i2v_files["i2v"])
    graph["90"] = {"class_type": "VideoCrafterCheckpointLoader", "inputs": {"ckpt_name": i2v_files["i2v_wide"]}}
    graph[node_of(graph, "VideoCrafterImageConditioning")]["inputs"]["clip_vision"] = ["90", 3]
    with pytest.raises(ExecutionFailed) as failed:
        comfy_server.run(graph)
    message = failed.value.result.error["exception_message"]
    assert "192-wide tokens" in message and "ViT-H/14" in message
    still_serving(comfy_server, i2v_files)
