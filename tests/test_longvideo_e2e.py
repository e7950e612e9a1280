"""Real server round trips of the long-video example workflows (API twins) on tiny checkpoints, shrunk to
a few frames and steps, plus bad inputs with clear errors while the server keeps serving."""
import json

import pytest

from tests.server import ExecutionFailed, PromptRejected, probe_media
from tests.server.workflows import TINY_SIZE, load_api_workflow, node_of, shrink_for_tiny


@pytest.fixture(scope="module")
def tiny_checkpoints(comfy_server, tiny_checkpoint):
    folder = comfy_server.models_dir / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    return {variant: tiny_checkpoint(variant, seed=1, folder=folder).name for variant in ("vc2_t2v_512", "vc1_t2v_1024")}


def _video_frames(server, result) -> int:
    videos = [r for r in result.files() if r["filename"].endswith(".mp4")]
    assert len(videos) == 1, result.files()
    info = probe_media(server.output_path(videos[0]))
    assert (info.width, info.height) == (TINY_SIZE["width"], TINY_SIZE["height"])
    return info.frame_count


def freenoise_graph(ckpt, frames=12, window=8, stride=4):
    graph = shrink_for_tiny(load_api_workflow("videocrafter1_freenoise_64"), ckpt_name=ckpt, steps=2, frames=frames,
                            prefix="e2e/freenoise")
    for kind in ("VideoCrafterFreeNoiseAttention", "VideoCrafterFreeNoiseNoise"):
        graph[node_of(graph, kind)]["inputs"].update(window=window, stride=stride)
    return graph


def test_freenoise_workflow_writes_the_video(comfy_server, tiny_checkpoints):
    result = comfy_server.run(freenoise_graph(tiny_checkpoints["vc1_t2v_1024"]), timeout=600)
    assert _video_frames(comfy_server, result) == 12


def test_fifo_workflow_writes_the_requested_length_with_progress_in_frames(comfy_server, tiny_checkpoints):
    graph = shrink_for_tiny(load_api_workflow("videocrafter2_fifo_128"), ckpt_name=tiny_checkpoints["vc2_t2v_512"],
                            steps=2, frames=4, prefix="e2e/fifo")
    fifo = node_of(graph, "VideoCrafterFIFOSampler")
    graph[fifo]["inputs"].update(frames=6, num_partitions=2)
    result = comfy_server.run(graph, timeout=600)
    assert _video_frames(comfy_server, result) == 6
    iterations = 6 + 4 * 2 - 4  # N + S - f popped frames
    progress = [p for p in result.events("progress") if p.get("node") == fifo]
    assert progress and max(p["max"] for p in progress) == iterations


def test_context_windows_workflow_with_core_ksampler(comfy_server, tiny_checkpoints):
    graph = shrink_for_tiny(load_api_workflow("videocrafter2_context_windows_48"),
                            ckpt_name=tiny_checkpoints["vc2_t2v_512"], frames=12, prefix="e2e/context_windows")
    graph[node_of(graph, "VideoCrafterContextWindows")]["inputs"].update(context_length=4, context_overlap=1)
    graph[node_of(graph, "KSampler")]["inputs"].update(steps=2, sampler_name="heun")
    assert _video_frames(comfy_server, comfy_server.run(graph, timeout=600)) == 12


def test_bad_long_video_inputs_give_clear_errors_and_the_server_keeps_serving(comfy_server, tiny_checkpoints):
    ckpt = tiny_checkpoints["vc1_t2v_1024"]
    graph = freenoise_graph(ckpt)
    graph[node_of(graph, "VideoCrafterFreeNoiseNoise")]["inputs"].update(window=4, stride=8)
    with pytest.raises(ExecutionFailed) as failed:
        comfy_server.run(graph)
    message = failed.value.result.error["exception_message"]
    assert "input 'stride'" in message and "between 1 and the window" in message, message

    graph = freenoise_graph(ckpt)
    graph[node_of(graph, "VideoCrafterFreeNoiseNoise")]["inputs"]["window"] = 0
    with pytest.raises(PromptRejected) as rejected:  # below the schema minimum: the host names the input
        comfy_server.queue(graph)
    assert "window" in json.dumps(rejected.value.node_errors)

    with pytest.raises(ExecutionFailed) as failed:
        comfy_server.run(freenoise_graph(ckpt, frames=11))
    assert "divisible by stride" in failed.value.result.error["exception_message"]

    graph = shrink_for_tiny(load_api_workflow("videocrafter2_context_windows_48"), ckpt_name=ckpt, frames=4,
                            prefix="e2e/bad")
    graph[node_of(graph, "VideoCrafterContextWindows")]["inputs"].update(context_length=4, context_overlap=4)
    with pytest.raises(ExecutionFailed) as failed:
        comfy_server.run(graph)
    assert "input 'context_overlap'" in failed.value.result.error["exception_message"]

    assert comfy_server.run(freenoise_graph(ckpt, frames=8)).succeeded
